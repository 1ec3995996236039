package squashfs

import "encoding/binary"

// metaWriter builds one metadata table (inodes, directories, fragment or id
// entries): a stream cut into 8 KiB pieces, each compressed on its own with a
// two-byte header. The compressed table stays in memory; it is small next to
// the data.
type metaWriter struct {
	enc     encoder
	out     []byte   // finished blocks, headers included
	cur     []byte   // the block being filled, uncompressed
	starts  []uint64 // offset in out of each finished block
	scratch []byte
	err     error
}

func newMetaWriter(enc encoder) *metaWriter {
	return &metaWriter{enc: enc, cur: make([]byte, 0, 2*metadataSize), scratch: make([]byte, 0, 2*metadataSize)}
}

// pos is where the next byte written will be found by a reader.
func (m *metaWriter) pos() metaRef {
	return metaRef{Block: uint64(len(m.out)), Offset: uint16(len(m.cur))}
}

func (m *metaWriter) write(p []byte) {
	m.cur = append(m.cur, p...)
	for len(m.cur) >= metadataSize {
		m.flush(m.cur[:metadataSize])
		m.cur = append(m.cur[:0], m.cur[metadataSize:]...)
	}
}

func (m *metaWriter) flush(block []byte) {
	m.starts = append(m.starts, uint64(len(m.out)))
	c, err := m.enc.compress(m.scratch[:0], block)
	if err != nil && m.err == nil {
		m.err = err
	}
	if c == nil {
		m.out = binary.LittleEndian.AppendUint16(m.out, uint16(len(block))|metaUncompressed)
		m.out = append(m.out, block...)
		return
	}
	m.out = binary.LittleEndian.AppendUint16(m.out, uint16(len(c)))
	m.out = append(m.out, c...)
}

// finish flushes the last, partial block and returns the table.
func (m *metaWriter) finish() ([]byte, error) {
	if len(m.cur) > 0 {
		m.flush(m.cur)
		m.cur = m.cur[:0]
	}
	return m.out, m.err
}

// uncompressedMeta wraps data in a single uncompressed metadata block, the
// form of the compressor options that follow the superblock.
func uncompressedMeta(data []byte) []byte {
	b := binary.LittleEndian.AppendUint16(nil, uint16(len(data))|metaUncompressed)
	return append(b, data...)
}

// total is the number of uncompressed bytes written so far.
func (m *metaWriter) total() uint64 {
	return uint64(len(m.starts))*metadataSize + uint64(len(m.cur))
}
