// Package kv is the example key-value store of examples/kvstore: every key
// is an object in an S3 bucket, and a write (put, delete, compare-and-set)
// is acknowledged only once S3 acknowledged it. Operations run one at a
// time, so the store is linearizable; a write whose S3 request failed is
// answered with an error, as its effect is unknown, and the key is read
// from S3 again next time.
//
// The unsafe-ack variant (Config.UnsafeAck) plants a bug on purpose: it
// acknowledges a write once it is in memory and writes S3 behind, so a
// kill loses acknowledged writes. The chaos suite (examples/kvstore/chaos)
// proves that its checker catches it.
package kv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
)

// Object key prefix of the values in the bucket.
const prefix = "kv/"

// entry is what the store knows of a key.
type entry struct {
	value  string
	exists bool
}

// Store is the key-value store on one bucket.
type Store struct {
	s3      *minio.Client
	bucket  string
	timeout time.Duration
	unsafe  bool
	log     *slog.Logger

	// mu serializes operations: each runs alone, S3 request included.
	mu sync.Mutex
	// cache holds the keys whose state is known; a key whose S3 write
	// failed is dropped, so it is read from S3 again.
	cache map[string]entry

	// base ends every S3 request when the store is killed.
	base   context.Context
	cancel context.CancelFunc
	// writes counts S3 writes in flight (and unsafe-ack's writes behind);
	// wmu guards its Add against Kill's and Flush's Wait, and ended, set
	// by them, refuses new writes.
	wmu    sync.Mutex
	ended  bool
	writes sync.WaitGroup
}

// errEnded answers a write that arrives after Kill or Flush.
var errEnded = errors.New("kv: the store is shutting down")

// begin counts a write in, unless the store ended.
func (s *Store) begin() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.ended {
		return errEnded
	}
	s.writes.Add(1)
	return nil
}

// end refuses new writes and waits for those in flight.
func (s *Store) end() {
	s.wmu.Lock()
	s.ended = true
	s.wmu.Unlock()
	s.writes.Wait()
}

// NewStore returns a store on bucket through c.
func NewStore(c *minio.Client, bucket string, timeout time.Duration, unsafe bool, log *slog.Logger) *Store {
	base, cancel := context.WithCancel(context.Background())
	return &Store{s3: c, bucket: bucket, timeout: timeout, unsafe: unsafe, log: log, cache: map[string]entry{}, base: base, cancel: cancel}
}

// Get returns key's value and whether it exists.
func (s *Store) Get(ctx context.Context, key string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.load(ctx, key)
	return e.value, e.exists, err
}

// Put sets key to value.
func (s *Store) Put(ctx context.Context, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write(ctx, key, entry{value: value, exists: true})
}

// Delete removes key; deleting a missing key succeeds.
func (s *Store) Delete(ctx context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.write(ctx, key, entry{})
}

// CompareAndSet sets key to to when it exists with the value from, and
// reports whether it did.
func (s *Store) CompareAndSet(ctx context.Context, key, from, to string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.load(ctx, key)
	if err != nil {
		return false, err
	}
	if !e.exists || e.value != from {
		return false, nil
	}
	return true, s.write(ctx, key, entry{value: to, exists: true})
}

// load returns key's entry from the cache, else from S3. It runs under mu.
func (s *Store) load(ctx context.Context, key string) (entry, error) {
	if e, ok := s.cache[key]; ok {
		return e, nil
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	obj, err := s.s3.GetObject(ctx, s.bucket, prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return entry{}, fmt.Errorf("kv: get %s: %w", key, err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if minio.ToErrorResponse(err).Code == "NoSuchKey" {
		s.cache[key] = entry{}
		return entry{}, nil
	}
	if err != nil {
		return entry{}, fmt.Errorf("kv: get %s: %w", key, err)
	}
	e := entry{value: string(b), exists: true}
	s.cache[key] = e
	return e, nil
}

// write makes e key's state. It runs under mu. The safe store returns
// once S3 has it; unsafe-ack returns at once and writes S3 behind.
func (s *Store) write(ctx context.Context, key string, e entry) error {
	if err := s.begin(); err != nil {
		return err
	}
	if s.unsafe {
		// THE PLANTED BUG: acknowledged before it is durable.
		s.cache[key] = e
		go func() {
			defer s.writes.Done()
			if err := s.persist(s.base, key, e); err != nil {
				s.log.Warn("write behind failed", "key", key, "err", err)
			}
		}()
		return nil
	}
	defer s.writes.Done()
	if err := s.persist(ctx, key, e); err != nil {
		// S3 may or may not have applied it: read it from S3 next time.
		delete(s.cache, key)
		return err
	}
	s.cache[key] = e
	return nil
}

// persist writes e to key's object.
func (s *Store) persist(ctx context.Context, key string, e entry) error {
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	if !e.exists {
		if err := s.s3.RemoveObject(ctx, s.bucket, prefix+key, minio.RemoveObjectOptions{}); err != nil {
			return fmt.Errorf("kv: delete %s: %w", key, err)
		}
		return nil
	}
	_, err := s.s3.PutObject(ctx, s.bucket, prefix+key, bytes.NewReader([]byte(e.value)), int64(len(e.value)),
		minio.PutObjectOptions{ContentType: "application/octet-stream", DisableMultipart: true})
	if err != nil {
		return fmt.Errorf("kv: put %s: %w", key, err)
	}
	return nil
}

// opContext bounds one S3 request by the store's timeout, and ends it
// when ctx ends or the store is killed.
func (s *Store) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	stop := context.AfterFunc(s.base, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// Flush refuses new writes and waits for those in flight (unsafe-ack's
// writes behind) until ctx ends.
func (s *Store) Flush(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.end()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kv: flush: %w", ctx.Err())
	}
}

// Kill ends every S3 request at once and waits until none runs: from its
// return the store writes nothing more, as after SIGKILL. unsafe-ack's
// writes behind that did not reach S3 are lost.
func (s *Store) Kill() {
	s.cancel()
	s.end()
}
