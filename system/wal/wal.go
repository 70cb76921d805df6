// Package wal is tierd's write-ahead log: records with a CRC-32C each,
// appended by many goroutines and made durable together (group commit:
// one write and one fsync per batch), in size-bounded segment files.
// Opening a log replays it and truncates a torn tail; other damage stops
// it (see CorruptError) unless it is opened to repair.
//
// Record layout: u32 little-endian body length, u32 CRC-32C (Castagnoli)
// of the body, body = u64 LSN + payload. Segment files are named
// wal-<first LSN, 20 digits>.log.
package wal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tierchaos/tierchaos/system/fsutil"
)

// ErrHalted is returned by Append after Halt.
var ErrHalted = errors.New("wal: halted")

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("wal closed")

// ErrCorrupt marks damage that is not a torn tail (see CorruptError).
var ErrCorrupt = errors.New("wal corrupt")

// MaxRecord is the largest accepted payload.
const MaxRecord = 256 << 20

const headerLen = 8

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Options configures a WAL.
type Options struct {
	// SegmentBytes: a segment larger than this is closed and a new one started.
	SegmentBytes int64
	// GroupCommitWindow: the writer waits this long after the first record
	// of a batch for more records (0: none).
	GroupCommitWindow time.Duration
	// OnSync, if set, is called after every fsync with its duration and
	// the number of records it made durable.
	OnSync func(d time.Duration, records int)
	// Repair lets Open go on past damage that is not a torn tail: the
	// damaged segment is copied to QuarantineDir, then rewritten with its
	// intact records only (the damaged bytes are lost). Without it such
	// damage fails Open with a *CorruptError and changes nothing.
	Repair bool
	// FS is the file system the log's files are on (nil: fsutil.OS).
	FS fsutil.FS
}

// ReplayStats describes what Open found.
type ReplayStats struct {
	Segments int
	Records  int
	// LastLSN is the last LSN handed out before: the last replayed
	// record's, or, when the records of the newest segments were all
	// dropped, the one before the newest segment's first.
	LastLSN   uint64
	Truncated int64 // bytes cut from a torn tail
	// Repaired lists the segments that Options.Repair rewrote.
	Repaired []Repair
}

type segment struct {
	first uint64
	path  string
}

type batch struct {
	buf      []byte
	records  int
	firstLSN uint64
	lastLSN  uint64
	done     chan struct{}
	err      error
}

// WAL is an open write-ahead log.
type WAL struct {
	dir  string
	opts Options
	log  *slog.Logger

	// fileMu guards file, fileSize and written: the writer holds it per
	// batch, Rotate to switch segments between batches.
	fileMu sync.Mutex
	// written is the LSN of the last record written to a segment (under
	// fileMu, unlike durable, which the writer updates after it).
	written uint64

	mu       sync.Mutex
	cond     *sync.Cond
	cur      *batch // records waiting to be written
	nextLSN  uint64
	closed   bool
	segments []segment // all segments, oldest first; the last is being written
	file     fsutil.File
	fileSize int64
	bytes    int64 // total bytes of all segments
	durable  uint64
	failed   error // a write or sync error: the log refuses further appends

	writerDone chan struct{}
}

