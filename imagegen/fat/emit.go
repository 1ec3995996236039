package fat

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

var le = binary.LittleEndian

const (
	attrVolumeID  = 0x08
	attrDirectory = 0x10
	attrArchive   = 0x20
	attrLongName  = 0x0F
)

// bootCode is the whole boot program: cli; hlt; jmp back to hlt. Booting
// the image from BIOS stops quietly instead of running off into garbage.
var bootCode = []byte{0xFA, 0xF4, 0xEB, 0xFD}

// bootSector is sector 0 (and, for FAT32, its backup at sector 6).
func (p *plan) bootSector() []byte {
	b := make([]byte, sectorSize)
	codeAt := 0x3E
	if p.Type == FAT32 {
		codeAt = 0x5A
	}
	b[0], b[1], b[2] = 0xEB, byte(codeAt-2), 0x90 // jmp short to the code; nop
	copy(b[3:11], "MSWIN4.1")
	le.PutUint16(b[11:], sectorSize)
	b[13] = byte(p.spc)
	le.PutUint16(b[14:], uint16(p.ReservedSectors))
	b[16] = 2 // FATs
	le.PutUint16(b[17:], uint16(p.RootEntries))
	if p.Type != FAT32 && p.totalSecs < 0x10000 {
		le.PutUint16(b[19:], uint16(p.totalSecs))
	} else {
		le.PutUint32(b[32:], uint32(p.totalSecs))
	}
	b[21] = 0xF8                      // media: fixed disk
	le.PutUint16(b[24:], alignSector) // sectors per track
	le.PutUint16(b[26:], 64)          // heads
	// b[28:32] hidden sectors: 0, the image is not in a partition.
	ext := 36
	if p.Type == FAT32 {
		le.PutUint32(b[36:], uint32(p.FATSectors))
		// 40: flags 0 (FATs mirrored), 42: version 0.0
		le.PutUint32(b[44:], p.root.first)
		le.PutUint16(b[48:], 1) // FSInfo sector
		le.PutUint16(b[50:], 6) // backup boot sector
		ext = 64
	} else {
		le.PutUint16(b[22:], uint16(p.FATSectors))
	}
	b[ext] = 0x80 // drive number
	// ext+1: reserved (the dirty flag of some drivers): clean.
	b[ext+2] = 0x29 // extended boot signature: the next three fields exist
	le.PutUint32(b[ext+3:], p.opts.VolumeID)
	copy(b[ext+7:ext+18], p.label[:])
	copy(b[ext+18:ext+26], fmt.Sprintf("%-8s", p.Type.String()))
	copy(b[codeAt:], bootCode)
	b[510], b[511] = 0x55, 0xAA
	return b
}

// fsInfo is FAT32's FSInfo sector (sector 1, backup at 7).
func (p *plan) fsInfo() []byte {
	b := make([]byte, sectorSize)
	le.PutUint32(b[0:], 0x41615252)
	le.PutUint32(b[484:], 0x61417272)
	free := p.Clusters - p.UsedClusters
	le.PutUint32(b[488:], uint32(free))
	next := uint32(0xFFFFFFFF)
	if free > 0 {
		next = uint32(2 + p.UsedClusters)
	}
	le.PutUint32(b[492:], next)
	le.PutUint32(b[508:], 0xAA550000)
	return b
}

// fat builds one copy of the FAT.
func (p *plan) fat() []byte {
	t := make([]byte, p.FATSectors*sectorSize)
	var eoc uint32
	var set func(c, v uint32)
	switch p.Type {
	case FAT12:
		eoc = 0xFFF
		set = func(c, v uint32) {
			o := c * 3 / 2
			if c&1 == 0 {
				t[o] = byte(v)
				t[o+1] = t[o+1]&0xF0 | byte(v>>8)&0x0F
			} else {
				t[o] = t[o]&0x0F | byte(v<<4)
				t[o+1] = byte(v >> 4)
			}
		}
	case FAT16:
		eoc = 0xFFFF
		set = func(c, v uint32) { le.PutUint16(t[2*c:], uint16(v)) }
	default:
		eoc = 0x0FFFFFFF
		set = func(c, v uint32) { le.PutUint32(t[4*c:], v) }
	}
	set(0, eoc&^0xFF|0xF8) // the media byte, all other bits set
	set(1, eoc)            // end of chain; clean, no errors
	chain := func(first uint32, n int64) {
		for i := int64(0); i < n; i++ {
			c := first + uint32(i)
			if i == n-1 {
				set(c, eoc)
			} else {
				set(c, c+1)
			}
		}
	}
	for _, d := range p.dirs {
		chain(d.first, d.nclus)
	}
	for _, f := range p.files {
		chain(f.first, f.nclus)
	}
	return t
}

