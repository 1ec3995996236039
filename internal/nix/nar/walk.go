package nar

// The NAR serialisation itself, with a hook per entry, so that a store
// image can be written from exactly the bytes that are hashed (see Walk).

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Stamp is the state of a regular file as fstat reports it: what changes
// when the file is written (size, mtime, and ctime, which every write
// moves and no writer can set back) or replaced (inode, device).
type Stamp struct {
	Size         int64
	Mtime, Ctime int64 // nanoseconds since 1970
	Ino, Dev     uint64
}

func stampOf(fi fs.FileInfo) Stamp {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return Stamp{Size: fi.Size(), Mtime: fi.ModTime().UnixNano()}
	}
	return Stamp{
		Size:  st.Size,
		Mtime: st.Mtim.Nano(),
		Ctime: st.Ctim.Nano(),
		Ino:   st.Ino,
		Dev:   st.Dev,
	}
}

// Diff says how now differs from s, the two labelled by when they were
// taken: "size 12 bytes when hashed, 22 bytes when written"; for a file
// of the same size, its times and inode.
func (s Stamp) Diff(now Stamp, was, is string) string {
	if s.Size != now.Size {
		return fmt.Sprintf("size %d bytes %s, %d bytes %s", s.Size, was, now.Size, is)
	}
	var d []string
	ts := func(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }
	if s.Mtime != now.Mtime {
		d = append(d, fmt.Sprintf("modified %s %s, %s %s", ts(s.Mtime), was, ts(now.Mtime), is))
	}
	if s.Ctime != now.Ctime {
		d = append(d, fmt.Sprintf("ctime %s %s, %s %s", ts(s.Ctime), was, ts(now.Ctime), is))
	}
	if s.Ino != now.Ino || s.Dev != now.Dev {
		d = append(d, fmt.Sprintf("inode %d on device %d %s, %d on %d %s", s.Ino, s.Dev, was, now.Ino, now.Dev, is))
	}
	return strings.Join(d, "; ")
}

// Entry is one node of a NAR serialisation, as Walk's visit sees it.
type Entry struct {
	// Path is slash-separated and relative to the walk's root: "" for the
	// root itself, then "bin", "bin/x"...
	Path string
	Info fs.FileInfo // from Lstat
	// Target is a symlink's target.
	Target string
	// Stamp is a regular file's state when it was opened, before it is read.
	Stamp Stamp
	// Content reads a regular file's Info.Size() bytes; they go into the
	// NAR as they are read. Walk reads what visit leaves unread.
	Content io.Reader
}

// Walk writes the NAR serialisation of hostPath to w, calling visit on
// each entry in the NAR's order (a directory before its entries, entries
// by name) before the entry's content is serialised. What visit reads from
// a regular file's Content is exactly what the NAR holds, so that a copy
// made in visit has the NAR hash computed from w. A regular file that
// changes while it is read (its Stamp after the read is not the one
// before) is an error naming it. An error from visit or w ends the walk.
// visit may be nil.
func Walk(w io.Writer, hostPath string, visit func(*Entry) error) error {
	wk := &walker{w: bufio.NewWriterSize(w, bufSize), root: hostPath, visit: visit}
	wk.str("nix-archive-1")
	if err := wk.node(""); err != nil {
		return err
	}
	if err := wk.w.Flush(); err != nil {
		return fmt.Errorf("nar: dumping %s: %w", hostPath, err)
	}
	return nil
}

type walker struct {
	w     *bufio.Writer
	root  string
	visit func(*Entry) error
	num   [8]byte
}

var zeros [8]byte

func (wk *walker) u64(n uint64) {
	binary.LittleEndian.PutUint64(wk.num[:], n)
	wk.w.Write(wk.num[:])
}

// str writes a NAR string: length, bytes, zeros up to a multiple of 8.
// bufio.Writer's errors are sticky; they are checked at the end of each
// file and of the walk.
func (wk *walker) str(s string) {
	wk.u64(uint64(len(s)))
	wk.w.WriteString(s)
	wk.w.Write(zeros[:(8-len(s)%8)%8])
}

