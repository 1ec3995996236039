package sqfscheck

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"strconv"
	"strings"
)

// Info is the superblock as reported by `unsquashfs -s`, plus the raw
// superblock read directly from the image.
type Info struct {
	Version     string // "4:0"
	Created     string // "Creation or last append time" as printed
	Compression string // gzip, lzma, lzo, xz, lz4 or zstd
	// CompressionOptions are the indented lines printed under the
	// compressor when the image stores compressor options, e.g.
	// "compression-level 19", "Dictionary size 65536",
	// "Filters selected: x86", "High Compression option specified (-Xhc)".
	// Empty when the image uses the compressor's defaults.
	CompressionOptions []string
	BlockSize          int
	FilesystemSize     int64 // bytes used, before padding

	Exportable          bool
	InodesCompressed    bool
	DataCompressed      bool
	IDsCompressed       bool
	FragmentsStored     bool // false for "Fragments are not stored"
	FragmentsCompressed bool
	AlwaysFragments     bool
	XattrsStored        bool // false for "Xattrs are not stored"
	XattrsCompressed    bool
	Duplicates          bool // "Duplicates are removed"

	Fragments int
	Inodes    int
	IDs       int
	XattrIDs  int // 0 when not printed (no xattrs)

	// Other holds lines Superblock did not recognise.
	Other []string

	Raw      RawSuperblock
	FileSize int64 // size of the image file
}

// CompressionLevel returns the level from a "compression-level N" option
// line (gzip, zstd), if there is one.
func (i Info) CompressionLevel() (int, bool) {
	for _, o := range i.CompressionOptions {
		if v, ok := strings.CutPrefix(o, "compression-level "); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			return n, err == nil
		}
	}
	return 0, false
}

// Padded reports whether the image file is bytes_used rounded up to a
// multiple of 4 KiB, as mksquashfs does unless -nopad is given.
func (i Info) Padded() bool {
	used := int64(i.Raw.BytesUsed)
	return i.FileSize%4096 == 0 && i.FileSize >= used && i.FileSize-used < 4096
}

// Superblock runs `unsquashfs -s IMAGE`, parses its report, reads the raw
// superblock, and checks that both agree (compressor, block size, bytes
// used, counts of inodes, fragments and ids, flags) and that the raw
// superblock is sane (RawSuperblock.Validate).
func Superblock(image string) (Info, error) {
	out, err := run("unsquashfs", "-s", image)
	if err != nil {
		return Info{}, err
	}
	info, err := ParseSuperblock(string(out))
	if err != nil {
		return info, fmt.Errorf("%s: %w", image, err)
	}
	f, err := os.Open(image)
	if err != nil {
		return info, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return info, err
	}
	info.FileSize = fi.Size()
	if info.Raw, err = ReadRawSuperblock(f); err != nil {
		return info, fmt.Errorf("%s: %w", image, err)
	}
	var problems []string
	if err := info.Raw.Validate(info.FileSize); err != nil {
		problems = append(problems, err.Error())
	}
	problems = append(problems, info.crossCheck()...)
	return info, diffError(image+": superblock", problems)
}

func (i Info) crossCheck() []string {
	r := i.Raw
	var p []string
	check := func(what string, text, raw any) {
		if fmt.Sprint(text) != fmt.Sprint(raw) {
			p = append(p, fmt.Sprintf("%s: unsquashfs says %v, raw superblock %v", what, text, raw))
		}
	}
	check("compression", i.Compression, r.CompressionName())
	check("block size", i.BlockSize, r.BlockSize)
	check("bytes used", i.FilesystemSize, r.BytesUsed)
	check("inodes", i.Inodes, r.Inodes)
	check("fragments", i.Fragments, r.Fragments)
	check("ids", i.IDs, r.IDs)
	check("exportable", i.Exportable, r.Has(FlagExportable))
	check("duplicates", i.Duplicates, r.Has(FlagDuplicates))
	check("inodes compressed", i.InodesCompressed, !r.Has(FlagUncompressedInodes))
	check("data compressed", i.DataCompressed, !r.Has(FlagUncompressedData))
	check("fragments stored", i.FragmentsStored, !r.Has(FlagNoFragments))
	check("always fragments", i.AlwaysFragments, r.Has(FlagAlwaysFragments))
	// lz4 always stores its options, but unsquashfs prints only non-default
	// ones: printed options imply the flag, not the other way round.
	if len(i.CompressionOptions) > 0 && !r.Has(FlagCompressorOptions) {
		p = append(p, fmt.Sprintf("unsquashfs prints compressor options %q, but the raw superblock has no compressor-options flag", i.CompressionOptions))
	}
	return p
}

