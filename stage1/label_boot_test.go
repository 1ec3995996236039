//go:build linux

package stage1_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/livetest"
	"github.com/nixlive/nixlive/internal/boottest/vmtest"
	"github.com/nixlive/nixlive/internal/copyfile"
)

// spaceVolumeID is a volume ID NixOS allows that root=LABEL= cannot carry:
// the menus give it as root=/dev/disk/by-label/ with udev's \x20.
const spaceVolumeID = "nixlive test 25.05"

// bootSpaceVolumeID boots, from a CD through each boot loader's default
// entry (isolinux on SeaBIOS, GRUB on OVMF), an ISO whose volume ID has
// spaces: stage 1 finds the medium by it and stage 2 runs.
func bootSpaceVolumeID(t *testing.T, env *livetest.Env, sum *summary) {
	env.Start(livetest.Store, livetest.Initrd)
	var spec map[string]any
	require.NoError(t, json.Unmarshal(env.Spec(t, env.Path(t, livetest.Initrd)), &spec))
	spec["volumeID"] = spaceVolumeID
	data, err := json.Marshal(spec)
	require.NoError(t, err)
	iso := env.BuildISO(t, "space-label.iso", data)
	for _, tc := range []struct {
		name string
		fw   vmtest.Firmware
	}{
		{"SeaBIOS", vmtest.SeaBIOS},
		{"OVMF", vmtest.OVMF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.fw == vmtest.OVMF {
				vmtest.HaveOVMF(t)
			}
			r := bootToPass(t, sum, vmtest.Options{Name: "space-label-" + tc.name, Firmware: tc.fw, CDROM: iso}, liveChecks, cdSteps)
			_, msg, ok := livetest.Stage1Log(r.console, "medium found")
			if assert.True(t, ok, "stage 1 logs where it found the medium") {
				assert.Contains(t, msg, spaceVolumeID)
			}
			if strings.Contains(r.console, "Kernel command line:") {
				assert.Contains(t, r.console, `root=/dev/disk/by-label/nixlive\x20test\x2025.05`, "the kernel line carries the escaped label")
			}
		})
	}
}

// damagedStoreImage is a copy of the test ISO whose nix-store.squashfs
// has its first 4 KiB (the superblock and what follows) changed by damage.
func damagedStoreImage(t *testing.T, env *livetest.Env, damage func(head []byte)) string {
	t.Helper()
	iso := env.Path(t, livetest.ISO)
	off, _, err := livetest.FileExtent(iso, "nix-store.squashfs")
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), "damaged.iso")
	require.NoError(t, copyfile.Copy(iso, out, 0o644))
	f, err := os.OpenFile(out, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	head := make([]byte, 4096)
	_, err = f.ReadAt(head, off)
	require.NoError(t, err)
	damage(head)
	_, err = f.WriteAt(head, off)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return out
}
