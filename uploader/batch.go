package uploader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zeebo/xxh3"
)

// PackDir is the directory, under a batch's key prefix, that pack objects
// are written to: members "t/db/col/snap-1" and "t/db/col/snap-2" end up in
// "t/db/col/_batch/<time>-<seq>.pack".
const PackDir = "_batch"

// Pending is a member added to a BatchUploader, acknowledged once the pack
// holding it is durable in the store (or reported failed).
type Pending struct {
	key  string
	done chan struct{}
	loc  Location
	err  error
}

// Key returns the member's key.
func (p *Pending) Key() string { return p.key }

// Done is closed when the member is durable or failed.
func (p *Pending) Done() <-chan struct{} { return p.done }

// Wait blocks until the member is durable (returning its location) or its
// batch failed (returning the error, after the uploader's retries), or ctx
// ends.
func (p *Pending) Wait(ctx context.Context) (Location, error) {
	select {
	case <-p.done:
		return p.loc, p.err
	case <-ctx.Done():
		return Location{}, canceled("Wait", p.key, ctx.Err())
	}
}

func (p *Pending) resolve(loc Location, err error) {
	p.loc, p.err = loc, err
	close(p.done)
}

// BatchStats counts a BatchUploader's work.
type BatchStats struct {
	// Batches is the number of pack objects (or, with batching disabled,
	// single objects) whose upload finished, successfully or not.
	Batches int64
	// FailedBatches is how many of them failed.
	FailedBatches int64
	// Members is the number of members in finished batches.
	Members int64
	// Bytes is the total size of the objects uploaded, pack headers included.
	Bytes int64
}

// BatchUploader groups small snapshots by key prefix (the key up to its
// last '/') and uploads each group as one pack object (format: see
// pack.go) through a ParallelUploader, so that N snapshots cost one PUT. A
// group is flushed when it holds BatchConfig.Size members or MaxBytes
// bytes, when its oldest member is FlushInterval old (background flusher),
// on Flush, and on Close. Members are acknowledged (Pending.Wait) only
// when their pack is durable; a failed pack upload is retried by the
// ParallelUploader and then reported to every member.
type BatchUploader struct {
	up   *ParallelUploader
	cfg  BatchConfig
	opts options

	// ctx bounds the uploads; cancelled when Close gives up.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	groups  map[string]*batch
	flights map[*flight]struct{}
	closed  bool
	seq     uint64
	stats   BatchStats

	stop        chan struct{}
	flusherDone chan struct{}
}

type batch struct {
	prefix  string
	members []*batchMember
	bytes   int64
	oldest  time.Time
}

type batchMember struct {
	key  string
	data []byte
	p    *Pending
}

// flight is one batch being uploaded.
type flight struct {
	done chan struct{}
	err  error
}

