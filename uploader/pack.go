package uploader

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/zeebo/xxh3"
)

// Pack object format, version 1 (what a BatchUploader writes):
//
//	offset 0   magic "TCPACK01" (8 bytes)
//	offset 8   uint32 big-endian N: length of the index
//	offset 12  index: N bytes of JSON, PackIndex
//	offset 12+N member data, back to back, in index order
//
// Every index entry holds the member's key, its absolute offset and length
// in the pack, and the XXH3-64 of its bytes (hex). A member is read with one
// ranged GET (ReadMember) and checked against its checksum; the index lets a
// reader that only knows the pack key find members (ReadPackIndex, two
// ranged GETs). The pack object also carries user metadata
// "tierchaos-pack: v1" and "tierchaos-members: <count>".
const (
	packMagic      = "TCPACK01"
	packHeaderSize = len(packMagic) + 4
	// maxPackIndex bounds the index a reader accepts, so a corrupted
	// length cannot make it allocate gigabytes.
	maxPackIndex = 64 << 20
)

// PackIndex is the index of a pack object.
type PackIndex struct {
	// Version is the format version, 1.
	Version int `json:"version"`
	// Members lists the members in the order of their bytes.
	Members []PackMember `json:"members"`
}

// PackMember is one index entry.
type PackMember struct {
	// Key is the member's own key.
	Key string `json:"key"`
	// Offset is the member's first byte in the pack object.
	Offset int64 `json:"offset"`
	// Length is the member's size in bytes.
	Length int64 `json:"length"`
	// XXH3 is the XXH3-64 of the member's bytes, lower-case hex.
	XXH3 string `json:"xxh3"`
}

// Location says where a batched member lives: the pack object and the byte
// range of the member in it, and its checksum. tierd records it (e.g. in its
// manifest) and reads the member back with ReadMember.
type Location struct {
	// Key is the member's own key (what was passed to Add).
	Key string `json:"key"`
	// PackKey is the object holding the member; for an unbatched upload it
	// equals Key and the member is the whole object.
	PackKey string `json:"pack_key"`
	// Offset is the member's first byte in PackKey.
	Offset int64 `json:"offset"`
	// Length is the member's size in bytes.
	Length int64 `json:"length"`
	// Checksum is the XXH3-64 of the member's bytes.
	Checksum uint64 `json:"xxh3"`
}

// Lookup returns the location of key in the pack, or false.
func (p PackIndex) Lookup(packKey, key string) (Location, bool) {
	for _, m := range p.Members {
		if m.Key == key {
			sum, err := strconv.ParseUint(m.XXH3, 16, 64)
			if err != nil {
				return Location{}, false
			}
			return Location{Key: key, PackKey: packKey, Offset: m.Offset, Length: m.Length, Checksum: sum}, true
		}
	}
	return Location{}, false
}

// packInput is one member's input to encodePack.
type packInput struct {
	key  string
	data []byte
}

// encodePack builds a pack object and the locations of its members.
func encodePack(packKey string, members []packInput) ([]byte, []Location, error) {
	idx := PackIndex{Version: 1, Members: make([]PackMember, len(members))}
	sums := make([]uint64, len(members))
	for i, m := range members {
		sums[i] = xxh3.Hash(m.data)
		idx.Members[i] = PackMember{Key: m.key, Length: int64(len(m.data)), XXH3: strconv.FormatUint(sums[i], 16)}
	}
	// Offsets depend on the index length, which depends on the offsets'
	// digits: iterate until the encoded length is stable.
	var enc []byte
	indexLen, converged := 0, false
	for range 8 {
		off := int64(packHeaderSize + indexLen)
		for i := range idx.Members {
			idx.Members[i].Offset = off
			off += idx.Members[i].Length
		}
		var err error
		enc, err = json.Marshal(idx)
		if err != nil {
			return nil, nil, fmt.Errorf("encode pack index: %w", err)
		}
		if len(enc) == indexLen {
			converged = true
			break
		}
		indexLen = len(enc)
	}
	if !converged {
		return nil, nil, errors.New("encode pack index: length did not converge")
	}
	total := packHeaderSize + len(enc)
	for _, m := range members {
		total += len(m.data)
	}
	buf := make([]byte, 0, total)
	buf = append(buf, packMagic...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(enc)))
	buf = append(buf, enc...)
	locs := make([]Location, len(members))
	for i, m := range members {
		locs[i] = Location{Key: m.key, PackKey: packKey, Offset: int64(len(buf)), Length: int64(len(m.data)), Checksum: sums[i]}
		buf = append(buf, m.data...)
	}
	return buf, locs, nil
}