// Open opens (creating) the log in dir, calls replay for every intact
// record in LSN order, truncates a torn tail of the last segment, and
// starts a new segment for appends. A torn tail is damage with no intact
// record after it; damage followed by an intact record, or damage in an
// older segment, fails Open with a *CorruptError naming the segment and
// the offset, leaving the files as they are (unless opts.Repair). A
// replay error aborts Open.
func Open(dir string, opts Options, log *slog.Logger, replay func(lsn uint64, payload []byte) error) (*WAL, ReplayStats, error) {
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = 64 << 20
	}
	opts.FS = fsutil.Or(opts.FS)
	if err := fsutil.MkdirAllFS(opts.FS, dir); err != nil {
		return nil, ReplayStats{}, fmt.Errorf("wal: %w", err)
	}
	segs, err := listSegments(opts.FS, dir)
	if err != nil {
		return nil, ReplayStats{}, err
	}
	var st ReplayStats
	w := &WAL{dir: dir, opts: opts, log: log, writerDone: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	for i, s := range segs {
		last := i == len(segs)-1
		size, cut, err := replaySegment(opts.FS, s.path, last, opts.Repair, &st, log, replay)
		if err != nil {
			return nil, st, err
		}
		if cut > 0 {
			log.Warn("wal: truncated torn tail", "segment", s.path, "bytes", cut, "kept", size)
			st.Truncated = cut
		}
		w.bytes += size
		st.Segments++
	}
	for _, r := range st.Repaired {
		log.Error("wal: damaged segment rewritten with its intact records; the original is quarantined",
			"segment", r.Segment, "quarantine", r.Quarantine, "first_damage", r.FirstDamage, "dropped_bytes", r.Dropped)
	}
	w.segments = segs
	// A segment's name is the first LSN it was opened for, so every LSN
	// below the newest segment's name was handed out before, even when the
	// records that carried them went with dropped segments and the newest
	// segment is empty. Numbering must go on from there: starting again
	// after the last replayed record would hand out LSNs that collections'
	// snapshots already cover, and a later recovery would skip those
	// acknowledged records as covered.
	if n := len(segs); n > 0 && segs[n-1].first > st.LastLSN+1 {
		st.LastLSN = segs[n-1].first - 1
	}
	w.nextLSN = st.LastLSN + 1
	w.durable, w.written = st.LastLSN, st.LastLSN
	if err := w.rotate(); err != nil {
		return nil, st, err
	}
	go w.writer()
	return w, st, nil
}

func segName(first uint64) string { return fmt.Sprintf("wal-%020d.log", first) }

func listSegments(fsys fsutil.FS, dir string) ([]segment, error) {
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	var segs []segment
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, "wal-") || !strings.HasSuffix(n, ".log") {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(n, "wal-"), ".log"), 10, 64)
		if err != nil {
			continue
		}
		segs = append(segs, segment{first: first, path: filepath.Join(dir, n)})
	}
	slices.SortFunc(segs, func(a, b segment) int {
		switch {
		case a.first < b.first:
			return -1
		case a.first > b.first:
			return 1
		}
		return 0
	})
	return segs, nil
}

// rotate starts the segment appends go to when the log is opened: one
// named nextLSN, or that segment itself if it is the newest already (it
// is then empty). Only Open calls it, before the writer starts.
func (w *WAL) rotate() error {
	path := filepath.Join(w.dir, segName(w.nextLSN))
	f, err := w.opts.FS.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("wal: new segment: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("wal: %w", err)
	}
	if err := w.syncDir(); err != nil {
		f.Close()
		return err
	}
	if n := len(w.segments); n == 0 || w.segments[n-1].path != path {
		w.segments = append(w.segments, segment{first: w.nextLSN, path: path})
	}
	w.file, w.fileSize = f, info.Size()
	return nil
}

func (w *WAL) syncDir() error {
	if err := w.opts.FS.SyncDir(w.dir); err != nil {
		return fmt.Errorf("wal: sync dir: %w", err)
	}
	return nil
}

// Append adds a record and waits until it is durable (fsynced). It returns
// the record's LSN. If ctx ends first, the record may still become durable.
func (w *WAL) Append(ctx context.Context, payload []byte) (uint64, error) {
	p, err := w.Submit(payload)
	if err != nil {
		return 0, err
	}
	if err := p.Wait(ctx); err != nil {
		return 0, err
	}
	return p.LSN, nil
}

// Pending is a record handed to the log whose write has not been waited
// for yet.
type Pending struct {
	// LSN is the record's log sequence number: records are written, and
	// become durable, in LSN order.
	LSN uint64
	b   *batch
}

// Wait blocks until the record is durable (nil) or its batch failed. If
// ctx ends first the record may still become durable.
func (p Pending) Wait(ctx context.Context) error {
	select {
	case <-p.b.done:
		return p.b.err
	case <-ctx.Done():
		return fmt.Errorf("wal: waiting for fsync of lsn %d: %w", p.LSN, ctx.Err())
	}
}