// ParseSuperblock parses the output of `unsquashfs -s` (squashfs-tools 4.5).
func ParseSuperblock(out string) (Info, error) {
	var i Info
	var inCompression bool
	var sawCompression, sawBlockSize bool
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if strings.HasPrefix(line, "\t") {
			if inCompression {
				i.CompressionOptions = append(i.CompressionOptions, strings.TrimSpace(line))
			} else {
				i.Other = append(i.Other, line)
			}
			continue
		}
		inCompression = false
		switch {
		case line == "":
		case strings.HasPrefix(line, "Found a valid SQUASHFS "):
			v, _, _ := strings.Cut(strings.TrimPrefix(line, "Found a valid SQUASHFS "), " ")
			i.Version = v
		case strings.HasPrefix(line, "Creation or last append time "):
			i.Created = strings.TrimPrefix(line, "Creation or last append time ")
		case strings.HasPrefix(line, "Filesystem size "):
			f := strings.Fields(line)
			if len(f) < 4 || f[3] != "bytes" {
				return i, fmt.Errorf("unexpected line %q", line)
			}
			n, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				return i, fmt.Errorf("unexpected line %q", line)
			}
			i.FilesystemSize = n
		case strings.HasPrefix(line, "Compression "):
			i.Compression = strings.TrimPrefix(line, "Compression ")
			inCompression, sawCompression = true, true
		case strings.HasPrefix(line, "Block size "):
			n, err := strconv.Atoi(strings.TrimPrefix(line, "Block size "))
			if err != nil {
				return i, fmt.Errorf("unexpected line %q", line)
			}
			i.BlockSize, sawBlockSize = n, true
		case strings.HasPrefix(line, "Number of "):
			if err := i.count(line); err != nil {
				return i, err
			}
		default:
			if !i.flag(line) {
				i.Other = append(i.Other, line)
			}
		}
	}
	if !sawCompression || !sawBlockSize {
		return i, fmt.Errorf("no compression or block size in unsquashfs -s output:\n%s", head(out, 20))
	}
	return i, nil
}

// flag reads a line of unsquashfs -s that states a superblock flag; it
// reports whether the line was one.
func (i *Info) flag(line string) bool {
	switch {
	case line == "Filesystem is exportable via NFS":
		i.Exportable = true
	case line == "Filesystem is not exportable via NFS":
	case strings.HasPrefix(line, "Inodes are "):
		i.InodesCompressed = line == "Inodes are compressed"
	case strings.HasPrefix(line, "Data is "):
		i.DataCompressed = line == "Data is compressed"
	case strings.HasPrefix(line, "Uids/Gids (Id table) are "):
		i.IDsCompressed = strings.HasSuffix(line, " are compressed")
	case strings.HasPrefix(line, "Fragments are "):
		i.FragmentsStored = line != "Fragments are not stored"
		i.FragmentsCompressed = line == "Fragments are compressed"
	case strings.HasPrefix(line, "Always-use-fragments option is "):
		i.AlwaysFragments = line == "Always-use-fragments option is specified"
	case strings.HasPrefix(line, "Xattrs are "):
		i.XattrsStored = line != "Xattrs are not stored"
		i.XattrsCompressed = line == "Xattrs are compressed"
	case strings.HasPrefix(line, "Duplicates are "):
		i.Duplicates = line == "Duplicates are removed"
	default:
		return false
	}
	return true
}

// count reads a "Number of ..." line of unsquashfs -s.
func (i *Info) count(line string) error {
	k := strings.LastIndexByte(line, ' ')
	n, err := strconv.Atoi(line[k+1:])
	if err != nil {
		return fmt.Errorf("unexpected line %q", line)
	}
	switch line[:k] {
	case "Number of fragments":
		i.Fragments = n
	case "Number of inodes":
		i.Inodes = n
	case "Number of ids":
		i.IDs = n
	case "Number of xattr ids":
		i.XattrIDs = n
	default:
		i.Other = append(i.Other, line)
	}
	return nil
}

// Superblock flags.
const (
	FlagUncompressedInodes    = 0x0001
	FlagUncompressedData      = 0x0002
	FlagCheck                 = 0x0004 // unused in 4.0
	FlagUncompressedFragments = 0x0008
	FlagNoFragments           = 0x0010
	FlagAlwaysFragments       = 0x0020
	FlagDuplicates            = 0x0040
	FlagExportable            = 0x0080
	FlagUncompressedXattrs    = 0x0100
	FlagNoXattrs              = 0x0200
	FlagCompressorOptions     = 0x0400
	FlagUncompressedIDs       = 0x0800
)

// SuperblockMagic is "hsqs" read as a little-endian uint32.
const SuperblockMagic = 0x73717368

