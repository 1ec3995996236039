package live

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFindISODotDot: a findiso= path with a ".." component would leave
// the file system stage 1 probes; it is refused, naming the parameter.
func TestFindISODotDot(t *testing.T) {
	for _, v := range []string{"/../../init", "/boot/../../x.iso", "/a/..", "/.."} {
		c, err := ParseCmdline("findiso=" + v + " root=LABEL=x")
		require.Error(t, err, "findiso=%s", v)
		assert.Contains(t, err.Error(), "findiso=")
		assert.Contains(t, err.Error(), "..")
		assert.Empty(t, c.FindISO)
		assert.Equal(t, "x", c.Root.Label, "the rest is still parsed")
	}
	for _, v := range []string{"/a..b/x.iso", "/boot/..x.iso", "/x.iso..", "/iso/./live.iso"} {
		c, err := ParseCmdline("findiso=" + v)
		require.NoError(t, err, "findiso=%s", v)
		assert.Equal(t, v, c.FindISO)
	}
}

// TestTimeoutKernelNumber: live.timeout= takes a plain decimal number of
// seconds (sign, digits, point, exponent); Go's extra syntaxes
// (underscores between digits, hex, "Inf") are refused.
func TestTimeoutKernelNumber(t *testing.T) {
	for _, v := range []string{"1_0", "0x10", "Inf", "infinity", ".", " 1", "1__0", "0x1p4", "1_0.5"} {
		_, err := ParseCmdline("live.timeout=" + v)
		if assert.Error(t, err, "live.timeout=%s", v) {
			assert.Contains(t, err.Error(), "live.timeout=")
		}
	}
	for v, want := range map[string]time.Duration{"10": 10 * time.Second, "2.5": 2500 * time.Millisecond, "0": 0, ".5": 500 * time.Millisecond, "007": 7 * time.Second, "1.": time.Second, "1e1": 10 * time.Second, "+5": 5 * time.Second} {
		c, err := ParseCmdline("live.timeout=" + v)
		if assert.NoError(t, err, "live.timeout=%s", v) {
			assert.Equal(t, want, c.Timeout, "live.timeout=%s", v)
		}
	}
	_ = strings.TrimSpace
}

// TestRootByLabelGRUB: root=/dev/disk/by-label/ with udev's \xHH escapes
// is decoded, also when GRUB 2.06 (Debian 12's) has doubled each escape's
// backslash on its way to the kernel; other backslashes stay as they are.
func TestRootByLabelGRUB(t *testing.T) {
	for v, want := range map[string]string{
		`/dev/disk/by-label/my\x20label`:         "my label",
		`/dev/disk/by-label/my\\x20label`:        "my label",
		`/dev/disk/by-label/a\x5cx20b`:           `a\x20b`,
		`/dev/disk/by-label/a\\x5c\\x5cb`:        `a\\b`,
		`/dev/disk/by-label/a\\xZZ`:              `a\\xZZ`,
		`/dev/disk/by-label/\xc3\xa9t\\xc3\\xa9`: "été",
		`/dev/disk/by-label/end\\`:               `end\\`,
		`/dev/disk/by-label/end\x2`:              `end\x2`,
	} {
		c, err := ParseCmdline("root=" + v)
		if assert.NoError(t, err, v) {
			assert.Equal(t, want, c.Root.Label, v)
		}
	}
}
