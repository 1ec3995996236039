// Package vmtest boots virtual machines under QEMU for tests: a kernel and
// initrd directly, an ISO as a CD-ROM, raw disk images, with SeaBIOS or
// OVMF, and reads the serial console as it streams.
//
// QEMU always runs with TCG (-accel tcg): KVM does not work on the machines
// this project is tested on. The machine is the default -M pc, whose IDE
// controller (ata_piix) the Debian cloud kernel drives; it has no AHCI.
//
// A typical test:
//
//	vm := vmtest.Start(t, vmtest.Options{
//		Kernel: vmtest.Kernel(t),
//		Initrd: testinit.Initrd(t),
//		Append: "console=ttyS0 quiet",
//	})
//	vm.MustExpectString(testinit.Marker, time.Minute)
//	vm.MustWait(time.Minute)
//
// Expect and Wait fail with errors that carry the last console lines, and
// the whole console is written to a log file in the test's artifact
// directory (kept with go test -artifacts). QEMU is killed when the test
// ends.
//
// It is an ordinary package so that the tests of several packages can share
// it; nothing outside tests should import it.
package vmtest

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Firmware selects the machine's firmware.
type Firmware int

const (
	SeaBIOS Firmware = iota // QEMU's default BIOS
	OVMF                    // UEFI: DefaultOVMF (or Options.FirmwarePath) via -bios
)

func (f Firmware) String() string {
	switch f {
	case SeaBIOS:
		return "SeaBIOS"
	case OVMF:
		return "OVMF"
	}
	return "Firmware(" + strconv.Itoa(int(f)) + ")"
}

// Disk is a raw disk image attached to the machine.
type Disk struct {
	Path string
	// Virtio attaches it as a virtio-blk disk (/dev/vdX) instead of an IDE
	// hard disk (/dev/sdX through ata_piix).
	Virtio bool
	// Snapshot sends the guest's writes to a temporary overlay
	// (snapshot=on), leaving the image untouched.
	Snapshot bool
}

// Options describe a machine. The zero value boots nothing: give at least a
// Kernel, a CDROM or a Disk.
type Options struct {
	// Name identifies the machine in errors and names its console log
	// (<Name>.console.log); default "vm".
	Name string

	Kernel string // -kernel: a bzImage (vmlinuz)
	Initrd string // -initrd
	Append string // -append: the kernel command line

	CDROM string // -cdrom: an ISO image (IDE secondary master)
	// Disks are attached in order; IDE disks take the primary channel
	// (index 0 and 1: the first is the first hard disk), virtio disks
	// their own PCI slots.
	Disks []Disk

	Firmware     Firmware
	FirmwarePath string // overrides the default image of Firmware

	MemoryMB int // default 1024
	CPUs     int // default 1
	// CPU is the -cpu model; "" keeps QEMU's default (qemu64). "max"
	// offers RDRAND, so the guest kernel's random pool is ready at once,
	// as on real hardware; without it the first read of /dev/urandom (SQLite
	// makes one) waits about a second for jitter entropy.
	CPU string

	// ExtraArgs are appended to QEMU's command line.
	ExtraArgs []string
}

// Errors that Expect and Wait wrap (test with errors.Is). The error texts
// carry the last console lines and the console log's path.
var (
	ErrTimeout     = errors.New("timed out")
	ErrExited      = errors.New("QEMU exited")
	ErrKernelPanic = errors.New("kernel panic")
)

// TailLines is how many console lines errors carry.
const TailLines = 60

var (
	// escapeRE matches terminal escape sequences: CSI (ESC [ ... final),
	// OSC (ESC ] ... BEL or ST) and two-character ones (ESC x).
	escapeRE   = regexp.MustCompile(`\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[ -~])`)
	panicRE    = regexp.MustCompile(`Kernel panic - not syncing`)
	panicEndRE = regexp.MustCompile(`---\[ end Kernel panic`)
)

