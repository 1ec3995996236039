package persist

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/imagegen/iso9660"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"67108864": 64 << 20, "64M": 64 << 20, "512m": 512 << 20, "1G": 1 << 30, "1GiB": 1 << 30,
		"2T": 2 << 40, "16K": 16 << 10, "64MB": 64 << 20, " 8M ": 8 << 20,
	} {
		got, err := ParseSize(in)
		if assert.NoError(t, err, in) {
			assert.Equal(t, want, got, in)
		}
	}
	for _, in := range []string{"", "M", "-1M", "1.5G", "1X", "1iB", "99999999999T", "1 G B"} {
		_, err := ParseSize(in)
		assert.Error(t, err, in)
	}
}

// hybridISO writes a small isohybrid ISO with imagegen/iso9660 (UEFI
// only: an EFI image, the MBR and the GPT) and returns its path.
func hybridISO(t *testing.T, gpt bool) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "small.iso")
	f, err := os.Create(p)
	require.NoError(t, err)
	defer f.Close()
	opts := iso9660.Options{VolumeID: "PERSIST", ModTime: time.Unix(315532800, 0),
		Boot: []iso9660.BootEntry{{Platform: iso9660.EFI, Path: "efi.img"}}}
	if gpt {
		opts.Hybrid = &iso9660.Hybrid{GPT: true}
	}
	w, err := iso9660.NewWriter(f, opts)
	require.NoError(t, err)
	efi := bytes.Repeat([]byte{0xE5}, 64<<10)
	require.NoError(t, w.WriteHeader(&iso9660.Header{Name: "efi.img", Mode: 0o644, Size: int64(len(efi))}))
	_, err = w.Write(efi)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return p
}

func haveMkfs(t *testing.T) {
	t.Helper()
	if _, err := findMkfs(); err != nil {
		t.Skip(err)
	}
}

// TestAddFile adds the partition to a file twice over (the second is
// refused and changes nothing): the tables read back, the new GPT entry
// and header CRCs hold, the backup GPT ends the grown file, the ISO's
// bytes outside the tables are kept, and the GUID is the same for the
// same ISO.
func TestAddFile(t *testing.T) {
	haveMkfs(t)
	iso := hybridISO(t, true)
	orig, err := os.ReadFile(iso)
	require.NoError(t, err)
	var guids []string
	for range 2 {
		img := filepath.Join(t.TempDir(), "disk.img")
		require.NoError(t, os.WriteFile(img, orig, 0o644))
		res, err := Add(context.Background(), Options{Target: img, Size: 20 << 20})
		require.NoError(t, err)
		p := res.Partition
		assert.Equal(t, 3, p.Number)
		assert.Equal(t, int64(len(orig)), p.Offset(), "the partition starts right after the ISO (a whole MiB)")
		assert.Equal(t, int64(20<<20), p.Bytes())
		got, err := os.ReadFile(img)
		require.NoError(t, err)
		assert.Equal(t, p.Offset()+p.Bytes()+gptTail*sectorSize, int64(len(got)))
		secs := int64(len(got)) / sectorSize
		assert.True(t, validHeader(got[512:1024], 1), "primary header")
		assert.True(t, validHeader(got[(secs-1)*512:], secs-1), "backup header at the end")
		assert.Equal(t, got[1024:firstUsable*512], got[(secs-gptTail)*512:(secs-1)*512], "backup entries")
		assert.Equal(t, crc32.ChecksumIEEE(got[1024:firstUsable*512]), binary.LittleEndian.Uint32(got[512+88:]))
		assert.Equal(t, uint64(secs-gptTail-1), binary.LittleEndian.Uint64(got[512+48:]), "last usable sector")
		// The ISO's bytes are kept but for the tables and its old backup GPT.
		isoSecs := int64(len(orig)) / 512
		assert.Equal(t, orig[firstUsable*512:(isoSecs-gptTail)*512], got[firstUsable*512:(isoSecs-gptTail)*512])
		assert.Equal(t, make([]byte, gptTail*512), got[(isoSecs-gptTail)*512:isoSecs*512], "the old backup GPT is cleared")
		assert.Equal(t, orig[:446], got[:446], "MBR boot code")
		guids = append(guids, p.GUID)

		_, err = Add(context.Background(), Options{Target: img})
		var has *HasPartitionError
		require.ErrorAs(t, err, &has)
		assert.Equal(t, p.Start, has.Start)
		again, _ := os.ReadFile(img)
		assert.True(t, bytes.Equal(got, again), "a refused Add wrote")
	}
	assert.Equal(t, guids[0], guids[1], "the partition GUID comes from the ISO")
}

// TestAddInterrupted cancels the context just before the file system is
// made and just before the tables are written: the file is as it was,
// byte for byte and in size.
func TestAddInterrupted(t *testing.T) {
	haveMkfs(t)
	iso := hybridISO(t, true)
	orig, err := os.ReadFile(iso)
	require.NoError(t, err)
	for _, stage := range []string{"mkfs", "tables"} {
		t.Run(stage, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "disk.img")
			require.NoError(t, os.WriteFile(img, orig, 0o644))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			hook := func(s string) {
				if s == stage {
					cancel()
				}
			}
			_, err := Add(ctx, Options{Target: img, hook: hook})
			require.Error(t, err)
			assert.Contains(t, err.Error(), img+" is as it was")
			got, _ := os.ReadFile(img)
			assert.True(t, bytes.Equal(orig, got), "the file changed")
		})
	}
}

