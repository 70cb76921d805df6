package manifest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/tierchaos/tierchaos/system/fsutil"
)

// FileName is the manifest's file in the data folder.
const FileName = "manifest.db"

// LegacyFileName is the JSON manifest of earlier tierd versions (one file
// replaced by rename on every commit); Open migrates it.
const LegacyFileName = "manifest.json"

// On-disk layout of FileName: two slots of SlotSize bytes each (the file
// is exactly 2*SlotSize bytes, all written, none sparse). A slot holds
//
//	magic [8]byte "TIERDMF1" | seq u64 | length u32 | crc u32 | JSON body
//
// (little endian; crc is CRC-32C over seq, length and body). The copy
// with the highest seq whose crc matches is the manifest. A commit writes
// the next seq into the slot that does not hold the current copy and
// fsyncs: a crash mid-write leaves a torn slot that fails its crc, and the
// other slot still holds the previous commit. Overwriting blocks that are
// already allocated needs no free space, so commits (and above all the
// deletes that free space) work on a full volume. Only a manifest that
// outgrows its slots needs space: the file is then rebuilt with slots
// twice the needed size (temp file + fsync + rename + folder fsync).
const (
	slotMagic  = "TIERDMF1"
	headerSize = 24
	// MinSlotSize is the slot size of a new file (64 KiB of file in all).
	MinSlotSize = 32 << 10
	pageSize    = 4096
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrNoIntactCopy means neither slot of the manifest file holds a valid copy.
var ErrNoIntactCopy = errors.New("no intact copy of the manifest")

// File is an open manifest file. Save is safe for one caller at a time.
type File struct {
	mu   sync.Mutex
	dir  string
	f    *os.File
	slot int64  // slot size
	seq  uint64 // seq of the current copy
}

// Open opens the manifest file in dir and returns it with the current
// manifest. A missing file is created holding an empty manifest (or the
// content of a legacy manifest.json, which is then removed).
func Open(dir string) (*File, *Manifest, error) {
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err == nil {
		m, seq, slot, lerr := readSlots(path, f)
		if lerr != nil {
			f.Close()
			return nil, nil, lerr
		}
		return &File{dir: dir, f: f, slot: slot, seq: seq}, m, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("manifest: %w", err)
	}
	m := New()
	legacy := filepath.Join(dir, LegacyFileName)
	b, lerr := os.ReadFile(legacy)
	switch {
	case lerr == nil:
		if m, err = decode(legacy, b); err != nil {
			return nil, nil, err
		}
	case !errors.Is(lerr, os.ErrNotExist):
		return nil, nil, fmt.Errorf("manifest: %w", lerr)
	}
	mf := &File{dir: dir}
	if err := mf.rebuild(m, 1); err != nil {
		return nil, nil, err
	}
	if lerr == nil {
		if err := os.Remove(legacy); err != nil {
			mf.Close()
			return nil, nil, fmt.Errorf("manifest: remove migrated %s: %w", legacy, err)
		}
		if err := fsutil.SyncDir(dir); err != nil {
			mf.Close()
			return nil, nil, fmt.Errorf("manifest: %w", err)
		}
	}
	return mf, m, nil
}

// Load reads the current manifest in dir without opening it for writing
// (for readers such as tests; tierd itself uses Open). It reads the legacy
// manifest.json if FileName does not exist; nothing at all is an empty
// manifest.
func Load(dir string) (*Manifest, error) {
	path := filepath.Join(dir, FileName)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		legacy := filepath.Join(dir, LegacyFileName)
		b, lerr := os.ReadFile(legacy)
		if errors.Is(lerr, os.ErrNotExist) {
			return New(), nil
		}
		if lerr != nil {
			return nil, fmt.Errorf("manifest: %w", lerr)
		}
		return decode(legacy, b)
	}
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	defer f.Close()
	m, _, _, err := readSlots(path, f)
	return m, err
}

// readSlots reads both slots of an open manifest file and returns the
// newest intact copy, its seq and the slot size.
func readSlots(path string, f *os.File) (*Manifest, uint64, int64, error) {
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("manifest %s: %w", path, err)
	}
	if len(b) < 2*headerSize || len(b)%2 != 0 {
		return nil, 0, 0, fmt.Errorf("manifest %s: %w: file size %d is not two slots", path, ErrNoIntactCopy, len(b))
	}
	slot := int64(len(b) / 2)
	var best []byte
	var bestSeq uint64
	var problems []string
	for i := range int64(2) {
		body, seq, perr := parseSlot(b[i*slot : (i+1)*slot])
		if perr != nil {
			problems = append(problems, fmt.Sprintf("slot %d: %v", i, perr))
			continue
		}
		if best == nil || seq > bestSeq {
			best, bestSeq = body, seq
		}
	}
	if best == nil {
		return nil, 0, 0, fmt.Errorf("manifest %s: %w: %v", path, ErrNoIntactCopy, problems)
	}
	m, err := decode(path, best)
	if err != nil {
		return nil, 0, 0, err
	}
	return m, bestSeq, slot, nil
}

