package qemu

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestConsoleLines(t *testing.T) {
	vm := &VM{changed: make(chan struct{}), panicAt: -1}
	for _, chunk := range []string{
		"\x1b[2J\x1b[01;01H\x1b[=3h", "NIXLIVE-TESTINIT-OK cmd", "line=a b\r\n",
		"\x1b]0;title\x07second\r", "\n[    1.0] Kernel panic - not syncing: x\r\n",
		"[    1.1] ---[ end Kernel panic - not syncing: x ]---\r\n", "partial\x1b[0m",
	} {
		vm.addLocked([]byte(chunk))
	}
	assert.Equal(t, []string{
		"NIXLIVE-TESTINIT-OK cmdline=a b",
		"second",
		"[    1.0] Kernel panic - not syncing: x",
		"[    1.1] ---[ end Kernel panic - not syncing: x ]---",
	}, vm.lines)
	assert.Equal(t, "partial\x1b[0m", string(vm.partial), "the partial line waits for its end")
	assert.Equal(t, 2, vm.panicAt)
	assert.True(t, vm.panicEnd)
	assert.Equal(t, `partial\x1b[0m`, printable(string(vm.partial)))
}

func TestTailIsCut(t *testing.T) {
	vm := &VM{changed: make(chan struct{}), panicAt: -1}
	for range 100 {
		vm.addLocked([]byte("x\n"))
	}
	tail := vm.Tail()
	assert.True(t, strings.HasPrefix(tail, "\t... (40 earlier lines)\n"), tail)
	assert.Equal(t, TailLines, strings.Count(tail, "\t| x"))
}

func TestShellJoin(t *testing.T) {
	assert.Equal(t, `qemu -append 'console=ttyS0 quiet' 'it'\''s'`, shellJoin([]string{"qemu", "-append", "console=ttyS0 quiet", "it's"}))
}

func TestCreateLogIsUnique(t *testing.T) {
	dir := t.TempDir()
	var names []string
	for range 3 {
		f, err := createLog(dir, "vm")
		if !assert.NoError(t, err) {
			return
		}
		f.Close()
		names = append(names, filepath.Base(f.Name()))
	}
	assert.Equal(t, []string{"vm.console.log", "vm-2.console.log", "vm-3.console.log"}, names)
}

// A prompt waits on the incomplete last line: ExpectPrompt sees it there,
// and the line, once complete, is consumed.
func TestExpectPromptSeesThePartialLine(t *testing.T) {
	vm := &VM{changed: make(chan struct{}), panicAt: -1}
	vm.addLocked([]byte("booting\r\n\x1b[?25l> "))
	re := regexp.MustCompile(`^> *$`)
	assert.Nil(t, vm.matchLocked(re, false), "Expect waits for complete lines")
	assert.NotNil(t, vm.matchLocked(re, true), "ExpectPrompt")
	assert.Nil(t, vm.matchLocked(re, true), "the prompt is consumed")
	vm.addLocked([]byte("ls\r\n> \r\n"))
	assert.Equal(t, []string{"booting", "> ls", "> "}, vm.lines)
	assert.NotNil(t, vm.matchLocked(re, false), "the next prompt, not the typed line")
	assert.Equal(t, 3, vm.next)
}
