// Command demo is "make demo": it builds the demo live ISO with "imagegen
// demo", boots it in QEMU (TCG) from a CD, shows the boot, and prints
// demo-init's report again at the end. With -interactive the console is
// yours: the runner takes demo-init's offer of a shell, and "poweroff"
// ends the demo (Ctrl-] kills QEMU).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/nixlive/nixlive/demo/demoinit"
	"github.com/nixlive/nixlive/internal/boottest/vmtest"
	"github.com/nixlive/nixlive/internal/gobuild"
)

func main() {
	dir := flag.String("dir", "_out/demo", "work directory")
	interactive := flag.Bool("interactive", false, "leave the console to you at demo-init's shell")
	uefi := flag.Bool("uefi", false, "boot with OVMF (UEFI) instead of SeaBIOS")
	flag.Parse()
	log.SetFlags(0)

	imagegen := filepath.Join(*dir, "imagegen")
	if err := gobuild.Host(context.Background(), imagegen, "./cmd/imagegen"); err != nil {
		log.Fatal(err)
	}
	t0 := time.Now()
	run(imagegen, "demo", "-o", *dir)
	log.Printf("demo: built in %.1f s; booting %s in QEMU (TCG, %s)\n", time.Since(t0).Seconds(),
		filepath.Join(*dir, "nixlive-demo.iso"), map[bool]string{false: "SeaBIOS", true: "OVMF"}[*uefi])

	// -cpu max: RDRAND, as real machines have (see vmtest.Options.CPU).
	opts := vmtest.Options{CDROM: filepath.Join(*dir, "nixlive-demo.iso"), MemoryMB: 1024, CPU: "max"}
	if *uefi {
		opts.Firmware = vmtest.OVMF
	}
	args, err := opts.Args()
	if err != nil {
		log.Fatal("demo: ", err)
	}
	qemu := exec.Command(vmtest.QEMU, args...)
	stdin, err := qemu.StdinPipe()
	if err != nil {
		log.Fatal(err)
	}
	out, err := qemu.StdoutPipe()
	if err != nil {
		log.Fatal(err)
	}
	qemu.Stderr = os.Stderr
	if err := qemu.Start(); err != nil {
		log.Fatal("demo: ", err)
	}

	restore := func() {}
	if *interactive && term.IsTerminal(int(os.Stdin.Fd())) {
		if old, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
			restore = func() { term.Restore(int(os.Stdin.Fd()), old); fmt.Println() }
		}
	}
	var mu sync.Mutex
	var console bytes.Buffer
	answered := false
	buf := make([]byte, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			n, err := out.Read(buf)
			if n > 0 {
				os.Stdout.Write(buf[:n])
				mu.Lock()
				console.Write(buf[:n])
				if !answered && bytes.Contains(console.Bytes(), []byte(demoinit.ShellOffer)) {
					answered = true
					if *interactive {
						io.WriteString(stdin, "\n")
					} else {
						io.WriteString(stdin, "q\n")
					}
				}
				mu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	if *interactive {
		go func() {
			b := make([]byte, 256)
			for {
				n, err := os.Stdin.Read(b)
				if i := bytes.IndexByte(b[:n], 0x1d); i >= 0 { // Ctrl-]
					qemu.Process.Kill()
					return
				}
				if n > 0 {
					stdin.Write(b[:n])
				}
				if err != nil {
					return
				}
			}
		}()
	}
	<-done
	qerr := qemu.Wait()
	restore()
	mu.Lock()
	text := strings.ReplaceAll(console.String(), "\r\n", "\n")
	mu.Unlock()
	rep, err := demoinit.Parse(text)
	if err != nil {
		log.Fatalf("demo: %v (QEMU: %v)", err, qerr)
	}
	// The report once more, without the boot messages around it.
	if i := strings.LastIndex(text, "=== nixlive demo"); i >= 0 {
		j := strings.LastIndex(text, demoinit.Marker)
		fmt.Printf("\n%s", text[i:j])
	}
	if !rep.OK() {
		log.Fatalf("demo: the live system has %d problem(s)", len(rep.Problems))
	}
	log.Printf("demo: ok: %d store paths registered and valid; the ISO is %s", rep.Registered, filepath.Join(*dir, "nixlive-demo.iso"))
}

func run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		log.Fatalf("demo: %s %s: %v", name, strings.Join(args, " "), err)
	}
}
