package testinit_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/u-root/u-root/pkg/cpio"

	"github.com/nixlive/nixlive/internal/boottest/testinit"
)

func TestInitrdIsReproducible(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.cpio.gz"), filepath.Join(dir, "b.cpio.gz")
	require.NoError(t, testinit.BuildInitrd(t.Context(), a))
	require.NoError(t, testinit.BuildInitrd(t.Context(), b))
	da, err := os.ReadFile(a)
	require.NoError(t, err)
	db, err := os.ReadFile(b)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(da, db), "two builds differ")

	zr, err := gzip.NewReader(bytes.NewReader(da))
	require.NoError(t, err)
	assert.True(t, zr.ModTime.IsZero() || zr.ModTime.Unix() == 0, "gzip mtime %v", zr.ModTime)
	assert.Empty(t, zr.Name)
	raw, err := io.ReadAll(zr)
	require.NoError(t, err)

	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	require.NoError(t, err)
	var names []string
	for _, r := range recs {
		names = append(names, r.Name)
		assert.Zero(t, r.MTime, r.Name)
		assert.Zero(t, r.UID, r.Name)
		assert.Zero(t, r.GID, r.Name)
		assert.NotZero(t, r.Ino, r.Name)
		if r.Name == "init" {
			assert.Equal(t, uint64(cpio.S_IFREG|0o755), r.Mode)
			head := make([]byte, 4)
			_, err := r.ReadAt(head, 0)
			require.NoError(t, err)
			assert.Equal(t, "\x7fELF", string(head))
		}
	}
	assert.Equal(t, []string{".", "dev", "proc", "sys", "init"}, names)
	assert.Contains(t, string(raw), cpio.Trailer, "trailer record")
}

func TestInitrdPlain(t *testing.T) {
	out := filepath.Join(t.TempDir(), "initrd.cpio")
	require.NoError(t, testinit.BuildInitrd(t.Context(), out))
	raw, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, "070701", string(raw[:6]), "newc magic")
	assert.Zero(t, len(raw)%4)
}

func TestResolveModules(t *testing.T) {
	dir := t.TempDir()
	dep := `kernel/drivers/scsi/scsi_common.ko:
kernel/drivers/scsi/scsi_mod.ko: kernel/drivers/scsi/scsi_common.ko
kernel/drivers/ata/libata.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/ata/ata_piix.ko: kernel/drivers/ata/libata.ko kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko
kernel/drivers/cdrom/cdrom.ko:
kernel/drivers/scsi/sr_mod.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko kernel/drivers/cdrom/cdrom.ko
kernel/fs/xfs/xfs.ko.zst:
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644))
	got, err := testinit.ResolveModules(dir, []string{"ata-piix", "sr_mod"})
	require.NoError(t, err)
	assert.Equal(t, []string{
		"kernel/drivers/scsi/scsi_common.ko",
		"kernel/drivers/scsi/scsi_mod.ko",
		"kernel/drivers/ata/libata.ko",
		"kernel/drivers/ata/ata_piix.ko",
		"kernel/drivers/cdrom/cdrom.ko",
		"kernel/drivers/scsi/sr_mod.ko",
	}, got)

	_, err = testinit.ResolveModules(dir, []string{"nosuch"})
	assert.ErrorContains(t, err, "nosuch")
	_, err = testinit.ResolveModules(dir, []string{"xfs"})
	assert.ErrorContains(t, err, "compressed")
}