// Submit adds a record to the next batch without waiting for it: a caller
// that must order its records (a collection's inserts) submits under its
// own lock and waits after releasing it, so one fsync covers many of its
// records.
func (w *WAL) Submit(payload []byte) (Pending, error) {
	if len(payload) > MaxRecord {
		return Pending{}, fmt.Errorf("wal: record of %d bytes exceeds %d", len(payload), MaxRecord)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed != nil {
		return Pending{}, w.failed
	}
	if w.closed {
		return Pending{}, ErrClosed
	}
	if w.cur == nil {
		w.cur = &batch{done: make(chan struct{}), firstLSN: w.nextLSN}
	}
	b := w.cur
	lsn := w.nextLSN
	w.nextLSN++
	var hdr [headerLen + 8]byte
	binary.LittleEndian.PutUint32(hdr[0:4], uint32(8+len(payload)))
	binary.LittleEndian.PutUint64(hdr[8:16], lsn)
	c := crc32.Update(crc32.Checksum(hdr[8:16], castagnoli), castagnoli, payload)
	binary.LittleEndian.PutUint32(hdr[4:8], c)
	b.buf = append(b.buf, hdr[:]...)
	b.buf = append(b.buf, payload...)
	b.records++
	b.lastLSN = lsn
	w.cond.Signal()
	return Pending{LSN: lsn, b: b}, nil
}

// LastLSN returns the LSN of the last appended record (durable or not).
func (w *WAL) LastLSN() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.nextLSN - 1
}

// DurableLSN returns the LSN up to which every record is fsynced.
func (w *WAL) DurableLSN() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.durable
}

// Stats returns the number of segments and their total bytes.
func (w *WAL) Stats() (segments int, bytes int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.segments), w.bytes
}

func (w *WAL) writer() {
	defer close(w.writerDone)
	for {
		w.mu.Lock()
		for w.cur == nil && !w.closed {
			w.cond.Wait()
		}
		if w.cur == nil && w.closed {
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		if w.opts.GroupCommitWindow > 0 {
			time.Sleep(w.opts.GroupCommitWindow)
		}
		w.mu.Lock()
		b := w.cur
		w.cur = nil
		failed := w.failed
		w.mu.Unlock()
		if failed != nil {
			b.err = failed
			close(b.done)
			continue
		}
		err := w.writeBatch(b)
		w.mu.Lock()
		var sf *syncFailure
		if errors.As(err, &sf) {
			// After a failed fsync the state of the page cache is unknown:
			// refuse further appends rather than acknowledge lost data.
			w.failed = err
			w.log.Error("wal: fsync failed; refusing further appends", "err", err)
		} else if err != nil {
			w.log.Warn("wal: write failed; batch rejected", "records", b.records, "err", err)
		} else {
			w.durable = b.lastLSN
			w.bytes += int64(len(b.buf))
		}
		w.mu.Unlock()
		b.err = err
		close(b.done)
	}
}

// writeBatch writes b to the current segment and fsyncs it. A full
// segment is first closed and a new one started, named after b's first
// LSN; if the new one cannot be created (ENOSPC, EMFILE, ...) b goes to
// the current segment and the next batch tries again. So a batch is
// reported failed only if its own write or fsync failed: once synced it
// is durable and acknowledged.
func (w *WAL) writeBatch(b *batch) error {
	w.fileMu.Lock()
	defer w.fileMu.Unlock()
	if w.fileSize >= w.opts.SegmentBytes {
		if err := w.rotateTo(b.firstLSN); err != nil {
			var sf *syncFailure
			if errors.As(err, &sf) {
				return err
			}
			w.log.Warn("wal: cannot start a new segment; writing on to the current one", "size", w.fileSize, "err", err)
		}
	}
	if _, err := w.file.Write(b.buf); err != nil {
		// Cut the partial write so the segment stays a sequence of whole
		// records; if even that fails the log cannot continue.
		if terr := w.file.Truncate(w.fileSize); terr != nil {
			return &syncFailure{fmt.Errorf("wal: write: %w (and truncate: %w)", err, terr)}
		}
		return fmt.Errorf("wal: write: %w", err)
	}
	start := time.Now()
	if err := w.file.Sync(); err != nil {
		return &syncFailure{fmt.Errorf("wal: fsync: %w", err)}
	}
	if w.opts.OnSync != nil {
		w.opts.OnSync(time.Since(start), b.records)
	}
	w.fileSize += int64(len(b.buf))
	w.written = b.lastLSN
	return nil
}

// rotateTo starts the next segment, named after the first LSN it will
// hold, and only then closes the current one: if the new segment cannot
// be created the log stays on the current one, which is still open.
// Every record written so far must have an LSN below first. The caller
// holds fileMu.
//
// A failed fsync of the folder after the new file was created is a
// *syncFailure (the log must stop): the new file is removed, but whether
// its entry is gone is as unknown as whether it was durable.
func (w *WAL) rotateTo(first uint64) error {
	path := filepath.Join(w.dir, segName(first))
	f, err := w.opts.FS.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("wal: new segment: %w", err)
	}
	if err := w.syncDir(); err != nil {
		f.Close()
		_ = w.opts.FS.Remove(path)
		return &syncFailure{fmt.Errorf("wal: new segment %s: %w", path, err)}
	}
	old := w.file
	w.mu.Lock()
	w.segments = append(w.segments, segment{first: first, path: path})
	w.mu.Unlock()
	w.file, w.fileSize = f, 0
	if err := old.Close(); err != nil {
		// Its records were fsynced when written; nothing is lost.
		w.log.Warn("wal: closing a full segment failed", "err", err)
	}
	return nil
}

