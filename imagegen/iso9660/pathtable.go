package iso9660

// Path tables (ECMA-119 9.4).

import (
	"encoding/binary"
	"fmt"
)

func ptID(d *node, joliet bool) []byte {
	if d.parent == nil {
		return []byte{0}
	}
	if joliet {
		return d.jID
	}
	return []byte(d.isoID)
}

// writePathTables writes the path tables (ECMA-119 9.4): every directory in
// path table order, once little-endian (type L) and once big-endian (M).
func (w *Writer) writePathTables(h *hierarchy) error {
	var l, m []byte
	for _, d := range h.dirs {
		id := ptID(d, h.joliet)
		lba, parent := d.lba, uint16(1)
		if d.parent != nil {
			parent = d.parent.ptNum
		}
		if h.joliet {
			lba = d.jLBA
			if d.parent != nil {
				parent = d.parent.jPTNum
			}
		}
		for _, t := range []*[]byte{&l, &m} {
			*t = append(*t, byte(len(id)), 0)
		}
		l = binary.LittleEndian.AppendUint32(l, lba)
		l = binary.LittleEndian.AppendUint16(l, parent)
		m = binary.BigEndian.AppendUint32(m, lba)
		m = binary.BigEndian.AppendUint16(m, parent)
		for _, t := range []*[]byte{&l, &m} {
			*t = append(*t, id...)
			if len(id)%2 == 1 {
				*t = append(*t, 0)
			}
		}
	}
	if _, err := w.f.WriteAt(l, h.ptL*sectorSize); err != nil {
		return fmt.Errorf("iso9660: write path table: %w", err)
	}
	if _, err := w.f.WriteAt(m, h.ptM*sectorSize); err != nil {
		return fmt.Errorf("iso9660: write path table: %w", err)
	}
	return nil
}
