package kmod_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/vmtest"
	"github.com/nixlive/nixlive/internal/kmod"
	"github.com/nixlive/nixlive/internal/kmod/kmodtest"
)

// TestRealCompressed: the cloud kernel's storage and file system modules
// compressed as a distribution ships them (xz with CRC32, zstd) and
// indexed by kmod's depmod: the database reads the suffixed names, resolves
// and matches as for the plain modules, and every file decompresses to the
// plain module, byte for byte.
func TestRealCompressed(t *testing.T) {
	k := vmtest.KernelAndModules(t)
	if _, err := kmodtest.Depmod(); err != nil {
		t.Skip(err)
	}
	plain, err := kmod.Load(k.Modules)
	require.NoError(t, err)
	patterns := []string{"kernel/fs/isofs/*", "kernel/fs/squashfs/*", "kernel/fs/overlayfs/*",
		"kernel/drivers/block/loop", "kernel/drivers/scsi/sr_mod", "kernel/drivers/ata/ata_piix"}
	names := []string{"isofs", "squashfs", "overlay", "loop", "sr_mod", "ata_piix"}
	want, err := plain.Resolve(names...)
	require.NoError(t, err)
	for _, ext := range []string{".xz", ".zst"} {
		t.Run(strings.TrimPrefix(ext, "."), func(t *testing.T) {
			t.Parallel()
			dir, err := kmodtest.Recompress(t.Context(), k.Modules, t.TempDir(), ext, patterns)
			require.NoError(t, err)
			db, err := kmod.Load(dir)
			require.NoError(t, err)
			got, err := db.Resolve(names...)
			require.NoError(t, err)
			require.Len(t, got, len(want))
			for i := range want {
				assert.Equal(t, want[i]+ext, got[i], "the load order, with suffixes")
			}
			// By alias, as coldplug finds them: a CD drive, PIIX's IDE.
			assert.Equal(t, []string{"sr_mod"}, db.MatchAlias("scsi:t-0x05"))
			assert.Equal(t, []string{"ata_piix"}, db.MatchAlias("pci:v00008086d00007010sv00001AF4sd00001100bc01sc01i80"))
			assert.Contains(t, db.MatchAlias("fs-squashfs"), "squashfs")
			for i, f := range got {
				packed, err := os.ReadFile(filepath.Join(dir, f))
				require.NoError(t, err)
				orig, err := os.ReadFile(filepath.Join(k.Modules, want[i]))
				require.NoError(t, err)
				img, err := kmod.Decompress(f, packed)
				require.NoError(t, err)
				assert.True(t, bytes.Equal(orig, img), "%s decompresses to %s", f, want[i])
				assert.Less(t, len(packed), len(orig), "%s is compressed", f)
			}
		})
	}
}
