package demo_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/demo"
	"github.com/nixlive/nixlive/demo/demoinit"
	"github.com/nixlive/nixlive/internal/boottest/nixtest"
	"github.com/nixlive/nixlive/internal/boottest/vmtest"
	"github.com/nixlive/nixlive/internal/nix/registration"
)

// TestDemo builds the demo live system with imagegen demo and boots it for
// real: via SeaBIOS, OVMF and OVMF enforcing Secure Boot with Microsoft's
// keys from a CD, stage 1 mounts the store, stage 2 runs postboot and hands
// over to demo-init, whose report from inside the booted system must show
// the Secure Boot state the firmware gave (and the lockdown Debian's kernel
// chooses from it), every registered path valid in the Nix database,
// /etc/NIXOS, the system profile's first generation, /run/booted-system,
// the live mounts, a store that takes writes through its overlay and the
// timeline of both stages.
func TestDemo(t *testing.T) {
	t.Parallel()
	vmtest.HaveQEMU(t)
	k := vmtest.KernelAndModules(t)
	dir := t.TempDir()
	modules, err := filepath.EvalSymlinks(k.Modules)
	require.NoError(t, err)
	d := &demo.System{Dir: dir, Kernel: k.Vmlinuz, ModulesDir: modules}
	m, err := d.Build(context.Background())
	require.NoError(t, err)

	// What the boots must find, read here on the host from the build's own
	// outputs.
	f, err := os.Open(m.Registration)
	require.NoError(t, err)
	recs, err := registration.Parse(f, "/nix/store")
	f.Close()
	require.NoError(t, err)
	refs := 0
	var regPaths []string
	for _, r := range recs {
		refs += len(r.References)
		regPaths = append(regPaths, r.Path)
	}
	assert.Equal(t, m.StorePaths, regPaths, "the registration lists the system's closure")
	assert.Len(t, recs, 9, "stage2, demo-init, u-root, kernel, kernel-modules, initrd, etc, system-path, system")

	t.Run("nix-store --add names", func(t *testing.T) { checkAddNames(t, m) })
	t.Run("reproducible", func(t *testing.T) {
		t.Parallel()
		again, err := (&demo.System{Dir: t.TempDir(), Kernel: k.Vmlinuz, ModulesDir: modules}).Build(context.Background())
		require.NoError(t, err)
		assert.Equal(t, m.System, again.System)
		for _, f := range []struct{ a, b string }{{m.ISO, again.ISO}, {filepath.Join(dir, "initrd"), filepath.Join(filepath.Dir(again.ISO), "initrd")}} {
			a, err := os.ReadFile(f.a)
			require.NoError(t, err)
			b, err := os.ReadFile(f.b)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(a, b), "%s and %s differ", f.a, f.b)
		}
	})

	for _, tc := range []struct {
		name string
		fw   vmtest.Firmware
		// What demo-init reads: the firmware's Secure Boot state and the
		// kernel's lockdown, which Debian's kernel raises to integrity
		// when booted with Secure Boot on.
		secureBoot, lockdown string
	}{
		{"SeaBIOS-CD", vmtest.SeaBIOS, demoinit.NotUEFI, "none"},
		{"OVMF-CD", vmtest.OVMF, demoinit.SecureBootDisabled, "none"},
		// Microsoft's keys (FirmwareVars' default): shim, signed by
		// Microsoft, must start Debian's signed GRUB and kernel.
		{"OVMF-SecureBoot-CD", vmtest.OVMFSecureBoot, demoinit.SecureBootEnabled, "integrity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			switch tc.fw {
			case vmtest.OVMF:
				vmtest.HaveOVMF(t)
			case vmtest.OVMFSecureBoot:
				vmtest.HaveSecureBootOVMF(t)
			}
			// A generous limit for TCG on a loaded machine.
			const timeout = 10 * time.Minute
			// -cpu max: RDRAND, so postboot's SQLite does not wait for
			// entropy (see vmtest.Options.CPU).
			vm := vmtest.Start(t, vmtest.Options{Name: "demo-" + tc.name, Firmware: tc.fw, CDROM: m.ISO, CPU: "max"})
			// demo-init's Secure Boot line, or the firmware, shim or GRUB
			// refusing an image (which would leave OVMF in its menu until
			// the limit).
			got := vm.MustExpect(secureBootLine, timeout)
			if got[2] != "" {
				t.Fatalf("%s: the boot chain refused an image: %q", tc.name, got[0])
			}
			wantLine := "Secure Boot: " + tc.secureBoot + ", lockdown: " + tc.lockdown
			assert.Equal(t, wantLine, got[1], "demo-init's Secure Boot line on the console")
			vm.MustExpect(regexp.MustCompile(regexp.QuoteMeta(demoinit.Marker)), time.Minute)
			vm.MustExpectString(demoinit.ShellOffer, time.Minute)
			// "q" and Enter, typed once demo-init asks: it reads a line.
			vm.MustType("q")
			vm.MustWait(time.Minute)
			rep, err := demoinit.Parse(strings.ReplaceAll(vm.Console(), "\r", ""))
			require.NoError(t, err)

			assert.Empty(t, rep.Problems, "demo-init's own verdict")
			assert.Equal(t, tc.secureBoot, rep.SecureBoot, "Secure Boot state")
			assert.Equal(t, tc.lockdown, rep.Lockdown, "kernel lockdown")
			assert.Equal(t, wantLine, rep.SecureBootLine())
			assert.Equal(t, m.System, rep.System)
			assert.Equal(t, len(recs), rep.Registered, "paths in the registration on the medium")
			assert.Equal(t, len(recs), rep.ValidPaths, "rows of ValidPaths")
			assert.Equal(t, len(recs), rep.Matching, "paths valid with the registered hash and size")
			assert.Equal(t, refs, rep.Refs, "rows of Refs")
			assert.Empty(t, rep.Mismatches)
			assert.True(t, rep.NixOS, "/etc/NIXOS")
			assert.Equal(t, demoinit.ProfileChain{"/nix/var/nix/profiles/system", "/nix/var/nix/profiles/system-1-link", m.System}, rep.Profile)
			assert.Equal(t, m.System, rep.BootedSystem, "/run/booted-system")
			assert.Equal(t, m.System, rep.CurrentSystem, "/run/current-system")
			assert.Equal(t, "nixlive-demo", rep.Hostname, "/etc/hostname from the activation script")
			assert.Empty(t, rep.StoreWrite, "a write to /nix/store through the overlay")
			assert.True(t, rep.StoreReadOnly, "/nix/store mounted read-only as NixOS does")
			fstypes := map[string]string{}
			for _, mt := range rep.Mounts {
				fstypes[mt.Target] = mt.FSType
			}
			assert.Equal(t, map[string]string{"/": "tmpfs", "/iso": "iso9660", "/nix/.ro-store": "squashfs", "/nix/.rw-store": "tmpfs", "/nix/store": "overlay"}, fstypes)

			// The timeline runs in order through both stages into demo-init.
			at := map[string]float64{}
			for _, s := range rep.Timeline {
				at[s.Name] = s.At
			}
			order := []string{"stage1: start", "stage1: switch_root", "stage2: start", "stage2: postboot", "stage2: store", "stage2: exec init", "demo-init: start"}
			for i, n := range order {
				require.Contains(t, at, n, "timeline step")
				if i > 0 {
					assert.LessOrEqual(t, at[order[i-1]], at[n], "%s before %s", order[i-1], n)
				}
			}
			t.Logf("%s: stage 2 from start to exec init: %.0f ms; demo-init reached %.2f s after the kernel started",
				tc.name, (at["stage2: exec init"]-at["stage2: start"])*1000, at["demo-init: start"])
			assert.Contains(t, vm.Console(), "nixlive demo: powering off")
		})
	}
}

// secureBootLine matches demo-init's Secure Boot line (submatch 1), or a
// refusal of the UEFI boot chain (submatch 2): OVMF's "Access Denied",
// shim's "Security Violation", GRUB's "bad shim signature".
var secureBootLine = regexp.MustCompile(`^(Secure Boot: .*)$|(Access Denied|Security Violation|bad shim signature)`)

// checkAddNames adds two of the demo's store paths to a real Nix store
// with nix-store --add: Nix must give them the names imagegen demo did.
func checkAddNames(t *testing.T, m *demo.Manifest) {
	nixtest.HaveNix(t)
	store := nixtest.NewStore(t)
	for _, p := range []string{m.System, m.StorePaths[0]} {
		name := p[len("/nix/store/")+33:]
		src := filepath.Join(t.TempDir(), name)
		out, err := exec.Command("cp", "-a", filepath.Join(m.StoreRoot, p), src).CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Equal(t, p, nixtest.Add(t, store, src), "nix-store --add %s", name)
	}
}
