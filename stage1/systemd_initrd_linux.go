package stage1

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/nixlive/nixlive/live"
)

// prepareRoot is the program in a NixOS system's top-level that NixOS's
// systemd initrd runs before switch_root (with IN_NIXOS_SYSTEMD_STAGE1=true):
// the system's activation, which the scripted initrd leaves to stage 2's
// script. Only systems built with boot.initrd.systemd.enable have it.
const prepareRoot = "prepare-root"

// systemdInitrdError says that the system to boot was built for NixOS's
// systemd initrd, which stage 1 does not replace.
type systemdInitrdError struct {
	init, real, toplevel string
}

func (e *systemdInitrdError) Error() string {
	return fmt.Sprintf("stage1: refusing to start %s: the system %s was built with boot.initrd.systemd.enable = true.\n"+
		"Its init is a program (%s, systemd), not NixOS's stage 2 script, and its activation (%s/%s) is meant to run\n"+
		"in NixOS's systemd initrd before switch_root. nixlive's stage 1 replaces NixOS's scripted initrd and does not\n"+
		"run it: started from here, systemd would come up with an empty /etc.\n"+
		"Build the live system with boot.initrd.systemd.enable = false (the default up to NixOS 25.05),\n"+
		"or boot it with NixOS's own initrd.",
		e.init, e.toplevel, e.real, e.toplevel, prepareRoot)
}

// checkSystem refuses to hand over to a system that our stage 1 cannot
// boot whole: one built for NixOS's systemd initrd (see
// systemdInitrdSystem). It looks into the new root before switch_root.
func (b *Boot) checkSystem() error {
	if err := systemdInitrdSystem(live.NewRoot, b.Cmd.Init, b.Cmd.SystemConfig); err != nil {
		b.mark("systemd initrd system", b.Cmd.Init)
		return err
	}
	return nil
}

// systemdInitrdSystem returns a *systemdInitrdError when, in the tree at
// root (standing for /), init resolves to an ELF program (the systemd
// binary, where a scripted-initrd system has stage-2-init.sh, a script)
// and the system's top-level (systemConfig, and init's directory) holds
// prepare-root. A missing init or one that is not an ELF gives nil:
// switch_root reports the former.
func systemdInitrdSystem(root, init, systemConfig string) error {
	// prepare-root first: a lookup in the squashfs's metadata. Reading
	// init's ELF header would decompress a whole data block, which costs
	// tens of milliseconds under emulation, for every system.
	var tops []string
	if systemConfig != "" {
		tops = append(tops, path.Clean(systemConfig))
	}
	if d := path.Dir(init); d != "/" && (len(tops) == 0 || tops[0] != d) {
		tops = append(tops, d)
	}
	for _, top := range tops {
		if _, err := resolveIn(root, path.Join(top, prepareRoot)); err != nil {
			continue
		}
		real, err := resolveIn(root, init)
		if err != nil || !isELF(filepath.Join(root, real)) {
			return nil
		}
		return &systemdInitrdError{init: init, real: real, toplevel: top}
	}
	return nil
}

// isELF says whether the file at p starts with the ELF magic number.
func isELF(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 4)
	if _, err := io.ReadFull(f, head); err != nil {
		return false
	}
	return bytes.Equal(head, []byte("\x7fELF"))
}