// panicGrace is how long to wait, after a panic line, for the rest of the
// panic report before failing.
const panicGrace = 3 * time.Second

// VM is a running (or finished) QEMU process.
type VM struct {
	t       testing.TB
	name    string
	args    []string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	logPath string
	start   time.Time

	readDone chan struct{} // closed when the console reader is done
	exited   chan struct{} // closed when QEMU has exited and the console is drained

	mu       sync.Mutex
	lines    []string      // complete console lines, without line endings
	partial  []byte        // the incomplete last line
	next     int           // first line Expect has not consumed
	changed  chan struct{} // closed and replaced whenever lines or state change
	panicAt  int           // index of the first "Kernel panic" line, or -1
	panicEnd bool          // the end of the panic report was seen
	panicT   time.Time     // when the panic line arrived
	exitErr  error         // QEMU's exit status (after exited)
	stderr   bytes.Buffer  // QEMU's own messages
	end      time.Time     // when QEMU exited
	reported bool          // an error already showed the console tail
}

// Start starts QEMU as described by opts, or skips the test if QEMU is not
// installed. QEMU is killed when the test ends.
func Start(t testing.TB, opts Options) *VM {
	t.Helper()
	HaveQEMU(t)
	name := opts.Name
	if name == "" {
		name = "vm"
	}
	args, err := opts.Args()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}

	logf, err := createLog(t.ArtifactDir(), sanitizeName(name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	logPath := logf.Name()

	vm := &VM{
		t:        t,
		name:     name,
		args:     args,
		logPath:  logPath,
		readDone: make(chan struct{}),
		exited:   make(chan struct{}),
		changed:  make(chan struct{}),
		panicAt:  -1,
	}
	cmd := exec.Command(QEMU, args...)
	// If the test binary dies, so does QEMU.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if vm.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	cmd.Stderr = &lockedWriter{mu: &vm.mu, w: &vm.stderr}
	vm.cmd = cmd
	vm.start = time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("%s: starting %s: %v", name, QEMU, err)
	}
	fmt.Fprintf(logf, "# %s %s\n", QEMU, shellJoin(args))

	go vm.readConsole(stdout, logf)
	go func() {
		<-vm.readDone
		err := cmd.Wait()
		vm.mu.Lock()
		vm.exitErr = err
		vm.end = time.Now()
		if vm.stderr.Len() > 0 {
			fmt.Fprintf(logf, "\n# QEMU stderr:\n%s", vm.stderr.Bytes())
		}
		fmt.Fprintf(logf, "\n# QEMU exit: %v after %v\n", describeExit(err), vm.end.Sub(vm.start).Round(time.Millisecond))
		logf.Close()
		vm.notifyLocked()
		vm.mu.Unlock()
		close(vm.exited)
	}()

	t.Cleanup(func() {
		vm.Kill()
		<-vm.exited
		if t.Failed() {
			vm.mu.Lock()
			reported := vm.reported
			vm.mu.Unlock()
			if !reported {
				t.Logf("%s: last console lines:\n%s", name, vm.tail())
			}
			t.Logf("%s: console log: %s%s", name, logPath, keptNote())
		}
	})
	return vm
}