func (wk *walker) node(rel string) error {
	host := filepath.Join(wk.root, filepath.FromSlash(rel))
	fi, err := os.Lstat(host)
	if err != nil {
		return fmt.Errorf("nar: %w", err)
	}
	e := &Entry{Path: rel, Info: fi}
	wk.str("(")
	wk.str("type")
	switch fi.Mode().Type() {
	case 0:
		if err := wk.regular(host, e); err != nil {
			return err
		}
	case fs.ModeSymlink:
		if e.Target, err = os.Readlink(host); err != nil {
			return fmt.Errorf("nar: %w", err)
		}
		if err := wk.call(e); err != nil {
			return err
		}
		wk.str("symlink")
		wk.str("target")
		wk.str(e.Target)
	case fs.ModeDir:
		if err := wk.dir(host, e); err != nil {
			return err
		}
	default:
		return fmt.Errorf("nar: %s: unsupported file type %s (no NAR form)", host, fi.Mode().Type())
	}
	wk.str(")")
	return nil
}

func (wk *walker) call(e *Entry) error {
	if wk.visit == nil {
		return nil
	}
	return wk.visit(e)
}

func (wk *walker) dir(host string, e *Entry) error {
	if err := wk.call(e); err != nil {
		return err
	}
	d, err := os.Open(host)
	if err != nil {
		return fmt.Errorf("nar: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("nar: %s: %w", host, err)
	}
	slices.Sort(names) // by bytes, as Nix sorts
	wk.str("directory")
	for _, n := range names {
		wk.str("entry")
		wk.str("(")
		wk.str("name")
		wk.str(n)
		wk.str("node")
		if err := wk.node(path.Join(e.Path, n)); err != nil {
			return err
		}
		wk.str(")")
	}
	return nil
}

func (wk *walker) regular(host string, e *Entry) error {
	e.Stamp = stampOf(e.Info)
	var f *os.File
	if e.Info.Size() > 0 {
		var err error
		if f, err = os.Open(host); err != nil {
			return fmt.Errorf("nar: %w", err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return fmt.Errorf("nar: %w", err)
		}
		if now := stampOf(fi); now != e.Stamp {
			return changedError(host, e.Stamp, now)
		}
	}
	wk.str("regular")
	if e.Info.Mode()&0o100 != 0 { // executable by its owner, as Nix decides
		wk.str("executable")
		wk.str("")
	}
	wk.str("contents")
	wk.u64(uint64(e.Stamp.Size))
	c := &content{f: f, left: e.Stamp.Size, nar: wk.w, host: host, size: e.Stamp.Size}
	e.Content = c
	if err := wk.call(e); err != nil {
		return err
	}
	if err := c.drain(); err != nil {
		return err
	}
	if f != nil {
		fi, err := f.Stat()
		if err != nil {
			return fmt.Errorf("nar: %w", err)
		}
		if now := stampOf(fi); now != e.Stamp {
			return changedError(host, e.Stamp, now)
		}
	}
	wk.w.Write(zeros[:(8-e.Stamp.Size%8)%8])
	if err := wk.w.Flush(); err != nil {
		return fmt.Errorf("nar: dumping %s: %w", host, err)
	}
	return nil
}

func changedError(host string, was, now Stamp) error {
	return fmt.Errorf("nar: %s changed while it was read (%s)", host, was.Diff(now, "when opened", "after"))
}

// content reads a regular file's bytes for an Entry, copying them into the
// NAR stream.
type content struct {
	f          *os.File
	left, size int64
	nar        io.Writer
	host       string
}

func (c *content) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.f.Read(p)
	c.left -= int64(n)
	if n > 0 {
		if _, werr := c.nar.Write(p[:n]); werr != nil {
			return n, werr
		}
	}
	if err == io.EOF && c.left > 0 {
		err = fmt.Errorf("nar: %s changed while it was read (size %d bytes when opened, ended after %d)", c.host, c.size, c.size-c.left)
	} else if err != nil && err != io.EOF {
		err = fmt.Errorf("nar: %w", err)
	}
	return n, err
}

var drainBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// drain reads what visit left unread.
func (c *content) drain() error {
	if c.left == 0 {
		return nil
	}
	bp := drainBufs.Get().(*[]byte)
	defer drainBufs.Put(bp)
	for c.left > 0 {
		if _, err := c.Read(*bp); err != nil && err != io.EOF {
			return err
		}
	}
	return nil
}