// NewBatchUploader validates cfg and starts the background flusher. Close
// it to flush and stop.
func NewBatchUploader(up *ParallelUploader, cfg BatchConfig, opts ...Option) (*BatchUploader, error) {
	if up == nil {
		return nil, invalidArg("NewBatchUploader", "", "parallel uploader is nil")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	if o.tick <= 0 {
		o.tick = max(cfg.FlushInterval/10, time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &BatchUploader{
		up: up, cfg: cfg, opts: o, ctx: ctx, cancel: cancel,
		groups:  make(map[string]*batch),
		flights: make(map[*flight]struct{}),
		stop:    make(chan struct{}), flusherDone: make(chan struct{}),
	}
	go b.flusher()
	return b, nil
}

// prefixOf returns the batching prefix of key: everything before its last '/'.
func prefixOf(key string) string {
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		return key[:i]
	}
	return ""
}

// Add queues data under key and returns at once; data is copied. The
// member is durable when the returned Pending says so. Add fails with
// ErrClosed after Close and ErrInvalidArgument for a bad key.
func (b *BatchUploader) Add(key string, data []byte) (*Pending, error) {
	if err := checkKey("Add", key); err != nil {
		return nil, err
	}
	p := &Pending{key: key, done: make(chan struct{})}
	m := &batchMember{key: key, data: bytes.Clone(data), p: p}
	if m.data == nil {
		m.data = []byte{}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, &StoreError{Op: "Add", Key: key, Code: CodeClosed, Err: errors.New("batch uploader is closed")}
	}
	if !b.cfg.Enabled {
		b.launchLocked(&batch{prefix: prefixOf(key), members: []*batchMember{m}, bytes: int64(len(m.data))})
		return p, nil
	}
	prefix := prefixOf(key)
	g := b.groups[prefix]
	if g == nil {
		g = &batch{prefix: prefix, oldest: b.opts.now()}
		b.groups[prefix] = g
	}
	g.members = append(g.members, m)
	g.bytes += int64(len(m.data))
	if len(g.members) >= b.cfg.Size || g.bytes >= b.cfg.MaxBytes {
		delete(b.groups, prefix)
		b.launchLocked(g)
	}
	return p, nil
}

// Put adds data under key and waits until it is durable.
func (b *BatchUploader) Put(ctx context.Context, key string, data []byte) (Location, error) {
	p, err := b.Add(key, data)
	if err != nil {
		return Location{}, err
	}
	return p.Wait(ctx)
}

// launchLocked starts uploading g. b.mu must be held.
func (b *BatchUploader) launchLocked(g *batch) {
	f := &flight{done: make(chan struct{})}
	b.flights[f] = struct{}{}
	b.seq++
	seq := b.seq
	go func() {
		f.err = b.upload(g, seq)
		b.mu.Lock()
		delete(b.flights, f)
		b.mu.Unlock()
		close(f.done)
	}()
}

// upload writes one batch and resolves its members.
func (b *BatchUploader) upload(g *batch, seq uint64) error {
	var (
		item Item
		locs []Location
	)
	if !b.cfg.Enabled {
		m := g.members[0]
		item = BytesItem(m.key, m.data)
		locs = []Location{{Key: m.key, PackKey: m.key, Length: int64(len(m.data)), Checksum: xxh3.Hash(m.data)}}
	} else {
		packKey := fmt.Sprintf("%s-%06d.pack", b.opts.now().UTC().Format("20060102T150405.000000000Z"), seq)
		if g.prefix != "" {
			packKey = g.prefix + "/" + PackDir + "/" + packKey
		} else {
			packKey = PackDir + "/" + packKey
		}
		in := make([]packInput, len(g.members))
		for i, m := range g.members {
			in[i] = packInput{key: m.key, data: m.data}
		}
		buf, l, err := encodePack(packKey, in)
		if err != nil {
			b.finish(g, nil, 0, err)
			return err
		}
		if b.opts.beforePack != nil {
			keys := make([]string, len(in))
			for i, m := range in {
				keys[i] = m.key
			}
			if err := b.opts.beforePack(b.ctx, packKey, keys); err != nil {
				err = fmt.Errorf("batch %s (%d members): before upload: %w", packKey, len(in), err)
				b.finish(g, nil, 0, err)
				return err
			}
		}
		locs = l
		item = Item{Key: packKey, Body: bytes.NewReader(buf), Size: int64(len(buf)), Opts: PutOptions{
			ContentType: "application/x-tierchaos-pack",
			Metadata:    map[string]string{"tierchaos-pack": "v1", "tierchaos-members": strconv.Itoa(len(in))},
		}}
	}
	res := b.up.Upload(b.ctx, item)
	var err error
	if res.Err != nil {
		err = fmt.Errorf("batch %s (%d members): %w", item.Key, len(g.members), res.Err)
	}
	b.finish(g, locs, item.Size, err)
	return err
}

func (b *BatchUploader) finish(g *batch, locs []Location, size int64, err error) {
	// Count first, so that a member's waiter sees its batch in Stats.
	b.mu.Lock()
	b.stats.Batches++
	b.stats.Members += int64(len(g.members))
	if err != nil {
		b.stats.FailedBatches++
	} else {
		b.stats.Bytes += size
	}
	b.mu.Unlock()
	if err != nil {
		b.opts.logger.Warn("uploader: batch failed", "prefix", g.prefix, "members", len(g.members), "err", err)
	}
	for i, m := range g.members {
		if err != nil {
			m.p.resolve(Location{}, err)
		} else {
			m.p.resolve(locs[i], nil)
		}
	}
}

// flusher flushes batches that reached their age.
func (b *BatchUploader) flusher() {
	defer close(b.flusherDone)
	t := time.NewTicker(b.opts.tick)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.flushDue(b.opts.now())
		}
	}
}

// flushDue starts the upload of every batch whose oldest member is at least
// FlushInterval old at now.
func (b *BatchUploader) flushDue(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for prefix, g := range b.groups {
		if now.Sub(g.oldest) >= b.cfg.FlushInterval {
			delete(b.groups, prefix)
			b.launchLocked(g)
		}
	}
}

// Flush uploads every queued batch now and waits until they and the
// batches already uploading have finished. It returns the failed batches'
// errors joined, or ctx's error if ctx ended first (uploads continue).
func (b *BatchUploader) Flush(ctx context.Context) error {
	b.mu.Lock()
	for prefix, g := range b.groups {
		delete(b.groups, prefix)
		b.launchLocked(g)
	}
	flights := make([]*flight, 0, len(b.flights))
	for f := range b.flights {
		flights = append(flights, f)
	}
	b.mu.Unlock()
	var errs []error
	for _, f := range flights {
		select {
		case <-f.done:
			errs = append(errs, f.err)
		case <-ctx.Done():
			return canceled("Flush", "", ctx.Err())
		}
	}
	return errors.Join(errs...)
}

// Close stops accepting members, flushes everything and waits for it. If
// ctx ends first, the remaining uploads are cancelled (multipart uploads
// aborted), their members fail, and Close returns ctx's error after they
// stopped. Calling Close again returns nil.
func (b *BatchUploader) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	close(b.stop)
	<-b.flusherDone

	err := b.Flush(ctx)
	if ctx.Err() != nil {
		b.cancel()
		// Wait for the cancelled uploads to resolve their members.
		_ = b.Flush(context.Background())
		return canceled("Close", "", ctx.Err())
	}
	b.cancel()
	return err
}

// Stats returns the counters.
func (b *BatchUploader) Stats() BatchStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats
}

// Queued returns the number of members waiting for their batch to flush.
func (b *BatchUploader) Queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, g := range b.groups {
		n += len(g.members)
	}
	return n
}
