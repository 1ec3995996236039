package live

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// NixOS's stage 1 spellings of its failure and debug parameters
// (stage-1-init.sh: boot.trace|debugtrace, boot.debug1|debug1,
// boot.panic_on_fail|stage1panic=1) are read as it reads them.
func TestParseCmdlineNixOSBootForms(t *testing.T) {
	for _, tc := range []struct {
		line                 string
		panic, debug1, trace bool
		where                string
	}{
		{"boot.trace", false, false, true, ""},
		{"debugtrace", false, false, true, ""},
		{"boot.trace=0", false, false, false, ""},
		{"debug1", false, true, false, ""},
		{"boot.debug1mounts debug1", false, true, false, ""},
		{"debug1 boot.debug1devices", false, true, false, "devices"},
		{"stage1panic=1", true, false, false, ""},
		{"stage1panic", false, false, false, ""}, // NixOS matches stage1panic=1 only
		{"stage1panic=0", false, false, false, ""},
		{"boot.panic_on_fail stage1panic=0", false, false, false, ""},
	} {
		c, err := ParseCmdline(tc.line)
		require.NoError(t, err, tc.line)
		assert.Equal(t, tc.panic, c.PanicOnFail, "%s: PanicOnFail", tc.line)
		assert.Equal(t, tc.debug1, c.Debug1, "%s: Debug1", tc.line)
		assert.Equal(t, tc.where, c.Debug1Where, "%s: Debug1Where", tc.line)
		assert.Equal(t, tc.trace, c.Trace, "%s: Trace", tc.line)
	}
}

// boot.* parameters that no stage reads are listed for stage 1 to log;
// known ones, and other namespaces, are not.
func TestUnknownBootParams(t *testing.T) {
	c, err := ParseCmdline("boot.shell_on_fail boot.panic_on_fail boot.debug1 boot.debug1devices boot.debug1mounts " +
		"boot.trace boot.debugtrace debug1 quiet live.timeout=3 boot.shell_on_fial boot.debug2 boot.persistence=/dev/sda1")
	require.NoError(t, err)
	assert.Equal(t, []string{"boot.debug2", "boot.persistence", "boot.shell_on_fial"}, c.UnknownBootParams())
	c, err = ParseCmdline("quiet")
	require.NoError(t, err)
	assert.Empty(t, c.UnknownBootParams())
}
