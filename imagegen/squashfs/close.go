package squashfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"sort"
)

// Close finishes the last file, waits for the data, writes the inode,
// directory, fragment and id tables and the superblock, and pads the image to
// 4 KiB. It does not close the underlying File.
func (w *Writer) Close() error {
	if w.closed {
		return errors.New("squashfs: Close twice")
	}
	if err := w.drain(); err != nil {
		return err
	}
	b := &tableBuilder{
		w:      w,
		inodes: newMetaWriter(w.opts.Compression.newEncoder(w.bs, false)),
		dirs:   newMetaWriter(w.opts.Compression.newEncoder(w.bs, false)),
		idIdx:  map[uint32]uint16{},
	}
	var count uint32
	numberInodes(w.root, &count)
	if err := b.writeDir(w.root, count+1); err != nil {
		return err
	}
	sb := w.newSuperblock(count)
	if err := w.writeTables(&sb, b); err != nil {
		return err
	}
	if _, err := w.f.WriteAt(sb.marshal(), 0); err != nil {
		return fmt.Errorf("squashfs: write superblock: %w", err)
	}
	return nil
}

// drain finishes the last file and its fragment, and waits until the
// workers and the sink are done with every job.
func (w *Writer) drain() error {
	ferr := w.finishFile()
	w.flushFragment()
	w.closed = true
	close(w.order)
	close(w.work)
	<-w.sinkDone
	w.workersWG.Wait()
	if ctx := w.opts.Context; ctx != nil && ctx.Err() != nil {
		return w.failed() // the cancel explains a short last file
	}
	if ferr != nil {
		return ferr
	}
	return w.failed()
}

// newSuperblock is the superblock of the image, but for the table positions
// and the size, which writeTables fills in.
func (w *Writer) newSuperblock(inodes uint32) superblock {
	sb := superblock{
		Inodes:           inodes,
		MkfsTime:         unixTime(w.opts.ModTime),
		BlockSize:        uint32(w.bs),
		Fragments:        uint32(len(w.fragments)),
		Compression:      w.opts.Compression.superblockID(),
		BlockLog:         log2(w.bs),
		Flags:            flagNoXattrs,
		RootInode:        w.root.ref.packed(),
		XattrTableStart:  noTable,
		ExportTableStart: noTable,
	}
	if !w.opts.NoDuplicates {
		sb.Flags |= flagDuplicates
	}
	if w.opts.AlwaysUseFragments {
		sb.Flags |= flagAlwaysFragments
	}
	if w.opts.Compression.options(w.bs) != nil {
		sb.Flags |= flagCompressorOptions
	}
	if w.opts.Compression.Algorithm == None {
		sb.Flags |= flagNoInodeCompression | flagNoDataCompression | flagNoFragmentCompression | flagNoXattrCompression | flagNoIDCompression
	}
	return sb
}

// writeTables writes, after the data, the inode and directory tables b
// made, the fragment and id tables, and the padding to 4 KiB, and records
// where each table starts in sb.
func (w *Writer) writeTables(sb *superblock, b *tableBuilder) error {
	inodeTable, err := b.inodes.finish()
	if err != nil {
		return fmt.Errorf("squashfs: compress inode table: %w", err)
	}
	dirTable, err := b.dirs.finish()
	if err != nil {
		return fmt.Errorf("squashfs: compress directory table: %w", err)
	}
	s := w.sink
	sb.InodeTableStart = uint64(s.offset())
	write := func(p []byte) {
		if err == nil {
			err = s.write(p)
		}
	}
	write(inodeTable)
	sb.DirTableStart = uint64(s.offset())
	write(dirTable)

	// Fragment and id tables: entries in metadata blocks, then a list of
	// where each of those blocks starts.
	frags := newMetaWriter(w.opts.Compression.newEncoder(w.bs, false))
	for _, f := range w.fragments {
		var e [16]byte
		binary.LittleEndian.PutUint64(e[0:], f.Start)
		binary.LittleEndian.PutUint32(e[8:], f.Size)
		frags.write(e[:])
	}
	sb.FragmentTableStart, err = writeIndexedTable(s, frags, err)
	ids := newMetaWriter(w.opts.Compression.newEncoder(w.bs, false))
	for _, id := range b.ids {
		ids.write(binary.LittleEndian.AppendUint32(nil, id))
	}
	sb.IDCount = uint16(len(b.ids))
	sb.IDTableStart, err = writeIndexedTable(s, ids, err)
	if err != nil {
		return err
	}
	sb.BytesUsed = uint64(s.offset())
	if pad := (padTo - s.offset()%padTo) % padTo; pad > 0 {
		write(make([]byte, pad))
	}
	if err == nil {
		err = s.flush()
	}
	return err
}

