// Package powerloss is a file system layer (fsutil.FS) that simulates a
// power cut: at Cut, everything tierd wrote without an fsync covering it
// is lost or torn, the way a machine losing power loses its page cache.
// It is built for in-process tests, after lazyfs, the FUSE file system
// Jepsen uses for the same purpose.
//
// # Design: write-through with a model of the durable state
//
// Every operation goes straight to the operating system, so reads, sizes
// and listings are the real ones and the layer adds no copy on the read
// path. Beside it the layer keeps, in memory, what a disk would hold
// after a power loss:
//
//   - per file (an inode: hard links share it), its durable bytes and the
//     writes and truncations made since its last fsync, in order;
//   - per folder, its live entries and its durable entries (the entries
//     as of its last fsync), each naming a file or folder node.
//
// File.Sync applies the file's pending writes to its durable bytes;
// SyncDir makes the folder's live entries its durable ones. A file
// created, renamed, linked or removed, or a folder made, changes only the
// live entries of its folder until that folder is fsynced: a new file
// vanishes at a cut, a rename reverts (the replaced file comes back with
// its durable bytes, which the layer kept), a removed file returns. A new
// file's durable content is empty until it is fsynced, so a rename made
// durable over data that never was shows up as an empty file.
//
// Cut freezes the layer (every later operation fails with an error
// wrapping ErrPowerLost and syscall.EIO, so a running tierd can change
// nothing more), then replaces the folder's content on disk with the
// durable state: starting from the root, each folder's durable entries,
// each file's durable bytes. With CutOptions.Torn, a seeded random prefix of
// each file's unsynced writes survives, the last one possibly cut inside
// (a torn write, a partial page); without it all are lost. Directory
// operations are always undone back to the last fsync of their folder.
// The same seed and the same operations give the same cut.
//
// A new FS over the folder (New) then treats everything on disk as
// durable, and tierd restarts on what remains.
//
// Limits: durable file contents are held in memory (test-scale data
// folders); operations are serialized by one lock; only paths under the
// root are modelled (reads elsewhere pass through, changes elsewhere
// fail).
package powerloss

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/tierchaos/tierchaos/system/fsutil"
)

// ErrPowerLost is wrapped by every operation after Cut (with syscall.EIO).
var ErrPowerLost = errors.New("powerloss: the power is cut")

// ErrOutside is wrapped when a change is asked for outside the root.
var ErrOutside = errors.New("powerloss: path outside the modelled folder")

// CutOptions configure a cut.
type CutOptions struct {
	// Seed makes the torn writes of a cut reproducible.
	Seed uint64
	// Torn keeps a random prefix of every file's unsynced writes at a
	// cut, the last one possibly partial; false loses them all.
	Torn bool
}

// Report describes what a cut did.
type Report struct {
	// Files is the number of files in the durable state written back.
	Files int
	// LostBytes counts the bytes of unsynced writes dropped.
	LostBytes int64
	// TornFiles counts the files of which a part of the unsynced writes
	// survived.
	TornFiles int
	// Undone lists the paths whose live entry differed from the durable
	// one (created, renamed or removed since their folder's last fsync).
	Undone []string
}

type op struct {
	off   int64
	data  []byte // nil: truncate to off
	trunc bool
}

type node struct {
	dir bool
	// a file's durable bytes and the operations since its last fsync
	durable []byte
	pending []op
	// a folder's live and durable entries
	entries map[string]*node
	durEnts map[string]*node
}

func newDir() *node {
	return &node{dir: true, entries: map[string]*node{}, durEnts: map[string]*node{}}
}

// FS is the power-loss layer over one folder. It is safe for concurrent
// use.
type FS struct {
	root string
	dead atomic.Bool

	mu      sync.Mutex
	tree    *node
	syncArm *syncArm // a cut waiting for an fsync (CutBeforeSync)
}

var _ fsutil.FS = (*FS)(nil)