// createLog creates dir/base.console.log, or base-2..., if a machine of
// the same name ran in the same test before.
func createLog(dir, base string) (*os.File, error) {
	for i := 1; ; i++ {
		name := base
		if i > 1 {
			name += "-" + strconv.Itoa(i)
		}
		f, err := os.OpenFile(filepath.Join(dir, name+".console.log"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
}

// Args returns QEMU's arguments for opts (after the program name). It
// checks that the files named exist.
func (opts Options) Args() ([]string, error) {
	if opts.Kernel == "" && (opts.Initrd != "" || opts.Append != "") {
		return nil, errors.New("Initrd and Append need a Kernel")
	}
	mem := opts.MemoryMB
	if mem == 0 {
		mem = 1024
	}
	cpus := opts.CPUs
	if cpus == 0 {
		cpus = 1
	}
	args := []string{
		"-accel", "tcg",
		"-M", "pc",
		"-m", strconv.Itoa(mem),
		"-smp", strconv.Itoa(cpus),
	}
	if opts.CPU != "" {
		args = append(args, "-cpu", opts.CPU)
	}
	args = append(args,
		"-display", "none",
		"-monitor", "none",
		"-serial", "stdio",
		"-no-reboot",
		"-nic", "none",
	)
	switch opts.Firmware {
	case SeaBIOS:
		if opts.FirmwarePath != "" {
			args = append(args, "-bios", opts.FirmwarePath)
		}
	case OVMF:
		fw := opts.FirmwarePath
		if fw == "" {
			fw = DefaultOVMF
		}
		args = append(args, "-bios", fw)
	default:
		return nil, fmt.Errorf("unknown firmware %v", opts.Firmware)
	}
	for _, f := range []struct{ flag, path string }{
		{"-kernel", opts.Kernel}, {"-initrd", opts.Initrd}, {"-cdrom", opts.CDROM},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return nil, fmt.Errorf("%s: %w", f.flag, err)
		}
		args = append(args, f.flag, f.path)
	}
	if opts.Append != "" {
		args = append(args, "-append", opts.Append)
	}
	ide := 0
	for _, d := range opts.Disks {
		if _, err := os.Stat(d.Path); err != nil {
			return nil, fmt.Errorf("disk: %w", err)
		}
		if strings.Contains(d.Path, ",") {
			return nil, fmt.Errorf("disk %q: QEMU -drive paths cannot hold commas", d.Path)
		}
		drive := "file=" + d.Path + ",format=raw"
		if d.Virtio {
			drive += ",if=virtio"
		} else {
			if ide == 2 {
				return nil, errors.New("at most two IDE disks (the secondary channel holds the CD-ROM)")
			}
			drive += ",if=ide,media=disk,index=" + strconv.Itoa(ide)
			ide++
		}
		if d.Snapshot {
			drive += ",snapshot=on"
		}
		args = append(args, "-drive", drive)
	}
	return append(args, opts.ExtraArgs...), nil
}

// readConsole copies QEMU's stdout (the serial console) to the log and
// splits it into lines.
func (vm *VM) readConsole(r io.Reader, log io.Writer) {
	defer close(vm.readDone)
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			log.Write(buf[:n])
			vm.mu.Lock()
			vm.addLocked(buf[:n])
			vm.mu.Unlock()
		}
		if err != nil {
			vm.mu.Lock()
			if len(vm.partial) > 0 {
				vm.addLineLocked(string(escapeRE.ReplaceAll(vm.partial, nil)))
				vm.partial = nil
			}
			vm.notifyLocked()
			vm.mu.Unlock()
			return
		}
	}
}

func (vm *VM) addLocked(b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			vm.partial = append(vm.partial, b...)
			break
		}
		line := append(vm.partial, b[:i]...)
		vm.partial = vm.partial[:0]
		vm.addLineLocked(string(bytes.TrimRight(escapeRE.ReplaceAll(line, nil), "\r")))
		b = b[i+1:]
	}
	vm.notifyLocked()
}

func (vm *VM) addLineLocked(line string) {
	vm.lines = append(vm.lines, line)
	if vm.panicAt < 0 && panicRE.MatchString(line) {
		vm.panicAt = len(vm.lines) - 1
		vm.panicT = time.Now()
	}
	if vm.panicAt >= 0 && panicEndRE.MatchString(line) {
		vm.panicEnd = true
	}
}

func (vm *VM) notifyLocked() {
	close(vm.changed)
	vm.changed = make(chan struct{})
}

