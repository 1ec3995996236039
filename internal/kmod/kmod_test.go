package kmod

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A small database with what the real ones have: dashes in file names,
// compressed modules, built-in modules and their aliases, soft dependencies
// (one that loops back through modules.dep, one that modprobe ignores).
var synthetic = map[string]string{
	"modules.dep": `kernel/a/scsi_common.ko:
kernel/a/scsi_mod.ko: kernel/a/scsi_common.ko
kernel/a/sr-mod.ko.xz: kernel/a/cdrom.ko.zst kernel/a/scsi_mod.ko kernel/a/scsi_common.ko
kernel/a/cdrom.ko.zst:
kernel/a/isofs.ko.gz: kernel/a/cdrom.ko.zst
kernel/c/crc32c-intel.ko:
kernel/c/libcrc32c.ko:
kernel/s/softa.ko:
kernel/s/softb.ko: kernel/s/softa.ko
kernel/d/ata_piix.ko: kernel/d/libata.ko kernel/a/scsi_mod.ko kernel/a/scsi_common.ko
kernel/d/libata.ko: kernel/a/scsi_mod.ko kernel/a/scsi_common.ko
kernel/d/ata_generic.ko: kernel/d/libata.ko kernel/a/scsi_mod.ko kernel/a/scsi_common.ko
`,
	"modules.alias": `# Aliases extracted from modules themselves.
alias fs-iso9660 isofs
alias crc32c crc32c_intel
alias pci:v00008086d00007010sv*sd*bc*sc*i* ata_piix
alias pci:v*d*sv*sd*bc01sc01i* ata_generic
alias scsi:t-0x05* sr_mod
`,
	"modules.softdep": `# Soft dependencies extracted from modules themselves.
softdep libcrc32c pre: crc32c
softdep softa pre: softb post: nothing-here
softdep isofs gcm
`,
	"modules.builtin":         "kernel/crypto/crc32c_generic.ko\nkernel/fs/ext4/ext4.ko\n",
	"modules.builtin.modinfo": "ext4.alias=fs-ext4\x00ext4.license=GPL\x00crc32c_generic.alias=crc32c\x00",
}

func writeDB(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644))
	}
	return dir
}

