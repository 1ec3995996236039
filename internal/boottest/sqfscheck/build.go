// Package testtree builds a deterministic, deliberately awkward source tree
// and checks a squashfs image of it with readers that share no code with
// our writer: unsquashfs (squashfs-tools) and the Linux kernel.
//
// It is an ordinary package, not a _test file, so that the tests of several
// packages can share it; nothing outside tests should import it.
//
// Typical use:
//
//	sqfscheck.HaveTools(t)
//	src := t.TempDir()
//	tree, err := sqfscheck.Build(src, sqfscheck.Options{BlockSize: 4096})
//	t.Cleanup(func() { sqfscheck.RemoveAll(src) })
//	... write image ...
//	require.NoError(t, sqfscheck.CompareListing(img, src, 0, 0))
//	require.NoError(t, sqfscheck.ExtractAndDiff(img, src))
//	if ok, why := sqfscheck.CanMount(); ok {
//		require.NoError(t, sqfscheck.MountAndDiff(img, src))
//	}
package sqfscheck

import (
	"bytes"
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

// Build creates the test tree under dir, which must be empty or absent.
//
// Layout (B is the block size):
//
//	blocks/   files of 1, B/2, B-1, B, B+1, 2B and 3B bytes, all-zero blocks
//	big/      several MiB of compressible, incompressible, mixed and zero data
//	dups/     identical content under different names (empty, tiny, one
//	          block, 3 blocks, 2 MiB+), files sharing their first block,
//	          same size but different last byte
//	text/     small text files
//	modes/    files 0755/0644/0555/0444/0600/0640/0700, dirs 0555/0700/0750
//	links/    relative, absolute, dangling, to a dir, loops, 4095-byte target
//	names/    255-byte names (file, dir, symlink, multi-byte), spaces, " -> ",
//	          a newline, a tab, non-UTF-8, leading dash, hidden
//	bigdir/   Options.BigDir entries with mixed lengths and prefixes
//	deep/     Options.Depth nested directories with a file and link at the bottom
//	empty/, empty-nested/a/b/c/   empty directories
//	sparse/   only with Options.Sparse4G
//
// Everything gets Options.ModTime; the root gets mode 0755. Build checks
// the result with ListDir before returning it. A tree containing 0555
// directories cannot be removed by os.RemoveAll as non-root: use RemoveAll.
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

// random returns n pseudo-random (incompressible) bytes.
func (b *builder) random(n int) []byte {
	p := make([]byte, n)
	_, _ = b.rng.Read(p)
	return p
}

var words = strings.Fields(`nix store derivation closure squashfs inode
	fragment block directory symlink kernel loop mount compress zstd gzip
	xz lz4 output path hash narinfo profile generation boot initrd stage
	the a of and to in is it for with on as by at from`)

// text returns n bytes of compressible, line-structured text.
func (b *builder) text(n int) []byte {
	var buf bytes.Buffer
	buf.Grow(n + 100)
	for line := 0; buf.Len() < n; line++ {
		fmt.Fprintf(&buf, "%06d:", line)
		for range 4 + b.rng.Uint64()%9 {
			buf.WriteByte(' ')
			buf.WriteString(words[b.rng.Uint64()%uint64(len(words))])
		}
		buf.WriteByte('\n')
	}
	return buf.Bytes()[:n]
}

func (b *builder) blocks() {
	bs := b.opts.BlockSize
	b.mkdir("blocks", 0o755)
	b.file("blocks/one-byte", []byte{'1'}, 0o644)
	b.file("blocks/half", b.random(bs/2), 0o644)
	b.file("blocks/minus-1", b.random(bs-1), 0o644)
	b.file("blocks/exact-1x", b.random(bs), 0o644)
	b.file("blocks/plus-1", b.random(bs+1), 0o644)
	b.file("blocks/exact-2x", b.random(2*bs), 0o644)
	b.file("blocks/exact-3x-text", b.text(3*bs), 0o644)
	b.file("blocks/zeros-1x", make([]byte, bs), 0o644)
	b.file("blocks/zeros-2x-plus-7", make([]byte, 2*bs+7), 0o644)
	// random, zero block, random: a hole in the middle
	hole := b.random(3 * bs)
	clear(hole[bs : 2*bs])
	b.file("blocks/hole-middle", hole, 0o644)
	// a zero tail after a full random block
	tail := b.random(bs + bs/3 + 1)
	clear(tail[bs:])
	b.file("blocks/zero-tail", tail, 0o644)
}

func (b *builder) big() {
	const mib = 1 << 20
	b.mkdir("big", 0o755)
	b.file("big/compressible-6M", b.text(6*mib+3), 0o644)
	b.file("big/incompressible-3M", b.random(3*mib+7), 0o644)
	mixed := make([]byte, 0, 5*mib+11)
	for i := 0; len(mixed) < 5*mib+11; i++ {
		n := min(64<<10+i*4099, 5*mib+11-len(mixed))
		switch i % 3 {
		case 0:
			mixed = append(mixed, b.random(n)...)
		case 1:
			mixed = append(mixed, b.text(n)...)
		default:
			mixed = append(mixed, make([]byte, n)...)
		}
	}
	b.file("big/mixed-5M", mixed, 0o644)
	b.file("big/zeros-2M", make([]byte, 2*mib), 0o644)
}

func (b *builder) dups() {
	bs := b.opts.BlockSize
	b.mkdir("dups", 0o755)
	b.file("dups/empty-a", nil, 0o644)
	b.file("dups/empty-b", nil, 0o644)
	b.file("dups/empty-x", nil, 0o755)
	b.file("dups/tiny-a", []byte("x"), 0o644)
	b.file("dups/tiny-b", []byte("x"), 0o644)

	small := b.text(777)
	b.file("dups/small-a.txt", small, 0o644)
	b.file("dups/small-b.txt", small, 0o644)
	b.file("dups/sub/small-c.txt", small, 0o444)
	b.file("dups/small-exec", small, 0o755)

	one := b.random(bs)
	b.file("dups/block-a", one, 0o644)
	b.file("dups/block-b", one, 0o644)

	three := b.random(3 * bs)
	b.file("dups/blocks3-a", three, 0o644)
	b.file("dups/blocks3-b", three, 0o644)
	b.file("dups/sub/blocks3-c", three, 0o755)

	big := b.random(2<<20 + 333)
	b.file("dups/big-a", big, 0o644)
	b.file("dups/big-b", big, 0o644)

	// same first block, different later
	pa := b.random(2*bs + 50)
	pb := bytes.Clone(pa)
	pb[bs+bs/2] ^= 0xff
	b.file("dups/prefix-a", pa, 0o644)
	b.file("dups/prefix-b", pb, 0o644)
	b.file("dups/prefix-short", bytes.Clone(pa[:bs+10]), 0o644)
	b.file("dups/prefix-1block", bytes.Clone(pa[:bs]), 0o644)

	// same size, only the last byte differs
	sa := b.random(bs + 100)
	sb := bytes.Clone(sa)
	sb[len(sb)-1] ^= 1
	b.file("dups/samesize-a", sa, 0o644)
	b.file("dups/samesize-b", sb, 0o644)

	// same tail (fragment candidates), different first block
	ta := b.random(bs + 200)
	tb := bytes.Clone(ta)
	tb[0] ^= 1
	b.file("dups/tail-a", ta, 0o644)
	b.file("dups/tail-b", tb, 0o644)
}

func (b *builder) textFiles() {
	b.mkdir("text", 0o755)
	b.file("text/hello.txt", []byte("hello, world\n"), 0o644)
	b.file("text/no-newline", []byte("no newline at end"), 0o644)
	b.file("text/crlf.txt", []byte("line one\r\nline two\r\n"), 0o644)
	b.file("text/unicode.txt", []byte("grüße, 日本語, ελληνικά, emoji 🙂\n"), 0o644)
	b.file("text/README", b.text(1500), 0o644)
	b.file("text/script.sh", []byte("#!/bin/sh\necho hi\n"), 0o755)
	for i := range 12 {
		b.file(fmt.Sprintf("text/small-%02d.txt", i), b.text(1+int(b.rng.Uint64()%4000)), 0o644)
	}
}

func (b *builder) modes() {
	b.mkdir("modes", 0o755)
	for _, m := range []fs.FileMode{0o755, 0o644, 0o555, 0o444, 0o600, 0o640, 0o700, 0o711, 0o664} {
		b.file(fmt.Sprintf("modes/file-%04o", uint32(m)), []byte(fmt.Sprintf("mode %04o\n", uint32(m))), m)
	}
	b.mkdir("modes/dir-0555", 0o555)
	b.file("modes/dir-0555/inner.txt", []byte("inside a read-only directory\n"), 0o444)
	b.file("modes/dir-0555/inner-exec", []byte("#!/bin/sh\n"), 0o555)
	b.mkdir("modes/dir-0555/sub-0555", 0o555)
	b.file("modes/dir-0555/sub-0555/leaf", []byte("leaf\n"), 0o644)
	b.mkdir("modes/dir-0555-empty", 0o555)
	b.mkdir("modes/dir-0700", 0o700)
	b.file("modes/dir-0700/secret", []byte("secret\n"), 0o600)
	b.mkdir("modes/dir-0750", 0o750)
}

// longName pads prefix with fill to exactly 255 bytes; fill must be one
// byte or divide the remaining length.
func longName(prefix, fill string) string {
	n := 255 - len(prefix)
	return prefix + strings.Repeat(fill, n/len(fill)) + strings.Repeat("z", n%len(fill))
}

func (b *builder) names() {
	b.mkdir("names", 0o755)
	b.file("names/"+longName("file-255-", "f"), []byte("255-byte name\n"), 0o644)
	b.mkdir("names/"+longName("dir-255-", "d"), 0o755)
	b.file("names/"+longName("dir-255-", "d")+"/"+longName("inner-255-", "i"), []byte("two long names\n"), 0o644)
	b.symlink("names/"+longName("link-255-", "l"), longName("file-255-", "f"))
	b.file("names/"+longName("u", "é"), []byte("multi-byte 255\n"), 0o644)
	b.file("names/with space", []byte("space\n"), 0o644)
	b.file("names/ leading space", []byte("leading space\n"), 0o644)
	b.file("names/trailing space ", []byte("trailing space\n"), 0o644)
	b.file("names/two  spaces  inside", []byte("spaces\n"), 0o644)
	b.file("names/arrow -> name", []byte("arrow\n"), 0o644)
	b.file("names/new\nline", []byte("newline\n"), 0o644)
	b.file("names/tab\tname", []byte("tab\n"), 0o644)
	b.file("names/bad-utf8-\xff\xfe", []byte("not utf-8\n"), 0o644)
	b.file("names/-leading-dash", []byte("dash\n"), 0o644)
	b.file("names/.hidden", []byte("hidden\n"), 0o644)
	b.file("names/..dots", []byte("dots\n"), 0o644)
	b.file("names/quote'\"`$(x)*?[a]\\", []byte("shell\n"), 0o644)
	b.file("names/ünïcødé-日本", []byte("unicode\n"), 0o644)
	b.file("names/UPPER", []byte("upper\n"), 0o644)
	b.file("names/lower", []byte("lower\n"), 0o644)
}

func (b *builder) links() {
	b.mkdir("links", 0o755)
	b.symlink("links/rel-file", "../text/hello.txt")
	b.symlink("links/rel-dir", "../blocks")
	b.symlink("links/rel-dir-slash", "../blocks/")
	b.symlink("links/abs", "/nix/store/00000000000000000000000000000000-dummy/bin/sh")
	b.symlink("links/abs-root", "/")
	b.symlink("links/dangling", "does/not/exist")
	b.symlink("links/dot", ".")
	b.symlink("links/dotdot", "..")
	b.symlink("links/chain", "rel-file")
	b.symlink("links/loop-a", "loop-b")
	b.symlink("links/loop-b", "loop-a")
	b.symlink("links/with space", "target with space")
	b.symlink("links/arrow -> link", "tar -> get")
	b.symlink("links/to-255", "../names/"+longName("file-255-", "f"))
	b.symlink("links/one-char", "x")
	// the longest target Linux accepts (PATH_MAX-1)
	long := strings.Repeat("long-target/", 4095/12)
	long += strings.Repeat("t", 4095-len(long))
	b.symlink("links/target-4095", long)
}

// bigDirNames returns n distinct names chosen to sort awkwardly: numbers
// (1 < 10 < 100 < 2), case, separators that sort around digits, shared
// prefixes of different lengths, multi-byte characters and long names.
func (b *builder) bigDirNames(n int) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if len(out) < n && !seen[s] && len(s) <= 255 {
			seen[s] = true
			out = append(out, s)
		}
	}
	for c := 'a'; c <= 'z'; c++ {
		add(string(c))
	}
	for c := 'A'; c <= 'Z'; c++ {
		add(string(c))
	}
	for c := '0'; c <= '9'; c++ {
		add(string(c))
	}
	for k := 2; k <= 40; k++ {
		add(strings.Repeat("p", k)) // p, pp, ppp...: each a prefix of the next
	}
	for i := 0; len(out) < n; i++ {
		switch i % 9 {
		case 0:
			add(fmt.Sprint(i))
		case 1:
			add(fmt.Sprintf("file-%d", i))
		case 2:
			add(fmt.Sprintf("file.%d", i))
		case 3:
			add(fmt.Sprintf("file_%d", i))
		case 4:
			add(fmt.Sprintf("File%05d", i))
		case 5:
			add(fmt.Sprintf("%d-%s", i, strings.Repeat("L", 150+i%100)))
		case 6:
			add(fmt.Sprintf("ü%d", i))
		case 7:
			k := 1 + int(b.rng.Uint64()%60)
			name := make([]byte, k)
			for j := range name {
				name[j] = "abcdefghijklmnopqrstuvwxyz0123456789-._"[b.rng.Uint64()%39]
			}
			add(string(name) + fmt.Sprintf("~%d", i))
		default:
			add(fmt.Sprintf("x%0*d", 1+i%12, i))
		}
	}
	return out
}

