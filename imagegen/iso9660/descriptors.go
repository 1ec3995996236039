package iso9660

// Volume descriptors (ECMA-119 8): the primary, the boot record of El
// Torito, the Joliet supplementary one and the terminator, from sector 16.

import (
	"encoding/binary"
	"fmt"
)

func (w *Writer) writeDescriptors(prim, jol *hierarchy, total uint32) error {
	sector := int64(16)
	put := func(b []byte) error {
		_, err := w.f.WriteAt(b, sector*sectorSize)
		sector++
		if err != nil {
			return fmt.Errorf("iso9660: write volume descriptor: %w", err)
		}
		return nil
	}
	if err := put(w.volumeDescriptor(prim, total)); err != nil {
		return err
	}
	if len(w.opts.Boot) > 0 {
		br := make([]byte, sectorSize)
		copy(br, "\x00CD001\x01EL TORITO SPECIFICATION")
		binary.LittleEndian.PutUint32(br[0x47:], w.catalogSector())
		if err := put(br); err != nil {
			return err
		}
	}
	if jol != nil {
		if err := put(w.volumeDescriptor(jol, total)); err != nil {
			return err
		}
	}
	term := make([]byte, sectorSize)
	copy(term, "\xffCD001\x01")
	if err := put(term); err != nil {
		return err
	}
	if len(w.opts.Boot) > 0 {
		if _, err := w.f.WriteAt(w.catalog(), int64(w.catalogSector())*sectorSize); err != nil {
			return fmt.Errorf("iso9660: write boot catalog: %w", err)
		}
	}
	return nil
}

// volumeDescriptor is the primary (or, for Joliet, supplementary) one.
func (w *Writer) volumeDescriptor(h *hierarchy, total uint32) []byte {
	text := func(s string, n int) []byte { return padded(s, n, ' ') }
	b := make([]byte, 0, sectorSize)
	typ := byte(1)
	if h.joliet {
		typ = 2
		text = func(s string, n int) []byte { return ucs2Field(s, n) }
	}
	sys := w.opts.SystemID
	if sys == "" {
		sys = "LINUX"
	}
	b = append(b, typ)
	b = append(b, "CD001\x01\x00"...)
	b = append(b, text(sys, 32)...)
	b = append(b, text(w.opts.VolumeID, 32)...)
	b = append(b, make([]byte, 8)...)
	b = both32(b, total)
	esc := make([]byte, 32)
	if h.joliet {
		copy(esc, "%/E") // UCS-2 level 3
	}
	b = append(b, esc...)
	b = both16(b, 1) // volume set size
	b = both16(b, 1) // volume sequence number
	b = both16(b, sectorSize)
	b = both32(b, uint32(h.ptSize))
	b = binary.LittleEndian.AppendUint32(b, uint32(h.ptL))
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(h.ptM))
	b = binary.BigEndian.AppendUint32(b, 0)
	// The root's record, without system use entries.
	root := w.root
	lba, size := root.lba, root.size
	if h.joliet {
		lba, size = root.jLBA, root.jSize
	}
	r := make([]byte, 0, 34)
	r = append(r, 34, 0)
	r = both32(r, lba)
	r = both32(r, uint32(size))
	r = append(r, recordDate(root.mtime)...)
	r = append(r, 0x02, 0, 0)
	r = both16(r, 1)
	r = append(r, 1, 0)
	b = append(b, r...)
	b = append(b, text("", 128)...) // volume set
	b = append(b, text(w.opts.Publisher, 128)...)
	b = append(b, text(w.opts.Preparer, 128)...)
	b = append(b, text(w.opts.Application, 128)...)
	b = append(b, text("", 37)...) // copyright file
	b = append(b, text("", 37)...) // abstract file
	b = append(b, text("", 37)...) // bibliographic file
	d := volumeDate(w.opts.ModTime)
	b = append(b, d...)                              // created
	b = append(b, d...)                              // modified
	b = append(b, []byte("0000000000000000\x00")...) // expires: never
	b = append(b, d...)                              // effective
	b = append(b, 1, 0)                              // file structure version
	return append(b, make([]byte, sectorSize-len(b))...)
}

// ucs2Field encodes s as UCS-2 big-endian in n bytes, padded with spaces.
func ucs2Field(s string, n int) []byte {
	b := make([]byte, 0, n)
	for _, r := range s {
		if len(b)+2 > n {
			break
		}
		if r > 0xFFFF {
			r = '_'
		}
		b = binary.BigEndian.AppendUint16(b, uint16(r))
	}
	for len(b)+2 <= n {
		b = append(b, 0, ' ')
	}
	return append(b, make([]byte, n-len(b))...)
}
