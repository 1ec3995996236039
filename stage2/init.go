package stage2

import (
	"os"
	"path"
	"strings"
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
func ChooseInit(systemConfig string, cmdline map[string]string, exists func(string) bool) InitChoice {
	if systemConfig != "" {
		if p := path.Join(systemConfig, "systemd/lib/systemd/systemd"); exists(p) {
			return InitChoice{p, "the system has systemd"}
		}
		if p := path.Join(systemConfig, "sw/bin/init"); exists(p) {
			return InitChoice{p, "the system has no systemd; using its sw/bin/init"}
		}
	}
	if p := cmdline["live.init"]; p != "" {
		if exists(p) {
			return InitChoice{p, "live.init= on the kernel command line"}
		}
		return InitChoice{"", "live.init=" + p + " does not exist"}
	}
	return InitChoice{"", "the system has neither systemd/lib/systemd/systemd nor sw/bin/init, and the kernel command line has no live.init="}
}

// ParseCmdline splits /proc/cmdline into key=value pairs (flags map to "").
func ParseCmdline(s string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		m[k] = strings.Trim(v, `"`)
	}
	return m
}

// SystemConfig finds the booted system: stage 1 passes it in the
// environment, NixOS puts it on the kernel command line, and stage 2 is
// the system's own init, so its own path says it too.
func SystemConfig(env string, cmdline map[string]string, self string) string {
	switch {
	case env != "":
		return env
	case cmdline["systemConfig"] != "":
		return cmdline["systemConfig"]
	case strings.HasPrefix(self, "/nix/store/") && path.Base(self) == "init":
		return path.Dir(self)
	}
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
