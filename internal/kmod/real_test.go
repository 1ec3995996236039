package kmod

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/vmtest"
)

// Tests against the module tree of Debian's cloud kernel, which
// scripts/kernel.sh unpacks (make test runs it).

func realDB(t testing.TB) (*DB, vmtest.KernelFiles) {
	t.Helper()
	k := vmtest.KernelAndModules(t)
	db, err := Load(k.Modules)
	require.NoError(t, err)
	return db, k
}

// checkOrder fails unless every module in files comes after all it needs.
func checkOrder(t *testing.T, db *DB, files []string) {
	t.Helper()
	at := map[string]int{}
	for i, f := range files {
		at[nameOf(f)] = i
	}
	require.Len(t, at, len(files), "a module twice in %v", files)
	for i, f := range files {
		for _, d := range db.deps[nameOf(f)] {
			j, ok := at[d]
			assert.True(t, ok && j < i, "%s needs %s, at %d in %v", f, d, j, files)
		}
	}
}

func TestRealResolve(t *testing.T) {
	db, _ := realDB(t)
	files, err := db.Resolve("sr_mod", "isofs", "ata_piix", "squashfs", "loop", "overlay")
	require.NoError(t, err)
	var names []string
	for _, f := range files {
		names = append(names, nameOf(f))
	}
	// The modules a QEMU -cdrom boot needs (ata_piix, sr_mod, isofs,
	// squashfs, loop, overlay), by request order, each after its
	// dependencies in the order modprobe loads them.
	assert.Equal(t, []string{"cdrom", "scsi_common", "scsi_mod", "sr_mod", "isofs", "libata", "ata_piix", "squashfs", "loop", "overlay"}, names)
	checkOrder(t, db, files)

	// Every module of the tree resolves, in a valid order.
	for _, m := range db.Modules() {
		files, err := db.Resolve(m)
		require.NoError(t, err, m)
		checkOrder(t, db, files)
		p, _ := db.Path(m)
		assert.Contains(t, files, p)
		if len(db.soft[m].post) == 0 {
			assert.Equal(t, p, files[len(files)-1], "the module comes last")
		}
	}

	// What the cloud kernel builds in needs no file.
	for _, m := range []string{"ext4", "crc32c_generic", "fs-ext4", "binfmt_script"} {
		files, err := db.Resolve(m)
		require.NoError(t, err, m)
		assert.Empty(t, files, m)
	}
	assert.True(t, db.Builtin("ext4"))
	assert.True(t, db.Builtin("libblake2s-x86_64"))
	assert.False(t, db.Builtin("isofs"))
	files, err = db.Resolve("iso9660") // an alias of isofs
	require.NoError(t, err)
	assert.Equal(t, []string{"kernel/drivers/cdrom/cdrom.ko", "kernel/fs/isofs/isofs.ko"}, files)
	_, err = db.Resolve("isofs", "iso9661", "ext4")
	assert.ErrorContains(t, err, `no module "iso9661" in `)
}

func TestRealMatchAlias(t *testing.T) {
	db, _ := realDB(t)
	// QEMU's PIIX3 IDE controller (-M pc), and a virtio block device.
	assert.Contains(t, db.MatchAlias("pci:v00008086d00007010sv00001AF4sd00001100bc01sc01i80"), "ata_piix")
	assert.Equal(t, []string{"virtio_blk"}, db.MatchAlias("virtio:d00000002v00001AF4"))
	assert.Equal(t, []string{"isofs"}, db.MatchAlias("fs-iso9660"))
	assert.Equal(t, []string{"ext4"}, db.MatchAlias("fs-ext4"))
	assert.Equal(t, []string{"virtio_pci"}, db.MatchAlias("pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00"))
	assert.Empty(t, db.MatchAlias("pci:v0000FFFFd0000FFFFsv0000FFFFsd0000FFFFbcFFscFFiFF"))
}

// modprobe runs the real modprobe on the tree, or skips; ok is its success.
func modprobe(t *testing.T, k vmtest.KernelFiles, args ...string) (out string, ok bool) {
	t.Helper()
	bin, err := exec.LookPath("modprobe")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/modprobe"); err != nil {
			t.Skip("modprobe not found: install kmod (make test does)")
		}
	}
	base := strings.TrimSuffix(realModules(t, k), "/lib/modules/"+k.Version)
	raw, err := exec.Command(bin, append([]string{"-d", base, "-S", k.Version}, args...)...).Output()
	return string(raw), err == nil
}

// realModules is the module directory with symbolic links resolved; it
// skips unless it is BASE/lib/modules/VERSION, as modprobe -d wants.
func realModules(t *testing.T, k vmtest.KernelFiles) string {
	r, err := filepath.EvalSymlinks(k.Modules)
	require.NoError(t, err)
	if !strings.HasSuffix(r, "/lib/modules/"+k.Version) {
		t.Skipf("%s is not .../lib/modules/%s: modprobe -d cannot read it", r, k.Version)
	}
	return r
}

