package imagegen_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/imagegen"
	"github.com/nixlive/nixlive/imagegen/iso9660"
)

// TestSourceDateEpochRange: a date the images cannot record (squashfs
// keeps unsigned 32-bit seconds: 1970 to 2106) is refused the same way
// from the spec and from the environment, naming the source and the
// valid range; the range's ends are accepted.
func TestSourceDateEpochRange(t *testing.T) {
	for _, v := range []string{"-1", "4294967296", "253402300800", "-62135596801"} {
		t.Run("spec="+v, func(t *testing.T) {
			_, err := parseSpecText(t, minimalSpec(`"sourceDateEpoch": `+v))
			require.Error(t, err)
			for _, w := range []string{"test.json", "sourceDateEpoch", v, "0 to 4294967295"} {
				assert.Contains(t, err.Error(), w)
			}
		})
		t.Run("env="+v, func(t *testing.T) {
			t.Setenv("SOURCE_DATE_EPOCH", v)
			_, err := imagegen.SourceDateEpoch()
			require.Error(t, err)
			for _, w := range []string{"SOURCE_DATE_EPOCH", v, "0 to 4294967295"} {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	for _, v := range []string{"0", "4294967295"} {
		_, err := parseSpecText(t, minimalSpec(`"sourceDateEpoch": `+v))
		assert.NoError(t, err, "spec sourceDateEpoch %s", v)
		t.Setenv("SOURCE_DATE_EPOCH", v)
		_, err = imagegen.SourceDateEpoch()
		assert.NoError(t, err, "SOURCE_DATE_EPOCH=%s", v)
	}
}

// TestSpecInputErrors: a spec cut short names the file and the line where
// it ended; an isoName that names no file is refused under its field name.
func TestSpecInputErrors(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		want       []string
	}{
		{"TruncatedObject", "{\n  \"system\": \"" + specSystem + "\",\n  \"kernel\": ", []string{"test.json", "line 3", "ends"}},
		{"TruncatedString", "{\n  \"system\": \"/nix/st", []string{"test.json", "line 2", "ends"}},
		{"Empty", "", []string{"test.json", "line 1", "empty"}},
		{"IsoNameDot", minimalSpec(`"isoName": "."`), []string{"test.json", "isoName", `"."`}},
		{"IsoNameDotDot", minimalSpec(`"isoName": ".."`), []string{"test.json", "isoName", `".."`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseSpecText(t, tc.json)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), "unexpected EOF")
			t.Log(err)
		})
	}
}

// FuzzParseSpec: the spec parser never panics, and what it accepts
// passes Validate again unchanged.
func FuzzParseSpec(f *testing.F) {
	f.Add([]byte(minimalSpec("")))
	f.Add([]byte(minimalSpec(`"isoName": "nixos.iso", "volumeID": "nixos-minimal-25.05-x86_64",
		"kernelParams": ["console=ttyS0,115200"], "storeContents": ["` + specSystem + `"],
		"squashfsCompression": "zstd -Xcompression-level 19", "contents": [{"source": "/etc/motd", "target": "motd.txt"}],
		"compressImage": false, "boot": {"bios": true, "efi": true, "usb": true, "timeout": 10, "label": "NixOS Live", "serialConsole": false},
		"sourceDateEpoch": 315532800`)))
	f.Add([]byte(minimalSpec(`"squashfsCompression": {"algorithm": "xz", "level": 6}, "volumeID": "my label"`)))
	f.Add([]byte(`{"system": "x"`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := imagegen.ParseSpec(bytes.NewReader(data), "fuzz.json")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.json") {
				t.Errorf("error does not name the spec: %v", err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Errorf("accepted spec fails Validate: %v", err)
		}
	})
}

// smallISO writes a small ISO with our writer: Rock Ridge, Joliet, a
// directory, a file, a symlink and an El Torito entry.
func smallISO(t testing.TB) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "small.iso")
	f, err := os.Create(p)
	require.NoError(t, err)
	defer f.Close()
	w, err := iso9660.NewWriter(f, iso9660.Options{
		VolumeID: "fuzz seed", ModTime: time.Unix(315532800, 0), Joliet: true,
		Boot: []iso9660.BootEntry{{Platform: iso9660.EFI, Path: "boot/efi.img"}},
	})
	require.NoError(t, err)
	add := func(h *iso9660.Header, data string) {
		require.NoError(t, w.WriteHeader(h))
		if data != "" {
			_, err := io.WriteString(w, data)
			require.NoError(t, err)
		}
	}
	add(&iso9660.Header{Name: "boot", Mode: os.ModeDir | 0o755}, "")
	add(&iso9660.Header{Name: "boot/efi.img", Mode: 0o644, Size: 4096}, strings.Repeat("E", 4096))
	add(&iso9660.Header{Name: "a long file name.txt", Mode: 0o644, Size: 6}, "hello\n")
	add(&iso9660.Header{Name: "link", Mode: os.ModeSymlink | 0o777, Linkname: "../boot/./efi.img"}, "")
	require.NoError(t, w.Close())
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return b
}

// packSectors writes an image as its 2048-byte sectors, each cut after its
// last non-zero byte and prefixed with the length kept (2 bytes, little
// endian): an ISO of mostly padding in a few KiB, which the fuzzer mutates
// far better than the image itself (and minimizes in seconds).
func packSectors(iso []byte) []byte {
	var b []byte
	for off := 0; off < len(iso); off += 2048 {
		sec := bytes.TrimRight(iso[off:min(off+2048, len(iso))], "\x00")
		b = append(b, byte(len(sec)), byte(len(sec)>>8))
		b = append(b, sec...)
	}
	return b
}

// unpackSectors is packSectors' inverse, for any input: a length over 2048
// is taken modulo 2049, a short last chunk is kept as it is.
func unpackSectors(b []byte) []byte {
	var iso []byte
	for len(b) >= 2 {
		n := min((int(b[0])|int(b[1])<<8)%2049, len(b)-2)
		sec := make([]byte, 2048)
		copy(sec, b[2:2+n])
		iso = append(iso, sec...)
		b = b[2+n:]
	}
	return iso
}

// FuzzInspect: the ISO reader behind "imagegen inspect" never panics nor
// hangs on a damaged image; the seed is a valid one from our writer, in
// packSectors' form.
func FuzzInspect(f *testing.F) {
	iso := smallISO(f)
	var out bytes.Buffer
	require.NoError(f, imagegen.Inspect(&out, bytes.NewReader(unpackSectors(packSectors(iso))), true))
	require.Contains(f, out.String(), "fuzz seed")
	f.Add(packSectors(iso))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = imagegen.Inspect(io.Discard, bytes.NewReader(unpackSectors(data)), true)
	})
}