// parseSlot checks one slot and returns its body and seq.
func parseSlot(b []byte) ([]byte, uint64, error) {
	if !bytes.Equal(b[:8], []byte(slotMagic)) {
		return nil, 0, errors.New("no copy (bad magic)")
	}
	seq := binary.LittleEndian.Uint64(b[8:16])
	n := int64(binary.LittleEndian.Uint32(b[16:20]))
	sum := binary.LittleEndian.Uint32(b[20:24])
	if n > int64(len(b))-headerSize {
		return nil, 0, fmt.Errorf("length %d exceeds the slot", n)
	}
	body := b[headerSize : headerSize+n]
	crc := crc32.Update(crc32.Checksum(b[8:20], castagnoli), castagnoli, body)
	if crc != sum {
		return nil, 0, fmt.Errorf("checksum mismatch (torn write?)")
	}
	return body, seq, nil
}

// record lays out one slot's header and body.
func record(seq uint64, body []byte) []byte {
	b := make([]byte, headerSize, headerSize+len(body))
	copy(b, slotMagic)
	binary.LittleEndian.PutUint64(b[8:16], seq)
	binary.LittleEndian.PutUint32(b[16:20], uint32(len(body)))
	b = append(b, body...)
	crc := crc32.Update(crc32.Checksum(b[8:20], castagnoli), castagnoli, body)
	binary.LittleEndian.PutUint32(b[20:24], crc)
	return b
}

// SlotSize returns the current slot size in bytes.
func (mf *File) SlotSize() int64 {
	mf.mu.Lock()
	defer mf.mu.Unlock()
	return mf.slot
}

// Save makes m the current manifest durably. It overwrites the slot not
// holding the current copy and fsyncs, needing no free space unless m
// outgrew the slots (then the file is rebuilt, which does). On error the
// previous manifest stays current.
func (mf *File) Save(m *Manifest) error {
	body, err := encode(m)
	if err != nil {
		return err
	}
	mf.mu.Lock()
	defer mf.mu.Unlock()
	if mf.f == nil {
		return errors.New("manifest: file is closed")
	}
	seq := mf.seq + 1
	if headerSize+int64(len(body)) > mf.slot {
		return mf.rebuildLocked(body, seq)
	}
	if _, err := mf.f.WriteAt(record(seq, body), int64(seq%2)*mf.slot); err != nil {
		return fmt.Errorf("manifest: %w", classify(err))
	}
	if err := mf.f.Sync(); err != nil {
		return fmt.Errorf("manifest: %w", classify(err))
	}
	mf.seq = seq
	return nil
}

// rebuild creates the file afresh holding m with the given seq.
func (mf *File) rebuild(m *Manifest, seq uint64) error {
	body, err := encode(m)
	if err != nil {
		return err
	}
	mf.mu.Lock()
	defer mf.mu.Unlock()
	return mf.rebuildLocked(body, seq)
}

// rebuildLocked writes a new file, slots sized for twice body, with body
// in the slot of seq (the other slot zero), and switches to it.
func (mf *File) rebuildLocked(body []byte, seq uint64) error {
	slot := max(MinSlotSize, (2*(headerSize+int64(len(body)))+pageSize-1)/pageSize*pageSize)
	path := filepath.Join(mf.dir, FileName)
	img := make([]byte, 2*slot) // every byte written: no sparse hole to allocate later
	copy(img[int64(seq%2)*slot:], record(seq, body))
	if err := fsutil.WriteAtomic(path, func(w io.Writer) error {
		_, err := w.Write(img)
		return err
	}); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if mf.f != nil {
		mf.f.Close()
	}
	mf.f, mf.slot, mf.seq = f, slot, seq
	return nil
}

// Close closes the file.
func (mf *File) Close() error {
	mf.mu.Lock()
	defer mf.mu.Unlock()
	if mf.f == nil {
		return nil
	}
	err := mf.f.Close()
	mf.f = nil
	return err
}

func encode(m *Manifest) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return b, nil
}

// classify marks ENOSPC and EDQUOT with fsutil.ErrNoSpace.
func classify(err error) error {
	if fsutil.IsNoSpace(err) && !errors.Is(err, fsutil.ErrNoSpace) {
		return fmt.Errorf("%w: %w", fsutil.ErrNoSpace, err)
	}
	return err
}
