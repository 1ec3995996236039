package kmod

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/ulikunitz/xz"
)

// fakeModule is a module-like blob: an ELF header and some text, enough
// for the decoders; the real load is stage 1's boot test.
var fakeModule = append([]byte("\x7fELF\x02\x01\x01\x00"), bytes.Repeat([]byte("init_module cleanup_module vermagic=6.1.0 "), 500)...)

func compressWith(t *testing.T, c string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch c {
	case Gzip:
		w := gzip.NewWriter(&buf)
		_, err := w.Write(data)
		require.NoError(t, err)
		require.NoError(t, w.Close())
	case XZ:
		// As the kernel's scripts/Makefile.modinst: --check=crc32.
		w, err := xz.WriterConfig{CheckSum: xz.CRC32, DictCap: 1 << 20}.NewWriter(&buf)
		require.NoError(t, err)
		_, err = w.Write(data)
		require.NoError(t, err)
		require.NoError(t, w.Close())
	case Zstd:
		w, err := zstd.NewWriter(&buf)
		require.NoError(t, err)
		_, err = w.Write(data)
		require.NoError(t, err)
		require.NoError(t, w.Close())
	default:
		return data
	}
	return buf.Bytes()
}

func TestCompression(t *testing.T) {
	for file, want := range map[string]string{
		"kernel/fs/isofs/isofs.ko":        None,
		"kernel/fs/isofs/isofs.ko.xz":     XZ,
		"kernel/fs/isofs/isofs.ko.zst":    Zstd,
		"kernel/fs/isofs/isofs.ko.gz":     Gzip,
		"kernel/drivers/scsi/sr_mod.ko":   None,
		"kernel/drivers/hid/hid-apple.ko": None,
	} {
		assert.Equal(t, want, Compression(file), file)
	}
}

// TestDecompress: the fallback for kernels that cannot decompress modules
// gives back the ELF image of each format, including xz with CRC32 checks
// as the kernel's build writes them; damaged or mislabelled files fail,
// naming the file.
func TestDecompress(t *testing.T) {
	for _, c := range []struct{ comp, ext string }{{None, ".ko"}, {XZ, ".ko.xz"}, {Zstd, ".ko.zst"}, {Gzip, ".ko.gz"}} {
		file := "kernel/fs/isofs/isofs" + c.ext
		packed := compressWith(t, c.comp, fakeModule)
		got, err := Decompress(file, packed)
		require.NoError(t, err, file)
		assert.True(t, bytes.Equal(fakeModule, got), "%s: decompressed bytes differ", file)
		if c.comp == None {
			continue
		}
		// Cut short.
		_, err = Decompress(file, packed[:len(packed)/2])
		if assert.Error(t, err, "%s cut short", file) {
			assert.Contains(t, err.Error(), file)
		}
		// Compressed well, but not a module.
		_, err = Decompress(file, compressWith(t, c.comp, []byte("just text, no ELF header")))
		if assert.Error(t, err, "%s holding text", file) {
			assert.Contains(t, err.Error(), "not an ELF file")
		}
		// Named .xz but holding something else.
		_, err = Decompress(file, fakeModule)
		assert.Error(t, err, "%s holding a plain module", file)
	}
}

// TestDecompressCLI: files written by the xz and zstd commands as the
// kernel's scripts/Makefile.modinst runs them.
func TestDecompressCLI(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "m.ko")
	require.NoError(t, os.WriteFile(src, fakeModule, 0o644))
	for _, c := range []struct {
		tool string
		args []string
		ext  string
	}{
		{"xz", []string{"--check=crc32", "--lzma2=dict=1MiB", "-k", "-f"}, ".xz"},
		{"zstd", []string{"-q", "-k", "-f", "-T0"}, ".zst"},
		{"gzip", []string{"-n", "-k", "-f"}, ".gz"},
	} {
		if _, err := exec.LookPath(c.tool); err != nil {
			t.Logf("%s not found: skipped", c.tool)
			continue
		}
		out, err := exec.Command(c.tool, append(c.args, src)...).CombinedOutput()
		require.NoError(t, err, "%s: %s", c.tool, out)
		packed, err := os.ReadFile(src + c.ext)
		require.NoError(t, err)
		got, err := Decompress("m.ko"+c.ext, packed)
		require.NoError(t, err, c.tool)
		assert.True(t, bytes.Equal(fakeModule, got), "%s: decompressed bytes differ", c.tool)
	}
}

