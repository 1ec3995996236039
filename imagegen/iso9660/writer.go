package iso9660

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"
)

// File is where an image is written; it must start out empty. *os.File
// satisfies it.
type File interface {
	io.WriterAt
	io.ReaderAt
	Truncate(size int64) error
}

// Options describe the volume.
type Options struct {
	// VolumeID is the volume label, 1 to 32 bytes, recorded as given
	// (NixOS uses lower-case labels and finds the medium by them).
	VolumeID string
	// SystemID, Publisher, Preparer and Application fill the volume
	// descriptor's identifier fields.
	SystemID, Publisher, Preparer, Application string
	// ModTime is every date in the image (SOURCE_DATE_EPOCH).
	ModTime time.Time
	// Joliet adds a Joliet hierarchy (for Windows).
	Joliet bool
	// Boot lists the El Torito boot entries, BIOS first.
	Boot []BootEntry
	// Catalog is the path at which the boot catalog appears in the
	// hierarchy (default "boot.cat").
	Catalog string
	// Hybrid, when set, makes the image bootable from a disk too.
	Hybrid *Hybrid
}

// Platform is an El Torito platform id.
type Platform byte

const (
	BIOS Platform = 0x00
	EFI  Platform = 0xEF
)

// BootEntry is one El Torito boot image, a file added like any other.
type BootEntry struct {
	Platform Platform
	Path     string
	// LoadSectors is how many 512-byte sectors the firmware loads; 0 means
	// the whole file (capped at 65535).
	LoadSectors uint16
	// BootInfoTable patches the file's bytes 8–63 with its location, as
	// isolinux needs (mkisofs -boot-info-table).
	BootInfoTable bool
}

// Hybrid describes the disk boot structures of an isohybrid image.
type Hybrid struct {
	// MBR is the boot code (isolinux's isohdpfx.bin); its first 432 bytes
	// are used. The BIOS boot entry's file is what it loads. Without a BIOS
	// entry, MBR is nil and the image boots from a disk on UEFI only.
	MBR []byte
	// GPT adds a GPT whose EFI System Partition is the EFI boot entry's
	// image, for UEFI boot from a USB stick.
	GPT bool
}

// Header describes one entry.
type Header struct {
	Name     string // slash-separated path; "" or "." is the root
	Mode     fs.FileMode
	Size     int64 // regular files
	Linkname string
	ModTime  time.Time // zero: Options.ModTime
	Uid, Gid uint32
}

type node struct {
	name     string
	mode     fs.FileMode
	uid, gid uint32
	mtime    time.Time
	linkname string
	explicit bool
	parent   *node
	children []*node

	lba  uint32 // first sector of the data (files) or directory (dirs)
	size int64  // data size; for directories, the directory's size

	isoID  string
	jID    []byte
	jLBA   uint32
	jSize  int64
	ptNum  uint16 // path table number, primary hierarchy
	jPTNum uint16
}

func (n *node) isDir() bool { return n.mode.IsDir() }

// Writer writes an ISO 9660 image.
type Writer struct {
	f     File
	opts  Options
	nodes map[string]*node
	root  *node
	next  int64 // next free sector of the data area
	cur   *fileWriter
	strm  *Stream
	boot  map[string]int // path → index in opts.Boot
	empty uint32         // sector that zero-length files point at
	dig   hash.Hash      // content digest, for the GPT GUIDs
	err   error
	done  bool
}

type fileWriter struct {
	n       *node
	off     int64 // byte offset of the data
	written int64
	buf     []byte // boot images with a boot-info-table are patched before writing
	patch   bool
}