func writeIndexedTable(s *sink, m *metaWriter, err error) (uint64, error) {
	if err != nil {
		return 0, err
	}
	base := uint64(s.offset())
	table, err := m.finish()
	if err != nil {
		return 0, fmt.Errorf("squashfs: compress table: %w", err)
	}
	if err := s.write(table); err != nil {
		return 0, err
	}
	start := uint64(s.offset())
	var index []byte
	for _, st := range m.starts {
		index = binary.LittleEndian.AppendUint64(index, base+st)
	}
	return start, s.write(index)
}

// numberInodes gives inode numbers in the order writeDir writes the inodes:
// a directory's subdirectories (recursively), then its other entries, then
// the directory itself. The root comes last.
func numberInodes(d *node, next *uint32) {
	sort.Slice(d.children, func(i, j int) bool { return d.children[i].name < d.children[j].name })
	for _, c := range d.children {
		if c.isDir() {
			numberInodes(c, next)
		}
	}
	for _, c := range d.children {
		if !c.isDir() {
			*next++
			c.number = *next
		}
	}
	*next++
	d.number = *next
}

type tableBuilder struct {
	w      *Writer
	inodes *metaWriter
	dirs   *metaWriter
	ids    []uint32
	idIdx  map[uint32]uint16
	buf    []byte
}

func (b *tableBuilder) id(v uint32) uint16 {
	if i, ok := b.idIdx[v]; ok {
		return i
	}
	i := uint16(len(b.ids))
	b.ids = append(b.ids, v)
	b.idIdx[v] = i
	return i
}

func (b *tableBuilder) header(n *node, typ uint16) inodeHeader {
	perm := uint16(n.mode.Perm())
	if n.mode&fs.ModeSetuid != 0 {
		perm |= 0o4000
	}
	if n.mode&fs.ModeSetgid != 0 {
		perm |= 0o2000
	}
	if n.mode&fs.ModeSticky != 0 {
		perm |= 0o1000
	}
	return inodeHeader{Type: typ, Mode: perm, UIDIdx: b.id(n.uid), GIDIdx: b.id(n.gid), Mtime: n.mtime, Number: n.number}
}

func (b *tableBuilder) writeDir(d *node, parentNumber uint32) error {
	if len(b.ids) > math.MaxUint16 {
		return errors.New("squashfs: more than 65536 distinct owners")
	}
	subdirs := 0
	for _, c := range d.children {
		if c.isDir() {
			subdirs++
			if err := b.writeDir(c, d.number); err != nil {
				return err
			}
		}
	}
	for _, c := range d.children {
		if !c.isDir() {
			c.ref = b.inodes.pos()
			b.writeLeaf(c)
		}
	}
	listingStart := b.dirs.pos()
	startU := b.dirs.total()
	listing, index := dirListing(d.children)
	b.dirs.write(listing)
	// Each index entry needs the directory-table block that holds the
	// header it points at; all those blocks are flushed or current now.
	blockStart := func(u uint64) uint32 {
		k := u / metadataSize
		if k < uint64(len(b.dirs.starts)) {
			return uint32(b.dirs.starts[k])
		}
		return uint32(len(b.dirs.out))
	}

	d.ref = b.inodes.pos()
	le := binary.LittleEndian
	size := uint64(len(listing)) + 3 // the kernel counts "." and ".."
	nlink := uint32(2 + subdirs)
	p := b.buf[:0]
	if len(index) == 0 && size <= math.MaxUint16 && listingStart.Block <= math.MaxUint32 {
		p = b.header(d, typeDir).append(p)
		p = le.AppendUint32(p, uint32(listingStart.Block))
		p = le.AppendUint32(p, nlink)
		p = le.AppendUint16(p, uint16(size))
		p = le.AppendUint16(p, listingStart.Offset)
		p = le.AppendUint32(p, parentNumber)
	} else {
		if size > math.MaxUint32 || len(index) > math.MaxUint16 {
			return fmt.Errorf("squashfs: directory %q too large", d.name)
		}
		p = b.header(d, typeExtDir).append(p)
		p = le.AppendUint32(p, nlink)
		p = le.AppendUint32(p, uint32(size))
		p = le.AppendUint32(p, uint32(listingStart.Block))
		p = le.AppendUint32(p, parentNumber)
		p = le.AppendUint16(p, uint16(len(index)))
		p = le.AppendUint16(p, listingStart.Offset)
		p = le.AppendUint32(p, noXattr)
		for _, ix := range index {
			p = le.AppendUint32(p, ix.offset)
			p = le.AppendUint32(p, blockStart(startU+uint64(ix.offset)))
			p = le.AppendUint32(p, uint32(len(ix.name)-1))
			p = append(p, ix.name...)
		}
	}
	b.inodes.write(p)
	b.buf = p
	return nil
}