// TestRefused: media that are not our ISO, or are too small for the
// partition asked for, are refused with the reason and left unchanged.
func TestRefused(t *testing.T) {
	iso := hybridISO(t, true)
	orig, err := os.ReadFile(iso)
	require.NoError(t, err)
	damage := func(f func(b []byte)) []byte {
		b := append([]byte{}, orig...)
		f(b)
		return b
	}
	noGPT, err := os.ReadFile(hybridISO(t, false))
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		data []byte
		size int64
		want string
	}{
		{"zeros", make([]byte, 1<<20), 0, "no ISO 9660 primary volume descriptor at byte 32768"},
		{"short", []byte("hello"), 0, "cannot read its ISO 9660 volume descriptor"},
		{"no-gpt", noGPT, 0, "no GPT header at sector 1"},
		{"header-crc", damage(func(b []byte) { b[512+60]++ }), 0, "GPT header at sector 1 is damaged"},
		{"entries-crc", damage(func(b []byte) { b[1024+100]++ }), 0, "GPT entries are damaged"},
		{"foreign-mbr", damage(func(b []byte) { b[446+48+4], b[446+48+12] = 0x07, 1 }), 0, "MBR partition 4 (type 0x07) is not one imagegen makes"},
		{"truncated", orig[:len(orig)-512], 0, "shorter than the ISO"},
		{"size-too-small", orig, 1 << 20, "--size 1048576 bytes (1.0 MiB) is too small"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "disk.img")
			require.NoError(t, os.WriteFile(img, tc.data, 0o644))
			_, err := Add(context.Background(), Options{Target: img, Size: tc.size})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), "nothing was written")
			got, _ := os.ReadFile(img)
			assert.True(t, bytes.Equal(tc.data, got), "the file changed")
		})
	}
	_, err = Add(context.Background(), Options{Target: t.TempDir()})
	assert.ErrorContains(t, err, "neither a block device nor a regular file")
	var nf *NotOurISOError
	_, err = ReadTables(bytes.NewReader(make([]byte, 1<<20)), "x")
	assert.True(t, errors.As(err, &nf))
}

// TestSpaceError says the sizes.
func TestSpaceError(t *testing.T) {
	e := &SpaceError{Path: "/dev/sdz", Free: 10 << 20, Want: 64 << 20, After: 300 << 20}
	for _, w := range []string{"/dev/sdz has too little space after the ISO (which ends at byte 314572800)",
		"10485760 bytes (10.0 MiB) free", "the partition asked for is 67108864 bytes (64.0 MiB)"} {
		assert.Contains(t, e.Error(), w)
	}
	e.Want = MinSize
	assert.Contains(t, e.Error(), "needs at least 16777216 bytes (16.0 MiB)")
}

// TestMkfsFails: a failing mkfs.ext4 leaves the file as it was.
func TestMkfsFails(t *testing.T) {
	haveMkfs(t)
	dir := t.TempDir()
	fake := filepath.Join(dir, "mkfs.ext4")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\necho broken >&2\nexit 1\n"), 0o755))
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	if p, _ := exec.LookPath("mkfs.ext4"); p != fake {
		t.Skip("cannot put a fake mkfs.ext4 first in PATH")
	}
	iso := hybridISO(t, true)
	orig, _ := os.ReadFile(iso)
	_, err := Add(context.Background(), Options{Target: iso})
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "broken") && strings.Contains(err.Error(), "the partition tables were not changed"), err.Error())
	got, _ := os.ReadFile(iso)
	assert.True(t, bytes.Equal(orig, got), "the file changed")
}

// TestPlaceDevice: on a device the partition takes all the free space in
// whole MiB (before the backup GPT, and within the MBR's 2 TiB), or
// --size when it fits; too little space says the sizes.
func TestPlaceDevice(t *testing.T) {
	iso := hybridISO(t, true)
	f, err := os.Open(iso)
	require.NoError(t, err)
	defer f.Close()
	tb, err := ReadTables(f, iso)
	require.NoError(t, err)
	isoSecs := tb.ISOBytes / 512
	require.Equal(t, isoSecs, tb.FreeStart(), "our ISO ends on a MiB boundary")
	for _, tc := range []struct {
		name       string
		free, size int64
		want       int64 // sectors; 0: refused
		err        string
	}{
		{"all", 100 << 20, 0, 99 << 11, ""},
		{"sized", 100 << 20, 64 << 20, 64 << 11, ""},
		{"rounded-up", 100 << 20, 64<<20 + 1, 65 << 11, ""},
		{"rounded-up-too-big", 100 << 20, 100<<20 - 33*512, 0, "104840704 bytes (100.0 MiB) free, the partition asked for is 104857600 bytes (100.0 MiB)"},
		{"too-small", 8 << 20, 0, 0, "8371712 bytes (8.0 MiB) free, a nixlive-rw partition needs at least"},
		{"mbr-limit", 3 << 40, 0, (mbrMaxSecs + 1 - isoSecs) / alignSecs * alignSecs, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &medium{name: "/dev/sdz", device: true, size: tb.ISOBytes + tc.free}
			start, n, disk, err := m.place(tb, tc.size)
			if tc.err != "" {
				var se *SpaceError
				require.ErrorAs(t, err, &se)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, isoSecs, start)
			assert.Equal(t, tc.want, n)
			assert.Equal(t, m.size/512, disk)
			assert.LessOrEqual(t, start+n, min(disk-gptTail-1, mbrMaxSecs)+1)
		})
	}
}
