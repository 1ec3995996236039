package squashfs_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/imagegen/squashfs"
)

// TestParseNixOSDefaults: every squashfsCompression default NixOS has
// shipped is either taken or refused with the reason and the way out.
func TestParseNixOSDefaults(t *testing.T) {
	for in, want := range map[string]squashfs.Compression{
		"zstd -Xcompression-level 19": {Algorithm: squashfs.Zstd, Level: 19},
		"xz -Xdict-size 100%":         {Algorithm: squashfs.XZ},
	} {
		got, err := squashfs.ParseCompression(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for in, want := range map[string][]string{
		"xz -Xdict-size 100% -Xbcj x86": {"-Xbcj", "not supported", "LZMA2", `use "xz -Xdict-size 100%"`, `"zstd -Xcompression-level 19"`},
		"xz -Xbcj x86,arm":              {"-Xbcj", "not supported"},
		"xz -Xdict-size 50%":            {"-Xdict-size 50%", "only xz's -Xdict-size 100%"},
		"xz -Xdict-size 8K":             {"-Xdict-size 8K", "only xz's -Xdict-size 100%"},
		"zstd -Xdict-size 100%":         {"-Xdict-size 100%", "only xz's"},
	} {
		_, err := squashfs.ParseCompression(in)
		require.Error(t, err, in)
		for _, w := range want {
			require.Contains(t, err.Error(), w, in)
		}
		require.Contains(t, err.Error(), `"`+in+`"`, "the error quotes the option")
	}
}

// TestXZImageReadBack: an image made with NixOS's xz setting is read back
// whole by unsquashfs, which reports xz and no BCJ filter.
func TestXZImageReadBack(t *testing.T) {
	if _, err := exec.LookPath("unsquashfs"); err != nil {
		t.Skip("unsquashfs not found: install squashfs-tools (make test does)")
	}
	c, err := squashfs.ParseCompression("xz -Xdict-size 100%")
	require.NoError(t, err)
	src := t.TempDir()
	data := bytes.Repeat([]byte("the xz store image\n"), 100000)
	require.NoError(t, os.WriteFile(filepath.Join(src, "file"), data, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(src, "small"), []byte("small\n"), 0o644))
	img := writeImage(t, src, squashfs.Options{Compression: c})

	stat, err := exec.Command("unsquashfs", "-s", img).CombinedOutput()
	require.NoError(t, err, "%s", stat)
	require.Contains(t, string(stat), "Compression xz")
	require.NotContains(t, strings.ToLower(string(stat)), "filters selected")

	out := filepath.Join(t.TempDir(), "x")
	msg, err := exec.Command("unsquashfs", "-n", "-d", out, img).CombinedOutput()
	require.NoError(t, err, "%s", msg)
	for name, want := range map[string][]byte{"file": data, "small": []byte("small\n")} {
		got, err := os.ReadFile(filepath.Join(out, name))
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got), "%s differs after unsquashfs", name)
	}
}
