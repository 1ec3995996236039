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

// The command lines of SeaBIOS and OVMF, whole: OVMFSecureBoot's q35
// must not change them.
func TestQEMUArgsUnchanged(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "a.img")
	iso := filepath.Join(dir, "cd.iso")
	vmlinuz := filepath.Join(dir, "vmlinuz")
	initrd := filepath.Join(dir, "initrd")
	for _, f := range []string{img, iso, vmlinuz, initrd} {
		require.NoError(t, os.WriteFile(f, nil, 0o644))
	}
	args, err := qemu.Options{
		Kernel:    vmlinuz,
		Initrd:    initrd,
		Append:    "console=ttyS0",
		CDROM:     iso,
		Disks:     []qemu.Disk{{Path: img, Snapshot: true}, {Path: img, Virtio: true}, {Path: img}},
		Firmware:  qemu.OVMF,
		CPUs:      2,
		CPU:       "max",
		ExtraArgs: []string{"-S"},
	}.Args()
	require.NoError(t, err)
	assert.Equal(t, []string{
		"-accel", "tcg", "-M", "pc", "-m", "1024", "-smp", "2", "-cpu", "max",
		"-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot", "-nic", "none",
		"-bios", qemu.DefaultOVMF,
		"-kernel", vmlinuz, "-initrd", initrd, "-cdrom", iso, "-append", "console=ttyS0",
		"-drive", "file=" + img + ",format=raw,if=ide,media=disk,index=0,snapshot=on",
		"-drive", "file=" + img + ",format=raw,if=virtio",
		"-drive", "file=" + img + ",format=raw,if=ide,media=disk,index=1",
		"-S",
	}, args)

	args, err = qemu.Options{CDROM: iso, FirmwarePath: img}.Args()
	require.NoError(t, err)
	assert.Equal(t, []string{
		"-accel", "tcg", "-M", "pc", "-m", "1024", "-smp", "1",
		"-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot", "-nic", "none",
		"-bios", img, "-cdrom", iso,
	}, args)
}

// OVMFSecureBoot: the machine of the other firmwares (-M pc, its IDE
// layout), the firmware as two pflash drives, the code read-only.
func TestQEMUArgsSecureBoot(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "a.img")
	iso := filepath.Join(dir, "cd.iso")
	code := filepath.Join(dir, "CODE.fd")
	template := filepath.Join(dir, "VARS.fd")
	vars := filepath.Join(dir, "vars-copy.fd")
	vmlinuz := filepath.Join(dir, "vmlinuz")
	for _, f := range []string{img, iso, code, template, vars, vmlinuz} {
		require.NoError(t, os.WriteFile(f, nil, 0o644))
	}
	args, err := qemu.Options{
		Kernel:       vmlinuz,
		Append:       "console=ttyS0",
		CDROM:        iso,
		Disks:        []qemu.Disk{{Path: img}, {Path: img, Virtio: true, Snapshot: true}, {Path: img, Snapshot: true}},
		Firmware:     qemu.OVMFSecureBoot,
		FirmwarePath: code,
		FirmwareVars: template,
		MemoryMB:     512,
		ExtraArgs:    []string{"-S"},
	}.ArgsWithVars(vars)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"-accel", "tcg", "-M", "q35,smm=on", "-m", "512", "-smp", "1",
		"-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot", "-nic", "none",
		"-global", "driver=cfi.pflash01,property=secure,value=on",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + code,
		"-drive", "if=pflash,format=raw,unit=1,file=" + vars,
		"-kernel", vmlinuz, "-append", "console=ttyS0",
		// The IDE disks, then the CD-ROM, on virtio-scsi: /dev/sda,
		// /dev/sdb, /dev/sr0 in the guest.
		"-device", "virtio-scsi-pci,id=scsi",
		"-drive", "if=none,id=scsi0,format=raw,media=disk,file=" + img,
		"-device", "scsi-hd,drive=scsi0,bus=scsi.0,scsi-id=0",
		"-drive", "if=none,id=scsi1,format=raw,media=disk,file=" + img + ",snapshot=on",
		"-device", "scsi-hd,drive=scsi1,bus=scsi.0,scsi-id=1",
		"-drive", "if=none,id=scsi2,format=raw,media=cdrom,file=" + iso + ",readonly=on",
		"-device", "scsi-cd,drive=scsi2,bus=scsi.0,scsi-id=2",
		"-drive", "file=" + img + ",format=raw,if=virtio,snapshot=on",
		"-S",
	}, args)

	missing := filepath.Join(dir, "missing")
	for name, bad := range map[string]struct {
		opts qemu.Options
		vars string
	}{
		"no vars copy":       {qemu.Options{Firmware: qemu.OVMFSecureBoot, FirmwarePath: code, FirmwareVars: template}, ""},
		"missing vars copy":  {qemu.Options{Firmware: qemu.OVMFSecureBoot, FirmwarePath: code, FirmwareVars: template}, missing},
		"missing code":       {qemu.Options{Firmware: qemu.OVMFSecureBoot, FirmwarePath: missing, FirmwareVars: template}, vars},
		"missing template":   {qemu.Options{Firmware: qemu.OVMFSecureBoot, FirmwarePath: code, FirmwareVars: missing}, vars},
		"comma in vars path": {qemu.Options{Firmware: qemu.OVMFSecureBoot, FirmwarePath: code, FirmwareVars: template}, commaFile(t)},
		"vars for OVMF":      {qemu.Options{Firmware: qemu.OVMF, FirmwareVars: template}, ""},
		"vars copy for OVMF": {qemu.Options{Firmware: qemu.OVMF}, vars},
		"vars for SeaBIOS":   {qemu.Options{FirmwareVars: template}, ""},
	} {
		_, err := bad.opts.ArgsWithVars(bad.vars)
		assert.Error(t, err, name)
	}
	_, err = qemu.Options{Firmware: qemu.OVMFSecureBoot, FirmwarePath: code, FirmwareVars: template}.Args()
	assert.ErrorContains(t, err, "Start makes one", "Args without the copy says who makes it")
	_, err = qemu.Options{Firmware: qemu.OVMFSecureBoot, FirmwarePath: missing, FirmwareVars: template}.ArgsWithVars(vars)
	assert.ErrorContains(t, err, "OVMF-SecureBoot code: stat "+missing)
	_, err = qemu.Options{Firmware: qemu.OVMFSecureBoot, FirmwarePath: code, FirmwareVars: missing}.ArgsWithVars(vars)
	assert.ErrorContains(t, err, "OVMF-SecureBoot variable store template: stat "+missing)
}

func commaFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "a,b.fd")
	require.NoError(t, os.WriteFile(p, nil, 0o644))
	return p
}

// The defaults are Debian's ovmf package's files.
func TestQEMUArgsSecureBootDefaults(t *testing.T) {
	for _, f := range []string{qemu.SecureBootCode, qemu.MicrosoftVars} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("%s not available: install ovmf (make test does)", f)
		}
	}
	vars := filepath.Join(t.TempDir(), "vars.fd")
	require.NoError(t, os.WriteFile(vars, nil, 0o600))
	args, err := qemu.Options{Firmware: qemu.OVMFSecureBoot}.ArgsWithVars(vars)
	require.NoError(t, err)
	assert.True(t, containsSeq(args, []string{
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + qemu.SecureBootCode,
		"-drive", "if=pflash,format=raw,unit=1,file=" + vars,
	}), "%q", args)
	assert.Equal(t, "OVMF-SecureBoot", qemu.OVMFSecureBoot.String())
}

// Start fails before running QEMU when the firmware files are missing,
// and leaves no copy of the variable store behind.
func TestStartSecureBootMissingFirmware(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dir := t.TempDir()
	code := filepath.Join(dir, "CODE.fd")
	template := filepath.Join(dir, "VARS.fd")
	for _, f := range []string{code, template} {
		require.NoError(t, os.WriteFile(f, []byte("x"), 0o644))
	}
	missing := filepath.Join(dir, "missing")
	_, err := qemu.Start(qemu.Options{Name: "sb", Firmware: qemu.OVMFSecureBoot, FirmwarePath: code, FirmwareVars: missing})
	assert.ErrorContains(t, err, "sb: OVMF-SecureBoot variable store template: open "+missing)
	assert.ErrorContains(t, err, "install ovmf")
	_, err = qemu.Start(qemu.Options{Name: "sb", Firmware: qemu.OVMFSecureBoot, FirmwarePath: missing, FirmwareVars: template})
	assert.ErrorContains(t, err, "sb: OVMF-SecureBoot code: stat "+missing)
	_, err = qemu.Start(qemu.Options{Name: "sb", Firmware: qemu.OVMFSecureBoot, FirmwarePath: code, FirmwareVars: template,
		Kernel: missing})
	assert.ErrorContains(t, err, "-kernel")
	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, left, "copies of the variable store left in TMPDIR")
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
