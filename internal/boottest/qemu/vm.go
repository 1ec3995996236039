package qemu

import (
	"bytes"
	"errors"
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
	"time"
)

var (
	// escapeRE matches terminal escape sequences: CSI (ESC [ ... final),
	// OSC (ESC ] ... BEL or ST) and two-character ones (ESC x).
	escapeRE   = regexp.MustCompile(`\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[ -~])`)
	panicRE    = regexp.MustCompile(`Kernel panic - not syncing`)
	panicEndRE = regexp.MustCompile(`---\[ end Kernel panic`)
)

// VM is a running (or finished) QEMU process.
type VM struct {
	name    string
	args    []string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	logPath string
	logNote string
	start   time.Time
	vars    string // OVMFSecureBoot's private variable store, removed when QEMU exits

	readDone chan struct{} // closed when the console reader is done
	exited   chan struct{} // closed when QEMU has exited and the console is drained

	mu       sync.Mutex
	lines    []string      // complete console lines, without line endings
	partial  []byte        // the incomplete last line
	next     int           // first line Expect has not consumed (len(lines)+1: nor the partial one)
	changed  chan struct{} // closed and replaced whenever lines or state change
	panicAt  int           // index of the first "Kernel panic" line, or -1
	panicEnd bool          // the end of the panic report was seen
	panicT   time.Time     // when the panic line arrived
	exitErr  error         // QEMU's exit status (after exited)
	stderr   bytes.Buffer  // QEMU's own messages
	end      time.Time     // when QEMU exited
	reported bool          // an error already showed the console tail
}

// Start starts QEMU as described by opts. The caller must Kill it if it
// does not end by itself; QEMU also dies with the calling process. With
// OVMFSecureBoot, Start copies the variable store template
// (opts.FirmwareVars) to a private temporary file (mode 0600) for the
// firmware to write to, and removes it once QEMU has exited (or if Start
// fails).
func Start(opts Options) (_ *VM, err error) {
	name := opts.Name
	if name == "" {
		name = "vm"
	}
	var vars string
	if opts.Firmware == OVMFSecureBoot {
		if vars, err = copyVars(opts.varsTemplate(), name); err != nil {
			return nil, fmt.Errorf("%s: %v %w", name, opts.Firmware, err)
		}
		defer func() {
			if err != nil {
				os.Remove(vars)
			}
		}()
	}
	args, err := opts.ArgsWithVars(vars)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	log := io.Discard
	var logf *os.File
	if opts.LogDir != "" {
		if logf, err = createLog(opts.LogDir, sanitizeName(name)); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		log = logf
	}
	closeLog := func() {
		if logf != nil {
			logf.Close()
		}
	}
	vm := &VM{
		name:     name,
		args:     args,
		vars:     vars,
		logNote:  opts.LogNote,
		readDone: make(chan struct{}),
		exited:   make(chan struct{}),
		changed:  make(chan struct{}),
		panicAt:  -1,
	}
	if logf != nil {
		vm.logPath = logf.Name()
	}
	stdout, err := vm.command()
	if err != nil {
		closeLog()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	vm.start = time.Now()
	if err := vm.cmd.Start(); err != nil {
		closeLog()
		return nil, fmt.Errorf("%s: starting %s: %w", name, QEMU, err)
	}
	fmt.Fprintf(log, "# %s %s\n", QEMU, shellJoin(args))
	console := log
	if opts.Output != nil {
		console = io.MultiWriter(log, opts.Output)
	}
	go vm.readConsole(stdout, console)
	go vm.reap(log, closeLog)
	return vm, nil
}

// copyVars copies the variable store template to a new private
// temporary file and returns its path.
func copyVars(template, name string) (path string, err error) {
	src, err := os.Open(template)
	if err != nil {
		return "", fmt.Errorf("variable store template: %w (install ovmf)", err)
	}
	defer src.Close()
	dst, err := os.CreateTemp("", "nixlive-"+sanitizeName(name)+"-*.vars.fd")
	if err != nil {
		return "", fmt.Errorf("copying the variable store template: %w", err)
	}
	defer func() {
		if err != nil {
			os.Remove(dst.Name())
		}
	}()
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return "", fmt.Errorf("copying the variable store template %s: %w", template, err)
	}
	if err := dst.Close(); err != nil {
		return "", fmt.Errorf("copying the variable store template %s: %w", template, err)
	}
	return dst.Name(), nil
}

