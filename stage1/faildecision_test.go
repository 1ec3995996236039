package stage1

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/live"
)

// TestOnFail: the failure decision as data, from the command line and
// whether the initrd has a rescue shell.
func TestOnFail(t *testing.T) {
	for _, tc := range []struct {
		line  string
		shell bool
		want  FailAction
	}{
		{"", false, FailHalt},
		{"", true, FailOffer}, // a shell is there: offered, not a silent halt
		{"boot.shell_on_fail", true, FailShell},
		{"boot.shell_on_fail", false, FailHalt}, // stage 1 says the initrd has none
		{"boot.debug1mounts", true, FailShell},  // NixOS: debug1* allow the shell
		{"debug1", true, FailShell},
		{"boot.panic_on_fail", true, FailPanic},
		{"boot.panic_on_fail", false, FailPanic},
		{"boot.shell_on_fail boot.panic_on_fail", true, FailPanic}, // panic wins, as in NixOS
		{"boot.panic_on_fail boot.shell_on_fail", true, FailPanic},
		{"stage1panic=1 boot.shell_on_fail", true, FailPanic},
		{"boot.panic_on_fail=0 boot.shell_on_fail", true, FailShell},
		{"boot.trace", true, FailOffer},
	} {
		c, err := live.ParseCmdline(tc.line)
		require.NoError(t, err, tc.line)
		assert.Equal(t, tc.want, OnFail(c, tc.shell), "%q, shell=%v", tc.line, tc.shell)
	}
	// An unreadable command line.
	assert.Equal(t, FailOffer, OnFail(nil, true))
	assert.Equal(t, FailHalt, OnFail(nil, false))
}
