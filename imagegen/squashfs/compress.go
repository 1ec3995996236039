package squashfs

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/DataDog/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
)

// Algorithm names a squashfs compressor.
type Algorithm string

const (
	Zstd Algorithm = "zstd"
	Gzip Algorithm = "gzip" // zlib streams, as squashfs's "gzip"
	XZ   Algorithm = "xz"
	LZ4  Algorithm = "lz4"
	None Algorithm = "none" // every block stored uncompressed
)

// Compression selects the compressor and its level. Level 0 means the
// compressor's default (zstd 19 as NixOS uses, gzip 9, lz4 fast, xz default).
type Compression struct {
	Algorithm Algorithm
	Level     int
}

// Default levels. zstd's is NixOS's choice, not mksquashfs's (15).
const (
	DefaultZstdLevel = 19
	DefaultGzipLevel = 9
)

// compressor ids in the superblock.
const (
	idZlib = 1
	idXZ   = 4
	idLZ4  = 5
	idZstd = 6
)

// ParseCompression reads the forms NixOS's squashfsCompression option uses,
// such as "zstd -Xcompression-level 19", "xz -Xdict-size 100%", "gzip", "lz4 -Xhc",
// and the short form "zstd:19". NixOS's older x86 default "xz -Xdict-size
// 100% -Xbcj x86" is refused with an error that says why (no BCJ filter
// in our xz encoder) and what to use instead.
func ParseCompression(s string) (Compression, error) {
	fields := strings.Fields(strings.ReplaceAll(s, ":", " "))
	if len(fields) == 0 {
		return Compression{}, fmt.Errorf("squashfs: empty compression")
	}
	c := Compression{Algorithm: Algorithm(fields[0])}
	rest := fields[1:]
	for i := 0; i < len(rest); i++ {
		switch f := rest[i]; {
		case f == "-Xcompression-level" && i+1 < len(rest):
			i++
			n, err := strconv.Atoi(rest[i])
			if err != nil {
				return Compression{}, fmt.Errorf("squashfs: compression %q: level %q is not a number", s, rest[i])
			}
			c.Level = n
		case f == "-Xhc":
			c.Level = 9
		case f == "-Xdict-size" && i+1 < len(rest):
			// Our xz dictionary is the block size, mksquashfs's default
			// (which it writes no options for); other sizes would need
			// the compressor options block.
			i++
			if c.Algorithm != XZ || rest[i] != "100%" {
				return Compression{}, fmt.Errorf("squashfs: compression %q: -Xdict-size %s: only xz's -Xdict-size 100%% (the block size) is supported", s, rest[i])
			}
		case f == "-Xbcj":
			return Compression{}, fmt.Errorf("squashfs: compression %q: -Xbcj (xz's branch/call/jump filters) is not supported: "+
				"the xz encoder we use (github.com/ulikunitz/xz) writes LZMA2 streams only, with no BCJ filter; "+
				"use \"xz -Xdict-size 100%%\" (the same image without the filter, somewhat larger) or \"zstd -Xcompression-level 19\" (NixOS's current default)", s)
		default:
			n, err := strconv.Atoi(f)
			if err != nil || i != 0 {
				return Compression{}, fmt.Errorf("squashfs: compression %q: unknown option %q", s, f)
			}
			c.Level = n
		}
	}
	return c.normalize()
}

// normalize fills in the default level and checks the range.
func (c Compression) normalize() (Compression, error) {
	lo, hi, def := 0, 0, 0
	switch c.Algorithm {
	case Zstd:
		lo, hi, def = 1, 22, DefaultZstdLevel
	case Gzip:
		lo, hi, def = 1, 9, DefaultGzipLevel
	case LZ4:
		lo, hi, def = 0, 9, 0
	case XZ, None:
		lo, hi, def = 0, 0, 0
	case "":
		return Compression{Algorithm: Zstd, Level: DefaultZstdLevel}, nil
	default:
		return c, fmt.Errorf("squashfs: unknown compressor %q (want zstd, gzip, xz, lz4 or none)", c.Algorithm)
	}
	if c.Level == 0 {
		c.Level = def
	}
	if c.Level < lo || c.Level > hi {
		return c, fmt.Errorf("squashfs: %s level %d out of range %d..%d", c.Algorithm, c.Level, lo, hi)
	}
	return c, nil
}

// superblockID and options give the compressor id and the optional
// compressor options block, written only where mksquashfs writes one.
func (c Compression) superblockID() uint16 {
	switch c.Algorithm {
	case Zstd:
		return idZstd
	case XZ:
		return idXZ
	case LZ4:
		return idLZ4
	default:
		return idZlib // gzip, and "none", which marks every block uncompressed
	}
}

