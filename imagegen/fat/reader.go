package fat

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"time"
	"unicode/utf16"
)

// Image is a FAT file system opened by Open. Its methods only read from
// the underlying io.ReaderAt, so they may be called concurrently.
type Image struct {
	Type        Type
	VolumeLabel string // from the root directory's label entry, else the boot sector; "" if none

	r           io.ReaderAt
	size        int64
	clusterSize int64
	fatOff      int64  // byte offset of the FAT in use
	rootOff     int64  // FAT12/16: byte offset of the fixed root directory
	rootBytes   int64  // FAT12/16: its size
	rootCluster uint32 // FAT32: the root directory's first cluster
	dataOff     int64  // byte offset of cluster 2
	// last is the highest cluster number that is usable: counted by the
	// boot sector, covered by the FAT and inside the image. A larger number
	// anywhere is an error, so every read stays within the image.
	last uint32
}

// ReadEntry is a file or directory found by Walk.
type ReadEntry struct {
	// Path has "/" separators and no leading slash. Each component is the
	// long (VFAT) name if a valid one precedes the entry, else its 8.3 name
	// as stored (NAME.EXT, padding removed, in lower case where the entry's
	// case flags say so, as Windows, Linux and mtools show it; bytes above
	// 0x7F read as code page 437).
	Path    string
	Dir     bool
	Size    int64     // bytes; 0 for directories
	ModTime time.Time // last write, the wall-clock time as stored (2-second steps), in UTC; zero if unset
}

const (
	maxDirBytes = maxDirEnt * 32 // FAT's limit: 65536 entries
	maxDepth    = 256
)

// Open reads a FAT12, FAT16 or FAT32 file system's boot sector and root
// directory (for the volume label; on FAT32 this follows the root's
// cluster chain) from r, whose size is given. Nothing else is read until
// Walk or ReadFile: an image that opens may still have corrupt
// directories or files, which those report.
func Open(r io.ReaderAt, size int64) (*Image, error) {
	if size < sectorSize {
		return nil, fmt.Errorf("fat: image of %d bytes is smaller than a boot sector", size)
	}
	im := &Image{r: r, size: size}
	b := make([]byte, sectorSize)
	if err := im.readAt(b, 0, "the boot sector"); err != nil {
		return nil, err
	}
	bootLabel, err := im.parseBoot(b)
	if err != nil {
		return nil, err
	}
	dir, err := im.readDir("the root directory", im.rootCluster, im.Type != FAT32, nil)
	if err != nil {
		return nil, err
	}
	_, im.VolumeLabel = parseDir(dir, im.Type == FAT32)
	if im.VolumeLabel == "" {
		im.VolumeLabel = bootLabel
	}
	return im, nil
}

