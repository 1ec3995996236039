// Package sqfscheck builds a deterministic, deliberately awkward source tree
// (Build) and checks a squashfs image of it with readers that share no code
// with our writer: unsquashfs (CompareListing, ExtractAndDiff) and the
// Linux kernel (MountAndDiff, when CanMount). For tests only.
package sqfscheck

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Defaults used for zero Options fields.
const (
	DefaultBlockSize = 1 << 20
	DefaultBigDir    = 3200
	DefaultDepth     = 48
)

// Sparse4GSize is the size of the optional sparse file (Options.Sparse4G).
const Sparse4GSize = 4<<30 + 12345

// Sparse4GPath is where Build puts the optional sparse file.
const Sparse4GPath = "sparse/4G-plus-12345"

// Options control Build. The zero value gives the default tree.
type Options struct {
	// BlockSize is the squashfs block size the tree is tuned for: files of
	// exactly 1× and 2× this size and ±1 byte are created, as are duplicates
	// whose size is a multiple of it. Default DefaultBlockSize (1 MiB).
	BlockSize int
	// BigDir is the number of entries in the big directory. Default
	// DefaultBigDir (3200).
	BigDir int
	// Depth is the number of nested directories under deep/. Default
	// DefaultDepth (48); values below 1 mean the default.
	Depth int
	// Sparse4G adds Sparse4GPath, a sparse file of Sparse4GSize bytes with a
	// few non-zero bytes at the start, the middle and the end.
	Sparse4G bool
	// ModTime is given to every entry, the root included. The zero value
	// means Unix time 1, as in the Nix store.
	ModTime time.Time
	// Seed selects the pseudo-random content; every seed is deterministic.
	Seed uint64
}

func (o Options) withDefaults() Options {
	if o.BlockSize <= 0 {
		o.BlockSize = DefaultBlockSize
	}
	if o.BigDir <= 0 {
		o.BigDir = DefaultBigDir
	}
	if o.Depth <= 0 {
		o.Depth = DefaultDepth
	}
	if o.ModTime.IsZero() {
		o.ModTime = time.Unix(1, 0)
	}
	return o
}

// Entry describes one file system object, from a source tree (ListDir, Tree)
// or from an image listing (Listing).
type Entry struct {
	// Path is slash-separated and relative to the tree's root; the root
	// itself is ".".
	Path string
	// Mode holds the type bits and the permission bits, including setuid,
	// setgid and sticky.
	Mode fs.FileMode
	Uid  int
	Gid  int
	// Size is the length of a regular file or of a symlink's target. For a
	// directory it is whatever the file system reports (not comparable
	// between a source tree and an image).
	Size int64
	// Target is a symlink's target.
	Target string
	// ModTime is the modification time. unsquashfs listings only have
	// minute resolution.
	ModTime time.Time
	// Major and Minor are a device node's numbers (from listings only).
	Major, Minor uint32
}

// Tree is what Build made.
type Tree struct {
	Root    string
	Options Options // with defaults filled in
	// Entries lists every object under Root, the root included, sorted by
	// Path (byte order).
	Entries []Entry
	byPath  map[string]int
}

// Lookup returns the entry for a slash-separated relative path.
func (t *Tree) Lookup(path string) (Entry, bool) {
	i, ok := t.byPath[path]
	if !ok {
		return Entry{}, false
	}
	return t.Entries[i], true
}

// TotalSize is the sum of the sizes of the regular files.
func (t *Tree) TotalSize() int64 {
	var n int64
	for _, e := range t.Entries {
		if e.Mode.IsRegular() {
			n += e.Size
		}
	}
	return n
}