// New models the folder root (created if missing); everything in it now
// counts as durable.
func New(root string) (*FS, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("powerloss: %w", err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("powerloss: %w", err)
	}
	t, err := scan(root)
	if err != nil {
		return nil, err
	}
	return &FS{root: root, tree: t}, nil
}

// Root is the modelled folder.
func (f *FS) Root() string { return f.root }

// scan builds a durable node of what is on disk at p.
func scan(p string) (*node, error) {
	info, err := os.Lstat(p)
	if err != nil {
		return nil, fmt.Errorf("powerloss: %w", err)
	}
	if !info.IsDir() {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("powerloss: %w", err)
		}
		return &node{durable: b}, nil
	}
	n := newDir()
	ents, err := os.ReadDir(p)
	if err != nil {
		return nil, fmt.Errorf("powerloss: %w", err)
	}
	for _, e := range ents {
		c, err := scan(filepath.Join(p, e.Name()))
		if err != nil {
			return nil, err
		}
		n.entries[e.Name()], n.durEnts[e.Name()] = c, c
	}
	return n, nil
}

func lost(op string, name string) error {
	return &os.PathError{Op: op, Path: name, Err: errors.Join(ErrPowerLost, syscall.EIO)}
}

// split returns the path elements of name below the root; ok is false
// outside it.
func (f *FS) split(name string) ([]string, bool) {
	abs, err := filepath.Abs(name)
	if err != nil {
		return nil, false
	}
	rel, err := filepath.Rel(f.root, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, false
	}
	if rel == "." {
		return nil, true
	}
	return strings.Split(rel, string(filepath.Separator)), true
}

// lookup finds the live node at name, adopting (as durable) what exists
// on disk but not in the model. The caller holds mu.
func (f *FS) lookup(name string) (*node, bool) {
	parts, ok := f.split(name)
	if !ok {
		return nil, false
	}
	n := f.tree
	p := f.root
	for _, el := range parts {
		if !n.dir {
			return nil, false
		}
		p = filepath.Join(p, el)
		c := n.entries[el]
		if c == nil {
			sc, err := scan(p)
			if err != nil {
				return nil, false
			}
			n.entries[el], n.durEnts[el] = sc, sc
			c = sc
		}
		n = c
	}
	return n, true
}

// parent finds the live folder node holding name and name's last element.
func (f *FS) parent(opName, name string) (*node, string, error) {
	parts, ok := f.split(name)
	if !ok || len(parts) == 0 {
		return nil, "", &os.PathError{Op: opName, Path: name, Err: ErrOutside}
	}
	d, ok := f.lookup(filepath.Dir(name))
	if !ok || !d.dir {
		return nil, "", &os.PathError{Op: opName, Path: name, Err: fmt.Errorf("powerloss: folder not modelled: %w", os.ErrNotExist)}
	}
	return d, parts[len(parts)-1], nil
}

// OpenFile opens name like os.OpenFile.
func (f *FS) OpenFile(name string, flag int, perm os.FileMode) (fsutil.File, error) {
	if f.dead.Load() {
		return nil, lost("open", name)
	}
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC) == 0 {
		of, err := os.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		return &file{fs: f, f: of}, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead.Load() {
		return nil, lost("open", name)
	}
	d, base, err := f.parent("open", name)
	if err != nil {
		return nil, err
	}
	_, statErr := os.Lstat(name)
	of, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	var n *node
	if errors.Is(statErr, os.ErrNotExist) {
		n = &node{}
		d.entries[base] = n
	} else if n, _ = f.lookup(name); n == nil || n.dir {
		of.Close()
		return nil, &os.PathError{Op: "open", Path: name, Err: errors.New("powerloss: not a modelled file")}
	}
	if flag&os.O_TRUNC != 0 {
		n.pending = append(n.pending, op{off: 0, trunc: true})
	}
	return &file{fs: f, f: of, n: n}, nil
}