func (b *builder) bigDir() {
	b.mkdir("bigdir", 0o755)
	for i, name := range b.bigDirNames(b.opts.BigDir) {
		rel := "bigdir/" + name
		switch {
		case i%211 == 5:
			b.mkdir(rel, 0o755)
		case i%97 == 3:
			b.symlink(rel, "../text/hello.txt")
		case i%3 == 0:
			b.file(rel, nil, 0o644)
		default:
			b.file(rel, []byte(name[:min(len(name), i%40)]+"\n"), 0o644)
		}
	}
}

func (b *builder) deep() {
	rel := "deep"
	b.mkdir(rel, 0o755)
	for i := range b.opts.Depth {
		rel += "/" + fmt.Sprintf("level-%02d-", i) + strings.Repeat("n", 30)
		b.mkdir(rel, 0o755)
		if i == b.opts.Depth/2 {
			b.file(rel+"/middle.txt", []byte("half way down\n"), 0o644)
		}
	}
	b.file(rel+"/bottom.txt", []byte("bottom\n"), 0o644)
	b.symlink(rel+"/up", strings.Repeat("../", b.opts.Depth)+"text/hello.txt")
	b.mkdir(rel+"/empty", 0o755)
}

func (b *builder) empties() {
	b.mkdir("empty", 0o755)
	b.mkdir("empty-nested/a/b/c", 0o755)
}

func (b *builder) sparse() {
	b.parent(Sparse4GPath)
	if b.err != nil {
		return
	}
	f, err := os.OpenFile(b.abs(Sparse4GPath), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		b.fail(err)
		return
	}
	b.fail(f.Truncate(Sparse4GSize))
	for _, w := range []struct {
		off  int64
		data string
	}{{0, "START"}, {Sparse4GSize/2 - 1, "MIDDLE"}, {Sparse4GSize - 3, "END"}} {
		_, err := f.WriteAt([]byte(w.data), w.off)
		b.fail(err)
	}
	b.fail(f.Close())
	b.fail(os.Chmod(b.abs(Sparse4GPath), 0o644))
	b.want[Sparse4GPath] = Entry{Path: Sparse4GPath, Mode: 0o644, Size: Sparse4GSize}
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
