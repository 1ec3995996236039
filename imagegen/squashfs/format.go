package squashfs

import "encoding/binary"

// On-disk constants of squashfs 4.0 (all little-endian).
const (
	magic          = 0x73717368
	superblockSize = 96
	metadataSize   = 8192 // uncompressed size of a metadata block
	// A data block size with this bit set is stored uncompressed.
	dataUncompressed = 1 << 24
	// A metadata block header with this bit set is stored uncompressed.
	metaUncompressed = 0x8000
	noFragment       = 0xFFFFFFFF
	noTable          = 0xFFFFFFFFFFFFFFFF
	noXattr          = 0xFFFFFFFF
	maxNameLen       = 255
	padTo            = 4096
	// Directory headers hold at most this many entries.
	maxDirRun = 256
)

// Superblock flags.
const (
	flagNoInodeCompression    = 1 << 0
	flagNoDataCompression     = 1 << 1
	flagNoFragmentCompression = 1 << 3
	flagNoFragments           = 1 << 4
	flagAlwaysFragments       = 1 << 5
	flagDuplicates            = 1 << 6
	flagNoXattrCompression    = 1 << 8
	flagNoXattrs              = 1 << 9
	flagCompressorOptions     = 1 << 10
	flagNoIDCompression       = 1 << 11
)

// Inode types; the extended ones add 7 to the basic ones.
const (
	typeDir        = 1
	typeFile       = 2
	typeSymlink    = 3
	typeExtDir     = 8
	typeExtFile    = 9
	extendedOffset = 7
)

// superblock is the 96 bytes at the start of an image, field for field.
type superblock struct {
	Magic              uint32
	Inodes             uint32
	MkfsTime           uint32
	BlockSize          uint32
	Fragments          uint32
	Compression        uint16
	BlockLog           uint16
	Flags              uint16
	IDCount            uint16
	VersionMajor       uint16
	VersionMinor       uint16
	RootInode          uint64
	BytesUsed          uint64
	IDTableStart       uint64
	XattrTableStart    uint64
	InodeTableStart    uint64
	DirTableStart      uint64
	FragmentTableStart uint64
	ExportTableStart   uint64
}

func (s superblock) marshal() []byte {
	s.Magic, s.VersionMajor, s.VersionMinor = magic, 4, 0
	b, err := binary.Append(nil, binary.LittleEndian, s)
	if err != nil || len(b) != superblockSize {
		panic("squashfs: superblock layout") // fixed-size struct: cannot happen
	}
	return b
}

// inodeHeader is the part every inode starts with.
type inodeHeader struct {
	Type   uint16
	Mode   uint16 // permission bits only; the type is in Type
	UIDIdx uint16
	GIDIdx uint16
	Mtime  uint32
	Number uint32
}

func (h inodeHeader) append(b []byte) []byte {
	b, _ = binary.Append(b, binary.LittleEndian, h) // fixed-size struct: no error
	return b
}

// inodeRef packs a metadata position: the metadata block's offset from the
// start of its table and the offset inside the uncompressed block.
type metaRef struct {
	Block  uint64
	Offset uint16
}

func (r metaRef) packed() uint64 { return r.Block<<16 | uint64(r.Offset) }

// fragmentEntry locates one fragment block.
type fragmentEntry struct {
	Start uint64
	Size  uint32 // with dataUncompressed when stored uncompressed
}
