package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/testinit"
	"github.com/nixlive/nixlive/internal/boottest/vmtest"
)

// Debian's snakeoil Secure Boot key pair (package ovmf), which
// OVMF_VARS_4M.snakeoil.fd enrolls as PK, KEK and db: the stand-in for a
// user's own key. The key is encrypted with this passphrase
// (README.Debian of the ovmf package).
const (
	snakeoilKey  = "/usr/share/ovmf/PkKek-1-snakeoil.key"
	snakeoilCert = "/usr/share/ovmf/PkKek-1-snakeoil.pem"
	snakeoilPass = "snakeoil"
)

// secureBootOnRE is what Debian's kernel (its EFI stub, whatever the
// loglevel) prints when the firmware booted it with Secure Boot enforced.
var secureBootOnRE = regexp.MustCompile(`EFI stub: UEFI Secure Boot is enabled`)

// plainSnakeoilKey decrypts the snakeoil key (imagegen takes unencrypted
// PEM keys) into the test's directory.
func plainSnakeoilKey(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(snakeoilKey); err != nil {
		t.Skipf("Debian's snakeoil key is missing (install ovmf; make test does): %v", err)
	}
	out := filepath.Join(t.TempDir(), "db.key")
	isoTool(t, "openssl", "pkey", "-in", snakeoilKey, "-passin", "pass:"+snakeoilPass, "-out", out)
	return out
}

// sbWarning is the line imagegen build prints when Secure Boot firmware
// would refuse the ISO.
const sbWarning = "imagegen build: warning: Secure Boot: "

// TestBuildSecureBootOwnKey builds an ISO whose EFI path is systemd-boot
// signed with the user's own key (the snakeoil key) with Debian's kernel,
// also signed with it, and the test initrd, and boots it under OVMF with
// Secure Boot enforced and only that key in db: it reaches the test init,
// and the kernel says Secure Boot is on. The same ISO with one byte of
// the kernel changed is refused by the firmware before the kernel runs.
// The build is reproducible and inspect names the signers.
func TestBuildSecureBootOwnKey(t *testing.T) {
	t.Parallel()
	haveISOTools(t, "openssl")
	vmtest.HaveQEMU(t)
	vmtest.HaveSecureBootOVMF(t)
	in := newISOInputs(t, vmtest.Kernel(t), testinit.Initrd(t))
	spec := in.spec()
	spec["boot"] = map[string]any{"timeout": 0, "serialConsole": true,
		"secureBoot": map[string]any{"key": plainSnakeoilKey(t), "certificate": snakeoilCert}}
	specFile := writeISOSpec(t, spec)
	dir := t.TempDir()
	iso, again := filepath.Join(dir, "signed.iso"), filepath.Join(dir, "again.iso")
	for _, out := range []string{iso, again} {
		res := runCLI(t, cliOpts{env: []string{"TMPDIR=" + t.TempDir()}}, "build", specFile, "-o", out, "--store-root", in.storeRoot, "--strict-secure-boot")
		require.Equal(t, 0, res.code, "imagegen build --strict-secure-boot: %s", res.stderr)
		assert.NotContains(t, res.stderr, sbWarning)
	}
	a, err := os.ReadFile(iso)
	require.NoError(t, err)
	b, err := os.ReadFile(again)
	require.NoError(t, err)
	require.True(t, bytes.Equal(a, b), "the same spec and key give the same ISO: %s", isoFirstDiff(a, b))

	t.Run("inspect", func(t *testing.T) {
		out := runCLI(t, cliOpts{}, "inspect", "--no-files", iso)
		require.Equal(t, 0, out.code, out.stderr)
		assert.Regexp(t, `(?m)^\s+boot/efi\.img\s+EFI/BOOT/BOOTX64\.EFI\s+.*SnakeOil`, out.stdout, "systemd-boot in the EFI image, signed with the key")
		assert.Regexp(t, `(?m)^\s+boot/efi\.img\s+boot/bzImage\s+.*Debian Secure Boot Signer 2022 - linux.*SnakeOil`, out.stdout, "the kernel in the EFI image keeps Debian's signature and has ours")
		assert.Regexp(t, `(?m)^kernel:\s+/boot/bzImage signed by .*SnakeOil`, out.stdout)
	})

	kernel := isoExtractFile(t, iso, "/boot/bzImage")
	tampered := filepath.Join(dir, "tampered.iso")
	mustWrite(t, tampered, tamperKernel(t, a, kernel), 0o644)
	const timeout = 5 * time.Minute
	for _, tc := range []struct {
		name, iso string
	}{{"signed", iso}, {"tampered", tampered}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			vm := vmtest.Start(t, vmtest.Options{Name: "sb-own-" + tc.name, Firmware: vmtest.OVMFSecureBoot, FirmwareVars: vmtest.SnakeoilVars, CDROM: tc.iso})
			if tc.name == "signed" {
				vm.MustExpect(secureBootOnRE, timeout)
				vm.MustExpectString(testinit.Marker, timeout)
				vm.MustWait(timeout)
				return
			}
			// systemd-boot's LoadImage of the kernel, refused by the
			// firmware's check against db.
			vm.MustExpectString(`Error loading \boot\bzImage: Access Denied`, timeout)
			assert.NotContains(t, vm.Console(), "Linux version", "the tampered kernel never ran")
		})
	}
}

