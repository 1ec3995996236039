package qemu_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/qemu"
)

func TestQEMUArgs(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "a.img")
	vmlinuz := filepath.Join(dir, "vmlinuz")
	for _, f := range []string{img, vmlinuz} {
		require.NoError(t, os.WriteFile(f, nil, 0o644))
	}
	args, err := qemu.Options{
		Kernel:    vmlinuz,
		Append:    "console=ttyS0 panic=-1",
		Disks:     []qemu.Disk{{Path: img}, {Path: img, Virtio: true, Snapshot: true}, {Path: img, Snapshot: true}},
		Firmware:  qemu.OVMF,
		MemoryMB:  512,
		ExtraArgs: []string{"-S"},
	}.Args()
	require.NoError(t, err)
	for _, want := range [][]string{
		{"-accel", "tcg"},
		{"-M", "pc"},
		{"-m", "512"},
		{"-no-reboot"},
		{"-nic", "none"},
		{"-serial", "stdio"},
		{"-bios", qemu.DefaultOVMF},
		{"-kernel", vmlinuz},
		{"-append", "console=ttyS0 panic=-1"},
		{"-drive", "file=" + img + ",format=raw,if=ide,media=disk,index=0"},
		{"-drive", "file=" + img + ",format=raw,if=virtio,snapshot=on"},
		{"-drive", "file=" + img + ",format=raw,if=ide,media=disk,index=1,snapshot=on"},
		{"-S"},
	} {
		assert.True(t, containsSeq(args, want), "%q in %q", want, args)
	}
	assert.False(t, slices.Contains(args, "-initrd"))

	args, err = qemu.Options{CDROM: img}.Args()
	require.NoError(t, err)
	assert.True(t, containsSeq(args, []string{"-cdrom", img}))
	assert.True(t, containsSeq(args, []string{"-m", "1024"}), "default memory")
	assert.False(t, slices.Contains(args, "-bios"), "SeaBIOS is QEMU's default")

	for _, bad := range []qemu.Options{
		{Kernel: filepath.Join(dir, "missing")},
		{Initrd: img},
		{Disks: []qemu.Disk{{Path: img}, {Path: img}, {Path: img}}},
		{Firmware: qemu.Firmware(7)},
	} {
		_, err := bad.Args()
		assert.Error(t, err, "%+v", bad)
	}
}

func containsSeq(s, seq []string) bool {
	for i := 0; i+len(seq) <= len(s); i++ {
		if slices.Equal(s[i:i+len(seq)], seq) {
			return true
		}
	}
	return false
}

func TestKernelSkipsWithReason(t *testing.T) {
	t.Setenv(qemu.KernelDirEnv, t.TempDir())
	_, err := qemu.FindKernel()
	require.Error(t, err)
	assert.True(t, errors.Is(err, os.ErrNotExist), "%v", err)
}