// parseBoot reads the BIOS parameter block into im and returns the boot
// sector's volume label.
func (im *Image) parseBoot(b []byte) (string, error) {
	if b[510] != 0x55 || b[511] != 0xAA {
		return "", errors.New("fat: no boot sector signature (55 AA at byte 510): not a FAT file system")
	}
	bad := func(format string, args ...any) (string, error) {
		return "", fmt.Errorf("fat: boot sector: "+format, args...)
	}
	bps, spc := int64(le.Uint16(b[11:])), int64(b[13])
	reserved, nfats := int64(le.Uint16(b[14:])), int64(b[16])
	rootEnts, fatSecs := int64(le.Uint16(b[17:])), int64(le.Uint16(b[22:]))
	total := int64(le.Uint16(b[19:]))
	if total == 0 {
		total = int64(le.Uint32(b[32:]))
	}
	// As Linux does, a zero 16-bit FAT size marks FAT32 (mkfs.fat -F 32
	// makes FAT32 with fewer clusters than the specification's minimum).
	fat32 := fatSecs == 0
	if fat32 {
		fatSecs, rootEnts = int64(le.Uint32(b[36:])), 0
	}
	switch {
	case bps < 512 || bps > 4096 || bps&(bps-1) != 0:
		return bad("%d bytes per sector; want 512, 1024, 2048 or 4096", bps)
	case spc == 0 || spc&(spc-1) != 0:
		return bad("%d sectors per cluster; want a power of two", spc)
	case reserved == 0:
		return bad("no reserved sectors, yet the boot sector is one")
	case nfats == 0 || fatSecs == 0:
		return bad("%d FATs of %d sectors", nfats, fatSecs)
	case !fat32 && rootEnts == 0:
		return bad("FAT12/16 with a root directory of 0 entries")
	}
	rootSecs := (rootEnts*32 + bps - 1) / bps
	meta := reserved + nfats*fatSecs + rootSecs
	if total <= meta {
		return bad("%d sectors leave no data area after %d sectors of reserved area, FATs and root directory", total, meta)
	}
	count := (total - meta) / spc
	switch {
	case fat32:
		im.Type = FAT32
	case count < 4085:
		im.Type = FAT12
	case count < 65525:
		im.Type = FAT16
	default:
		return bad("%d clusters, too many for FAT16, but FAT32 fields are missing (FAT size at byte 22 is not 0)", count)
	}
	fatStart := reserved
	if flags := int64(le.Uint16(b[40:])); fat32 && flags&0x80 != 0 { // mirroring off: one FAT is active
		if flags&0x0F >= nfats {
			return bad("active FAT %d of %d", flags&0x0F, nfats)
		}
		fatStart += (flags & 0x0F) * fatSecs
	}
	im.clusterSize = bps * spc
	im.fatOff = fatStart * bps
	if end := (fatStart + fatSecs) * bps; end > im.size {
		return "", fmt.Errorf("fat: the FAT (bytes %d to %d) extends beyond the end of the %d-byte image", im.fatOff, end, im.size)
	}
	im.rootOff, im.rootBytes = (reserved+nfats*fatSecs)*bps, rootSecs*bps
	im.dataOff = meta * bps
	if fat32 {
		im.rootCluster = le.Uint32(b[44:])
	}
	entries := fatSecs * bps * 8 / int64(im.Type)
	last := min(count+1, entries-1, (im.size-im.dataOff)/im.clusterSize+1, 0x0FFFFFF6)
	im.last = uint32(max(last, 1))
	ext := 36
	if fat32 {
		ext = 64
	}
	if b[ext+2] != 0x29 { // no extended boot signature: no label field
		return "", nil
	}
	if l := oemString(b[ext+7 : ext+18]); l != "NO NAME" {
		return l, nil
	}
	return "", nil
}

