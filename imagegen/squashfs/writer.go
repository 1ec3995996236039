package squashfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"path"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/DataDog/zstd"
)

// File is where an image is written. WriteAt fills in the superblock at
// Close; ReadAt lets a file that turns out to share its first blocks with an
// earlier one copy their compressed form instead of compressing them again.
// *os.File satisfies it.
type File interface {
	io.WriterAt
	io.ReaderAt
}

// Options control the image. The zero value gives NixOS's choices: zstd
// level 19, 1 MiB blocks.
type Options struct {
	Compression Compression
	// BlockSize is the data block size, a power of two from 4 KiB to 1 MiB.
	BlockSize int
	// ModTime is the image's creation time and the mtime of directories the
	// Writer creates implicitly (SOURCE_DATE_EPOCH, for reproducible images).
	ModTime time.Time
	// Workers is the number of compressing goroutines (default GOMAXPROCS).
	// It changes the speed, never the bytes.
	Workers int
	// AlwaysUseFragments packs the tails of files larger than a block into
	// fragments too (mksquashfs -always-use-fragments).
	AlwaysUseFragments bool
	// NoDuplicates turns duplicate detection off (mksquashfs -no-duplicates).
	NoDuplicates bool
	// ExactLevel compresses every block at the chosen level. By default,
	// zstd levels from 10 up first try level 1 on each data block and keep
	// that result for blocks it cannot shrink by 3% (already compressed
	// data), which saves most of the time spent on them for a fraction of a
	// percent of their size.
	ExactLevel bool
	// Progress, when set, is called from the adding goroutine with the
	// number of content bytes taken in so far.
	Progress func(contentBytes int64)
	// Context, when set, stops the Writer once done: the workers skip the
	// blocks still queued, nothing more is written, and every method (and
	// Close) returns its error.
	Context context.Context
}

// DefaultBlockSize is NixOS's block size (mksquashfs -b 1048576).
const DefaultBlockSize = 1 << 20

// Header describes one entry, as tar.Header does.
type Header struct {
	// Name is the slash-separated path inside the image; "" or "." is the
	// root directory, whose attributes may be set this way.
	Name string
	// Mode holds the type (fs.ModeDir, fs.ModeSymlink, or none for a regular
	// file) and the permission bits, including setuid, setgid and sticky.
	Mode     fs.FileMode
	Size     int64  // regular files only
	Linkname string // symlinks only
	ModTime  time.Time
	Uid, Gid uint32
}

// ErrWriteTooLong is returned when more is written than the header's Size.
var ErrWriteTooLong = errors.New("squashfs: write too long")

// Writer writes a squashfs image. Its methods must be called from one
// goroutine; compression happens on Options.Workers goroutines behind it.
type Writer struct {
	opts  Options
	f     File
	bs    int
	nodes map[string]*node
	root  *node
	cur   *fileState
	taken int64 // content bytes taken in, for Progress
	// stats: Duplicate and Sparse counted by the adding goroutine, the
	// rest added by each worker under statsMu as it ends.
	stats   Stats
	statsMu sync.Mutex

	// duplicate detection: files with at least one full block by size and
	// first-block hash; smaller files by size and content hash.
	big   map[dedupKey][]*fileData
	small map[dedupKey]*fileData

	frag      []byte // the fragment block being filled
	fragCount uint32

	// pipeline
	work      chan *job
	order     chan *job
	sinkDone  chan struct{}
	workersWG sync.WaitGroup
	srcPool   sync.Pool
	dstPool   sync.Pool
	sink      *sink
	fragments []fragmentEntry // written by the sink goroutine

	errMu  sync.Mutex
	err    error
	closed bool
}

type dedupKey struct {
	size int64
	hash [32]byte
}

// node is one entry of the tree; the tables are made from the tree at Close.
type node struct {
	name     string
	mode     fs.FileMode
	mtime    uint32
	uid, gid uint32
	linkname string
	explicit bool
	children []*node
	file     *fileData

	number uint32  // inode number, assigned at Close
	ref    metaRef // where the inode is in the inode table
}

func (n *node) isDir() bool { return n.mode.IsDir() }

// fileData is a regular file's data as the inode will describe it.
type fileData struct {
	size    int64
	start   uint64   // set by the sink
	sizes   []uint32 // one per block not in a fragment; 0 marks a sparse block
	frag    uint32
	fragOff uint32
	dupOf   *fileData

	hashes   [][32]byte // one per full block
	tailHash [32]byte
}

