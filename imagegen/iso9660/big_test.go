package iso9660

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ckSparseFile writes only the 4 KiB pieces that hold a non-zero byte, so a
// mostly-zero 4 GiB file costs little disk. It relies on the image file
// starting out empty, as File requires, and on the writer never writing
// zeros over data.
type ckSparseFile struct{ *os.File }

var ckZero4K = make([]byte, 4096)

func (s ckSparseFile) WriteAt(p []byte, off int64) (int, error) {
	for i := 0; i < len(p); {
		n := min(len(p)-i, 4096-int((off+int64(i))%4096))
		if !bytes.Equal(p[i:i+n], ckZero4K[:n]) {
			if _, err := s.File.WriteAt(p[i:i+n], off+int64(i)); err != nil {
				return i, err
			}
		}
		i += n
	}
	return len(p), nil
}

const ckBigSize = 4<<30 + 12345

// ckBigPattern is the content of the big test files: zeros, except a 16-byte
// stamp at the start of every MiB and dense non-zero bytes around the end
// of the first extent, around 4 GiB and over the last 12345 bytes.
func ckBigPattern(b []byte, off int64) {
	clear(b)
	dense := [][2]int64{{maxExtent - 8192, maxExtent + 8192}, {4<<30 - 4096, 4<<30 + 4096}, {ckBigSize - 12345, ckBigSize}}
	for _, d := range dense {
		lo, hi := max(d[0], off), min(d[1], off+int64(len(b)))
		for o := lo; o < hi; o++ {
			b[o-off] = byte(o*131+o>>11) | 1
		}
	}
	for m := (off + 1<<20 - 1) &^ (1<<20 - 1); m < off+int64(len(b)); m += 1 << 20 {
		var stamp [16]byte
		binary.LittleEndian.PutUint64(stamp[:], uint64(m)*0x9E3779B97F4A7C15|1)
		copy(stamp[8:], "ISO9660!")
		copy(b[m-off:], stamp[:])
	}
}

var ckReSections = regexp.MustCompile(`(?m)^File data lba: +([0-9]+) , +([0-9]+) , +[0-9]+ , +([0-9]+) , '(.*)'$`)

var ckReLslSize = regexp.MustCompile(`(?m)^-[-rwx]{9} +[0-9]+ +[0-9]+ +[0-9]+ +([0-9]+) .*'(\S+)'$`)

