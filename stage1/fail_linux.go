package stage1

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nixlive/nixlive/live"
)

// fail explains why the boot cannot go on, then does what OnFail decides
// from the command line and the initrd: a kernel panic
// (boot.panic_on_fail), the rescue shell (boot.shell_on_fail), the shell
// offered on the console, or a halt with the explanation left there. PID 1
// never just exits: that is a kernel panic with no reason given.
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
	_, statErr := os.Stat(live.RescueShell)
	switch OnFail(b.Cmd, statErr == nil) {
	case FailPanic:
		fmt.Fprintln(b.Console, "stage1: boot.panic_on_fail: exiting, the kernel will panic")
		b.flush()
		os.Exit(1)
	case FailShell:
		b.shell("boot.shell_on_fail")
		fmt.Fprintln(b.Console, "stage1: the rescue shell exited; halting")
	case FailOffer:
		b.offer()
	default:
		if b.Cmd != nil && (b.Cmd.ShellOnFail || b.Cmd.Debug1) {
			fmt.Fprintf(b.Console, "stage1: no rescue shell in this initrd (build it with imagegen initrd --rescue-shell)\n")
		}
		fmt.Fprintln(b.Console, "stage1: halting. Add boot.shell_on_fail to the kernel command line (and build the initrd with --rescue-shell) for a rescue shell.")
	}
	b.halt()
}

// offer asks on the console what to do, as NixOS's stage 1 does on
// failure: i) the rescue shell, r) reboot, anything else (or no console
// input at all) halts.
func (b *Boot) offer() {
	fmt.Fprint(b.Console, "stage1: press one of the following keys, then Enter:\n"+
		"  i) to launch an interactive shell\n"+
		"  r) to reboot immediately\n"+
		"  *) to halt\n")
	b.flush()
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	switch strings.TrimSpace(line) {
	case "i":
		b.shell("on failure")
		fmt.Fprintln(b.Console, "stage1: the rescue shell exited; halting")
	case "r":
		fmt.Fprintln(b.Console, "stage1: rebooting")
		b.flush()
		unix.Sync()
		unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	default:
		fmt.Fprintln(b.Console, "stage1: halting")
	}
}

// halt stops the machine; PID 1 must not exit.
func (b *Boot) halt() {
	b.flush()
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_HALT)
	select {}
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

// noteCmdline logs what stage 1 makes of NixOS's debugging parameters it
// has no use for, and the boot.* parameters no stage reads.
func (b *Boot) noteCmdline() {
	if b.Cmd == nil {
		return
	}
	if b.Cmd.Trace {
		b.Log.Info("boot.trace: stage 1 is no script to trace; it logs every step anyway")
	}
	if u := b.Cmd.UnknownBootParams(); len(u) > 0 {
		b.Log.Warn("ignoring boot parameters no stage reads", "params", strings.Join(u, " "))
	}
}
