package fat

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Type is a FAT variant: FAT12, FAT16 or FAT32.
type Type int

// The FAT variants, named by the width of a FAT entry.
const (
	FAT12 Type = 12
	FAT16 Type = 16
	FAT32 Type = 32
)

func (t Type) String() string {
	switch t {
	case 0:
		return "auto"
	case FAT12, FAT16, FAT32:
		return "FAT" + strconv.Itoa(int(t))
	}
	return "FAT?" + strconv.Itoa(int(t))
}

// DefaultFreeSpace is the free space an image keeps when Options.FreeSpace
// is zero.
const DefaultFreeSpace = 64 << 10

// MaxFileSize is the largest file FAT can hold: 4 GiB - 1.
const MaxFileSize = 1<<32 - 1

// Options control the image. The zero value gives an unlabelled image with
// volume ID 0, dated 1980-01-01, with the layout chosen by the package.
type Options struct {
	// VolumeLabel is written to the boot sector and, unless empty, as the
	// label entry of the root directory: at most 11 printable ASCII
	// characters, no lower-case letters (not portable) and none of
	// "*+,./:;<=>?[\]|. Empty means no label ("NO NAME" in the boot sector).
	VolumeLabel string
	// VolumeID is the volume serial number (callers derive it from the
	// content, for reproducibility).
	VolumeID uint32
	// ModTime dates every entry whose Header.ModTime is zero, the
	// directories created implicitly and the label (SOURCE_DATE_EPOCH). It
	// is clamped to the FAT range, 1980-01-01 to 2107-12-31, and stored as
	// UTC wall-clock time to the even second (the creation time keeps the
	// odd second and the hundredths).
	ModTime time.Time
	// Type forces FAT12, FAT16 or FAT32; zero lets the package choose.
	Type Type
	// ClusterSize forces the cluster size in bytes, a power of two from 512
	// to 32768; zero lets the package choose.
	ClusterSize int
	// FreeSpace is the minimum free space in bytes the image keeps beyond
	// its content: zero means DefaultFreeSpace, a negative value none (the
	// image still rounds up to 16 KiB and to the FAT type's minimum number
	// of clusters).
	FreeSpace int64
	// TempDir is where Writer keeps file contents beyond 32 MiB until Close
	// (default os.TempDir()). Build and Plan do not use it.
	TempDir string
}

// Header describes one entry, as tar.Header does.
type Header struct {
	// Name is the slash-separated path in the image, such as
	// "EFI/BOOT/BOOTX64.EFI"; a leading and a trailing slash are ignored.
	// Parents that were not added are created.
	Name string
	// Size is the file's length in bytes (0 to MaxFileSize); it must be zero
	// for a directory.
	Size int64
	// ModTime is the entry's date; zero means Options.ModTime.
	ModTime time.Time
	// Dir marks a directory.
	Dir bool
}

// File is one entry for Build and Plan.
type File struct {
	Name    string
	Size    int64
	ModTime time.Time
	Dir     bool
	// Open returns the file's contents, exactly Size bytes. Build calls it
	// once, when it writes the file; Plan never does. It may be nil for a
	// directory or an empty file.
	Open func() (io.ReadCloser, error)
}

// Layout is how an image is laid out.
type Layout struct {
	Type            Type
	Size            int64 // bytes, a multiple of 16 KiB
	ClusterSize     int   // bytes
	Clusters        int   // data clusters (the count that decides the FAT type)
	UsedClusters    int   // clusters holding directories and file contents
	ReservedSectors int
	FATSectors      int // sectors per FAT (there are two FATs)
	RootEntries     int // slots of the fixed root directory (FAT12 and FAT16; 0 for FAT32)
}

// Kinds of errors, for errors.Is. The errors returned are *Error values
// that name the path at fault.
var (
	ErrInvalidName  = errors.New("invalid name")
	ErrDuplicate    = errors.New("duplicate name")
	ErrTooLarge     = errors.New("too large")
	ErrWriteTooLong = errors.New("write too long")
	ErrShortContent = errors.New("content shorter than its size")
	ErrOptions      = errors.New("invalid options")
)

// Error reports a problem with one path of the image (or with the options,
// when Path is empty).
type Error struct {
	Path   string
	Err    error // one of the Err* kinds above, or an I/O error
	Detail string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return "fat: " + e.Detail
	}
	return fmt.Sprintf("fat: %q: %s", e.Path, e.Detail)
}

func (e *Error) Unwrap() error { return e.Err }

func pathErr(path string, kind error, format string, args ...any) error {
	return &Error{Path: path, Err: kind, Detail: fmt.Sprintf(format, args...)}
}

const (
	sectorSize  = 512
	alignSector = 32 // the image is a whole number of these sectors (16 KiB); also the declared sectors per track
	maxCluster  = 32 << 10
	// Cluster-count limits: the FAT type follows from the count of data
	// clusters (below 4085 FAT12, below 65525 FAT16, else FAT32); stay 16
	// clusters clear of each boundary, as the specification advises.
	margin    = 16
	max12     = 4085 - 1 - margin
	min16     = 4085 + margin
	max16     = 65525 - 1 - margin
	min32     = 65525 + margin
	max32     = 0x0FFFFFF5 - 1 - margin
	maxDirEnt = 65536 // slots in one directory
)

func (o *Options) check() error {
	switch o.Type {
	case 0, FAT12, FAT16, FAT32:
	default:
		return &Error{Err: ErrOptions, Detail: fmt.Sprintf("Options.Type %d: want 0, 12, 16 or 32", int(o.Type))}
	}
	if cs := o.ClusterSize; cs != 0 && (cs < sectorSize || cs > maxCluster || cs&(cs-1) != 0) {
		return &Error{Err: ErrOptions, Detail: fmt.Sprintf("Options.ClusterSize %d: want a power of two from 512 to 32768", cs)}
	}
	if _, err := labelBytes(o.VolumeLabel); err != nil {
		return err
	}
	return nil
}

// labelBytes checks a volume label and pads it to 11 bytes.
func labelBytes(l string) ([11]byte, error) {
	var b [11]byte
	bad := func(why string) ([11]byte, error) {
		return b, &Error{Err: ErrOptions, Detail: fmt.Sprintf("volume label %q: %s", l, why)}
	}
	if len(l) > 11 {
		return bad("longer than 11 characters")
	}
	if strings.HasPrefix(l, " ") {
		return bad("starts with a space")
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case c < 0x20 || c > 0x7e:
			return bad(fmt.Sprintf("character %q is not printable ASCII", c))
		case c >= 'a' && c <= 'z':
			return bad("lower-case letters are not portable in labels; use upper case")
		case strings.IndexByte(`"*+,./:;<=>?[\]|`, c) >= 0:
			return bad(fmt.Sprintf("character %q is not allowed", c))
		}
	}
	copy(b[:], l)
	for i := len(l); i < 11; i++ {
		b[i] = ' '
	}
	return b, nil
}