// Build creates the test tree under dir, which must be empty or absent:
// the kinds of kinds.go, all dated Options.ModTime, the root mode 0755. It
// checks the result with ListDir. A tree holding 0555 directories cannot
// be removed by os.RemoveAll as non-root: use RemoveAll.
func Build(dir string, opts Options) (*Tree, error) {
	opts = opts.withDefaults()
	if opts.BlockSize < 2 {
		return nil, fmt.Errorf("testtree: block size %d too small", opts.BlockSize)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if names, err := readDirNames(dir); err != nil {
		return nil, err
	} else if len(names) > 0 {
		return nil, fmt.Errorf("testtree: %s is not empty", dir)
	}
	var seed [32]byte
	copy(seed[:], "nixlive testtree seed...")
	binary.LittleEndian.PutUint64(seed[24:], opts.Seed)
	b := &builder{root: dir, opts: opts, rng: rand.NewChaCha8(seed), want: map[string]Entry{}}
	b.want["."] = Entry{Path: ".", Mode: fs.ModeDir | 0o755}
	b.dirModes = append(b.dirModes, dirMode{".", 0o755})

	b.blocks()
	b.big()
	b.dups()
	b.textFiles()
	b.modes()
	b.names()
	b.links()
	b.bigDir()
	b.deep()
	b.empties()
	if opts.Sparse4G {
		b.sparse()
	}
	if b.err != nil {
		return nil, b.err
	}
	if err := b.finish(); err != nil {
		return nil, err
	}
	return b.verify()
}

type dirMode struct {
	path string
	perm fs.FileMode
}

type builder struct {
	root     string
	opts     Options
	rng      *rand.ChaCha8
	want     map[string]Entry
	dirModes []dirMode
	err      error
}

func (b *builder) abs(rel string) string { return filepath.Join(b.root, filepath.FromSlash(rel)) }

func (b *builder) fail(err error) {
	if b.err == nil && err != nil {
		b.err = err
	}
}

// mkdir creates rel (and missing parents, recorded as 0755). The final
// mode is applied in finish, after the directory has been filled.
func (b *builder) mkdir(rel string, perm fs.FileMode) {
	if b.err != nil {
		return
	}
	if parent := pathDir(rel); parent != "." {
		if _, ok := b.want[parent]; !ok {
			b.mkdir(parent, 0o755)
		}
	}
	if _, ok := b.want[rel]; ok {
		return
	}
	if err := os.Mkdir(b.abs(rel), 0o700); err != nil {
		b.fail(err)
		return
	}
	b.want[rel] = Entry{Path: rel, Mode: fs.ModeDir | perm}
	b.dirModes = append(b.dirModes, dirMode{rel, perm})
}

func (b *builder) parent(rel string) {
	if parent := pathDir(rel); parent != "." {
		if _, ok := b.want[parent]; !ok {
			b.mkdir(parent, 0o755)
		}
	}
}

func (b *builder) file(rel string, data []byte, perm fs.FileMode) {
	b.parent(rel)
	if b.err != nil {
		return
	}
	if _, ok := b.want[rel]; ok {
		b.fail(fmt.Errorf("testtree: %q created twice", rel))
		return
	}
	p := b.abs(rel)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		b.fail(err)
		return
	}
	b.fail(os.Chmod(p, perm)) // WriteFile's mode is subject to the umask
	b.want[rel] = Entry{Path: rel, Mode: perm, Size: int64(len(data))}
}

func (b *builder) symlink(rel, target string) {
	b.parent(rel)
	if b.err != nil {
		return
	}
	if _, ok := b.want[rel]; ok {
		b.fail(fmt.Errorf("testtree: %q created twice", rel))
		return
	}
	b.fail(os.Symlink(target, b.abs(rel)))
	b.want[rel] = Entry{Path: rel, Mode: fs.ModeSymlink | 0o777, Size: int64(len(target)), Target: target}
}

// finish applies directory modes (after their contents exist) and the
// modification time, children before parents.
func (b *builder) finish() error {
	for _, d := range b.dirModes {
		if err := os.Chmod(b.abs(d.path), d.perm); err != nil {
			return err
		}
	}
	paths := make([]string, 0, len(b.want))
	for p := range b.want {
		paths = append(paths, p)
	}
	// deeper paths first, so setting a child never disturbs a parent
	sort.Slice(paths, func(i, j int) bool {
		di, dj := strings.Count(paths[i], "/"), strings.Count(paths[j], "/")
		if paths[i] == "." || paths[j] == "." {
			return paths[j] == "."
		}
		if di != dj {
			return di > dj
		}
		return paths[i] < paths[j]
	})
	mt := b.opts.ModTime
	for _, p := range paths {
		if err := lchtimes(b.abs(p), mt); err != nil {
			return err
		}
	}
	return nil
}

// verify lists what is on disk and checks it against what was intended.
func (b *builder) verify() (*Tree, error) {
	got, err := ListDir(b.root)
	if err != nil {
		return nil, err
	}
	var diffs []string
	seen := map[string]bool{}
	for _, g := range got {
		seen[g.Path] = true
		w, ok := b.want[g.Path]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%q: unexpected", g.Path))
		case g.Mode != w.Mode:
			diffs = append(diffs, fmt.Sprintf("%q: mode %v, want %v", g.Path, g.Mode, w.Mode))
		case !g.Mode.IsDir() && g.Size != w.Size:
			diffs = append(diffs, fmt.Sprintf("%q: size %d, want %d", g.Path, g.Size, w.Size))
		case g.Target != w.Target:
			diffs = append(diffs, fmt.Sprintf("%q: target %q, want %q", g.Path, g.Target, w.Target))
		case !g.ModTime.Equal(b.opts.ModTime):
			diffs = append(diffs, fmt.Sprintf("%q: mtime %v, want %v", g.Path, g.ModTime, b.opts.ModTime))
		}
	}
	for p := range b.want {
		if !seen[p] {
			diffs = append(diffs, fmt.Sprintf("%q: missing", p))
		}
	}
	if len(diffs) > 0 {
		return nil, diffError("testtree: built tree is not as intended", diffs)
	}
	t := &Tree{Root: b.root, Options: b.opts, Entries: got, byPath: make(map[string]int, len(got))}
	for i, e := range got {
		t.byPath[e.Path] = i
	}
	return t, nil
}

// lchtimes sets the access and modification times of path without
// following a symlink (the os package has no Lchtimes).
func lchtimes(path string, t time.Time) error {
	ts := unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "lutimes", Path: path, Err: err}
	}
	return nil
}

func pathDir(rel string) string {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return "."
	}
	return rel[:i]
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// RemoveAll removes dir like os.RemoveAll, first making its directories
// writable so that read-only directories (mode 0555) do not stop a
// non-root user. A missing dir is not an error.
func RemoveAll(dir string) error {
	// WalkDir visits a directory before reading it, so the chmod also
	// makes unreadable directories readable in time.
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	err := os.RemoveAll(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