// stamp converts a time to FAT's date, time (2-second steps) and
// hundredths (0..199, for the creation time), clamped to 1980..2107.
func stamp(t time.Time) (date, tm uint16, hundredths byte) {
	lo := time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	hi := time.Date(2107, 12, 31, 23, 59, 59, 990_000_000, time.UTC)
	t = t.UTC()
	if t.Before(lo) {
		t = lo
	}
	if t.After(hi) {
		t = hi
	}
	date = uint16(t.Year()-1980)<<9 | uint16(t.Month())<<5 | uint16(t.Day())
	tm = uint16(t.Hour())<<11 | uint16(t.Minute())<<5 | uint16(t.Second()/2)
	hundredths = byte(t.Second()%2*100 + t.Nanosecond()/10_000_000)
	return
}

func (p *plan) mtime(e *entry) time.Time {
	if e.mtime.IsZero() {
		return p.opts.ModTime
	}
	return e.mtime
}

// putEntry fills a 32-byte short directory entry.
func putEntry(b []byte, name [11]byte, attr byte, t time.Time, first uint32, size uint32) {
	copy(b[0:11], name[:])
	b[11] = attr
	date, tm, hs := stamp(t)
	b[13] = hs
	le.PutUint16(b[14:], tm)   // creation time
	le.PutUint16(b[16:], date) // creation date
	le.PutUint16(b[18:], date) // last access date
	le.PutUint16(b[20:], uint16(first>>16))
	le.PutUint16(b[22:], tm) // write time
	le.PutUint16(b[24:], date)
	le.PutUint16(b[26:], uint16(first))
	le.PutUint32(b[28:], size)
}

// putLFN fills the long-name entries of e, last part first, as they are
// stored before its short entry; it returns the number of bytes used.
func putLFN(b []byte, e *entry) int {
	n := lfnSlots(len(e.units))
	sum := lfnChecksum(e.short)
	for i := 0; i < n; i++ {
		seq := n - i // the part this slot holds, 1-based
		s := b[32*i : 32*i+32]
		s[0] = byte(seq)
		if i == 0 {
			s[0] |= 0x40 // last part
		}
		s[11] = attrLongName
		s[13] = sum
		// 13 UTF-16 units: at 1 (5), 14 (6), 28 (2); after the name, one
		// 0x0000 and then 0xFFFF.
		offs := [13]int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30}
		for k, o := range offs {
			j := (seq-1)*13 + k
			var u uint16
			switch {
			case j < len(e.units):
				u = e.units[j]
			case j == len(e.units):
				u = 0
			default:
				u = 0xFFFF
			}
			le.PutUint16(s[o:], u)
		}
	}
	return 32 * n
}