// Rotate closes the current segment if it holds any record and starts a
// new one, so that a fully covered log can be dropped with DropBefore.
func (w *WAL) Rotate() error {
	w.fileMu.Lock()
	defer w.fileMu.Unlock()
	if w.file == nil || w.fileSize == 0 {
		return nil
	}
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed {
		return ErrClosed
	}
	// Every record in the file has an LSN <= written (records of a failed
	// batch were cut from it): the next segment starts after it. durable
	// would not do: the writer raises it only after releasing fileMu, so
	// it can lag behind a batch already in the file.
	return w.rotateTo(w.written + 1)
}

// DropBefore removes every segment all of whose records have an LSN below
// lsn (i.e. are no longer needed). The segment being written is kept.
func (w *WAL) DropBefore(lsn uint64) (int, error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return 0, ErrClosed
	}
	var drop []segment
	for i := 0; i+1 < len(w.segments); i++ {
		if w.segments[i+1].first <= lsn {
			drop = append(drop, w.segments[i])
		} else {
			break
		}
	}
	w.mu.Unlock()
	var errs []error
	dropped := 0
	for _, s := range drop {
		info, err := w.opts.FS.Stat(s.path)
		if err == nil {
			err = w.opts.FS.Remove(s.path)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			break
		}
		w.mu.Lock()
		w.segments = w.segments[1:]
		if info != nil {
			w.bytes -= info.Size()
		}
		w.mu.Unlock()
		dropped++
	}
	if dropped > 0 {
		if err := w.syncDir(); err != nil {
			errs = append(errs, err)
		}
	}
	return dropped, errors.Join(errs...)
}

// Halt stops the log the way the death of the process would: records not
// yet handed to the file are never written (their appends, and every later
// one, fail with ErrHalted), nothing more is synced, and the files are
// closed. In-process tests use it to simulate SIGKILL.
func (w *WAL) Halt() {
	w.mu.Lock()
	if w.failed == nil {
		w.failed = ErrHalted
	}
	w.mu.Unlock()
	_ = w.Close()
}

// Close writes and syncs pending records, then closes the log.
func (w *WAL) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.cond.Signal()
	w.mu.Unlock()
	<-w.writerDone
	if w.file != nil {
		return w.file.Close()
	}
	return nil
}

// syncFailure marks an error after which the log must stop.
type syncFailure struct{ err error }

func (e *syncFailure) Error() string { return e.err.Error() }
func (e *syncFailure) Unwrap() error { return e.err }