// ReadPackIndex reads the index of a pack object with two ranged GETs.
func ReadPackIndex(ctx context.Context, store ObjectStore, packKey string) (PackIndex, error) {
	const op = "ReadPackIndex"
	hdr, err := readRange(ctx, store, packKey, 0, int64(packHeaderSize))
	if err != nil {
		return PackIndex{}, err
	}
	if len(hdr) != packHeaderSize || string(hdr[:len(packMagic)]) != packMagic {
		return PackIndex{}, &StoreError{Op: op, Key: packKey, Code: CodeChecksumMismatch, Err: errors.New("not a pack object (bad magic)")}
	}
	n := binary.BigEndian.Uint32(hdr[len(packMagic):])
	if n == 0 || n > maxPackIndex {
		return PackIndex{}, &StoreError{Op: op, Key: packKey, Code: CodeChecksumMismatch, Err: fmt.Errorf("pack index length %d is implausible", n)}
	}
	raw, err := readRange(ctx, store, packKey, int64(packHeaderSize), int64(n))
	if err != nil {
		return PackIndex{}, err
	}
	if len(raw) != int(n) {
		return PackIndex{}, &StoreError{Op: op, Key: packKey, Code: CodeTruncated, Err: fmt.Errorf("pack index: got %d of %d bytes", len(raw), n)}
	}
	var idx PackIndex
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&idx); err != nil {
		return PackIndex{}, &StoreError{Op: op, Key: packKey, Code: CodeChecksumMismatch, Err: fmt.Errorf("decode pack index: %w", err)}
	}
	if idx.Version != 1 {
		return PackIndex{}, &StoreError{Op: op, Key: packKey, Code: CodeBadRequest, Err: fmt.Errorf("unsupported pack version %d", idx.Version)}
	}
	return idx, nil
}

// ReadMember fetches one member with a single ranged GET and verifies its
// length and XXH3 checksum. A mismatch is a CodeChecksumMismatch error
// naming the pack and member, never silently returned data.
func ReadMember(ctx context.Context, store ObjectStore, loc Location) ([]byte, error) {
	const op = "ReadMember"
	if loc.PackKey == "" || loc.Offset < 0 || loc.Length < 0 {
		return nil, invalidArg(op, loc.Key, "invalid location %+v", loc)
	}
	var data []byte
	if loc.Length == 0 {
		data = []byte{}
	} else {
		var err error
		data, err = readRange(ctx, store, loc.PackKey, loc.Offset, loc.Length)
		if err != nil {
			return nil, err
		}
	}
	if int64(len(data)) != loc.Length {
		return nil, &StoreError{Op: op, Key: loc.PackKey, Code: CodeTruncated,
			Err: fmt.Errorf("member %q: got %d of %d bytes", loc.Key, len(data), loc.Length)}
	}
	if sum := xxh3.Hash(data); sum != loc.Checksum {
		return nil, &StoreError{Op: op, Key: loc.PackKey, Code: CodeChecksumMismatch,
			Err: fmt.Errorf("member %q at %d+%d: xxh3 %016x, want %016x", loc.Key, loc.Offset, loc.Length, sum, loc.Checksum)}
	}
	return data, nil
}

func readRange(ctx context.Context, store ObjectStore, key string, off, n int64) ([]byte, error) {
	rc, err := store.GetObjectRange(ctx, key, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, n))
	if err != nil {
		return nil, err
	}
	return data, nil
}