// TestFileOver4GiB: files of 4 GiB + 12345 bytes, one written with Write
// in 1 MiB chunks and one through a Stream (written back to front), are
// recorded as several extents; isoinfo, xorriso and our reader see their
// exact size and the same extents; bytes past 4 GiB read back right (from
// xorriso's and our reader's extents, and with osirrox -extract_cut); a
// file after them is intact.
func TestFileOver4GiB(t *testing.T) {
	if testing.Short() {
		t.Skip("writes two 4 GiB files (sparse; about 6 s): skipped with -short")
	}
	ckNeedTools(t, "isoinfo", "xorriso", "osirrox")
	start := time.Now()
	phase := func(what string) { t.Logf("%-28s %5.1f s", what, time.Since(start).Seconds()) }
	dir := t.TempDir()
	iso := filepath.Join(dir, "big.iso")
	f, err := os.Create(iso)
	require.NoError(t, err)
	defer f.Close()
	w, err := NewWriter(ckSparseFile{f}, Options{VolumeID: "BIG", Joliet: true})
	require.NoError(t, err)
	require.NoError(t, w.WriteHeader(&Header{Name: "before", Mode: 0o644, Size: 6}))
	_, err = w.Write([]byte("before"))
	require.NoError(t, err)

	require.NoError(t, w.WriteHeader(&Header{Name: "big/written", Mode: 0o644, Size: ckBigSize}))
	buf := make([]byte, 1<<20)
	for off := int64(0); off < ckBigSize; off += int64(len(buf)) {
		b := buf[:min(int64(len(buf)), ckBigSize-off)]
		ckBigPattern(b, off)
		_, err := w.Write(b)
		require.NoError(t, err)
	}

	s, err := w.Stream(&Header{Name: "big/streamed", Mode: 0o444})
	require.NoError(t, err)
	for end := int64(ckBigSize); end > 0; {
		start := max(0, end-int64(len(buf)))
		b := buf[:end-start]
		ckBigPattern(b, start)
		_, err := s.WriteAt(b, start)
		require.NoError(t, err)
		end = start
	}
	require.NoError(t, s.Close())

	require.NoError(t, w.WriteHeader(&Header{Name: "after", Mode: 0o644, Size: 5}))
	_, err = w.Write([]byte("after"))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	require.NoError(t, f.Close())
	phase("written")

	want := func(off int64, n int) []byte {
		b := make([]byte, n)
		ckBigPattern(b, off)
		return b
	}
	probes := []int64{0, 1 << 20, maxExtent - 100, maxExtent - 1, maxExtent, 4<<30 - 10, 4 << 30, 4<<30 + 4000, ckBigSize - 4000}

	// Our reader: two extents per file in both hierarchies, the first one
	// flagged "more follow", contiguous, of the right sizes.
	ir, vols, prim := ckOpenImage(t, iso)
	jol, err := ir.hierarchy(vols[1].root, true, false)
	require.NoError(t, err)
	for _, name := range []string{"big/written", "big/streamed"} {
		for hname, h := range map[string]map[string]*ckEntry{"rock ridge": prim, "joliet": jol} {
			e := h[name]
			require.NotNil(t, e, "%s: %s", hname, name)
			require.Len(t, e.records, 2, "%s: %s extents", hname, name)
			r0, r1 := e.records[0], e.records[1]
			assert.Equal(t, uint32(maxExtent), r0.size, "%s: %s: first extent", hname, name)
			assert.Equal(t, byte(0x80), r0.flags&0x80)
			assert.Equal(t, byte(0), r1.flags&0x80)
			assert.Equal(t, r0.extent+maxExtent/ckSector, r1.extent, "contiguous extents")
			assert.Equal(t, int64(ckBigSize), e.size())
			for _, p := range probes {
				got, err := ir.readFile(e, p, 4000)
				require.NoError(t, err, "%s: %s: at %d", hname, name, p)
				assert.True(t, bytes.Equal(want(p, 4000), got), "%s: %s: bytes at %d", hname, name, p)
			}
		}
	}
	for _, name := range []string{"before", "after"} {
		data, err := ir.readFile(prim[name], 0, int(prim[name].size()))
		require.NoError(t, err)
		assert.Equal(t, name, string(data))
	}
	phase("our reader")

	// isoinfo: one line per extent; their sizes add up.
	isoinfoOut := ckRunTool(t, "isoinfo", "-R", "-l", "-i", iso)
	listed, err := ckParseIsoinfo(isoinfoOut)
	require.NoError(t, err)
	sizes := map[string]int64{}
	for _, e := range listed {
		sizes[e.path()] += e.size
	}
	assert.Equal(t, int64(ckBigSize), sizes["big/written"], "isoinfo -R -l:\n%s", isoinfoOut)
	assert.Equal(t, int64(ckBigSize), sizes["big/streamed"], "isoinfo -R -l:\n%s", isoinfoOut)
	phase("isoinfo")

	// xorriso: the exact size, and bytes past 4 GiB.
	out := ckRunCombined(t, "xorriso", "-indev", iso, "-lsl", "/big")
	m := ckReLslSize.FindAllStringSubmatch(out, -1)
	require.Len(t, m, 2, out)
	for _, x := range m {
		assert.Equal(t, strconv.Itoa(ckBigSize), x[1], "xorriso -lsl /big/%s", x[2])
	}
	// xorriso's view of the extents (sector, byte size), read with plain
	// ReadAt: bytes past 4 GiB as the pattern says.
	img, err := os.Open(iso)
	require.NoError(t, err)
	defer img.Close()
	for _, name := range []string{"written", "streamed"} {
		out := ckRunCombined(t, "xorriso", "-indev", iso, "-find", "/big/"+name, "-exec", "report_sections", "--")
		secs := ckReSections.FindAllStringSubmatch(out, -1)
		require.Len(t, secs, 2, out)
		var base int64
		for i, sec := range secs {
			lba, _ := strconv.ParseInt(sec[2], 10, 64)
			size, _ := strconv.ParseInt(sec[3], 10, 64)
			assert.Equal(t, strconv.Itoa(i), sec[1])
			assert.Equal(t, "/big/"+name, sec[4])
			assert.Equal(t, int64(prim["big/"+name].records[i].extent), lba, "%s: extent %d sector", name, i)
			for _, p := range probes {
				if p < base || p+4000 > base+size {
					continue
				}
				got := make([]byte, 4000)
				_, err := img.ReadAt(got, lba*ckSector+p-base)
				require.NoError(t, err)
				assert.True(t, bytes.Equal(want(p, 4000), got), "/big/%s at %d, from xorriso's extent %d", name, p, i)
			}
			base += size
		}
		assert.Equal(t, int64(ckBigSize), base, "xorriso: /big/%s sections", name)
	}
	// A real extraction of bytes past 4 GiB (osirrox reads the file up to
	// the offset: about a second per 4 GiB).
	cut := filepath.Join(dir, "cut")
	ckRunCombined(t, "osirrox", "-indev", iso, "-extract_cut", "/big/written", strconv.FormatInt(maxExtent-100, 10), "4000", cut)
	got, err := os.ReadFile(cut)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want(maxExtent-100, 4000), got), "osirrox -extract_cut across the extents")
	phase("xorriso, osirrox -extract_cut")
	dst := filepath.Join(dir, "after")
	ckRunCombined(t, "osirrox", "-indev", iso, "-extract", "/after", dst)
	got, err = os.ReadFile(dst)
	require.NoError(t, err)
	assert.Equal(t, "after", string(got))
	phase("osirrox -extract")
}
