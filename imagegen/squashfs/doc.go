// Package squashfs writes squashfs 4.0 images, the format the Linux kernel
// mounts and that NixOS uses for the live CD's /nix-store.squashfs.
//
// The API follows archive/tar: a caller creates a Writer, adds entries with
// WriteHeader followed by Write for file contents, and calls Close. The
// Writer owns the layout: entries may come in any order, parents are created
// implicitly, and directory listings are sorted as the kernel requires.
//
// Supported:
//   - compressors zstd (levels 1–22, through libzstd so the ratio matches
//     mksquashfs), gzip (zlib, 1–9), xz, lz4 (fast and HC) and none;
//   - block sizes from 4 KiB to 1 MiB (powers of two);
//   - fragments: files smaller than a block are packed into shared fragment
//     blocks (and, with Options.AlwaysUseFragments, the tails of larger files);
//   - compressed metadata, directory indexes for large directories, extended
//     inodes so that files and images over 4 GiB work, sparse blocks (all-zero
//     blocks cost nothing on disk);
//   - regular files, directories and symlinks (dangling ones too), with
//     permissions, owners (through the id table) and mtimes;
//   - duplicate files stored once; duplicates are found by content hash as the
//     data arrives, before it is compressed, so a duplicate costs a hash, not
//     a compression;
//   - compression on all cores with output byte-identical whatever the number
//     of workers; memory is bounded by a few blocks per worker;
//   - padding of the image to 4 KiB, as the kernel's loop device wants.
//
// Reading: RootNames checks a prebuilt image's superblock and lists its
// root directory, no more (imagegen build --squashfs); unsquashfs and the
// kernel are the readers the tests use.
//
// Not supported: hard links (every entry is its own inode, as mksquashfs
// -no-hardlinks), device nodes, fifos and sockets (WriteHeader returns an
// error naming the path), extended attributes, the NFS export table, names
// longer than 255 bytes, appending to an existing image.
package squashfs
