package wal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/tierchaos/tierchaos/system/fsutil"
)

// QuarantineDir is the folder, inside the log's folder, where Open with
// Options.Repair keeps the untouched copy of every segment it rewrites.
const QuarantineDir = "quarantine"

// maxLSNGap bounds how far after the last good LSN a record found behind
// damage may be numbered: LSNs are handed out one by one, so a record
// further away is noise that happens to look like a header.
const maxLSNGap = 1 << 32

// CorruptError is damage that Open may not cut as a torn tail: a bad
// record followed by an intact one, or any damage in a segment other than
// the last. It matches ErrCorrupt.
type CorruptError struct {
	// Segment is the path of the damaged segment.
	Segment string
	// Offset is the first damaged byte.
	Offset int64
	// Reason says what is wrong at Offset.
	Reason string
	// Next is the offset of the first intact record after the damage, or
	// -1 when none was found (damage in an older segment, which must be
	// whole up to its end).
	Next int64
}

// Error implements error.
func (e *CorruptError) Error() string {
	msg := fmt.Sprintf("%s: %s at offset %d: %s", ErrCorrupt, e.Segment, e.Offset, e.Reason)
	if e.Next >= 0 {
		return msg + fmt.Sprintf("; an intact record follows at offset %d, so this is no torn tail", e.Next)
	}
	return msg + "; a segment before the last must be whole"
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Repair describes a segment that Open rewrote under Options.Repair.
type Repair struct {
	// Segment is the rewritten segment: its intact records only.
	Segment string
	// Quarantine is the untouched copy of the damaged segment.
	Quarantine string
	// FirstDamage is the offset of the first damaged byte.
	FirstDamage int64
	// Dropped is the number of bytes left out.
	Dropped int64
}

// span is a byte range of a segment.
type span struct{ off, n int64 }

// recordReader reads records of one segment from an offset on.
type recordReader struct {
	f     fsutil.File
	total int64
	off   int64
	r     *bufio.Reader
}

func newRecordReader(f fsutil.File, total int64) *recordReader {
	rr := &recordReader{f: f, total: total, r: bufio.NewReaderSize(nil, 1<<20)}
	rr.seek(0)
	return rr
}

func (rr *recordReader) seek(off int64) {
	rr.off = off
	rr.r.Reset(io.NewSectionReader(rr.f, off, rr.total-off))
}

// next reads the record at rr.off and moves past it. At the clean end of
// the segment it returns io.EOF; at damage it returns a non-empty reason
// and does not move.
func (rr *recordReader) next(after uint64) (lsn uint64, payload []byte, reason string, err error) {
	var hdr [headerLen]byte
	if _, err := io.ReadFull(rr.r, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, nil, "", io.EOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, "short header", nil
		}
		return 0, nil, "", fmt.Errorf("wal: read %s: %w", rr.f.Name(), err)
	}
	n := binary.LittleEndian.Uint32(hdr[0:4])
	sum := binary.LittleEndian.Uint32(hdr[4:8])
	if n < 8 || n > MaxRecord+8 || int64(n) > rr.total-rr.off-headerLen {
		return 0, nil, fmt.Sprintf("bad length %d", n), nil
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(rr.r, body); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return 0, nil, "short body", nil
		}
		return 0, nil, "", fmt.Errorf("wal: read %s: %w", rr.f.Name(), err)
	}
	if crc32.Checksum(body, castagnoli) != sum {
		return 0, nil, "crc mismatch", nil
	}
	lsn = binary.LittleEndian.Uint64(body[:8])
	if lsn <= after {
		return 0, nil, fmt.Sprintf("lsn %d not after %d", lsn, after), nil
	}
	rr.off += headerLen + int64(n)
	return lsn, body[8:], "", nil
}

