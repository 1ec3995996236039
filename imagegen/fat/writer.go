package fat

import (
	"bytes"
	"errors"
	"io"
	"os"
)

// Plan lays out an image of files without reading any contents: the
// Layout, hence the image size, that Build would produce.
func Plan(files []File, opts Options) (Layout, error) {
	p, err := planFiles(files, opts)
	if err != nil {
		return Layout{}, err
	}
	return p.Layout, nil
}

// Build writes the image of files to out, front to back, reading each
// file's contents once (through File.Open) when it comes to it. Files may
// come in any order; the image does not depend on it. Everything is checked
// before the first byte is written, except the contents themselves: if a
// file's Open fails or yields more or fewer than Size bytes, Build stops
// with an error naming it and out holds part of an image (write to a
// temporary file and rename it).
func Build(out io.Writer, files []File, opts Options) (Layout, error) {
	p, err := planFiles(files, opts)
	if err != nil {
		return Layout{}, err
	}
	if err := p.write(out); err != nil {
		return Layout{}, err
	}
	return p.Layout, nil
}

func planFiles(files []File, opts Options) (*plan, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	t := newTree()
	for i := range files {
		f := &files[i]
		h := Header{Name: f.Name, Size: f.Size, ModTime: f.ModTime, Dir: f.Dir}
		if _, err := t.add(&h, f.Open); err != nil {
			return nil, err
		}
	}
	return makePlan(t, opts)
}

// spoolMemory is how much content a Writer keeps in memory before it moves
// it to a temporary file.
var spoolMemory int64 = 32 << 20

// Writer writes a FAT image in the manner of archive/tar: WriteHeader (or
// Create, Mkdir), Write the file's Size bytes, and so on; Close lays the
// image out and writes it. Contents are held until Close, in memory up to
// 32 MiB and beyond that in a temporary file in Options.TempDir, because
// where they go depends on everything added. A Writer is not safe for
// concurrent use.
type Writer struct {
	out    io.Writer
	opts   Options
	tree   *tree
	cur    *entry // the file being written
	left   int64  // bytes cur still expects
	mem    []byte
	spool  *os.File
	spoolN int64 // bytes in mem or spool
	err    error // sticky: the Writer is unusable after an error
	closed bool
	layout Layout
}

// NewWriter returns a Writer that writes the image to out at Close. It
// checks opts.
func NewWriter(out io.Writer, opts Options) (*Writer, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	return &Writer{out: out, opts: opts, tree: newTree()}, nil
}

// WriteHeader adds an entry: a directory, or a file whose h.Size bytes
// follow through Write. Errors name the path: invalid names, names already
// present (compared case-insensitively, as FAT does), sizes above
// MaxFileSize, and a previous file left short.
func (w *Writer) WriteHeader(h *Header) error {
	_, err := w.add(h)
	return err
}

func (w *Writer) add(h *Header) (*entry, error) {
	if err := w.finishFile(); err != nil {
		return nil, err
	}
	hc := *h
	e, err := w.tree.add(&hc, nil)
	if err != nil {
		return nil, err // the Writer stays usable: nothing was added
	}
	if !e.dir && e.size > 0 {
		off, size := w.spoolN, e.size
		e.open = func() (io.ReadCloser, error) { return w.section(off, size), nil }
		w.cur, w.left = e, e.size
	}
	return e, nil
}

// Create adds a file of size bytes and returns where to write them.
func (w *Writer) Create(name string, size int64) (io.Writer, error) {
	e, err := w.add(&Header{Name: name, Size: size})
	if err != nil {
		return nil, err
	}
	return &fileWriter{w: w, e: e}, nil
}

// Mkdir adds a directory (its parents are created if missing).
func (w *Writer) Mkdir(name string) error {
	return w.WriteHeader(&Header{Name: name, Dir: true})
}

// Write writes contents of the current file; writing more than its Size
// fails with ErrWriteTooLong.
func (w *Writer) Write(b []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, errors.New("fat: write after Close")
	}
	if w.cur == nil {
		if len(b) == 0 {
			return 0, nil
		}
		return 0, &Error{Err: ErrWriteTooLong, Detail: "write with no file open (a directory, an empty file, or no WriteHeader yet)"}
	}
	var tooLong error
	if int64(len(b)) > w.left {
		b = b[:w.left]
		tooLong = pathErr(w.cur.path, ErrWriteTooLong, "more than its size %d written", w.cur.size)
	}
	n, err := w.store(b)
	w.left -= int64(n)
	if err != nil {
		w.err = &Error{Path: w.cur.path, Err: err, Detail: "holding contents: " + err.Error()}
		return n, w.err
	}
	return n, tooLong
}

// store appends to the held contents.
func (w *Writer) store(b []byte) (int, error) {
	if w.spool == nil && w.spoolN+int64(len(b)) > spoolMemory {
		f, err := os.CreateTemp(w.opts.TempDir, "fat-contents-")
		if err != nil {
			return 0, err
		}
		w.spool = f
		if _, err := f.Write(w.mem); err != nil {
			return 0, err
		}
		w.mem = nil
	}
	if w.spool != nil {
		n, err := w.spool.Write(b)
		w.spoolN += int64(n)
		return n, err
	}
	w.mem = append(w.mem, b...)
	w.spoolN += int64(len(b))
	return len(b), nil
}

func (w *Writer) section(off, size int64) io.ReadCloser {
	if w.spool != nil {
		return io.NopCloser(io.NewSectionReader(w.spool, off, size))
	}
	return io.NopCloser(bytes.NewReader(w.mem[off : off+size]))
}

// finishFile checks that the current file got all its bytes.
func (w *Writer) finishFile() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("fat: Writer is closed")
	}
	if w.cur != nil && w.left > 0 {
		w.err = pathErr(w.cur.path, ErrShortContent, "%d of its %d bytes written", w.cur.size-w.left, w.cur.size)
		return w.err
	}
	w.cur = nil
	return nil
}

// Close lays the image out, writes it and frees the held contents. It does
// not close the underlying writer.
func (w *Writer) Close() (err error) {
	if w.closed {
		return w.err
	}
	defer func() {
		w.closed = true
		w.mem = nil
		if w.spool != nil {
			w.spool.Close()
			os.Remove(w.spool.Name())
			w.spool = nil
		}
		if err != nil && w.err == nil {
			w.err = err
		}
	}()
	if err := w.finishFile(); err != nil {
		return err
	}
	p, err := makePlan(w.tree, w.opts)
	if err != nil {
		return err
	}
	if err := p.write(w.out); err != nil {
		return err
	}
	w.layout = p.Layout
	return nil
}

// Layout is the image's layout, once Close has succeeded.
func (w *Writer) Layout() Layout { return w.layout }

// Size is the image size in bytes, once Close has succeeded (a multiple of
// 16 KiB).
func (w *Writer) Size() int64 { return w.layout.Size }

// fileWriter is what Create returns: it refuses writes once the Writer has
// moved on to another entry.
type fileWriter struct {
	w *Writer
	e *entry
}

func (f *fileWriter) Write(b []byte) (int, error) {
	if f.w.cur != f.e {
		if len(b) == 0 {
			return 0, nil
		}
		if f.e.size == 0 {
			return 0, pathErr(f.e.path, ErrWriteTooLong, "write to an empty file")
		}
		return 0, pathErr(f.e.path, ErrWriteTooLong, "write after the next entry was added")
	}
	return f.w.Write(b)
}