// dirBytes is the listing of directory d, padded to its space.
func (p *plan) dirBytes(d *entry) []byte {
	var size int64
	if d == p.root && p.Type != FAT32 {
		size = int64(p.RootEntries) * 32
	} else {
		size = d.nclus * int64(p.ClusterSize)
	}
	b := make([]byte, size)
	o := 0
	t := p.mtime(d)
	if d == p.root {
		if p.hasLabel {
			putEntry(b[o:], p.label, attrVolumeID, p.opts.ModTime, 0, 0)
			o += 32
		}
	} else {
		dot := [11]byte{'.', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '}
		putEntry(b[o:], dot, attrDirectory, t, d.first, 0)
		o += 32
		dot[1] = '.'
		var up uint32 // ".." of a child of the root is cluster 0, also on FAT32
		if d.parent != p.root {
			up = d.parent.first
		}
		putEntry(b[o:], dot, attrDirectory, p.mtime(d.parent), up, 0)
		o += 32
	}
	for _, e := range d.kids {
		if e.lfn {
			o += putLFN(b[o:], e)
		}
		if e.dir {
			putEntry(b[o:], e.short, attrDirectory, p.mtime(e), e.first, 0)
		} else {
			putEntry(b[o:], e.short, attrArchive, p.mtime(e), e.first, uint32(e.size))
		}
		o += 32
	}
	return b
}

// countingWriter counts what passes and keeps the first error.
type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}

var zeros = make([]byte, 64<<10)

func writeZeros(w io.Writer, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := w.Write(zeros[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// write writes the whole image, front to back.
func (p *plan) write(out io.Writer) error {
	cw := &countingWriter{w: out}
	bw := bufio.NewWriterSize(cw, 1<<20)
	err := p.writeTo(bw, cw)
	if err == nil {
		err = bw.Flush()
	}
	if cw.err != nil { // the output failed, whatever was being copied
		return fmt.Errorf("fat: writing the image: %w", cw.err)
	}
	if err != nil {
		return err
	}
	if cw.n != p.Size {
		return fmt.Errorf("fat: internal error: wrote %d bytes, the layout says %d", cw.n, p.Size)
	}
	return nil
}

func (p *plan) writeTo(w *bufio.Writer, out *countingWriter) error {
	// Reserved sectors.
	boot := p.bootSector()
	w.Write(boot)
	if p.Type == FAT32 {
		info := p.fsInfo()
		w.Write(info)
		writeZeros(w, 4*sectorSize)
		w.Write(boot) // backup boot sector, sector 6
		w.Write(info)
		writeZeros(w, int64(p.ReservedSectors-8)*sectorSize)
	} else {
		writeZeros(w, int64(p.ReservedSectors-1)*sectorSize)
	}
	// Two FATs.
	t := p.fat()
	w.Write(t)
	w.Write(t)
	// Directories: the fixed root, then those in clusters.
	for _, d := range p.dirs {
		w.Write(p.dirBytes(d))
	}
	// File contents.
	cs := int64(p.ClusterSize)
	for _, f := range p.files {
		if f.size == 0 {
			continue
		}
		if out.err != nil {
			return out.err
		}
		if err := copyContent(w, f); err != nil {
			return err
		}
		if err := writeZeros(w, f.nclus*cs-f.size); err != nil {
			return err
		}
	}
	// Free clusters and the sectors after the last cluster.
	dataStart := int64(p.ReservedSectors+2*p.FATSectors+p.rootSecs) * sectorSize
	used := dataStart + int64(p.UsedClusters)*cs
	return writeZeros(w, p.Size-used)
}

// copyContent copies exactly f.size bytes of f's contents.
func copyContent(w io.Writer, f *entry) (err error) {
	if f.open == nil {
		return pathErr(f.path, ErrShortContent, "no contents for %d bytes (File.Open is nil)", f.size)
	}
	r, err := f.open()
	if err != nil {
		return &Error{Path: f.path, Err: err, Detail: "open: " + err.Error()}
	}
	defer func() {
		if cerr := r.Close(); cerr != nil && err == nil {
			err = &Error{Path: f.path, Err: cerr, Detail: "close: " + cerr.Error()}
		}
	}()
	n, err := io.CopyN(w, r, f.size)
	if errors.Is(err, io.EOF) {
		return pathErr(f.path, ErrShortContent, "content ended after %d bytes; its size is %d", n, f.size)
	}
	if err != nil {
		return &Error{Path: f.path, Err: err, Detail: fmt.Sprintf("after %d bytes: %v", n, err)}
	}
	var one [1]byte
	if k, _ := io.ReadFull(r, one[:]); k > 0 {
		return pathErr(f.path, ErrWriteTooLong, "content is longer than its size %d", f.size)
	}
	return nil
}
