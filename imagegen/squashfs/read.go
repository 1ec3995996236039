package squashfs

// A reader of just enough of a squashfs 4.0 image to check a prebuilt one:
// its superblock and the names in its root directory.

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/DataDog/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
)

// sqfsSuper is the part of a squashfs 4.0 superblock RootNames reads.
type sqfsSuper struct {
	comp                         uint16
	root                         uint64
	bytesUsed, inodes, dirs, ids uint64
}

func parseSuperblock(r io.ReaderAt, size int64) (*sqfsSuper, error) {
	b := make([]byte, 96)
	n, err := r.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	le := binary.LittleEndian
	switch {
	case n >= 4 && string(b[:4]) == "hsqs" && n < 96:
		return nil, fmt.Errorf("%d bytes, shorter than a squashfs superblock (96)", n)
	case n < 4 || string(b[:4]) != "hsqs":
		return nil, errors.New(`not a squashfs image (no "hsqs" magic at 0)`)
	}
	if major, minor := le.Uint16(b[28:]), le.Uint16(b[30:]); major != 4 || minor != 0 {
		return nil, fmt.Errorf("squashfs version %d.%d, want 4.0", major, minor)
	}
	bs, blog := le.Uint32(b[12:]), le.Uint16(b[22:])
	if bs < 4096 || bs > 1<<20 || bs&(bs-1) != 0 {
		return nil, fmt.Errorf("block size %d: want a power of two from 4096 to 1048576", bs)
	}
	if int(blog) != bits.TrailingZeros32(bs) {
		return nil, fmt.Errorf("block log %d does not match the block size %d", blog, bs)
	}
	s := &sqfsSuper{comp: le.Uint16(b[20:]), root: le.Uint64(b[32:]), bytesUsed: le.Uint64(b[40:]),
		ids: le.Uint64(b[48:]), inodes: le.Uint64(b[64:]), dirs: le.Uint64(b[72:])}
	if s.bytesUsed > uint64(size) || s.bytesUsed < 96 {
		return nil, fmt.Errorf("the superblock says the image is %d bytes, the file has %d (cut short?)", s.bytesUsed, size)
	}
	if s.inodes < 96 || s.inodes > s.dirs || s.dirs > s.bytesUsed || s.ids > s.bytesUsed {
		return nil, fmt.Errorf("table offsets out of order (inodes %d, directories %d, ids %d, image %d bytes)", s.inodes, s.dirs, s.ids, s.bytesUsed)
	}
	switch s.comp {
	case 1, 4, 5, 6: // gzip (zlib), xz, lz4, zstd
	default:
		return nil, fmt.Errorf("compressor id %d: want gzip, xz, lz4 or zstd", s.comp)
	}
	return s, nil
}

// RootNames checks that r (size bytes) is a squashfs 4.0 image with a sane
// superblock and returns the names in its root directory.
func RootNames(r io.ReaderAt, size int64) ([]string, error) {
	s, err := parseSuperblock(r, size)
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	// A basic directory inode is 32 bytes, an extended one 40.
	ino, err := s.meta(r, s.inodes+s.root>>16, s.dirs, int(s.root&0xFFFF), 32)
	if err == nil && le.Uint16(ino) == 8 {
		ino, err = s.meta(r, s.inodes+s.root>>16, s.dirs, int(s.root&0xFFFF), 40)
	}
	if err != nil {
		return nil, fmt.Errorf("root inode: %w", err)
	}
	var block uint64
	var off, dsize int
	switch le.Uint16(ino) {
	case 1: // basic directory
		block, dsize, off = uint64(le.Uint32(ino[16:])), int(le.Uint16(ino[24:])), int(le.Uint16(ino[26:]))
	case 8: // extended directory
		dsize, block, off = int(le.Uint32(ino[20:])), uint64(le.Uint32(ino[24:])), int(le.Uint16(ino[34:]))
	default:
		return nil, fmt.Errorf("root inode of type %d, not a directory", le.Uint16(ino))
	}
	if dsize < 3 || dsize > 64<<20 {
		return nil, fmt.Errorf("root directory size %d", dsize)
	}
	d, err := s.meta(r, s.dirs+block, s.bytesUsed, off, dsize-3)
	if err != nil {
		return nil, fmt.Errorf("root directory: %w", err)
	}
	var names []string
	for len(d) > 0 {
		if len(d) < 12 {
			return nil, errors.New("root directory: truncated header")
		}
		count := int(le.Uint32(d)) + 1
		d = d[12:]
		for range count {
			if len(d) < 8 || len(d) < 8+int(le.Uint16(d[6:]))+1 {
				return nil, errors.New("root directory: truncated entry")
			}
			l := int(le.Uint16(d[6:])) + 1
			names = append(names, string(d[8:8+l]))
			d = d[8+l:]
		}
	}
	return names, nil
}

// meta reads want bytes from offset off of the metadata blocks starting
// at pos, which must end before limit.
func (s *sqfsSuper) meta(r io.ReaderAt, pos, limit uint64, off, want int) ([]byte, error) {
	var out []byte
	for len(out) < off+want {
		if pos+2 > limit {
			return nil, fmt.Errorf("metadata at %d runs past its table (%d)", pos, limit)
		}
		h := make([]byte, 2)
		if _, err := r.ReadAt(h, int64(pos)); err != nil {
			return nil, err
		}
		n := uint64(binary.LittleEndian.Uint16(h) & 0x7FFF)
		if n == 0 || n > 8192 || pos+2+n > limit {
			return nil, fmt.Errorf("metadata block at %d: bad size %d", pos, n)
		}
		b := make([]byte, n)
		if _, err := r.ReadAt(b, int64(pos+2)); err != nil {
			return nil, err
		}
		if binary.LittleEndian.Uint16(h)&0x8000 == 0 {
			var err error
			if b, err = s.decompress(b); err != nil {
				return nil, fmt.Errorf("metadata block at %d: %w", pos, err)
			}
		}
		out = append(out, b...)
		pos += 2 + n
	}
	return out[off : off+want], nil
}

func (s *sqfsSuper) decompress(b []byte) ([]byte, error) {
	const max = 8192
	var rd io.Reader
	switch s.comp {
	case 1:
		z, err := zlib.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		rd = z
	case 4:
		x, err := xz.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		rd = x
	case 5:
		out := make([]byte, max)
		n, err := lz4.UncompressBlock(b, out)
		return out[:n], err
	case 6:
		rd = zstd.NewReader(bytes.NewReader(b))
	}
	out, err := io.ReadAll(io.LimitReader(rd, max+1))
	if err == nil && len(out) > max {
		err = errors.New("more than 8 KiB")
	}
	return out, err
}