// CreateTemp creates a new file in dir like os.CreateTemp.
func (f *FS) CreateTemp(dir, pattern string) (fsutil.File, error) {
	if f.dead.Load() {
		return nil, lost("createtemp", dir)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.lookup(dir)
	if !ok || !d.dir {
		return nil, &os.PathError{Op: "createtemp", Path: dir, Err: ErrOutside}
	}
	of, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	n := &node{}
	d.entries[filepath.Base(of.Name())] = n
	return &file{fs: f, f: of, n: n}, nil
}

// ReadFile reads name like os.ReadFile.
func (f *FS) ReadFile(name string) ([]byte, error) {
	if f.dead.Load() {
		return nil, lost("read", name)
	}
	return os.ReadFile(name)
}

// ReadDir lists name like os.ReadDir.
func (f *FS) ReadDir(name string) ([]os.DirEntry, error) {
	if f.dead.Load() {
		return nil, lost("readdir", name)
	}
	return os.ReadDir(name)
}

// Stat describes name like os.Stat.
func (f *FS) Stat(name string) (os.FileInfo, error) {
	if f.dead.Load() {
		return nil, lost("stat", name)
	}
	return os.Stat(name)
}

// Lstat describes name like os.Lstat.
func (f *FS) Lstat(name string) (os.FileInfo, error) {
	if f.dead.Load() {
		return nil, lost("lstat", name)
	}
	return os.Lstat(name)
}

// Mkdir makes a folder like os.Mkdir; its entry is durable only after
// its parent is fsynced.
func (f *FS) Mkdir(name string, perm os.FileMode) error {
	return f.change("mkdir", name, func(d *node, base string) error {
		if err := os.Mkdir(name, perm); err != nil {
			return err
		}
		d.entries[base] = newDir()
		return nil
	})
}

// Remove removes a file or an empty folder like os.Remove.
func (f *FS) Remove(name string) error {
	return f.change("remove", name, func(d *node, base string) error {
		f.lookup(name) // adopt before it goes, so a cut can bring it back
		if err := os.Remove(name); err != nil {
			return err
		}
		delete(d.entries, base)
		return nil
	})
}

// Rename renames like os.Rename.
func (f *FS) Rename(oldpath, newpath string) error {
	return f.change("rename", newpath, func(nd *node, nbase string) error {
		od, obase, err := f.parent("rename", oldpath)
		if err != nil {
			return err
		}
		n, _ := f.lookup(oldpath)
		f.lookup(newpath)
		if err := os.Rename(oldpath, newpath); err != nil {
			return err
		}
		if n == nil {
			return nil
		}
		delete(od.entries, obase)
		nd.entries[nbase] = n
		return nil
	})
}

// Link makes newname a hard link to oldname like os.Link.
func (f *FS) Link(oldname, newname string) error {
	return f.change("link", newname, func(nd *node, nbase string) error {
		n, _ := f.lookup(oldname)
		if err := os.Link(oldname, newname); err != nil {
			return err
		}
		if n != nil {
			nd.entries[nbase] = n
		}
		return nil
	})
}

// SyncDir makes the folder's live entries its durable ones.
func (f *FS) SyncDir(dir string) error {
	if f.dead.Load() {
		return lost("fsync", dir)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead.Load() {
		return lost("fsync", dir)
	}
	if err := fsutil.SyncDir(dir); err != nil {
		return err
	}
	if d, ok := f.lookup(dir); ok && d.dir {
		d.durEnts = make(map[string]*node, len(d.entries))
		for k, v := range d.entries {
			d.durEnts[k] = v
		}
	}
	return nil
}

// change runs a directory operation on name under the lock.
func (f *FS) change(opName, name string, do func(d *node, base string) error) error {
	if f.dead.Load() {
		return lost(opName, name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead.Load() {
		return lost(opName, name)
	}
	d, base, err := f.parent(opName, name)
	if err != nil {
		return err
	}
	return do(d, base)
}

// Cut cuts the power: from now on every operation fails with
// ErrPowerLost, and the folder on disk is replaced by its durable state
// (see the package doc). Cutting twice is an error.
func (f *FS) Cut(co CutOptions) (Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cutLocked(co)
}

// SyncCut is the result of a cut armed with CutBeforeSync.
type SyncCut struct {
	// Path is the file whose fsync the cut came before.
	Path   string
	Report Report
	Err    error
}

// CutBeforeSync arms a cut for the next fsync of a file whose path
// match accepts: the power goes just before that fsync takes effect (the
// fsync fails), so the writes it would have made durable are lost or,
// torn, partly kept. fired is called with the result when it fires, on
// the goroutine of that fsync, with the layer locked (it must not use the
// layer). A later call replaces an armed cut that has not fired.
func (f *FS) CutBeforeSync(match func(path string) bool, co CutOptions, fired func(SyncCut)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncArm = &syncArm{match: match, co: co, fired: fired}
}

type syncArm struct {
	match func(string) bool
	co    CutOptions
	fired func(SyncCut)
}

func (f *FS) cutLocked(co CutOptions) (Report, error) {
	if f.dead.Swap(true) {
		return Report{}, errors.New("powerloss: already cut")
	}
	rng := rand.New(rand.NewPCG(co.Seed, co.Seed^0x9e3779b97f4a7c15))
	var rep Report
	contents := map[*node][]byte{}
	// Decide every file's surviving bytes first, in path order (seeded).
	var decide func(n *node, p string)
	decide = func(n *node, p string) {
		for _, name := range slices.Sorted(maps.Keys(n.durEnts)) {
			c := n.durEnts[name]
			cp := filepath.Join(p, name)
			if n.entries[name] != c {
				rep.Undone = append(rep.Undone, cp)
			}
			if c.dir {
				decide(c, cp)
				continue
			}
			if _, done := contents[c]; done {
				continue
			}
			contents[c] = survivor(c, co.Torn, rng, &rep)
		}
		for _, name := range slices.Sorted(maps.Keys(n.entries)) {
			if _, ok := n.durEnts[name]; !ok {
				rep.Undone = append(rep.Undone, filepath.Join(p, name))
			}
		}
	}
	decide(f.tree, f.root)
	ents, err := os.ReadDir(f.root)
	if err != nil {
		return rep, fmt.Errorf("powerloss: cut: %w", err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(f.root, e.Name())); err != nil {
			return rep, fmt.Errorf("powerloss: cut: %w", err)
		}
	}
	var write func(n *node, p string) error
	write = func(n *node, p string) error {
		for name, c := range n.durEnts {
			cp := filepath.Join(p, name)
			if c.dir {
				if err := os.Mkdir(cp, 0o755); err != nil {
					return err
				}
				if err := write(c, cp); err != nil {
					return err
				}
				continue
			}
			if err := os.WriteFile(cp, contents[c], 0o644); err != nil {
				return err
			}
			rep.Files++
		}
		return nil
	}
	if err := write(f.tree, f.root); err != nil {
		return rep, fmt.Errorf("powerloss: cut: %w", err)
	}
	if err := syncTree(f.root); err != nil {
		return rep, fmt.Errorf("powerloss: cut: %w", err)
	}
	return rep, nil
}

// survivor returns what of file n survives a cut.
func survivor(n *node, torn bool, rng *rand.Rand, rep *Report) []byte {
	b := slices.Clone(n.durable)
	keep := 0
	if torn && len(n.pending) > 0 {
		keep = rng.IntN(len(n.pending) + 1)
	}
	for i, o := range n.pending {
		switch {
		case i < keep:
			b = apply(b, o)
		case i == keep && torn && !o.trunc && len(o.data) > 1 && rng.IntN(2) == 0:
			part := 1 + rng.IntN(len(o.data)-1)
			b = apply(b, op{off: o.off, data: o.data[:part]})
			rep.LostBytes += int64(len(o.data) - part)
			rep.TornFiles++
		default:
			rep.LostBytes += int64(len(o.data))
		}
	}
	if keep > 0 && keep < len(n.pending) {
		rep.TornFiles++
	}
	return b
}

// apply returns b with o done to it.
func apply(b []byte, o op) []byte {
	if o.trunc {
		if o.off <= int64(len(b)) {
			return b[:o.off]
		}
		return append(b, make([]byte, o.off-int64(len(b)))...)
	}
	end := o.off + int64(len(o.data))
	if end > int64(len(b)) {
		b = append(b, make([]byte, end-int64(len(b)))...)
	}
	copy(b[o.off:], o.data)
	return b
}

// syncTree fsyncs every file and folder under root, so that the durable
// state written back is on disk for real.
func syncTree(root string) error {
	return filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fh, err := os.Open(p)
		if err != nil {
			return err
		}
		defer fh.Close()
		return fh.Sync()
	})
}

// file is an open file of an FS. Writes and truncations are recorded as
// pending on its node until Sync.
type file struct {
	fs *FS
	f  *os.File
	n  *node // nil: opened read-only
}

func (h *file) Name() string { return h.f.Name() }

func (h *file) Read(p []byte) (int, error) {
	if h.fs.dead.Load() {
		return 0, lost("read", h.f.Name())
	}
	return h.f.Read(p)
}

func (h *file) ReadAt(p []byte, off int64) (int, error) {
	if h.fs.dead.Load() {
		return 0, lost("read", h.f.Name())
	}
	return h.f.ReadAt(p, off)
}

func (h *file) Seek(off int64, whence int) (int64, error) {
	if h.fs.dead.Load() {
		return 0, lost("seek", h.f.Name())
	}
	return h.f.Seek(off, whence)
}

func (h *file) Stat() (os.FileInfo, error) {
	if h.fs.dead.Load() {
		return nil, lost("stat", h.f.Name())
	}
	return h.f.Stat()
}

func (h *file) Close() error { return h.f.Close() }

func (h *file) Write(p []byte) (int, error) {
	return h.write("write", p, func() (int, int64, error) {
		n, err := h.f.Write(p)
		pos, serr := h.f.Seek(0, io.SeekCurrent)
		if err == nil {
			err = serr
		}
		return n, pos - int64(n), err
	})
}

func (h *file) WriteAt(p []byte, off int64) (int, error) {
	return h.write("write", p, func() (int, int64, error) {
		n, err := h.f.WriteAt(p, off)
		return n, off, err
	})
}

func (h *file) write(opName string, p []byte, do func() (int, int64, error)) (int, error) {
	if h.fs.dead.Load() {
		return 0, lost(opName, h.f.Name())
	}
	if h.n == nil {
		return h.f.Write(p) // read-only: the OS refuses
	}
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if h.fs.dead.Load() {
		return 0, lost(opName, h.f.Name())
	}
	n, off, err := do()
	if n > 0 {
		h.n.pending = append(h.n.pending, op{off: off, data: slices.Clone(p[:n])})
	}
	return n, err
}

func (h *file) Truncate(size int64) error {
	if h.fs.dead.Load() {
		return lost("truncate", h.f.Name())
	}
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if h.fs.dead.Load() {
		return lost("truncate", h.f.Name())
	}
	if err := h.f.Truncate(size); err != nil {
		return err
	}
	if h.n != nil {
		h.n.pending = append(h.n.pending, op{off: size, trunc: true})
	}
	return nil
}

// Sync fsyncs the file and makes its pending writes durable.
func (h *file) Sync() error {
	if h.fs.dead.Load() {
		return lost("fsync", h.f.Name())
	}
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if h.fs.dead.Load() {
		return lost("fsync", h.f.Name())
	}
	if a := h.fs.syncArm; a != nil && a.match(h.f.Name()) {
		h.fs.syncArm = nil
		rep, err := h.fs.cutLocked(a.co)
		a.fired(SyncCut{Path: h.f.Name(), Report: rep, Err: err})
		return lost("fsync", h.f.Name())
	}
	if err := h.f.Sync(); err != nil {
		return err
	}
	if h.n != nil {
		for _, o := range h.n.pending {
			h.n.durable = apply(h.n.durable, o)
		}
		h.n.pending = nil
	}
	return nil
}