// replaySegment replays one segment and returns its intact size and the
// bytes cut from a torn tail. Damage followed by an intact record, and
// any damage in a segment other than the last, is a *CorruptError unless
// repair is set: then the segment is copied to the quarantine folder and
// rewritten with its intact records only.
func replaySegment(fsys fsutil.FS, path string, last, repair bool, st *ReplayStats, log *slog.Logger, replay func(uint64, []byte) error) (size, cut int64, err error) {
	f, err := fsys.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, 0, fmt.Errorf("wal: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("wal: %w", err)
	}
	total := info.Size()
	rr := newRecordReader(f, total)
	var dropped []span
	for {
		lsn, payload, reason, err := rr.next(st.LastLSN)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return rr.off, 0, err
		}
		if reason == "" {
			if err := replay(lsn, payload); err != nil {
				return rr.off, 0, fmt.Errorf("wal: replay lsn %d from %s: %w", lsn, path, err)
			}
			st.LastLSN = lsn
			st.Records++
			continue
		}
		next, unsure, err := findRecord(f, rr.off+1, total, st.LastLSN)
		if err != nil {
			return rr.off, 0, err
		}
		if next < 0 && last && !unsure {
			// Nothing intact after the damage: a torn tail.
			dropped = append(dropped, span{rr.off, total - rr.off})
			cut = total - rr.off
			break
		}
		ce := &CorruptError{Segment: path, Offset: rr.off, Reason: reason, Next: next}
		if unsure {
			ce.Reason += " (and the rest is too damaged to check for intact records)"
		}
		if !repair {
			return rr.off, 0, ce
		}
		log.Error("wal: repairing damaged segment", "err", ce)
		if next < 0 {
			dropped = append(dropped, span{rr.off, total - rr.off})
			break
		}
		dropped = append(dropped, span{rr.off, next - rr.off})
		rr.seek(next)
	}
	var droppedBytes int64
	for _, d := range dropped {
		droppedBytes += d.n
	}
	switch {
	case len(dropped) == 0:
		return total, 0, nil
	case len(dropped) == 1 && cut > 0:
		// Only a torn tail: cut it.
		if err := f.Truncate(total - cut); err != nil {
			return 0, 0, fmt.Errorf("wal: truncate %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			return 0, 0, fmt.Errorf("wal: sync %s: %w", path, err)
		}
		return total - cut, cut, nil
	}
	q, err := rewrite(fsys, f, path, total, dropped)
	if err != nil {
		return 0, 0, err
	}
	st.Repaired = append(st.Repaired, Repair{Segment: path, Quarantine: q, FirstDamage: dropped[0].off, Dropped: droppedBytes})
	return total - droppedBytes, 0, nil
}

// rewrite keeps a copy of the segment in the quarantine folder, then
// replaces the segment with its bytes outside dropped (sorted, disjoint).
func rewrite(fsys fsutil.FS, f fsutil.File, path string, total int64, dropped []span) (string, error) {
	q := filepath.Join(filepath.Dir(path), QuarantineDir,
		filepath.Base(path)+"."+strconv.FormatInt(time.Now().UnixNano(), 10))
	if err := fsutil.WriteAtomicFS(fsys, q, func(w io.Writer) error {
		_, err := io.Copy(w, io.NewSectionReader(f, 0, total))
		return err
	}); err != nil {
		return "", fmt.Errorf("wal: quarantine %s: %w", path, err)
	}
	if err := fsutil.WriteAtomicFS(fsys, path, func(w io.Writer) error {
		var off int64
		for _, d := range append(dropped, span{total, 0}) {
			if _, err := io.Copy(w, io.NewSectionReader(f, off, d.off-off)); err != nil {
				return err
			}
			off = d.off + d.n
		}
		return nil
	}); err != nil {
		return "", fmt.Errorf("wal: rewrite %s: %w", path, err)
	}
	return q, nil
}

// findRecord looks for the first intact record that starts at or after
// from: a whole record whose CRC matches and whose LSN follows after (by
// at most maxLSNGap). It returns its offset, or -1. unsure reports that
// the search gave up (the work it may do is bounded, and only a
// deliberately crafted file comes near the bound), so that the caller
// does not take the rest for a torn tail.
func findRecord(f io.ReaderAt, from, total int64, after uint64) (off int64, unsure bool, err error) {
	const window = 1 << 20
	const lead = headerLen + 8 // length, CRC and LSN
	budget := 64*(total-from) + 1<<20
	buf := make([]byte, window+lead)
	var body []byte
	for base := from; base+lead <= total; base += window {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), total-base)], base)
		if err != nil && !errors.Is(err, io.EOF) {
			return -1, false, fmt.Errorf("wal: scan: %w", err)
		}
		for i := 0; i < window && i+lead <= n; i++ {
			h := buf[i : i+lead]
			l := int64(binary.LittleEndian.Uint32(h[0:4]))
			p := base + int64(i)
			if l < 8 || l > MaxRecord+8 || p+headerLen+l > total {
				continue
			}
			lsn := binary.LittleEndian.Uint64(h[8:16])
			if lsn <= after || lsn-after > maxLSNGap {
				continue
			}
			if budget -= l; budget < 0 {
				return -1, true, nil
			}
			var b []byte
			if int64(i)+headerLen+l <= int64(n) {
				b = buf[int64(i)+headerLen : int64(i)+headerLen+l]
			} else {
				if int64(cap(body)) < l {
					body = make([]byte, l)
				}
				b = body[:l]
				if _, err := f.ReadAt(b, p+headerLen); err != nil {
					return -1, false, fmt.Errorf("wal: scan: %w", err)
				}
			}
			if crc32.Checksum(b, castagnoli) == binary.LittleEndian.Uint32(h[4:8]) {
				return p, false, nil
			}
		}
	}
	return -1, false, nil
}