// Expect waits until a console line that has not been consumed by an
// earlier Expect matches re, consumes the lines up to and including it,
// and returns re's submatches in that line. Lines are matched once
// complete (the incomplete last line only after QEMU has exited), without
// their line ending and with terminal escape sequences removed (firmware
// and boot loaders send many); the log file keeps the raw bytes.
//
// It fails with ErrKernelPanic if the kernel panics first, ErrExited if
// QEMU exits first, or ErrTimeout after timeout; the errors carry the last
// console lines.
func (vm *VM) Expect(re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var grace <-chan time.Time
	for {
		vm.mu.Lock()
		for ; vm.next < len(vm.lines); vm.next++ {
			if m := re.FindStringSubmatch(vm.lines[vm.next]); m != nil {
				vm.next++
				vm.mu.Unlock()
				return m, nil
			}
		}
		if err := vm.failureLocked(&grace, "waiting for /"+re.String()+"/"); err != nil {
			vm.mu.Unlock()
			return nil, err
		}
		changed := vm.changed
		vm.mu.Unlock()

		select {
		case <-changed:
		case <-grace:
		case <-deadline.C:
			return nil, vm.errorf(ErrTimeout, "after %v waiting for /%s/", timeout, re)
		}
	}
}

// failureLocked returns the error that ends a wait: a complete kernel
// panic report (or one that stopped for panicGrace), or QEMU's exit. It
// arms *grace to wake the caller when the panic's grace period ends.
func (vm *VM) failureLocked(grace *<-chan time.Time, what string) error {
	if vm.panicAt >= 0 {
		left := panicGrace - time.Since(vm.panicT)
		if vm.panicEnd || left <= 0 || vm.hasExitedLocked() {
			vm.reported = true
			return fmt.Errorf("%s: %w while %s (line %d: %q)%s", vm.name, ErrKernelPanic, what,
				vm.panicAt+1, vm.lines[vm.panicAt], vm.contextLocked())
		}
		if *grace == nil {
			*grace = time.After(left)
		}
		return nil
	}
	if vm.hasExitedLocked() {
		vm.reported = true
		return fmt.Errorf("%s: %w (%s) while %s%s", vm.name, ErrExited, describeExit(vm.exitErr), what, vm.contextLocked())
	}
	return nil
}

// hasExitedLocked reports whether QEMU has exited and its console is
// drained (end is set then, under mu, just before exited is closed).
func (vm *VM) hasExitedLocked() bool { return !vm.end.IsZero() }

// ExpectString is Expect for a line that contains s; it returns that line.
func (vm *VM) ExpectString(s string, timeout time.Duration) (string, error) {
	_, err := vm.Expect(regexp.MustCompile(regexp.QuoteMeta(s)), timeout)
	if err != nil {
		return "", err
	}
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.lines[vm.next-1], nil
}

// MustExpect is Expect that fails the test on error.
func (vm *VM) MustExpect(re *regexp.Regexp, timeout time.Duration) []string {
	vm.t.Helper()
	m, err := vm.Expect(re, timeout)
	if err != nil {
		vm.t.Fatal(err)
	}
	return m
}

// MustExpectString is ExpectString that fails the test on error.
func (vm *VM) MustExpectString(s string, timeout time.Duration) string {
	vm.t.Helper()
	line, err := vm.ExpectString(s, timeout)
	if err != nil {
		vm.t.Fatal(err)
	}
	return line
}

// Wait waits for QEMU to exit by itself (the guest powered off, rebooted
// or triple-faulted: -no-reboot makes all of them end QEMU). It fails with
// ErrKernelPanic if the console shows a kernel panic (even if QEMU then
// exits), ErrExited if QEMU's exit status is not 0, and ErrTimeout if QEMU
// still runs after timeout (it is left running).
func (vm *VM) Wait(timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var grace <-chan time.Time
	for {
		vm.mu.Lock()
		if vm.hasExitedLocked() && vm.panicAt < 0 {
			var err error
			if vm.exitErr != nil {
				vm.reported = true
				err = fmt.Errorf("%s: %w (%s)%s", vm.name, ErrExited, describeExit(vm.exitErr), vm.contextLocked())
			}
			vm.mu.Unlock()
			return err
		}
		if err := vm.failureLocked(&grace, "waiting for QEMU to exit"); err != nil {
			vm.mu.Unlock()
			return err
		}
		changed := vm.changed
		vm.mu.Unlock()

		select {
		case <-changed:
		case <-grace:
		case <-deadline.C:
			return vm.errorf(ErrTimeout, "after %v waiting for QEMU to exit (it still runs)", timeout)
		}
	}
}