// tamperKernel changes one byte in the middle of the kernel wherever the
// ISO holds it (the ISO 9660 side and the EFI image), as an attacker with
// the medium would.
func tamperKernel(t *testing.T, iso, kernel []byte) []byte {
	t.Helper()
	off := len(kernel) / 2
	window := kernel[off : off+64]
	out := bytes.Clone(iso)
	n := 0
	for i := 0; ; {
		j := bytes.Index(out[i:], window)
		if j < 0 {
			break
		}
		out[i+j+32] ^= 0xFF
		i += j + len(window)
		n++
	}
	require.Equal(t, 2, n, "the kernel is on the ISO twice: beside isolinux and in the EFI image")
	return out
}

// TestBuildSecureBootShim checks the default EFI chain on an ISO with
// Debian's signed kernel: inspect names Microsoft as shim's signer, the
// CA shim trusts, and Debian's signer of GRUB and the kernel; the build
// says nothing about Secure Boot. (Its boots, to stage 2, are in stage1's
// TestBoot.)
func TestBuildSecureBootShim(t *testing.T) {
	t.Parallel()
	haveISOTools(t)
	in := newISOInputs(t, vmtest.Kernel(t), "")
	iso := filepath.Join(t.TempDir(), "shim.iso")
	res := runCLI(t, cliOpts{env: []string{"TMPDIR=" + t.TempDir()}}, "build", writeISOSpec(t, in.spec()), "-o", iso, "--store-root", in.storeRoot, "--strict-secure-boot")
	require.Equal(t, 0, res.code, res.stderr)
	assert.NotContains(t, res.stderr, sbWarning)
	out := runCLI(t, cliOpts{}, "inspect", "--no-files", iso)
	require.Equal(t, 0, out.code, out.stderr)
	for _, where := range []string{"ISO", "boot/efi.img"} {
		w := regexp.QuoteMeta(where)
		assert.Regexp(t, `(?m)^\s+`+w+`\s+EFI/BOOT/BOOTX64\.EFI\s+.*\(Microsoft Corporation UEFI CA 2011\)`, out.stdout, "shim on %s", where)
		assert.Regexp(t, `(?m)^\s+`+w+`\s+EFI/BOOT/grubx64\.efi\s+.*\(Debian Secure Boot CA\)`, out.stdout, "GRUB on %s", where)
		assert.Regexp(t, `(?m)^\s+`+w+`\s+EFI/BOOT/mmx64\.efi\s+\S`, out.stdout, "MokManager on %s", where)
	}
	assert.Contains(t, out.stdout, `it trusts "Debian Secure Boot CA"`)
	assert.Regexp(t, `(?m)^kernel:\s+/boot/bzImage signed by Debian Secure Boot Signer 2022 - linux \(Debian Secure Boot CA\)$`, out.stdout)
	menu := string(isoExtractFile(t, iso, "/boot/grub/grub.cfg"))
	assert.Contains(t, menu, "menuentry \"NixOS Live\" --id live {", "the menu where Debian's signed GRUB looks on a CD")
	early := string(isoExtractFile(t, iso, "/EFI/BOOT/grub.cfg"))
	assert.Regexp(t, `(?m)^search --no-floppy --set=root --file /EFI/nixlive-[0-9a-f]+\n.*\nconfigfile \(\$root\)/boot/grub/grub\.cfg$`, early, "the EFI partition's config finds the ISO's menu")
}

// TestBuildSecureBootWarning builds ISOs that firmware with Secure Boot
// on would refuse: imagegen build says why in one line and builds them;
// with --strict-secure-boot it refuses and writes nothing.
func TestBuildSecureBootWarning(t *testing.T) {
	t.Parallel()
	haveISOTools(t)
	in := newISOInputs(t, "", "") // a made-up kernel: no signature at all
	for _, tc := range []struct {
		name string
		boot map[string]any
		want string
	}{
		{"ShimUnsignedKernel", map[string]any{}, `kernel ` + in.kernel + ` carries no signature by "Debian Secure Boot CA"`},
		{"GrubMkimage", map[string]any{"efiLoader": "grub-mkimage"}, `efiLoader "grub-mkimage": GRUB from grub-mkimage is unsigned`},
		{"SystemdBootNoKey", map[string]any{"efiLoader": "systemd-boot"}, `efiLoader "systemd-boot" without boot.secureBoot`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spec := in.spec()
			spec["boot"] = tc.boot
			specFile := writeISOSpec(t, spec)
			dir := t.TempDir()
			res := runCLI(t, cliOpts{env: []string{"TMPDIR=" + t.TempDir()}}, "build", specFile, "-o", filepath.Join(dir, "x.iso"), "--store-root", in.storeRoot)
			require.Equal(t, 0, res.code, res.stderr)
			var warnings []string
			for _, l := range strings.Split(res.stderr, "\n") {
				if strings.HasPrefix(l, sbWarning) {
					warnings = append(warnings, l)
				}
			}
			require.Len(t, warnings, 1, "one line says why: %s", res.stderr)
			assert.Contains(t, warnings[0], tc.want)

			strictDir, tmp := t.TempDir(), t.TempDir()
			res = runCLI(t, cliOpts{env: []string{"TMPDIR=" + tmp}}, "build", specFile, "-o", filepath.Join(strictDir, "x.iso"), "--store-root", in.storeRoot, "--strict-secure-boot")
			assert.Equal(t, 1, res.code, "--strict-secure-boot refuses it")
			assert.Contains(t, res.stderr, "--strict-secure-boot: "+tc.want)
			assertEmptyDir(t, strictDir)
			assertEmptyDir(t, tmp)
		})
	}
}
