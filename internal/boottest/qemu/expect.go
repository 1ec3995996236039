package qemu

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Errors that Expect and Wait wrap (test with errors.Is). The error texts
// carry the last console lines and the console log's path.
var (
	ErrTimeout     = errors.New("timed out")
	ErrExited      = errors.New("QEMU exited")
	ErrKernelPanic = errors.New("kernel panic")
)

// panicGrace is how long to wait, after a panic line, for the rest of the
// panic report before failing.
const panicGrace = 3 * time.Second

// Expect waits until a console line not consumed by an earlier Expect
// matches re, consumes the lines up to and including it, and returns re's
// submatches. Lines are matched once complete, without their line ending
// and terminal escape sequences (the log keeps the raw bytes). It fails
// with ErrKernelPanic or ErrExited if the kernel panics or QEMU exits
// first, or ErrTimeout; the errors carry the last console lines.
func (vm *VM) Expect(re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	return vm.expect(re, timeout, false)
}

// ExpectPrompt is Expect that also matches the incomplete last line, where
// a prompt waits for input. Matched there, that line is consumed: once
// complete (with the echo of what was typed) no Expect sees it.
func (vm *VM) ExpectPrompt(re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	return vm.expect(re, timeout, true)
}

func (vm *VM) expect(re *regexp.Regexp, timeout time.Duration, partial bool) ([]string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var grace <-chan time.Time
	for {
		vm.mu.Lock()
		if m := vm.matchLocked(re, partial); m != nil {
			vm.mu.Unlock()
			return m, nil
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

// matchLocked consumes the lines up to the first unconsumed one that
// matches re (with partial, the incomplete last line too).
func (vm *VM) matchLocked(re *regexp.Regexp, partial bool) []string {
	for ; vm.next < len(vm.lines); vm.next++ {
		if m := re.FindStringSubmatch(vm.lines[vm.next]); m != nil {
			vm.next++
			return m
		}
	}
	if partial && vm.next == len(vm.lines) && len(vm.partial) > 0 {
		if m := re.FindStringSubmatch(stripEscapes(vm.partial)); m != nil {
			vm.next++
			return m
		}
	}
	return nil
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

func (vm *VM) errorf(kind error, format string, args ...any) error {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	vm.reported = true
	msg := fmt.Sprintf(format, args...)
	return fmt.Errorf("%s: %w %s%s", vm.name, kind, msg, vm.contextLocked())
}

func describeExit(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