// readAt reads exactly len(b) bytes at off, which must lie in the image.
func (im *Image) readAt(b []byte, off int64, what string) error {
	if off < 0 || off+int64(len(b)) > im.size {
		return fmt.Errorf("fat: %s: bytes %d to %d lie beyond the end of the %d-byte image", what, off, off+int64(len(b)), im.size)
	}
	n, err := im.r.ReadAt(b, off)
	if n == len(b) {
		return nil // io.ReaderAt may report io.EOF with the last byte
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("fat: read %s at byte %d: %w", what, off, err)
}

// next returns the FAT entry of cluster c (2 <= c <= im.last).
func (im *Image) next(c uint32) (uint32, error) {
	var b [4]byte
	w := 4
	if im.Type != FAT32 {
		w = 2
	}
	// FAT12 entries are 1.5 bytes: two bytes hold entry c, shifted for odd c.
	if err := im.readAt(b[:w], im.fatOff+int64(c)*int64(im.Type)/8, "the FAT"); err != nil {
		return 0, err
	}
	switch im.Type {
	case FAT12:
		v := uint32(le.Uint16(b[:]))
		if c&1 == 1 {
			v >>= 4
		}
		return v & 0xFFF, nil
	case FAT16:
		return uint32(le.Uint16(b[:])), nil
	}
	return le.Uint32(b[:]) & 0x0FFFFFFF, nil // the top 4 bits are reserved
}

// chain follows the cluster chain from first and calls fn for each run of
// consecutive clusters. A file wants exactly want clusters, as its size
// says: a chain ending sooner is an error; the rest of a longer one is
// ignored, as FAT drivers do. A directory (want < 0) runs to its
// end-of-chain mark, at most maxDirBytes. Clusters are recorded in claimed
// (if not nil) under what, so that Walk finds directories sharing clusters,
// which would make it loop or read the same data twice.
func (im *Image) chain(what string, first uint32, want int64, claimed map[uint32]string, fn func(start uint32, n int64) error) error {
	limit := want
	if want < 0 {
		limit = max(1, maxDirBytes/im.clusterSize)
	}
	eoc := uint32(1)<<min(im.Type, 28) - 8 // 0xFF8, 0xFFF8, 0x0FFFFFF8
	seen := clusterSet{last: im.last}
	start, run := first, int64(0)
	prev := uint32(0)
	for c, count := first, int64(1); ; count++ {
		if c < 2 || c > im.last {
			return im.outside(what, prev, c)
		}
		if seen.add(c) {
			return fmt.Errorf("fat: cluster chain of %s loops at cluster %d", what, c)
		}
		if claimed != nil {
			if other, ok := claimed[c]; ok {
				return fmt.Errorf("fat: cluster %d of %s also belongs to %s (a directory loop or cross-linked clusters)", c, what, other)
			}
			claimed[c] = what
		}
		if c == start+uint32(run) {
			run++
		} else {
			if err := fn(start, run); err != nil {
				return err
			}
			start, run = c, 1
		}
		if count == want {
			return fn(start, run)
		}
		v, err := im.next(c)
		switch {
		case err != nil:
			return err
		case v >= eoc && want >= 0:
			return fmt.Errorf("fat: cluster chain of %s ends at cluster %d after %d clusters; its size needs %d", what, c, count, want)
		case v >= eoc:
			return fn(start, run)
		case v == eoc-1:
			return fmt.Errorf("fat: cluster chain of %s leads from cluster %d to %d, which is marked bad", what, c, v)
		case count == limit:
			return fmt.Errorf("fat: directory %s is longer than %d clusters (%d entries, the most FAT allows)", what, limit, maxDirEnt)
		}
		prev, c = c, v
	}
}

func (im *Image) outside(what string, from, c uint32) error {
	where := fmt.Sprintf("outside the data area (clusters 2 to %d in this %d-byte image)", im.last, im.size)
	switch {
	case from == 0:
		return fmt.Errorf("fat: %s starts at cluster %d, %s", what, c, where)
	case c == 0:
		return fmt.Errorf("fat: cluster chain of %s leads from cluster %d to 0, a free cluster", what, from)
	}
	return fmt.Errorf("fat: cluster chain of %s leads from cluster %d to %d, %s", what, from, c, where)
}

func (im *Image) clusterOff(c uint32) int64 { return im.dataOff + int64(c-2)*im.clusterSize }

// clusterSet holds the clusters a chain has visited: a map while the
// chain is short, a bitset over all clusters (last/8 bytes) once that is
// the smaller.
type clusterSet struct {
	last uint32
	m    map[uint32]bool
	bits []uint64
}

// add records c (at most last) and reports whether it was there already.
func (s *clusterSet) add(c uint32) bool {
	if s.bits == nil && int64(len(s.m))*256 > int64(s.last) {
		s.bits = make([]uint64, s.last/64+1)
		for k := range s.m {
			s.bits[k/64] |= 1 << (k % 64)
		}
		s.m = nil
	}
	if s.bits != nil {
		w, bit := c/64, uint64(1)<<(c%64)
		had := s.bits[w]&bit != 0
		s.bits[w] |= bit
		return had
	}
	if s.m == nil {
		s.m = map[uint32]bool{}
	}
	had := s.m[c]
	s.m[c] = true
	return had
}

// readDir returns a directory's raw entries: the fixed root of FAT12/16,
// or the clusters of the chain from first.
func (im *Image) readDir(what string, first uint32, fixed bool, claimed map[uint32]string) ([]byte, error) {
	if fixed {
		b := make([]byte, im.rootBytes)
		return b, im.readAt(b, im.rootOff, what)
	}
	var b []byte
	err := im.chain(what, first, -1, claimed, func(c uint32, n int64) error {
		at := len(b)
		b = append(b, make([]byte, n*im.clusterSize)...)
		return im.readAt(b[at:], im.clusterOff(c), what)
	})
	return b, err
}

// dirent is one entry of a directory, long-name parts resolved.
type dirent struct {
	name  string // long name, else short
	short string
	slot  int // index of the short entry, for errors
	dir   bool
	size  uint32
	first uint32
	mtime time.Time
}

// parseDir lists a directory's entries, without ".", "..", deleted entries
// and labels; label is the first volume label entry.
func parseDir(b []byte, fat32 bool) (ents []dirent, label string) {
	var long lfnState
	for i := 0; i+32 <= len(b); i += 32 {
		d := b[i : i+32]
		switch attr := d[11]; {
		case d[0] == 0: // no entries follow
			return ents, label
		case d[0] == 0xE5:
			long.n = 0
			continue
		case attr&0x3F == attrLongName:
			long.add(d)
			continue
		case attr&attrVolumeID != 0:
			if label == "" {
				label = oemString(d[:11])
			}
			long.n = 0
			continue
		}
		if string(d[:11]) == ".          " || string(d[:11]) == "..         " {
			long.n = 0
			continue
		}
		e := dirent{short: shortName(d), slot: i / 32, dir: d[11]&attrDirectory != 0, first: uint32(le.Uint16(d[26:]))}
		e.name = long.name(lfnChecksum([11]byte(d[:11])))
		long.n = 0
		if e.name == "" {
			e.name = e.short
		}
		if fat32 { // FAT12/16 keep other data in the high word (OS/2 extended attributes)
			e.first |= uint32(le.Uint16(d[20:])) << 16
		}
		if !e.dir {
			e.size = le.Uint32(d[28:])
		}
		if date := le.Uint16(d[24:]); date != 0 {
			tm := le.Uint16(d[22:])
			e.mtime = time.Date(1980+int(date>>9), time.Month(date>>5&0xF), int(date&0x1F),
				int(tm>>11), int(tm>>5&0x3F), int(tm&0x1F)*2, 0, time.UTC)
		}
		ents = append(ents, e)
	}
	return ents, label
}

// lfnState gathers the long-name entries before a short entry. Parts out
// of sequence or with another checksum are dropped, and the short name
// used, as FAT drivers do.
type lfnState struct {
	units [20 * 13]uint16
	n     int // parts in the name; 0: none pending
	next  int // part expected next (they are stored last first)
	sum   byte
}

var lfnUnitOffsets = [13]int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30}