// fileState is the regular file currently being written.
type fileState struct {
	path    string
	fd      *fileData
	written int64
	buf     []byte // the block being filled
	block   int    // index of the next full block
	// cands are earlier files whose blocks so far equal this one's; while
	// there are any, nothing of this file is compressed.
	cands     []*fileData
	tentative bool
	started   bool
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// NewWriter starts an image in f at offset 0.
func NewWriter(f File, opts Options) (*Writer, error) {
	c, err := opts.Compression.normalize()
	if err != nil {
		return nil, err
	}
	opts.Compression = c
	if opts.BlockSize == 0 {
		opts.BlockSize = DefaultBlockSize
	}
	if bs := opts.BlockSize; bs < 4096 || bs > 1<<20 || bs&(bs-1) != 0 {
		return nil, fmt.Errorf("squashfs: block size %d: want a power of two from 4096 to 1048576", bs)
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.ModTime.IsZero() {
		opts.ModTime = time.Unix(0, 0)
	}
	if s := opts.ModTime.Unix(); s < 0 || s > 1<<32-1 {
		return nil, fmt.Errorf("squashfs: image date %s: want 1970-01-01T00:00:00Z to 2106-02-07T06:28:15Z (unsigned 32-bit seconds)", opts.ModTime.UTC().Format(time.RFC3339))
	}
	w := &Writer{
		opts:  opts,
		f:     f,
		bs:    opts.BlockSize,
		nodes: map[string]*node{},
		big:   map[dedupKey][]*fileData{},
		small: map[dedupKey]*fileData{},
	}
	w.root = &node{mode: fs.ModeDir | 0o755, mtime: unixTime(opts.ModTime)}
	w.nodes[""] = w.root
	w.srcPool.New = func() any { return make([]byte, 0, w.bs) }
	bound := zstd.CompressBound(w.bs) + 4096
	w.dstPool.New = func() any { return make([]byte, 0, bound) }

	// The compressor options follow the superblock; data follows them.
	start := int64(superblockSize)
	if o := opts.Compression.options(w.bs); o != nil {
		meta := uncompressedMeta(o)
		if _, err := f.WriteAt(meta, start); err != nil {
			return nil, fmt.Errorf("squashfs: write compressor options: %w", err)
		}
		start += int64(len(meta))
	}
	w.sink = &sink{f: f, pos: start, buf: make([]byte, 0, 4<<20)}

	inflight := 2*opts.Workers + 2
	w.order = make(chan *job, inflight)
	w.work = make(chan *job, inflight+opts.Workers)
	w.sinkDone = make(chan struct{})
	for range opts.Workers {
		w.workersWG.Add(1)
		go w.compressLoop()
	}
	go w.sinkLoop()
	return w, nil
}

func unixTime(t time.Time) uint32 {
	s := t.Unix()
	if s < 0 {
		return 0
	}
	if s > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(s)
}

func (w *Writer) setErr(err error) {
	w.errMu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.errMu.Unlock()
}

func (w *Writer) failed() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	if w.err == nil && w.opts.Context != nil {
		w.err = w.opts.Context.Err()
	}
	return w.err
}

// cleanName turns a header name into the key of the tree, rejecting names
// that cannot be stored.
func cleanName(name string) (string, error) {
	n := strings.TrimPrefix(name, "/")
	if n == "" || n == "." {
		return "", nil
	}
	for _, part := range strings.Split(n, "/") {
		switch {
		case part == "" || part == ".":
			return "", fmt.Errorf("squashfs: %s: empty or \".\" path component", displayName(n))
		case part == "..":
			return "", fmt.Errorf("squashfs: %s: \"..\" path component", displayName(n))
		case len(part) > maxNameLen:
			return "", fmt.Errorf("squashfs: %s: a name is %d bytes, over the limit of %d", displayName(n), len(part), maxNameLen)
		case strings.IndexByte(part, 0) >= 0:
			return "", fmt.Errorf("squashfs: %q: name contains a NUL byte", n)
		}
	}
	return n, nil
}

// WriteHeader starts a new entry. For a regular file, Size bytes must follow
// through Write or ReadFrom.
func (w *Writer) WriteHeader(h *Header) error {
	if w.closed {
		return errors.New("squashfs: WriteHeader after Close")
	}
	if err := w.finishFile(); err != nil {
		return err
	}
	if err := w.failed(); err != nil {
		return err
	}
	name, err := cleanName(h.Name)
	if err != nil {
		return err
	}
	switch t := h.Mode.Type(); t {
	case 0, fs.ModeDir, fs.ModeSymlink:
	default:
		return fmt.Errorf("squashfs: %s: %s: special files are not supported", displayName(name), typeName(t))
	}
	if h.Mode.IsRegular() && h.Size < 0 {
		return fmt.Errorf("squashfs: %s: negative size %d", displayName(name), h.Size)
	}
	if h.Mode.Type() == fs.ModeSymlink && h.Linkname == "" {
		return fmt.Errorf("squashfs: %s: symlink with an empty target", displayName(name))
	}
	n := w.nodes[name]
	switch {
	case n != nil && n.explicit:
		return fmt.Errorf("squashfs: %s: added twice", displayName(name))
	case n != nil && !h.Mode.IsDir():
		return fmt.Errorf("squashfs: %s: is a directory (it has entries), cannot be a %s", displayName(name), typeName(h.Mode.Type()))
	case n == nil:
		parent, err := w.parent(name)
		if err != nil {
			return err
		}
		n = &node{name: path.Base(name)}
		parent.children = append(parent.children, n)
		w.nodes[name] = n
	}
	n.mode, n.mtime, n.uid, n.gid, n.linkname, n.explicit = h.Mode, unixTime(h.ModTime), h.Uid, h.Gid, h.Linkname, true
	if h.Mode.IsRegular() {
		fd := &fileData{size: h.Size, frag: noFragment}
		nblocks := h.Size / int64(w.bs)
		if h.Size%int64(w.bs) != 0 && (h.Size >= int64(w.bs) && !w.opts.AlwaysUseFragments) {
			nblocks++ // the tail is a short last block
		}
		fd.sizes = make([]uint32, nblocks)
		n.file = fd
		w.cur = &fileState{path: name, fd: fd}
		if h.Size == 0 {
			return w.finishFile()
		}
	}
	return nil
}

func displayName(name string) string { return "/" + name }

func typeName(t fs.FileMode) string {
	switch t {
	case 0:
		return "regular file"
	case fs.ModeDir:
		return "directory"
	case fs.ModeSymlink:
		return "symlink"
	case fs.ModeDevice | fs.ModeCharDevice:
		return "character device"
	case fs.ModeDevice:
		return "block device"
	case fs.ModeNamedPipe:
		return "fifo"
	case fs.ModeSocket:
		return "socket"
	}
	return "special file"
}

// parent returns the directory node that holds name, creating missing
// directories with default attributes.
func (w *Writer) parent(name string) (*node, error) {
	dir := path.Dir(name)
	if dir == "." {
		return w.root, nil
	}
	if p := w.nodes[dir]; p != nil {
		if !p.isDir() {
			return nil, fmt.Errorf("squashfs: %s: parent %s is not a directory", displayName(name), displayName(dir))
		}
		return p, nil
	}
	gp, err := w.parent(dir)
	if err != nil {
		return nil, err
	}
	p := &node{name: path.Base(dir), mode: fs.ModeDir | 0o755, mtime: unixTime(w.opts.ModTime)}
	gp.children = append(gp.children, p)
	w.nodes[dir] = p
	return p, nil
}

// Write adds content to the current regular file.
func (w *Writer) Write(p []byte) (int, error) {
	s, err := w.writable()
	if err != nil {
		return 0, err
	}
	total := 0
	for len(p) > 0 {
		room := s.fd.size - s.written
		if room == 0 {
			return total, fmt.Errorf("%w: %s is %d bytes", ErrWriteTooLong, displayName(s.path), s.fd.size)
		}
		if s.buf == nil {
			s.buf = w.srcPool.Get().([]byte)[:0]
		}
		k := min(len(p), w.bs-len(s.buf), int(min(room, int64(w.bs))))
		s.buf = append(s.buf, p[:k]...)
		p = p[k:]
		total += k
		if err := w.took(s, k); err != nil {
			return total, err
		}
	}
	return total, nil
}

// ReadFrom reads the current file's remaining content from r straight into
// block buffers. It stops at the header's Size: a longer r is not an error.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	s, err := w.writable()
	if err != nil {
		return 0, err
	}
	var total int64
	for s.written < s.fd.size {
		if s.buf == nil {
			s.buf = w.srcPool.Get().([]byte)[:0]
		}
		want := min(int64(w.bs-len(s.buf)), s.fd.size-s.written)
		n, err := io.ReadFull(r, s.buf[len(s.buf):len(s.buf)+int(want)])
		s.buf = s.buf[:len(s.buf)+n]
		total += int64(n)
		if n > 0 {
			if err := w.took(s, n); err != nil {
				return total, err
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return total, fmt.Errorf("squashfs: %s: content ended after %d of %d bytes", displayName(s.path), s.written, s.fd.size)
		}
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Stats says where the content went: what duplicate detection, sparse
// blocks and the level-1 trial kept away from the compressor.
type Stats struct {
	Content   int64 // file content taken in
	Duplicate int64 // content already in the image (duplicate files, leading blocks shared with an earlier file)
	Sparse    int64 // all-zero blocks, which take no space
	// Compressed is what went to the compressor as data and fragment
	// blocks; TrialKept is the part of it that kept level 1's result.
	Compressed, TrialKept int64
}

// Stats returns the counts; they are complete once Close has returned.
func (w *Writer) Stats() Stats {
	w.statsMu.Lock()
	defer w.statsMu.Unlock()
	st := w.stats
	st.Content = w.taken
	return st
}

func log2(n int) uint16 { return uint16(bits.TrailingZeros(uint(n))) }