func (c Compression) options(blockSize int) []byte {
	var b []byte
	switch c.Algorithm {
	case Zstd:
		if c.Level != 15 {
			b = binary.LittleEndian.AppendUint32(b, uint32(c.Level))
		}
	case Gzip:
		if c.Level != 9 {
			b = binary.LittleEndian.AppendUint32(b, uint32(c.Level))
			b = binary.LittleEndian.AppendUint16(b, 15) // window bits
			b = binary.LittleEndian.AppendUint16(b, 0)  // strategies
		}
	case LZ4:
		// The kernel refuses lz4 images without options.
		var flags uint32
		if c.Level > 0 {
			flags = 1 // LZ4_HC
		}
		b = binary.LittleEndian.AppendUint32(b, 1) // LZ4_LEGACY
		b = binary.LittleEndian.AppendUint32(b, flags)
	}
	return b
}

// encoder compresses one block at a time; each worker owns one.
type encoder interface {
	// compress returns the compressed form of src in dst's storage, or nil
	// when compression does not make it smaller.
	compress(dst, src []byte) ([]byte, error)
}

func (c Compression) newEncoder(blockSize int, probe bool) encoder {
	switch c.Algorithm {
	case Zstd:
		e := &zstdEncoder{ctx: zstd.NewCtx(), level: c.Level}
		if probe && c.Level >= probeFromLevel {
			e.probe = make([]byte, zstd.CompressBound(blockSize))
		}
		return e
	case Gzip:
		return &zlibEncoder{level: c.Level}
	case XZ:
		return &xzEncoder{dict: blockSize}
	case LZ4:
		return &lz4Encoder{level: c.Level}
	default:
		return noneEncoder{}
	}
}

type zstdEncoder struct {
	ctx   zstd.Ctx
	level int
	probe []byte // scratch for the level-1 trial; nil: no trial
	// trialKept counts the input bytes that kept the trial's result.
	trialKept int64
}

// Blocks that level 1 cannot shrink by 3% are already compressed (archives,
// images, compressed modules): the high levels spend most of their time on
// them and gain a fraction of a percent, so they keep the level-1 result
// (the "auto" mode of borg and the btrfs heuristics do the same). Only the
// slow levels are worth the trial.
const (
	probeFromLevel = 10
	probeKeepRatio = 0.97
)

func (e *zstdEncoder) compress(dst, src []byte) ([]byte, error) {
	if e.probe != nil && len(src) >= 64<<10 {
		trial, err := e.ctx.CompressLevel(e.probe, src, 1)
		if err != nil {
			return nil, err
		}
		if float64(len(trial)) > probeKeepRatio*float64(len(src)) {
			e.trialKept += int64(len(src))
			return smaller(append(dst[:0], trial...), src), nil
		}
	}
	out, err := e.ctx.CompressLevel(dst[:cap(dst)], src, e.level)
	if err != nil {
		return nil, err
	}
	return smaller(out, src), nil
}

type zlibEncoder struct {
	level int
	w     *zlib.Writer
	buf   bytes.Buffer
}

func (e *zlibEncoder) compress(dst, src []byte) ([]byte, error) {
	e.buf = *bytes.NewBuffer(dst[:0])
	if e.w == nil {
		w, err := zlib.NewWriterLevel(&e.buf, e.level)
		if err != nil {
			return nil, err
		}
		e.w = w
	} else {
		e.w.Reset(&e.buf)
	}
	if _, err := e.w.Write(src); err != nil {
		return nil, err
	}
	if err := e.w.Close(); err != nil {
		return nil, err
	}
	return smaller(e.buf.Bytes(), src), nil
}

type xzEncoder struct {
	dict int
	buf  bytes.Buffer
}

func (e *xzEncoder) compress(dst, src []byte) ([]byte, error) {
	e.buf = *bytes.NewBuffer(dst[:0])
	// CRC32 is the check the kernel's xz decoder supports and mksquashfs uses.
	w, err := xz.WriterConfig{DictCap: e.dict, CheckSum: xz.CRC32}.NewWriter(&e.buf)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(src); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return smaller(e.buf.Bytes(), src), nil
}

type lz4Encoder struct {
	level int
	fast  lz4.Compressor
	hc    lz4.CompressorHC
}

func (e *lz4Encoder) compress(dst, src []byte) ([]byte, error) {
	dst = dst[:cap(dst)]
	if len(dst) < lz4.CompressBlockBound(len(src)) {
		dst = make([]byte, lz4.CompressBlockBound(len(src)))
	}
	var n int
	var err error
	if e.level > 0 {
		e.hc.Level = lz4.CompressionLevel(1 << (8 + e.level))
		n, err = e.hc.CompressBlock(src, dst)
	} else {
		n, err = e.fast.CompressBlock(src, dst)
	}
	if err != nil || n == 0 {
		return nil, err
	}
	return smaller(dst[:n], src), nil
}

type noneEncoder struct{}

func (noneEncoder) compress(dst, src []byte) ([]byte, error) { return nil, nil }

func smaller(out, src []byte) []byte {
	if len(out) >= len(src) {
		return nil
	}
	return out
}
