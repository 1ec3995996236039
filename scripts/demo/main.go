// Command demo is "make demo": it builds the demo live ISO with "imagegen
// demo", boots it in QEMU (TCG) from a CD, shows the boot, and prints
// demo-init's report again at the end. With -interactive the console is
// yours: the runner takes demo-init's offer of a shell, and "poweroff"
// ends the demo (Ctrl-] kills QEMU). -uefi boots with OVMF instead of
// SeaBIOS; -secureboot with OVMF enforcing Secure Boot with Microsoft's
// keys enrolled, as PCs ship (the ISO's shim, signed by Microsoft, starts
// Debian's signed GRUB and kernel), and demo-init's report then says
// "Secure Boot: enabled".
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/nixlive/nixlive/demo/demoinit"
	"github.com/nixlive/nixlive/internal/boottest/qemu"
	"github.com/nixlive/nixlive/internal/gobuild"
)

// Limits on a slow machine: TCG on two loaded cores boots several times
// slower than the half minute an idle one takes.
const (
	bootLimit     = 30 * time.Minute // until demo-init's offer of a shell
	poweroffLimit = 5 * time.Minute  // from "q" to QEMU's exit
	sessionLimit  = 24 * time.Hour   // an interactive session
)

func main() {
	dir := flag.String("dir", "_out/demo", "work directory")
	interactive := flag.Bool("interactive", false, "leave the console to you at demo-init's shell")
	uefi := flag.Bool("uefi", false, "boot with OVMF (UEFI) instead of SeaBIOS")
	secureBoot := flag.Bool("secureboot", false, "boot with OVMF enforcing Secure Boot with Microsoft's keys (implies -uefi)")
	flag.Parse()
	log.SetFlags(0)
	fw := qemu.SeaBIOS
	switch {
	case *secureBoot:
		fw = qemu.OVMFSecureBoot
	case *uefi:
		fw = qemu.OVMF
	}

	imagegen := filepath.Join(*dir, "imagegen")
	if err := gobuild.Host(context.Background(), imagegen, "./cmd/imagegen"); err != nil {
		log.Fatal(err)
	}
	t0 := time.Now()
	run(imagegen, "demo", "-o", *dir)
	iso := filepath.Join(*dir, "nixlive-demo.iso")
	log.Printf("demo: built in %.1f s; booting %s in QEMU (TCG, %s)\n", time.Since(t0).Seconds(), iso, firmwareName(fw))

	// -cpu max: RDRAND, as real machines have (see qemu.Options.CPU).
	// OVMFSecureBoot's variable store defaults to Microsoft's keys.
	opts := qemu.Options{Name: "demo", CDROM: iso, MemoryMB: 1024, CPU: "max", Output: os.Stdout, Firmware: fw}
	vm, err := qemu.Start(opts)
	if err != nil {
		log.Fatal("demo: ", err)
	}
	restore := func() {}
	if *interactive {
		restore = rawTerminal()
		go forwardKeys(vm)
	}
	qerr := boot(vm, *interactive)
	vm.Stop()
	restore()
	report(strings.ReplaceAll(vm.Console(), "\r", ""), qerr, iso, fw)
}

// firmwareName names the firmware for the log line.
func firmwareName(fw qemu.Firmware) string {
	switch fw {
	case qemu.OVMF:
		return "OVMF, UEFI"
	case qemu.OVMFSecureBoot:
		return "OVMF, UEFI with Secure Boot enforced, Microsoft's keys"
	}
	return "SeaBIOS"
}

// boot answers demo-init's offer of a shell once it is on the console
// ("q" powers off; Enter takes the shell) and waits for QEMU's exit.
func boot(vm *qemu.VM, interactive bool) error {
	limit := poweroffLimit
	if _, err := vm.ExpectString(demoinit.ShellOffer, bootLimit); err != nil {
		return err
	}
	if interactive {
		vm.Enter()
		limit = sessionLimit
	} else {
		vm.Type("q")
	}
	return vm.Wait(limit)
}

// rawTerminal puts the terminal, if stdin is one, in raw mode, so that
// keys go to the guest as typed; it returns what restores it.
func rawTerminal() (restore func()) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return func() {}
	}
	old, err := term.MakeRaw(fd)
	if err != nil {
		return func() {}
	}
	return func() { term.Restore(fd, old); fmt.Println() }
}

// forwardKeys sends stdin to the guest's console until Ctrl-], which kills
// QEMU.
func forwardKeys(vm *qemu.VM) {
	b := make([]byte, 256)
	for {
		n, err := os.Stdin.Read(b)
		if bytes.IndexByte(b[:n], 0x1d) >= 0 { // Ctrl-]
			vm.Kill()
			return
		}
		if n > 0 {
			vm.Send(string(b[:n]))
		}
		if err != nil {
			return
		}
	}
}

// report prints demo-init's report once more, without the boot messages
// around it, and fails unless the live system found no problem and, booted
// with Secure Boot enforced, saw it enabled.
func report(console string, qerr error, iso string, fw qemu.Firmware) {
	rep, err := demoinit.Parse(console)
	if err != nil {
		log.Fatalf("demo: %v (QEMU: %v)", err, qerr)
	}
	if i := strings.LastIndex(console, "=== nixlive demo"); i >= 0 {
		j := strings.LastIndex(console, demoinit.Marker)
		fmt.Printf("\n%s", console[i:j])
	}
	if !rep.OK() {
		log.Fatalf("demo: the live system has %d problem(s)", len(rep.Problems))
	}
	if fw == qemu.OVMFSecureBoot && rep.SecureBoot != demoinit.SecureBootEnabled {
		log.Fatalf("demo: the firmware enforces Secure Boot, but demo-init reads %q", rep.SecureBootLine())
	}
	log.Printf("demo: ok: %d store paths registered and valid; %s; the ISO is %s", rep.Registered, rep.SecureBootLine(), iso)
}

func run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		log.Fatalf("demo: %s %s: %v", name, strings.Join(args, " "), err)
	}
}
