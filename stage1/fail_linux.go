package stage1

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nixlive/nixlive/live"
)

// fail explains why the boot cannot go on, then does what the command line
// asks: a shell (boot.shell_on_fail), a kernel panic (boot.panic_on_fail),
// or a halt with the explanation left on the console. PID 1 never just
// exits: that is a kernel panic with no reason given.
func (b *Boot) fail(err error) {
	if err == nil {
		err = errors.New("stage1: stage 2 returned")
	}
	b.mark("failed", err.Error())
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n*** nixlive stage 1 failed ***\n%v\n", err)
	var nf *notFoundError
	if errors.As(err, &nf) {
		fmt.Fprintf(&sb, "\nWanted: %s\nBlock devices seen:\n", nf.want)
		writeDeviceTable(&sb, b.seen)
	}
	b.Console.Write([]byte(sb.String() + "\n"))
	b.writeTimeline()
	switch {
	case b.Cmd != nil && b.Cmd.ShellOnFail:
		b.shell("boot.shell_on_fail")
		fmt.Fprintln(b.Console, "stage1: the rescue shell exited; halting")
	case b.Cmd != nil && b.Cmd.PanicOnFail:
		fmt.Fprintln(b.Console, "stage1: boot.panic_on_fail: exiting, the kernel will panic")
		os.Exit(1)
	default:
		fmt.Fprintln(b.Console, "stage1: halting. Add boot.shell_on_fail to the kernel command line for a rescue shell.")
	}
	b.flush()
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_HALT)
	select {} // PID 1 must not exit
}

// shell runs the rescue shell on the console and waits for it.
func (b *Boot) shell(why string) {
	if _, err := os.Stat(live.RescueShell); err != nil {
		fmt.Fprintf(b.Console, "stage1: %s: no rescue shell in this initrd (build it with imagegen initrd --rescue-shell)\n", why)
		return
	}
	fmt.Fprintf(b.Console, "stage1: %s: starting %s; exit it to go on\n", why, live.RescueShell)
	b.flush()
	cmd := exec.Command(live.RescueShell)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = []string{"PATH=/bin", "HOME=/", "PS1=nixlive-rescue# "}
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(b.Console, "stage1: rescue shell: %v\n", err)
	}
}