// TestCompressedNames: modules.dep, modules.alias and modules.softdep as
// depmod writes them for compressed modules; names, paths, lookups and
// the subset keep the suffixes, and Glob matches without them.
func TestCompressedNames(t *testing.T) {
	dir := writeDB(t, map[string]string{
		"modules.dep": `kernel/fs/isofs/isofs.ko.xz: kernel/drivers/cdrom/cdrom.ko.xz
kernel/drivers/cdrom/cdrom.ko.xz:
kernel/drivers/scsi/sr_mod.ko.zst: kernel/drivers/cdrom/cdrom.ko.xz
kernel/drivers/hid/hid-generic.ko.gz: kernel/drivers/hid/hid.ko.gz
kernel/drivers/hid/hid.ko.gz:
kernel/drivers/usb/host/xhci-pci.ko.zst:
kernel/drivers/usb/host/u132-hcd.ko.zst:
`,
		"modules.alias": `alias fs-iso9660 isofs
alias scsi:t-0x05* sr_mod
alias hid:b*g0001v*p* hid_generic
alias pci:v*d*sv*sd*bc0Csc03i30* xhci_pci
`,
		"modules.softdep": "softdep isofs pre: cdrom\n",
	})
	db, err := Load(dir)
	require.NoError(t, err)
	assert.Equal(t, []string{"isofs", "cdrom", "sr_mod", "hid_generic", "hid", "xhci_pci", "u132_hcd"}, db.Modules())
	for name, want := range map[string]string{
		"isofs": "kernel/fs/isofs/isofs.ko.xz", "sr-mod": "kernel/drivers/scsi/sr_mod.ko.zst",
		"hid_generic": "kernel/drivers/hid/hid-generic.ko.gz", "xhci-pci": "kernel/drivers/usb/host/xhci-pci.ko.zst",
	} {
		p, ok := db.Path(name)
		assert.True(t, ok, name)
		assert.Equal(t, want, p, name)
	}
	for _, bad := range []string{"isofs.ko", "isofs.ko.xz", "isofs.xz", "kernel/fs/isofs/isofs.ko.xz"} {
		_, ok := db.Path(bad)
		assert.False(t, ok, "%q is a file name, not a module name", bad)
	}
	files, err := db.Resolve("fs-iso9660", "scsi:t-0x05", "hid:b0003g0001v0000046Dp0000C31C")
	require.NoError(t, err)
	assert.Equal(t, []string{"kernel/drivers/cdrom/cdrom.ko.xz", "kernel/fs/isofs/isofs.ko.xz",
		"kernel/drivers/scsi/sr_mod.ko.zst", "kernel/drivers/hid/hid.ko.gz", "kernel/drivers/hid/hid-generic.ko.gz"}, files)
	assert.Equal(t, []string{"xhci_pci"}, db.MatchAlias("pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30"))

	names, err := db.Glob([]string{"kernel/drivers/usb/host/*", "!kernel/drivers/usb/host/u132-hcd", "kernel/drivers/hid/hid-*", "kernel/fs/*/*"})
	require.NoError(t, err)
	assert.Equal(t, []string{"isofs", "hid_generic", "xhci_pci"}, names)
	_, err = db.Glob([]string{"kernel/[a"})
	assert.Error(t, err, "a malformed pattern")

	// The subset keeps the file names, suffixes and all (TestSubset
	// writes and loads one).
	idx, err := db.Subset([]string{"isofs", "hid_generic"})
	require.NoError(t, err)
	assert.Equal(t, "kernel/fs/isofs/isofs.ko.xz: kernel/drivers/cdrom/cdrom.ko.xz\nkernel/drivers/cdrom/cdrom.ko.xz:\n"+
		"kernel/drivers/hid/hid-generic.ko.gz: kernel/drivers/hid/hid.ko.gz\nkernel/drivers/hid/hid.ko.gz:\n", string(idx["modules.dep"]))
	assert.Equal(t, "alias fs-iso9660 isofs\nalias hid:b*g0001v*p* hid_generic\n", string(idx["modules.alias"]))
	assert.True(t, strings.HasPrefix(string(idx["modules.softdep"]), "softdep isofs pre: cdrom"))
}