// NewWriter starts an image.
func NewWriter(f File, opts Options) (*Writer, error) {
	if n := len(opts.VolumeID); n < 1 || n > 32 {
		return nil, fmt.Errorf("iso9660: volume ID %q is %d bytes: want 1 to 32", opts.VolumeID, n)
	}
	if opts.ModTime.IsZero() {
		opts.ModTime = time.Unix(315532800, 0)
	}
	if err := checkDate(opts.ModTime); err != nil {
		return nil, fmt.Errorf("iso9660: image date: %w", err)
	}
	if opts.Catalog == "" {
		opts.Catalog = "boot.cat"
	}
	if len(opts.Boot) > 0 {
		// Close looks the catalog up by its cleaned path.
		c, err := clean(opts.Catalog)
		if err != nil || c == "" {
			return nil, fmt.Errorf("iso9660: bad boot catalog path %q", opts.Catalog)
		}
		opts.Catalog = c
	}
	w := &Writer{f: f, opts: opts, nodes: map[string]*node{}, boot: map[string]int{}, dig: sha256.New()}
	w.root = &node{mode: fs.ModeDir | 0o755, mtime: opts.ModTime}
	w.nodes[""] = w.root
	fmt.Fprintf(w.dig, "%q\n", opts.VolumeID)
	bios := 0
	for i, b := range opts.Boot {
		p, err := clean(b.Path)
		if err != nil || p == "" {
			return nil, fmt.Errorf("iso9660: boot entry %d: bad path %q", i, b.Path)
		}
		if b.Platform == BIOS {
			bios++
		}
		w.boot[p] = i
	}
	if h := opts.Hybrid; h != nil {
		switch {
		case bios > 1:
			return nil, errors.New("iso9660: a hybrid image can have only one BIOS boot entry")
		case h.MBR != nil && len(h.MBR) < 432:
			return nil, fmt.Errorf("iso9660: hybrid MBR boot code is %d bytes: want at least 432", len(h.MBR))
		case h.MBR != nil && bios == 0:
			return nil, errors.New("iso9660: hybrid MBR boot code needs a BIOS boot entry to load")
		case h.MBR == nil && bios == 1:
			return nil, errors.New("iso9660: a hybrid image with a BIOS boot entry needs the MBR boot code (isohdpfx.bin)")
		}
	}
	// Sectors 0–15 system area, 16 on volume descriptors, then the boot
	// catalog, then the sector for empty files; data follows.
	vds := int64(2) // primary + terminator
	if len(opts.Boot) > 0 {
		vds++
	}
	if opts.Joliet {
		vds++
	}
	w.next = 16 + vds
	if len(opts.Boot) > 0 {
		w.next++ // the catalog
	}
	w.empty = uint32(w.next)
	w.next++
	if len(opts.Boot) > 0 {
		if err := w.WriteHeader(&Header{Name: opts.Catalog, Mode: 0o444}); err != nil {
			return nil, err
		}
	}
	return w, nil
}

func clean(name string) (string, error) {
	n := strings.Trim(name, "/")
	if n == "" || n == "." {
		return "", nil
	}
	for _, p := range strings.Split(n, "/") {
		switch {
		case p == "" || p == ".":
			return "", fmt.Errorf("iso9660: %q: empty or \".\" path component", name)
		case p == "..":
			return "", fmt.Errorf("iso9660: %q: \"..\" path component", name)
		case len(p) > 255:
			return "", fmt.Errorf("iso9660: /%s: a name is %d bytes, over the limit of 255", n, len(p))
		case strings.IndexByte(p, 0) >= 0:
			return "", fmt.Errorf("iso9660: %q: name contains a NUL byte", name)
		}
	}
	return n, nil
}

func (w *Writer) parent(name string) (*node, error) {
	dir := path.Dir(name)
	if dir == "." {
		return w.root, nil
	}
	if p := w.nodes[dir]; p != nil {
		if !p.isDir() {
			return nil, fmt.Errorf("iso9660: /%s: parent /%s is not a directory", name, dir)
		}
		return p, nil
	}
	gp, err := w.parent(dir)
	if err != nil {
		return nil, err
	}
	p := &node{name: path.Base(dir), mode: fs.ModeDir | 0o755, mtime: w.opts.ModTime, parent: gp}
	gp.children = append(gp.children, p)
	w.nodes[dir] = p
	return p, nil
}

// WriteHeader starts a new entry; a regular file's Size bytes follow.
func (w *Writer) WriteHeader(h *Header) error {
	if err := w.usable(); err != nil {
		return err
	}
	if err := w.finishFile(); err != nil {
		return err
	}
	n, err := w.add(h)
	if err != nil {
		return err
	}
	if n.mode.IsRegular() {
		n.size = h.Size
		if h.Size == 0 {
			n.lba = w.empty
			return nil
		}
		n.lba = uint32(w.next)
		fw := &fileWriter{n: n, off: w.next * sectorSize}
		if i, ok := w.boot[pathOf(n)]; ok && w.opts.Boot[i].BootInfoTable {
			fw.patch = true
		}
		w.next += sectors(h.Size)
		if w.next > 1<<32-1 {
			return errors.New("iso9660: image larger than 8 TiB")
		}
		w.cur = fw
	}
	return nil
}

