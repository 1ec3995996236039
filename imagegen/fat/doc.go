// Package fat writes FAT12, FAT16 and FAT32 file system images
// deterministically: the same entries and Options give the same bytes. It
// makes the El Torito EFI boot image of the ISO (/boot/efi.img, holding
// /EFI/BOOT/BOOTX64.EFI and grub.cfg), which NixOS makes with mkfs.vfat and
// mcopy.
//
// Two ways in, one result:
//   - Writer, in the style of archive/tar: WriteHeader (or Create, Mkdir)
//     then Write, and Close. File contents are held back (in memory, then in
//     a temporary file) until Close, because the layout depends on all of
//     them.
//   - Build, from a list of Files whose contents are read once, in order, at
//     write time; Plan gives the resulting Layout (and so the image size)
//     without reading anything.
//
// Either way the image is written front to back to a plain io.Writer, and
// entries may come in any order: directories are sorted by name and laid
// out first, then file contents, each in one contiguous run of clusters.
//
// The package chooses the layout, unless Options say otherwise: FAT12 if
// the content (with the free space) fits in at most 4068 clusters of at most
// 4 KiB (about 16 MiB), else FAT16 if it fits in 4101 to 65508 clusters of
// at most 4 KiB (about 256 MiB), else FAT32 (at least 65541 clusters, up to
// 32 KiB each); within that type, the cluster size that gives the smallest
// image. Readers derive the FAT type from the cluster count alone, as the
// specification says, so the counts stay at least 16 clear of the
// boundaries (4085 and 65525), as it advises. The image is a whole number
// of 16 KiB (so a multiple of a CD's 2048-byte sector, and of the 32
// sectors per track that the boot sector declares) and keeps
// Options.FreeSpace free.
//
// Supported: subdirectories (with "." and ".."), parents created
// implicitly; long names (VFAT, up to 255 UTF-16 units, any case and any
// Unicode a FAT driver accepts), stored exactly as given, with a short 8.3
// alias made deterministically (NAME~N.EXT, unique in its directory); files
// up to 4 GiB - 1; empty files; a volume label (in the boot sector and the
// root directory) and volume ID; timestamps from Options.ModTime or
// Header.ModTime, clamped to 1980..2107 and stored as UTC wall-clock time;
// media descriptor 0xF8, two FATs, a boot sector whose code only halts, and
// for FAT32 the FSInfo sector and the backup boot sector.
//
// Errors name the path at fault and match ErrInvalidName, ErrDuplicate,
// ErrTooLarge, ErrWriteTooLong, ErrShortContent or ErrOptions (errors.Is).
//
// The package also reads FAT images, for "imagegen inspect" and tests: Open
// takes a FAT12, FAT16 or FAT32 image (any sector size from 512 to 4096
// bytes; FAT32 also with fewer clusters than the specification asks, as
// mkfs.fat makes and Linux reads), Walk lists its files and directories by
// long name, else 8.3 name (lower case where Windows NT's case flags say),
// and ReadFile returns a file's contents, matching each path component
// case-insensitively against the long or the short name. It reads only the
// FAT in use (not the copies, nor FSInfo), and, as the images come from
// anywhere, checks every cluster number, chain, directory size and depth
// against the boot sector and the image size: corrupt images give errors
// naming the path and cluster at fault, never a loop or a read past the
// image.
//
// Not supported: appending to an image; when writing, file attributes
// other than archive and directory (no hidden, system or read-only files),
// symlinks and other special files, names that FAT drivers would change
// (ending in '.' or ' ') or reject (control characters and "*/:<>?\|),
// names differing only in case within a directory (FAT compares names
// case-insensitively, so they are rejected rather than merged), partition
// tables, sector sizes other than 512 bytes. Files are never fragmented,
// and never sparse: their zeros are written out. The reader lists entries
// whatever their attributes and reads fragmented files; it reads neither
// partition tables nor exFAT, and of the timestamps only the write time.
package fat
