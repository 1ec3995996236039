package qemu

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TailLines is how many console lines errors carry.
const TailLines = 60

// contextLocked returns what errors append: QEMU's stderr, the last
// console lines and where the whole log is.
func (vm *VM) contextLocked() string {
	var b strings.Builder
	if s := strings.TrimSpace(vm.stderr.String()); s != "" {
		fmt.Fprintf(&b, "\nQEMU stderr:\n%s", s)
	}
	fmt.Fprintf(&b, "\nlast console lines (%v after start):\n%s", vm.elapsedLocked().Round(time.Millisecond), vm.tailLocked())
	if vm.logPath != "" {
		fmt.Fprintf(&b, "\nconsole log: %s%s", vm.logPath, vm.logNote)
	}
	return b.String()
}

// Tail returns the last TailLines console lines, indented and quoted for
// an error message.
func (vm *VM) Tail() string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.tailLocked()
}

// TailReported reports whether an error of Expect or Wait already carried
// the console's last lines.
func (vm *VM) TailReported() bool {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.reported
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
