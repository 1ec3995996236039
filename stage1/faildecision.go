package stage1

import "github.com/nixlive/nixlive/live"

// FailAction is what stage 1 does once it has explained a failure.
type FailAction int

const (
	// FailHalt leaves the explanation on the console and halts.
	FailHalt FailAction = iota
	// FailShell starts the rescue shell at once; stage 1 halts when it
	// exits (boot.shell_on_fail, or a boot.debug1* parameter, which in
	// NixOS allow the shell too).
	FailShell
	// FailOffer asks on the console, as NixOS's fail() does: i) the rescue
	// shell, r) reboot, anything else halts. NixOS's "*) ignore the error
	// and continue" is not offered: every later step of stage 1 needs
	// what failed.
	FailOffer
	// FailPanic exits PID 1, so the kernel panics (and reboots if panic=
	// says so): boot.panic_on_fail.
	FailPanic
)

func (a FailAction) String() string {
	return [...]string{"halt", "shell", "offer", "panic"}[a]
}

// OnFail decides what a failed stage 1 does, from the command line (nil
// when it could not be read) and whether the initrd has a rescue shell. As
// in NixOS's stage-1-init.sh, boot.panic_on_fail wins over everything;
// then, when there is a shell, boot.shell_on_fail (or boot.debug1*) starts
// it and without them it is offered. Without a shell stage 1 halts.
func OnFail(cmd *live.Cmdline, haveShell bool) FailAction {
	switch {
	case cmd != nil && cmd.PanicOnFail:
		return FailPanic
	case !haveShell:
		return FailHalt
	case cmd != nil && (cmd.ShellOnFail || cmd.Debug1):
		return FailShell
	}
	return FailOffer
}