func (w *Writer) usable() error {
	switch {
	case w.err != nil:
		return w.err
	case w.done:
		return errors.New("iso9660: writer is closed")
	case w.strm != nil:
		return fmt.Errorf("iso9660: stream /%s is still open", pathOf(w.strm.n))
	}
	return nil
}

func (w *Writer) add(h *Header) (*node, error) {
	name, err := clean(h.Name)
	if err != nil {
		return nil, err
	}
	switch t := h.Mode.Type(); {
	case t == 0 && h.Size < 0:
		return nil, fmt.Errorf("iso9660: /%s: negative size", name)
	case t == fs.ModeSymlink && h.Linkname == "":
		return nil, fmt.Errorf("iso9660: /%s: symlink with an empty target", name)
	case t != 0 && t != fs.ModeDir && t != fs.ModeSymlink:
		return nil, fmt.Errorf("iso9660: /%s: special files are not supported", name)
	}
	if !h.ModTime.IsZero() {
		if err := checkDate(h.ModTime); err != nil {
			return nil, fmt.Errorf("iso9660: /%s: date %w", name, err)
		}
	}
	n := w.nodes[name]
	switch {
	case n != nil && (n.explicit || name == "" && !h.Mode.IsDir()):
		return nil, fmt.Errorf("iso9660: /%s: added twice", name)
	case n != nil && !h.Mode.IsDir():
		return nil, fmt.Errorf("iso9660: /%s: is a directory (it has entries)", name)
	case n == nil:
		p, err := w.parent(name)
		if err != nil {
			return nil, err
		}
		n = &node{name: path.Base(name), parent: p}
		p.children = append(p.children, n)
		w.nodes[name] = n
	}
	n.mode, n.uid, n.gid, n.linkname, n.explicit = h.Mode, h.Uid, h.Gid, h.Linkname, true
	n.mtime = h.ModTime
	if n.mtime.IsZero() {
		n.mtime = w.opts.ModTime
	}
	fmt.Fprintf(w.dig, "%q %o %d %q\n", name, uint32(h.Mode), h.Size, h.Linkname)
	return n, nil
}

func pathOf(n *node) string {
	if n.parent == nil {
		return ""
	}
	if p := pathOf(n.parent); p != "" {
		return p + "/" + n.name
	}
	return n.name
}

// Write adds content to the current regular file.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	fw := w.cur
	if fw == nil {
		return 0, errors.New("iso9660: Write without a regular file's header")
	}
	if int64(len(p)) > fw.n.size-fw.written {
		return 0, fmt.Errorf("iso9660: /%s: write beyond its size %d", pathOf(fw.n), fw.n.size)
	}
	w.dig.Write(p)
	if fw.patch {
		fw.buf = append(fw.buf, p...)
		fw.written += int64(len(p))
		return len(p), nil
	}
	// The File starts out empty: runs of zeros (sparse inputs) are left as
	// holes instead of being written.
	if allZero(p) {
		fw.written += int64(len(p))
		return len(p), nil
	}
	if _, err := w.f.WriteAt(p, fw.off+fw.written); err != nil {
		w.err = fmt.Errorf("iso9660: write /%s: %w", pathOf(fw.n), err)
		return 0, w.err
	}
	fw.written += int64(len(p))
	return len(p), nil
}

// ReadFrom copies the current file's content from r.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, 1<<20)
	var total int64
	for w.cur != nil && w.cur.written < w.cur.n.size {
		k := min(int64(len(buf)), w.cur.n.size-w.cur.written)
		n, err := io.ReadFull(r, buf[:k])
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if err != nil {
			return total, fmt.Errorf("iso9660: /%s: %w", pathOf(w.cur.n), err)
		}
	}
	// Like Write, refuse more bytes than the header announced rather than
	// leave them unread.
	var one [1]byte
	if n, _ := io.ReadFull(r, one[:]); n > 0 {
		if w.cur == nil {
			return total, errors.New("iso9660: Write without a regular file's header")
		}
		return total, fmt.Errorf("iso9660: /%s: write beyond its size %d", pathOf(w.cur.n), w.cur.n.size)
	}
	return total, nil
}