func (l *lfnState) add(d []byte) {
	seq := int(d[0] & 0x1F)
	if d[0]&0x40 != 0 { // the last part, stored first
		l.n, l.next, l.sum = seq, seq, d[13]
	}
	if l.n == 0 || l.n > 20 || seq != l.next || d[13] != l.sum {
		l.n = 0
		return
	}
	for k, o := range lfnUnitOffsets {
		l.units[(seq-1)*13+k] = le.Uint16(d[o:])
	}
	l.next--
}

// name is the long name for a short entry with checksum sum, or "".
func (l *lfnState) name(sum byte) string {
	if l.n == 0 || l.next != 0 || sum != l.sum {
		return ""
	}
	u := l.units[:13*l.n]
	if i := slices.Index(u, 0); i >= 0 {
		u = u[:i]
	}
	return string(utf16.Decode(u))
}

// cp437High is code page 437 from 0x80, the OEM code page Linux assumes
// for short names.
var cp437High = []rune("ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0")

// oemString decodes bytes of a short name or label, trailing spaces removed.
func oemString(b []byte) string {
	return oemLower(b, false)
}

func oemLower(b []byte, lower bool) string {
	var s strings.Builder
	for _, c := range []byte(strings.TrimRight(string(b), " ")) {
		switch {
		case c >= 0x80:
			s.WriteRune(cp437High[c-0x80])
		case lower && c >= 'A' && c <= 'Z':
			s.WriteByte(c - 'A' + 'a')
		default:
			s.WriteByte(c)
		}
	}
	return s.String()
}

// shortName is an entry's 8.3 name as NAME.EXT, in lower case where the
// flags of byte 12 (set by Windows NT and mtools) say so.
func shortName(d []byte) string {
	base := [8]byte(d[:8])
	if base[0] == 0x05 { // stands for a leading 0xE5, which marks deleted entries
		base[0] = 0xE5
	}
	s := oemLower(base[:], d[12]&0x08 != 0)
	if ext := oemLower(d[8:11], d[12]&0x10 != 0); ext != "" {
		s += "." + ext
	}
	return s
}

// checkName rejects names that would make a path other than the entry's
// own: empty, ".", "..", or holding "/" or NUL.
func checkName(dir string, e dirent) error {
	if e.name == "" || e.name == "." || e.name == ".." || strings.ContainsAny(e.name, "/\x00") {
		return fmt.Errorf("fat: %s: entry %d is named %q, which cannot be a path component", dir, e.slot, e.name)
	}
	return nil
}

