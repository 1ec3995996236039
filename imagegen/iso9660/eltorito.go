package iso9660

// The El Torito boot catalog (El Torito specification 1.0, section 2).

import "encoding/binary"

func (w *Writer) catalogSector() uint32 { return uint32(w.empty) - 1 }

// catalog builds the El Torito boot catalog: the validation entry, the
// default (first) entry, then one section per further entry.
func (w *Writer) catalog() []byte {
	b := make([]byte, 0, sectorSize)
	entry := func(e BootEntry) []byte {
		n := w.nodes[mustClean(e.Path)]
		count := e.LoadSectors
		if count == 0 {
			count = uint16(min((n.size+511)/512, 0xFFFF))
		}
		r := []byte{0x88, 0, 0, 0, 0, 0}
		r = binary.LittleEndian.AppendUint16(r, count)
		r = binary.LittleEndian.AppendUint32(r, n.lba)
		return append(r, make([]byte, 20)...)
	}
	first := w.opts.Boot[0]
	v := make([]byte, 32)
	v[0], v[1] = 1, byte(first.Platform)
	v[30], v[31] = 0x55, 0xAA
	var sum uint16
	for i := 0; i < 32; i += 2 {
		sum += binary.LittleEndian.Uint16(v[i:])
	}
	binary.LittleEndian.PutUint16(v[28:], -sum)
	b = append(b, v...)
	b = append(b, entry(first)...)
	rest := w.opts.Boot[1:]
	for i, e := range rest {
		hdr := []byte{0x90, byte(e.Platform), 1, 0}
		if i == len(rest)-1 {
			hdr[0] = 0x91 // last section
		}
		b = append(b, append(hdr, make([]byte, 28)...)...)
		b = append(b, entry(e)...)
	}
	return append(b, make([]byte, sectorSize-len(b))...)
}

func mustClean(p string) string {
	c, _ := clean(p)
	return c
}