// MustWait is Wait that fails the test on error.
func (vm *VM) MustWait(timeout time.Duration) {
	vm.t.Helper()
	if err := vm.Wait(timeout); err != nil {
		vm.t.Fatal(err)
	}
}

// Send writes s to the serial console's input.
func (vm *VM) Send(s string) error {
	_, err := io.WriteString(vm.stdin, s)
	return err
}

// Kill kills QEMU if it still runs. It does not wait for it to exit.
func (vm *VM) Kill() {
	if !vm.Exited() {
		_ = vm.cmd.Process.Kill()
	}
}

// Exited reports whether QEMU has exited.
func (vm *VM) Exited() bool {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.hasExitedLocked()
}

// Elapsed returns the time from QEMU's start to its exit, or to now if it
// still runs.
func (vm *VM) Elapsed() time.Duration {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if vm.end.IsZero() {
		return time.Since(vm.start)
	}
	return vm.end.Sub(vm.start)
}

// Console returns every console line so far, joined by newlines.
func (vm *VM) Console() string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	s := strings.Join(vm.lines, "\n")
	if len(vm.partial) > 0 {
		s += "\n" + string(vm.partial)
	}
	return s
}

// LogPath returns the console log's path. It holds QEMU's command line,
// the raw console output, QEMU's stderr and its exit status.
func (vm *VM) LogPath() string { return vm.logPath }

// Args returns QEMU's arguments.
func (vm *VM) Args() []string { return append([]string(nil), vm.args...) }

func (vm *VM) errorf(kind error, format string, args ...any) error {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	vm.reported = true
	msg := fmt.Sprintf(format, args...)
	return fmt.Errorf("%s: %w %s%s", vm.name, kind, msg, vm.contextLocked())
}

// contextLocked returns what errors append: QEMU's stderr, the last
// console lines and where the whole log is.
func (vm *VM) contextLocked() string {
	var b strings.Builder
	if s := strings.TrimSpace(vm.stderr.String()); s != "" {
		fmt.Fprintf(&b, "\nQEMU stderr:\n%s", s)
	}
	fmt.Fprintf(&b, "\nlast console lines (%v after start):\n%s", vm.elapsedLocked().Round(time.Millisecond), vm.tailLocked())
	fmt.Fprintf(&b, "\nconsole log: %s%s", vm.logPath, keptNote())
	return b.String()
}

func (vm *VM) elapsedLocked() time.Duration {
	if vm.end.IsZero() {
		return time.Since(vm.start)
	}
	return vm.end.Sub(vm.start)
}

func (vm *VM) tail() string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.tailLocked()
}

func (vm *VM) tailLocked() string {
	lines := vm.lines
	if len(vm.partial) > 0 {
		lines = append(lines[:len(lines):len(lines)], string(vm.partial))
	}
	if len(lines) == 0 {
		return "\t(no console output)"
	}
	first := max(0, len(lines)-TailLines)
	var b strings.Builder
	if first > 0 {
		fmt.Fprintf(&b, "\t... (%d earlier lines)\n", first)
	}
	for i, l := range lines[first:] {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("\t| ")
		b.WriteString(printable(l))
	}
	return b.String()
}

// printable shows control characters (terminal escapes of firmware and
// boot loaders) as Go escapes, so that errors print cleanly.
func printable(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// keptNote tells whether the console log outlives the test.
func keptNote() string {
	if f := flag.Lookup("test.artifacts"); f != nil && f.Value.String() == "true" {
		return ""
	}
	return " (removed after the test; go test -artifacts keeps it)"
}

func describeExit(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func sanitizeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