// command prepares QEMU's process and returns its standard output.
func (vm *VM) command() (io.Reader, error) {
	cmd := exec.Command(QEMU, vm.args...)
	// If the calling process dies, so does QEMU.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if vm.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	cmd.Stderr = &lockedWriter{mu: &vm.mu, w: &vm.stderr}
	vm.cmd = cmd
	return stdout, nil
}

// reap waits for QEMU's exit once its console is drained, removes the
// firmware's variable store and ends the log.
func (vm *VM) reap(log io.Writer, closeLog func()) {
	<-vm.readDone
	err := vm.cmd.Wait()
	var rmErr error
	if vm.vars != "" {
		rmErr = os.Remove(vm.vars)
	}
	vm.mu.Lock()
	vm.exitErr = err
	vm.end = time.Now()
	if vm.stderr.Len() > 0 {
		fmt.Fprintf(log, "\n# QEMU stderr:\n%s", vm.stderr.Bytes())
	}
	fmt.Fprintf(log, "\n# QEMU exit: %v after %v\n", describeExit(err), vm.end.Sub(vm.start).Round(time.Millisecond))
	if rmErr != nil {
		fmt.Fprintf(log, "# removing the firmware's variable store: %v\n", rmErr)
	}
	closeLog()
	vm.notifyLocked()
	vm.mu.Unlock()
	close(vm.exited)
}

// createLog creates dir/base.console.log, or base-2..., if a machine of
// the same name ran with the same directory before.
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
				vm.addLineLocked(stripEscapes(vm.partial))
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
		vm.addLineLocked(strings.TrimRight(stripEscapes(line), "\r"))
		b = b[i+1:]
	}
	vm.notifyLocked()
}

func stripEscapes(b []byte) string { return string(escapeRE.ReplaceAll(b, nil)) }

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

// Send writes s to the serial console's input as it is.
func (vm *VM) Send(s string) error {
	_, err := io.WriteString(vm.stdin, s)
	return err
}

// Type types line and Enter. Wait for the program's prompt first: a line
// editor reads what comes before it has put the terminal in raw mode in
// the wrong mode.
func (vm *VM) Type(line string) error { return vm.Send(line + "\r") }

// Enter sends what a terminal's Enter key does: CR. A line editor in raw
// mode submits on CR (LF is a newline within the input); a terminal in
// canonical mode turns CR into LF (ICRNL), so line reads see their "\n".
func (vm *VM) Enter() error { return vm.Send("\r") }

// Kill kills QEMU if it still runs. It does not wait for it to exit.
func (vm *VM) Kill() {
	if !vm.Exited() {
		_ = vm.cmd.Process.Kill()
	}
}

// Stop kills QEMU if it still runs and waits until it has exited and its
// console is drained.
func (vm *VM) Stop() {
	vm.Kill()
	<-vm.exited
}

// Exited reports whether QEMU has exited.
func (vm *VM) Exited() bool {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.hasExitedLocked()
}

// hasExitedLocked reports whether QEMU has exited and its console is
// drained (end is set then, under mu, just before exited is closed).
func (vm *VM) hasExitedLocked() bool { return !vm.end.IsZero() }

// Elapsed returns the time from QEMU's start to its exit, or to now if it
// still runs.
func (vm *VM) Elapsed() time.Duration {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.elapsedLocked()
}

func (vm *VM) elapsedLocked() time.Duration {
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

// Name returns the machine's name (Options.Name, or "vm").
func (vm *VM) Name() string { return vm.name }

// LogPath returns the console log's path ("" without Options.LogDir). It
// holds QEMU's command line, the raw console output, QEMU's stderr and its
// exit status.
func (vm *VM) LogPath() string { return vm.logPath }

// Args returns QEMU's arguments.
func (vm *VM) Args() []string { return append([]string(nil), vm.args...) }

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