func TestResolve(t *testing.T) {
	db, err := Load(writeDB(t, synthetic))
	require.NoError(t, err)
	for _, tc := range []struct {
		names []string
		want  []string
	}{
		{[]string{"sr-mod", "isofs"}, []string{"kernel/a/scsi_common.ko", "kernel/a/scsi_mod.ko", "kernel/a/cdrom.ko.zst", "kernel/a/sr-mod.ko.xz", "kernel/a/isofs.ko.gz"}},
		{[]string{"isofs", "sr_mod", "isofs"}, []string{"kernel/a/cdrom.ko.zst", "kernel/a/isofs.ko.gz", "kernel/a/scsi_common.ko", "kernel/a/scsi_mod.ko", "kernel/a/sr-mod.ko.xz"}},
		{[]string{"ext4", "fs-ext4", "crc32c_generic"}, []string{}},
		{[]string{"fs-iso9660"}, []string{"kernel/a/cdrom.ko.zst", "kernel/a/isofs.ko.gz"}},
		// An alias stands for every module it matches.
		{[]string{"pci:v00008086d00007010sv00001AF4sd00001100bc01sc01i80"}, []string{"kernel/a/scsi_common.ko", "kernel/a/scsi_mod.ko", "kernel/d/libata.ko", "kernel/d/ata_generic.ko", "kernel/d/ata_piix.ko"}},
		// The soft dependency goes first, found through its alias.
		{[]string{"libcrc32c"}, []string{"kernel/c/crc32c-intel.ko", "kernel/c/libcrc32c.ko"}},
		// softb needs softa: it cannot go first, so it comes after.
		{[]string{"softa"}, []string{"kernel/s/softa.ko", "kernel/s/softb.ko"}},
	} {
		got, err := db.Resolve(tc.names...)
		require.NoError(t, err, tc.names)
		assert.Equal(t, tc.want, append([]string{}, got...), tc.names)
	}

	_, err = db.Resolve("isofs", "nope", "ext4", "bad-one")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"nope", "bad-one"`)

	assert.True(t, db.Builtin("crc32c-generic"))
	assert.False(t, db.Builtin("isofs"))
	p, ok := db.Path("sr_mod")
	assert.True(t, ok)
	assert.Equal(t, "kernel/a/sr-mod.ko.xz", p)
	_, ok = db.Path("ext4")
	assert.False(t, ok)
}

func TestMatchAlias(t *testing.T) {
	db, err := Load(writeDB(t, synthetic))
	require.NoError(t, err)
	for alias, want := range map[string][]string{
		"crc32c":     {"crc32c_intel"}, // the built-in alias counts only without a loadable one
		"fs-ext4":    {"ext4"},
		"fs_iso9660": {"isofs"}, // '-' and '_' are equal
		"pci:v00008086d00007010sv00001AF4sd00001100bc01sc01i80": {"ata_generic", "ata_piix"},
		"pci:v00008086d00007010sv00001AF4sd00001100bc01sc06i80": {"ata_piix"},
		"scsi:t-0x05":    {"sr_mod"},
		"scsi:t_0x05xyz": {"sr_mod"},
		"pci:v00008086":  nil,
		"":               nil,
		"fs-iso9660x":    nil,
		"a]b":            nil,
	} {
		assert.Equal(t, want, db.MatchAlias(alias), alias)
	}
}

func TestLoadErrors(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none"))
	assert.True(t, errors.Is(err, fs.ErrNotExist), "%v", err)

	for name, files := range map[string]map[string]string{
		"modules.dep:2":   {"modules.dep": "a.ko:\nb.ko c.ko\n"},
		"has no entry":    {"modules.dep": "a.ko: b.ko\n"},
		"loop":            {"modules.dep": "a.ko: b.ko\nb.ko: a.ko\n"},
		"modules.alias:1": {"modules.dep": "a.ko:\n", "modules.alias": "alias x\n"},
		"modules.softdep": {"modules.dep": "a.ko:\n", "modules.softdep": "pre: x\n"},
	} {
		_, err := Load(writeDB(t, files))
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), name)
	}

	// Only modules.dep is required.
	db, err := Load(writeDB(t, map[string]string{"modules.dep": "kernel/x-y.ko:\n"}))
	require.NoError(t, err)
	got, err := db.Resolve("x_y")
	require.NoError(t, err)
	assert.Equal(t, []string{"kernel/x-y.ko"}, got)
	assert.Nil(t, db.MatchAlias("x"))
}

func TestSubset(t *testing.T) {
	src := writeDB(t, synthetic)
	db, err := Load(src)
	require.NoError(t, err)
	for _, p := range db.Modules() {
		f, _ := db.Path(p)
		require.NoError(t, os.MkdirAll(filepath.Join(src, filepath.Dir(f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(src, f), []byte("module "+p), 0o644))
	}
	names := []string{"sr_mod", "libcrc32c", "fs-ext4"}
	files, err := db.Subset(names)
	require.NoError(t, err)
	assert.Equal(t, "kernel/a/scsi_common.ko:\nkernel/a/scsi_mod.ko: kernel/a/scsi_common.ko\n"+
		"kernel/a/sr-mod.ko.xz: kernel/a/cdrom.ko.zst kernel/a/scsi_mod.ko kernel/a/scsi_common.ko\n"+
		"kernel/a/cdrom.ko.zst:\nkernel/c/crc32c-intel.ko:\nkernel/c/libcrc32c.ko:\n", string(files["modules.dep"]))
	assert.Equal(t, "alias crc32c crc32c_intel\nalias scsi:t-0x05* sr_mod\n", string(files["modules.alias"]))
	assert.Equal(t, "softdep libcrc32c pre: crc32c\n", string(files["modules.softdep"]))
	assert.Equal(t, synthetic["modules.builtin"], string(files["modules.builtin"]))

	dst := filepath.Join(t.TempDir(), "lib/modules/x")
	require.NoError(t, db.WriteSubset(dst, names))
	sub, err := Load(dst)
	require.NoError(t, err)
	want, err := db.Resolve(names...)
	require.NoError(t, err)
	got, err := sub.Resolve(names...)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	for _, f := range got {
		data, err := os.ReadFile(filepath.Join(dst, f))
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(string(data), "module "), f)
	}
	assert.Equal(t, []string{"ext4"}, sub.MatchAlias("fs-ext4"))
	_, err = sub.Resolve("isofs")
	assert.Error(t, err)
}