// NoTable is the start of an absent optional table (all bits set).
const NoTable = ^uint64(0)

// RawSuperblock is the 96-byte squashfs 4.0 superblock, little-endian.
type RawSuperblock struct {
	Magic       uint32
	Inodes      uint32
	ModTime     uint32
	BlockSize   uint32
	Fragments   uint32
	Compression uint16
	BlockLog    uint16
	Flags       uint16
	IDs         uint16
	Major       uint16
	Minor       uint16
	RootInode   uint64
	BytesUsed   uint64
	IDTable     uint64
	XattrTable  uint64
	InodeTable  uint64
	DirTable    uint64
	FragTable   uint64
	ExportTable uint64
}

// ReadRawSuperblock reads the first 96 bytes of r.
func ReadRawSuperblock(r io.Reader) (RawSuperblock, error) {
	var s RawSuperblock
	if err := binary.Read(r, binary.LittleEndian, &s); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return s, fmt.Errorf("shorter than a 96-byte superblock")
		}
		return s, err
	}
	return s, nil
}

// Has reports whether flag is set.
func (s RawSuperblock) Has(flag uint16) bool { return s.Flags&flag != 0 }

// CompressionName maps the compressor id to the name unsquashfs uses.
func (s RawSuperblock) CompressionName() string {
	switch s.Compression {
	case 1:
		return "gzip"
	case 2:
		return "lzma"
	case 3:
		return "lzo"
	case 4:
		return "xz"
	case 5:
		return "lz4"
	case 6:
		return "zstd"
	}
	return fmt.Sprintf("unknown(%d)", s.Compression)
}

// Validate checks the superblock against the squashfs 4.0 rules and the
// image's file size: magic, version, block size a power of two from 4 KiB
// to 1 MiB matching block_log, a known compressor, bytes_used within the
// file, and table starts in order and inside bytes_used.
func (s RawSuperblock) Validate(fileSize int64) error {
	var p []string
	if s.Magic != SuperblockMagic {
		p = append(p, fmt.Sprintf("magic %#x, want %#x", s.Magic, SuperblockMagic))
	}
	if s.Major != 4 || s.Minor != 0 {
		p = append(p, fmt.Sprintf("version %d.%d, want 4.0", s.Major, s.Minor))
	}
	if s.BlockSize < 4096 || s.BlockSize > 1<<20 || bits.OnesCount32(s.BlockSize) != 1 {
		p = append(p, fmt.Sprintf("block size %d not a power of two in [4096, 1048576]", s.BlockSize))
	} else if 1<<s.BlockLog != s.BlockSize {
		p = append(p, fmt.Sprintf("block_log %d does not match block size %d", s.BlockLog, s.BlockSize))
	}
	if s.Compression < 1 || s.Compression > 6 {
		p = append(p, fmt.Sprintf("unknown compressor id %d", s.Compression))
	}
	if s.BytesUsed < 96 || int64(s.BytesUsed) > fileSize {
		p = append(p, fmt.Sprintf("bytes_used %d outside the %d-byte file", s.BytesUsed, fileSize))
	}
	if s.Inodes == 0 {
		p = append(p, "no inodes")
	}
	if s.IDs == 0 {
		p = append(p, "no ids")
	}
	if s.Has(FlagNoFragments) && s.Fragments != 0 {
		p = append(p, fmt.Sprintf("no-fragments flag but %d fragments", s.Fragments))
	}
	if !(96 <= s.InodeTable && s.InodeTable < s.DirTable && s.DirTable < s.BytesUsed) {
		p = append(p, fmt.Sprintf("inode table %d, directory table %d, bytes_used %d not in order", s.InodeTable, s.DirTable, s.BytesUsed))
	}
	if s.IDTable <= s.DirTable || s.IDTable >= s.BytesUsed {
		p = append(p, fmt.Sprintf("id table at %d outside (%d, %d)", s.IDTable, s.DirTable, s.BytesUsed))
	}
	for _, t := range []struct {
		name string
		at   uint64
	}{{"fragment", s.FragTable}, {"export", s.ExportTable}, {"xattr", s.XattrTable}} {
		if t.at != NoTable && (t.at <= s.DirTable || t.at >= s.BytesUsed) {
			p = append(p, fmt.Sprintf("%s table at %d outside (%d, %d)", t.name, t.at, s.DirTable, s.BytesUsed))
		}
	}
	if s.Has(FlagExportable) && s.ExportTable == NoTable {
		p = append(p, "exportable flag but no export table")
	}
	if len(p) == 0 {
		return nil
	}
	return errors.New(strings.Join(p, "; "))
}
