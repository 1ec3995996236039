// Package iso9660 writes ISO 9660 images that boot: the format of NixOS's
// live CDs.
//
// The API follows archive/tar: a caller adds entries with WriteHeader and
// Write (or Stream, for a file whose size is known only once it is written,
// such as a squashfs image produced on the fly) and calls Close. The Writer
// owns the layout: file data is laid down as it arrives, and the directory
// hierarchy, path tables and volume descriptors are written at Close.
//
// Supported:
//   - ISO 9660 level 3: files over 4 GiB are recorded as several extents;
//   - Rock Ridge (RRIP 1.10: PX, NM, SL, TF, with CE continuation areas) for
//     POSIX names of up to 255 bytes, modes, owners and symlinks;
//   - Joliet (UCS-2 names of up to 64 characters) as a second hierarchy over
//     the same file data;
//   - El Torito with a BIOS no-emulation entry (with the boot-info-table
//     that isolinux wants) and a UEFI (0xEF) entry;
//   - isohybrid: MBR boot code (isohdpfx.bin), an MBR partition table and a
//     GPT, so that the same image boots from a USB stick on BIOS and UEFI;
//   - every date from Options.ModTime and a GPT disk GUID derived from the
//     content, so the same input gives the same bytes.
//
// Not supported: appending sessions, hard links, device files, extended
// attribute records, directory relocation for trees deeper than eight
// levels (Linux, GRUB and isolinux do not need it), Joliet symlinks (Joliet
// has none; symlinks appear in the Rock Ridge hierarchy only).
package iso9660