func dirWhat(p string) string {
	if p == "" {
		return "the root directory"
	}
	return p
}

// Walk calls fn for every file and directory, depth first in directory
// order, each directory before its contents. It skips ".", "..", deleted
// entries and volume labels. If fn returns fs.SkipDir for a directory,
// Walk skips its contents (for a file, the rest of its directory);
// fs.SkipAll stops the walk; any other error stops it and is returned.
// Walk fails on directories that loop or share clusters, deeper than 256
// levels or with invalid names.
func (im *Image) Walk(fn func(ReadEntry) error) error {
	claimed := map[uint32]string{}
	var walk func(p string, first uint32, fixed bool, depth int) error
	walk = func(p string, first uint32, fixed bool, depth int) error {
		if depth > maxDepth {
			return fmt.Errorf("fat: %s is nested deeper than %d directories", p, maxDepth)
		}
		b, err := im.readDir(dirWhat(p), first, fixed, claimed)
		if err != nil {
			return err
		}
		ents, _ := parseDir(b, im.Type == FAT32)
		for _, e := range ents {
			if err := checkName(dirWhat(p), e); err != nil {
				return err
			}
			ep := e.name
			if p != "" {
				ep = p + "/" + e.name
			}
			err := fn(ReadEntry{Path: ep, Dir: e.dir, Size: int64(e.size), ModTime: e.mtime})
			switch {
			case err == fs.SkipDir && e.dir:
				continue
			case err == fs.SkipDir:
				return nil
			case err != nil:
				return err
			}
			if e.dir {
				if err := walk(ep, e.first, false, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := walk("", im.rootCluster, im.Type != FAT32, 0)
	if err == fs.SkipDir || err == fs.SkipAll {
		return nil
	}
	return err
}

// ReadFile returns the contents of the file at name, a "/"-separated path
// (a leading "/" is ignored). Components match long or short names
// case-insensitively, as FAT does. A missing file gives an error matching
// fs.ErrNotExist. The result is never larger than the image.
func (im *Image) ReadFile(name string) ([]byte, error) {
	p := strings.TrimPrefix(name, "/")
	if p == "" {
		return nil, errors.New("fat: ReadFile of the root directory")
	}
	cur := dirent{dir: true, first: im.rootCluster}
	fixed := im.Type != FAT32
	at := "" // the path so far, as stored
	for _, part := range strings.Split(p, "/") {
		if !cur.dir {
			return nil, fmt.Errorf("fat: %s: %s is a file, not a directory", name, at)
		}
		b, err := im.readDir(dirWhat(at), cur.first, fixed, nil)
		if err != nil {
			return nil, err
		}
		ents, _ := parseDir(b, im.Type == FAT32)
		i := slices.IndexFunc(ents, func(e dirent) bool {
			return part != "" && (foldKey(e.name) == foldKey(part) || strings.EqualFold(e.short, part))
		})
		if i < 0 {
			return nil, fmt.Errorf("fat: %s: %w", name, fs.ErrNotExist)
		}
		cur, fixed = ents[i], false
		if at != "" {
			at += "/"
		}
		at += cur.name
	}
	if cur.dir {
		return nil, fmt.Errorf("fat: %s is a directory", at)
	}
	return im.contents(at, cur)
}

// contents reads a file's size bytes from its cluster chain.
func (im *Image) contents(p string, e dirent) ([]byte, error) {
	size, cs := int64(e.size), im.clusterSize
	if size == 0 {
		return []byte{}, nil
	}
	n := (size + cs - 1) / cs
	if have := int64(im.last) - 1; n > have {
		return nil, fmt.Errorf("fat: %s: its size %d needs %d clusters; the %d-byte image holds %d clusters", p, size, n, im.size, max(have, 0))
	}
	buf := make([]byte, size)
	var off int64
	err := im.chain(p, e.first, n, nil, func(c uint32, k int64) error {
		m := min(k*cs, size-off)
		if err := im.readAt(buf[off:off+m], im.clusterOff(c), p); err != nil {
			return err
		}
		off += m
		return nil
	})
	if err != nil {
		return nil, err
	}
	return buf, nil
}
