//go:build linux

package stage1

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeSystem lays out, below root, a NixOS system's top-level at top with
// init (a link to a program elsewhere in the store, ELF or script, as
// NixOS has it) and, if withPrepareRoot, prepare-root.
func fakeSystem(t *testing.T, root, top string, elf, withPrepareRoot bool) {
	t.Helper()
	host := func(p string) string { return filepath.Join(root, p) }
	const prog = "/nix/store/00000000000000000000000000000000-systemd-257.5/lib/systemd/systemd"
	require.NoError(t, os.MkdirAll(filepath.Dir(host(prog)), 0o755))
	require.NoError(t, os.MkdirAll(host(top), 0o755))
	body := []byte("#! /nix/store/x-bash/bin/bash\n# stage-2-init.sh\n")
	if elf {
		body = append([]byte("\x7fELF\x02\x01\x01\x00"), make([]byte, 56)...)
	}
	require.NoError(t, os.WriteFile(host(prog), body, 0o755))
	require.NoError(t, os.Symlink(prog, host(top+"/init")))
	if withPrepareRoot {
		require.NoError(t, os.WriteFile(host(top+"/prepare-root"), []byte("#! /bin/sh\n"), 0o755))
	}
}

// TestSystemdInitrdSystem: a system built with boot.initrd.systemd.enable
// (init an ELF, prepare-root beside it) is refused with what to change; a
// scripted-initrd system, and an ELF init without prepare-root (such as
// the boot tests' checkstage2), are not.
func TestSystemdInitrdSystem(t *testing.T) {
	const top = "/nix/store/11111111111111111111111111111111-nixos-system-nixos-25.05"
	for _, tc := range []struct {
		name                 string
		elf, prepare, refuse bool
		systemConfig         string
	}{
		{"systemd-initrd", true, true, true, top},
		{"systemd-initrd-no-systemConfig", true, true, true, ""},
		{"scripted-initrd", false, false, false, top},
		{"script-init-with-prepare-root", false, true, false, top},
		{"elf-init-alone", true, false, false, top},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			fakeSystem(t, root, top, tc.elf, tc.prepare)
			err := systemdInitrdSystem(root, top+"/init", tc.systemConfig)
			if !tc.refuse {
				assert.NoError(t, err)
				return
			}
			var se *systemdInitrdError
			require.True(t, errors.As(err, &se), "refused: %v", err)
			assert.Equal(t, top, se.toplevel)
			assert.Contains(t, err.Error(), "boot.initrd.systemd.enable = true")
			assert.Contains(t, err.Error(), "boot.initrd.systemd.enable = false")
			assert.Contains(t, err.Error(), "/lib/systemd/systemd", "names the program init leads to")
		})
	}
	// init= elsewhere than the top-level: systemConfig names it.
	root := t.TempDir()
	fakeSystem(t, root, top, true, true)
	require.NoError(t, os.Symlink(top+"/init", filepath.Join(root, "init")))
	assert.Error(t, systemdInitrdSystem(root, "/init", top))
	assert.NoError(t, systemdInitrdSystem(root, "/init", ""), "no top-level known: not refused")
	// A missing init is switch_root's to report.
	assert.NoError(t, systemdInitrdSystem(root, "/nix/store/missing/init", ""))
}
