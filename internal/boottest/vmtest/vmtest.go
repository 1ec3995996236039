// Package vmtest is the testing.TB side of package qemu: Start skips the
// test without QEMU, fails it if QEMU cannot start, keeps the console log
// in the test's artifact directory (go test -artifacts) and kills QEMU when
// the test ends; the Must methods fail the test on error. A test boots
// with vmtest.Start(t, vmtest.Options{Kernel: vmtest.Kernel(t), ...}),
// then vm.MustExpectString(...) and vm.MustWait(...).
package vmtest

import (
	"flag"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/nixlive/nixlive/internal/boottest/qemu"
)

// Names of package qemu, so that tests need only this package.
type (
	Options     = qemu.Options
	Disk        = qemu.Disk
	Firmware    = qemu.Firmware
	KernelFiles = qemu.KernelFiles
)

const (
	SeaBIOS        = qemu.SeaBIOS
	OVMF           = qemu.OVMF
	OVMFSecureBoot = qemu.OVMFSecureBoot

	// Variable store templates for OVMFSecureBoot (Options.FirmwareVars).
	MicrosoftVars = qemu.MicrosoftVars
	SnakeoilVars  = qemu.SnakeoilVars
)

var (
	ErrTimeout     = qemu.ErrTimeout
	ErrExited      = qemu.ErrExited
	ErrKernelPanic = qemu.ErrKernelPanic
)

// VM is a qemu.VM bound to a test.
type VM struct {
	*qemu.VM
	t testing.TB
}

// Start starts QEMU as described by opts, or skips the test if QEMU is not
// installed. The console log goes to the test's artifact directory. QEMU
// is killed when the test ends; if the test failed, the log shows the
// console's last lines (unless an error did) and the log's path.
func Start(t testing.TB, opts Options) *VM {
	t.Helper()
	HaveQEMU(t)
	opts.LogDir = t.ArtifactDir()
	opts.LogNote = keptNote()
	vm, err := qemu.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		vm.Stop()
		if t.Failed() {
			if !vm.TailReported() {
				t.Logf("%s: last console lines:\n%s", vm.Name(), vm.Tail())
			}
			t.Logf("%s: console log: %s%s", vm.Name(), vm.LogPath(), keptNote())
		}
	})
	return &VM{VM: vm, t: t}
}

// keptNote tells whether the console log outlives the test.
func keptNote() string {
	if f := flag.Lookup("test.artifacts"); f != nil && f.Value.String() == "true" {
		return ""
	}
	return " (removed after the test; go test -artifacts keeps it)"
}

// MustExpect is Expect that fails the test on error.
func (vm *VM) MustExpect(re *regexp.Regexp, timeout time.Duration) []string {
	vm.t.Helper()
	m, err := vm.Expect(re, timeout)
	if err != nil {
		vm.t.Fatal(err)
	}
	return m
}

// MustExpectString is ExpectString that fails the test on error.
func (vm *VM) MustExpectString(s string, timeout time.Duration) string {
	vm.t.Helper()
	line, err := vm.ExpectString(s, timeout)
	if err != nil {
		vm.t.Fatal(err)
	}
	return line
}

// MustExpectPrompt is ExpectPrompt that fails the test on error.
func (vm *VM) MustExpectPrompt(re *regexp.Regexp, timeout time.Duration) []string {
	vm.t.Helper()
	m, err := vm.ExpectPrompt(re, timeout)
	if err != nil {
		vm.t.Fatal(err)
	}
	return m
}

// MustType is Type that fails the test on error.
func (vm *VM) MustType(line string) {
	vm.t.Helper()
	if err := vm.Type(line); err != nil {
		vm.t.Fatalf("%s: typing %q: %v", vm.Name(), line, err)
	}
}

// MustWait is Wait that fails the test on error.
func (vm *VM) MustWait(timeout time.Duration) {
	vm.t.Helper()
	if err := vm.Wait(timeout); err != nil {
		vm.t.Fatal(err)
	}
}

// Kernel returns the path of the Debian cloud kernel's vmlinuz, or skips
// the test if scripts/kernel.sh has not fetched it.
func Kernel(t testing.TB) string {
	t.Helper()
	return KernelAndModules(t).Vmlinuz
}

// KernelAndModules is Kernel with the modules directory and version too.
func KernelAndModules(t testing.TB) KernelFiles {
	t.Helper()
	k, err := qemu.FindKernel()
	if err != nil {
		t.Skipf("Debian cloud kernel not available: run scripts/kernel.sh (make test does): %v", err)
	}
	return k
}

// HaveQEMU skips the test unless qemu-system-x86_64 is installed.
func HaveQEMU(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath(qemu.QEMU); err != nil {
		t.Skipf("%s not found: install qemu-system-x86 (make test does)", qemu.QEMU)
	}
}

// HaveOVMF skips the test unless qemu.DefaultOVMF exists.
func HaveOVMF(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(qemu.DefaultOVMF); err != nil {
		t.Skipf("UEFI firmware %s not available: install ovmf (make test does)", qemu.DefaultOVMF)
	}
}

// HaveSecureBootOVMF skips the test unless the firmware of OVMFSecureBoot
// is installed: qemu.SecureBootCode and both variable store templates.
func HaveSecureBootOVMF(t testing.TB) {
	t.Helper()
	for _, f := range []string{qemu.SecureBootCode, qemu.MicrosoftVars, qemu.SnakeoilVars} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("UEFI Secure Boot firmware %s not available: install ovmf (make test does)", f)
		}
	}
}
