package stage2

import (
	"os"
	"path"
	"strings"

	"github.com/nixlive/nixlive/live"
)

// InitChoice is the program stage 2 hands over to, and why that one.
type InitChoice struct {
	Path   string
	Reason string
}

// ChooseInit picks the system's init: systemd when the system has it, else
// the system's sw/bin/init, else live.init= from the kernel command line,
// else nothing (the rescue shell). exists reports whether a path is an
// executable file (os-backed in stage 2, a map in tests).
func ChooseInit(systemConfig string, cmdline *live.Cmdline, exists func(string) bool) InitChoice {
	if systemConfig != "" {
		if p := path.Join(systemConfig, "systemd/lib/systemd/systemd"); exists(p) {
			return InitChoice{p, "the system has systemd"}
		}
		if p := path.Join(systemConfig, "sw/bin/init"); exists(p) {
			return InitChoice{p, "the system has no systemd; using its sw/bin/init"}
		}
	}
	if p := cmdline.LiveInit; p != "" {
		if exists(p) {
			return InitChoice{p, "live.init= on the kernel command line"}
		}
		return InitChoice{"", "live.init=" + p + " does not exist"}
	}
	return InitChoice{"", "the system has neither systemd/lib/systemd/systemd nor sw/bin/init, and the kernel command line has no live.init="}
}

// SystemConfig finds the booted system: stage 1 passes it in the
// environment, NixOS puts it on the kernel command line, and stage 2 is
// the system's own init, so its own path says it too.
func SystemConfig(env string, cmdline *live.Cmdline, self string) string {
	switch {
	case env != "":
		return env
	case cmdline.SystemConfig != "":
		return cmdline.SystemConfig
	case strings.HasPrefix(self, live.Store+"/") && path.Base(self) == "init":
		return path.Dir(self)
	}
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