// TestAgainstModprobe compares MatchAlias with modprobe --resolve-alias for
// strings made from a sample of the real aliases, and Resolve with
// modprobe --show-depends for a sample of the modules.
func TestAgainstModprobe(t *testing.T) {
	if testing.Short() {
		t.Skip("runs modprobe a few hundred times")
	}
	db, k := realDB(t)
	var samples []string
	for i, a := range db.aliases.list {
		if i%11 == 0 {
			samples = append(samples, instantiate(a.pattern, ""), instantiate(a.pattern, "7a"))
		}
	}
	samples = append(samples, "pci:v00008086d00007010sv00001AF4sd00001100bc01sc01i80", "virtio:d00000002v00001AF4", "nothing-at-all")
	for _, s := range samples {
		out, ok := modprobe(t, k, "-R", s)
		var want []string
		if ok {
			want = strings.Fields(out)
			slices.Sort(want)
			want = slices.Compact(want)
		}
		// modprobe -R tries a module name first, then aliases.
		got := db.MatchAlias(s)
		if _, ok := db.Path(s); ok || (len(got) == 0 && db.Builtin(s)) {
			got = []string{Normalize(s)}
		}
		assert.Equal(t, want, got, "alias %q", s)
	}

	mods := db.Modules()
	for i := 0; i < len(mods); i += 17 {
		out, ok := modprobe(t, k, "--show-depends", mods[i])
		require.True(t, ok, mods[i])
		var want []string
		sc := bufio.NewScanner(bytes.NewReader([]byte(out)))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "insmod" {
				rel, err := filepath.Rel(realModules(t, k), f[1])
				require.NoError(t, err)
				want = append(want, rel)
			}
		}
		got, err := db.Resolve(mods[i])
		require.NoError(t, err)
		assert.ElementsMatch(t, slices.Compact(want), got, mods[i])
	}
}

// instantiate makes a string that a pattern matches: each * becomes star,
// each ? a '0', each bracket its first member.
func instantiate(p, star string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '*':
			b.WriteString(star)
		case '?':
			b.WriteByte('0')
		case '[':
			set, n, ok := bracket(p[i:])
			if !ok {
				b.WriteByte('[')
				continue
			}
			for c := 0; c < 256; c++ {
				if set.has(byte(c)) {
					b.WriteByte(byte(c))
					break
				}
			}
			i += n - 1
		case '\\':
			if i+1 < len(p) {
				i++
			}
			b.WriteByte(p[i])
		default:
			b.WriteByte(p[i])
		}
	}
	return b.String()
}

// modaliases is a boot's worth of device modaliases: 100 PCI, virtio, ACPI,
// CPU and platform devices, a few of them matched.
func modaliases() []string {
	out := []string{
		"pci:v00008086d00007010sv00001AF4sd00001100bc01sc01i80",
		"pci:v00008086d00007000sv00001AF4sd00001100bc06sc01i00",
		"pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00",
		"pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00",
		"virtio:d00000002v00001AF4",
		"virtio:d00000001v00001AF4",
		"cpu:type:x86,ven0000fam0006mod003F:feature:,0000,0001,0002,0003,0004,0005,0006,0007,0008,0009,000B,000C,000D,000E,000F,0010,0011,0013,0017,0018,0019,001A,001B,001C,001D,001F,002B,0034,003A,003B,003D,0068,006F,0070,0072,0074,0075,0076,0080,0081,0089,008C,008D,0091,0093,0094,0095,0096,0097,0098,0099,009A,009B,009C,009D,009E,009F,00C0,00C5,00E1,00E3,00E4,00E6,00E7,00EB,00EC,00F0,00F1,00F3,00F5,00F6,00F9,00FA,00FB,00FD,00FF,0120,0123,0125,0127,0128,0129,012A,012D,0140,0160,0161,0165,01C0,01C1,01C2,01C4,01C5,01C6,024A,025A,025B,025C,025F",
		"acpi:PNP0A03:",
		"acpi:PNP0303:",
		"acpi:QEMU0002:",
		"platform:serial8250",
		"platform:i8042",
		"input:b0011v0001p0001eAB41-e0,1,4,11,14,k71,72,73,74,75,76,77,79,7A,7B,7C,7D,7E,7F,80,8C,8E,8F,9B,9C,9D,9E,9F,A3,A4,A5,A6,AC,AD,B7,B8,B9,D9,E2,ram4,l0,1,2,sfw",
		"scsi:t-0x05",
		"serio:ty01pr00id00ex00",
	}
	for i := len(out); i < 100; i++ {
		out = append(out, "pci:v0000"+strings.Repeat("ABCD", 1)+"d0000"+string(rune('A'+i%26))+"00"+string(rune('0'+i%10))+"sv00001AF4sd00001100bc0"+string(rune('0'+i%8))+"sc00i00")
	}
	return out
}

func TestRealMatchAliasSpeed(t *testing.T) {
	db, _ := realDB(t)
	all := modaliases()
	start := time.Now()
	n := 0
	for _, m := range all {
		n += len(db.MatchAlias(m))
	}
	el := time.Since(start)
	t.Logf("%d modaliases against %d aliases (%d literal prefixes of %d lengths): %d matches in %v",
		len(all), len(db.aliases.list), len(db.aliases.byPrefix), len(db.aliases.lengths), n, el)
	assert.Less(t, el, 20*time.Millisecond)
}

func BenchmarkLoad(b *testing.B) {
	k := vmtest.KernelAndModules(b)
	for b.Loop() {
		if _, err := Load(k.Modules); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMatchAlias matches a boot's worth (100) of modaliases.
func BenchmarkMatchAlias(b *testing.B) {
	db, _ := realDB(b)
	all := modaliases()
	for b.Loop() {
		for _, m := range all {
			db.MatchAlias(m)
		}
	}
}

func BenchmarkResolve(b *testing.B) {
	db, _ := realDB(b)
	for b.Loop() {
		if _, err := db.Resolve("sr_mod", "isofs", "ata_piix", "squashfs", "loop", "overlay", "virtio_blk", "virtio_pci"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadSubset loads what an initrd carries: the -cdrom and virtio
// modules and their dependencies (as stage 1 does at boot).
func BenchmarkLoadSubset(b *testing.B) {
	db, _ := realDB(b)
	dir := b.TempDir()
	if err := db.WriteSubset(dir, []string{"sr_mod", "isofs", "ata_piix", "squashfs", "loop", "overlay", "virtio_blk", "virtio_pci", "virtio_scsi"}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}