func (w *Writer) finishFile() error {
	fw := w.cur
	if fw == nil {
		return nil
	}
	w.cur = nil
	if fw.written != fw.n.size {
		// Sticky: the image would hold a file padded with zeros.
		w.err = fmt.Errorf("iso9660: /%s: %d of %d bytes written", pathOf(fw.n), fw.written, fw.n.size)
		return w.err
	}
	if fw.patch {
		patchBootInfo(fw.buf, uint32(fw.off/sectorSize))
		if _, err := w.f.WriteAt(fw.buf, fw.off); err != nil {
			return fmt.Errorf("iso9660: write /%s: %w", pathOf(fw.n), err)
		}
	}
	return nil
}

// patchBootInfo fills in the El Torito boot-info-table: the primary volume
// descriptor's sector, the file's sector and length, and a checksum of the
// file from byte 64 on.
func patchBootInfo(b []byte, lba uint32) {
	if len(b) < 64 {
		return
	}
	var sum uint32
	for i := 64; i+4 <= len(b); i += 4 {
		sum += uint32(b[i]) | uint32(b[i+1])<<8 | uint32(b[i+2])<<16 | uint32(b[i+3])<<24
	}
	put := func(off int, v uint32) {
		b[off], b[off+1], b[off+2], b[off+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	put(8, 16)
	put(12, lba)
	put(16, uint32(len(b)))
	put(20, sum)
	clear(b[24:64])
}

// Stream is a file whose content is written in place, at any offsets, and
// whose size is what was written when it is closed. Nothing else can be
// added while a Stream is open.
type Stream struct {
	w    *Writer
	n    *node
	base int64
	size int64
}

// Stream starts a file of unknown size (h.Size is ignored).
func (w *Writer) Stream(h *Header) (*Stream, error) {
	if err := w.usable(); err != nil {
		return nil, err
	}
	if err := w.finishFile(); err != nil {
		return nil, err
	}
	hh := *h
	hh.Mode = hh.Mode.Perm()
	hh.Size = 0
	n, err := w.add(&hh)
	if err != nil {
		return nil, err
	}
	if _, ok := w.boot[pathOf(n)]; ok {
		return nil, fmt.Errorf("iso9660: /%s: a boot image cannot be streamed", pathOf(n))
	}
	s := &Stream{w: w, n: n, base: w.next * sectorSize}
	n.lba = uint32(w.next)
	w.strm = s
	return s, nil
}

func (s *Stream) WriteAt(p []byte, off int64) (int, error) {
	if s.w.strm != s {
		return 0, errors.New("iso9660: write to a closed stream")
	}
	n, err := s.w.f.WriteAt(p, s.base+off)
	s.size = max(s.size, off+int64(n))
	return n, err
}

func (s *Stream) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > s.size {
		return 0, io.EOF
	}
	return s.w.f.ReadAt(p, s.base+off)
}

// Size is the stream's size so far.
func (s *Stream) Size() int64 { return s.size }

// Close ends the stream; its size is the end of what was written.
func (s *Stream) Close() error {
	if s.w.strm != s {
		return errors.New("iso9660: stream closed twice")
	}
	s.w.strm = nil
	s.n.size = s.size
	if s.size == 0 {
		s.n.lba = s.w.empty
		return nil
	}
	s.w.next += sectors(s.size)
	// The start of a streamed file (a squashfs superblock, say) stands for
	// its content in the digest; reading it all back would cost a pass.
	head := make([]byte, min(s.size, 64<<10))
	if _, err := s.w.f.ReadAt(head, s.base); err != nil {
		return fmt.Errorf("iso9660: read back /%s: %w", pathOf(s.n), err)
	}
	fmt.Fprintf(s.w.dig, "stream %d\n", s.size)
	s.w.dig.Write(head)
	return nil
}

var zeros = make([]byte, 64<<10)

func allZero(p []byte) bool {
	for len(p) > 0 {
		n := min(len(p), len(zeros))
		if !bytes.Equal(p[:n], zeros[:n]) {
			return false
		}
		p = p[n:]
	}
	return true
}