func (b *tableBuilder) writeLeaf(n *node) {
	le := binary.LittleEndian
	p := b.buf[:0]
	if n.mode.Type() == fs.ModeSymlink {
		p = b.header(n, typeSymlink).append(p)
		p = le.AppendUint32(p, 1)
		p = le.AppendUint32(p, uint32(len(n.linkname)))
		p = append(p, n.linkname...)
	} else {
		fd := n.file
		if fd.dupOf != nil {
			d := fd.dupOf
			fd.start, fd.sizes, fd.frag, fd.fragOff = d.start, d.sizes, d.frag, d.fragOff
		}
		var sparse uint64
		for i, s := range fd.sizes {
			if s == 0 {
				sparse += uint64(min(int64(b.w.bs), fd.size-int64(i)*int64(b.w.bs)))
			}
		}
		if fd.start <= math.MaxUint32 && fd.size <= math.MaxUint32 && sparse == 0 {
			p = b.header(n, typeFile).append(p)
			p = le.AppendUint32(p, uint32(fd.start))
			p = le.AppendUint32(p, fd.frag)
			p = le.AppendUint32(p, fd.fragOff)
			p = le.AppendUint32(p, uint32(fd.size))
		} else {
			p = b.header(n, typeExtFile).append(p)
			p = le.AppendUint64(p, fd.start)
			p = le.AppendUint64(p, uint64(fd.size))
			p = le.AppendUint64(p, sparse)
			p = le.AppendUint32(p, 1)
			p = le.AppendUint32(p, fd.frag)
			p = le.AppendUint32(p, fd.fragOff)
			p = le.AppendUint32(p, noXattr)
		}
		for _, s := range fd.sizes {
			p = le.AppendUint32(p, s)
		}
	}
	b.inodes.write(p)
	b.buf = p
}

type dirIndex struct {
	offset uint32 // of a directory header, from the start of the listing
	name   string // the first name after that header
}

// dirListing encodes a directory's entries (sorted by name) as runs, each
// under a header naming the inode block and base inode number the run
// shares. A run also ends where the listing crosses into a new 8 KiB stretch
// since the last index point, and the next header gets an index entry, so
// the kernel can jump close to a name in large directories.
func dirListing(children []*node) ([]byte, []dirIndex) {
	le := binary.LittleEndian
	var out []byte
	var index []dirIndex
	header, count := -1, 0
	var base uint32
	var block uint64
	lastIndex := 0
	for _, c := range children {
		entrySize := 8 + len(c.name)
		delta := int64(c.number) - int64(base)
		crossing := header >= 0 && len(out)+entrySize-lastIndex > metadataSize
		if header < 0 || count == maxDirRun || c.ref.Block != block || delta > math.MaxInt16 || delta < math.MinInt16 || crossing {
			if crossing {
				index = append(index, dirIndex{offset: uint32(len(out)), name: c.name})
				lastIndex = len(out)
			}
			if header >= 0 {
				le.PutUint32(out[header:], uint32(count-1))
			}
			header, count, base, block = len(out), 0, c.number, c.ref.Block
			out = le.AppendUint32(out, 0) // count, patched
			out = le.AppendUint32(out, uint32(block))
			out = le.AppendUint32(out, base)
			delta = 0
		}
		typ := uint16(typeFile)
		switch {
		case c.isDir():
			typ = typeDir
		case c.mode.Type() == fs.ModeSymlink:
			typ = typeSymlink
		}
		out = le.AppendUint16(out, c.ref.Offset)
		out = le.AppendUint16(out, uint16(int16(delta)))
		out = le.AppendUint16(out, typ)
		out = le.AppendUint16(out, uint16(len(c.name)-1))
		out = append(out, c.name...)
		count++
	}
	if header >= 0 {
		le.PutUint32(out[header:], uint32(count-1))
	}
	return out, index
}
