package live

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseCmdlineNixOS(t *testing.T) {
	const line = "BOOT_IMAGE=/boot/bzImage init=/nix/store/abc-nixos-system/init root=LABEL=nixos-minimal-25.05-x86_64 " +
		"boot.shell_on_fail console=ttyS0,115200n8 console=tty0 loglevel=4 systemConfig=/nix/store/abc-nixos-system\n"
	c, err := ParseCmdline(line)
	require.NoError(t, err)
	assert.Equal(t, &Cmdline{
		Init:         "/nix/store/abc-nixos-system/init",
		SystemConfig: "/nix/store/abc-nixos-system",
		Root:         Root{Label: "nixos-minimal-25.05-x86_64"},
		ShellOnFail:  true,
		Timeout:      30 * time.Second,
		Consoles:     []string{"ttyS0,115200n8", "tty0"},
		Params: map[string]string{
			"BOOT_IMAGE": "/boot/bzImage", "init": "/nix/store/abc-nixos-system/init",
			"root": "LABEL=nixos-minimal-25.05-x86_64", "boot.shell_on_fail": "",
			"console": "tty0", "loglevel": "4", "systemConfig": "/nix/store/abc-nixos-system",
		},
		Raw: line,
	}, c)
}

func TestParseCmdlineDefaults(t *testing.T) {
	for _, s := range []string{"", " \t\n", `""`} {
		c, err := ParseCmdline(s)
		require.NoError(t, err)
		assert.Equal(t, "/init", c.Init)
		assert.Equal(t, DefaultTimeout, c.Timeout)
		assert.Equal(t, Root{}, c.Root)
		assert.Empty(t, c.Params)
		assert.Equal(t, s, c.Raw)
	}
}

func TestParseCmdlineFields(t *testing.T) {
	for _, tc := range []struct {
		line  string
		check func(*testing.T, *Cmdline)
	}{
		{"root=UUID=2024-01-01-00-00-00-00", func(t *testing.T, c *Cmdline) { assert.Equal(t, Root{UUID: "2024-01-01-00-00-00-00"}, c.Root) }},
		{"root=/dev/sr0", func(t *testing.T, c *Cmdline) { assert.Equal(t, Root{Device: "/dev/sr0"}, c.Root) }},
		{`root=/dev/disk/by-label/my\x20disk`, func(t *testing.T, c *Cmdline) { assert.Equal(t, Root{Label: "my disk"}, c.Root) }},
		{`root=/dev/disk/by-uuid/1234-ABCD`, func(t *testing.T, c *Cmdline) { assert.Equal(t, Root{UUID: "1234-ABCD"}, c.Root) }},
		{`root="LABEL=my disk"`, func(t *testing.T, c *Cmdline) { assert.Equal(t, Root{Label: "my disk"}, c.Root) }},
		{"root=LABEL=a root=UUID=b", func(t *testing.T, c *Cmdline) { assert.Equal(t, Root{UUID: "b"}, c.Root) }},
		{"init=/a init=/b", func(t *testing.T, c *Cmdline) { assert.Equal(t, "/b", c.Init) }},
		{"copytoram", func(t *testing.T, c *Cmdline) { assert.True(t, c.CopyToRAM) }},
		{"copytoram=1", func(t *testing.T, c *Cmdline) { assert.True(t, c.CopyToRAM) }},
		{"copytoram copytoram=0", func(t *testing.T, c *Cmdline) { assert.False(t, c.CopyToRAM) }},
		{"findiso=/isos/nixos.iso", func(t *testing.T, c *Cmdline) { assert.Equal(t, "/isos/nixos.iso", c.FindISO) }},
		{"boot.panic_on_fail", func(t *testing.T, c *Cmdline) { assert.True(t, c.PanicOnFail) }},
		{"boot.debug1", func(t *testing.T, c *Cmdline) { assert.True(t, c.Debug1); assert.Equal(t, "", c.Debug1Where) }},
		{"boot.debug1devices", func(t *testing.T, c *Cmdline) { assert.True(t, c.Debug1); assert.Equal(t, "devices", c.Debug1Where) }},
		{"boot.debug1 boot.debug1mounts", func(t *testing.T, c *Cmdline) { assert.True(t, c.Debug1); assert.Equal(t, "mounts", c.Debug1Where) }},
		{"live.timeout=2.5", func(t *testing.T, c *Cmdline) { assert.Equal(t, 2500*time.Millisecond, c.Timeout) }},
		{"live.timeout=0", func(t *testing.T, c *Cmdline) { assert.Equal(t, time.Duration(0), c.Timeout) }},
		{"live.init=/bin/sh", func(t *testing.T, c *Cmdline) { assert.Equal(t, "/bin/sh", c.LiveInit) }},
		{"quiet splash vga=791 unknown.param=x", func(t *testing.T, c *Cmdline) {
			assert.Equal(t, map[string]string{"quiet": "", "splash": "", "vga": "791", "unknown.param": "x"}, c.Params)
		}},
	} {
		c, err := ParseCmdline(tc.line)
		require.NoError(t, err, tc.line)
		tc.check(t, c)
	}
}

// The kernel's tokenizing (lib/cmdline.c next_arg): which quotes go.
func TestParseCmdlineQuotes(t *testing.T) {
	for line, want := range map[string]map[string]string{
		`a="x y"`:                       {"a": "x y"},
		`"b=z w"`:                       {"b": "z w"},
		`c="q"d"`:                       {"c": `q"d`}, // the value's first quote and the token's last
		`c=q"d"`:                        {"c": `q"d"`},
		`e"f g"h`:                       {`e"f g"h`: ""}, // quotes inside a token stay
		`e"f=g"h=1`:                     {`e"f`: `g"h=1`},
		`"flag"`:                        {"flag": ""},
		`k=""`:                          {"k": ""},
		`m="  n=v"`:                     {"m": "  n=v"},
		`x="unterminated and more`:      {"x": "unterminated and more"},
		"tab=1\tnl=2\nnbsp=3\xa0cr=4\r": {"tab": "1", "nl": "2", "nbsp": "3", "cr": "4"},
		"a=1 a=2":                       {"a": "2"},
	} {
		c, err := ParseCmdline(line)
		require.NoError(t, err, line)
		assert.Equal(t, want, c.Params, "%q", line)
	}
}

func TestParseCmdlineInitArgs(t *testing.T) {
	c, err := ParseCmdline(`root=/dev/sr0 quiet -- single "two words" k="v w" --  `)
	require.NoError(t, err)
	assert.Equal(t, []string{"single", "two words", "k=v w", "--"}, c.InitArgs)
	assert.Equal(t, map[string]string{"root": "/dev/sr0", "quiet": ""}, c.Params)

	c, err = ParseCmdline(`a -- `)
	require.NoError(t, err)
	assert.Empty(t, c.InitArgs)
	c, err = ParseCmdline(`--=x`) // not the separator
	require.NoError(t, err)
	assert.Equal(t, "x", c.Params["--"])
}

func TestParseCmdlineErrors(t *testing.T) {
	for line, want := range map[string]string{
		"root=FOO":              `root="FOO"`,
		"root=":                 `root=""`,
		"root=LABEL=":           `root="LABEL="`,
		"root=/dev/":            `root="/dev/"`,
		"live.timeout=-1":       `live.timeout="-1": negative`,
		"live.timeout=abc":      `live.timeout="abc": not a number`,
		"live.timeout=NaN":      `live.timeout="NaN"`,
		"live.timeout=1e300":    `live.timeout="1e300": too large`,
		"init=nix/store/x/init": `init="nix/store/x/init": not an absolute path`,
		"init=":                 `init=""`,
		"findiso=nixos.iso":     `findiso="nixos.iso": not an absolute path`,
		"live.init=sh":          `live.init="sh"`,
	} {
		_, err := ParseCmdline(line)
		require.Error(t, err, line)
		assert.Contains(t, err.Error(), want, line)
	}

	// Every error is reported, and the rest is still parsed.
	c, err := ParseCmdline("root=FOO boot.shell_on_fail init=x live.timeout=-3 copytoram")
	require.Error(t, err)
	for _, p := range []string{"root=", "init=", "live.timeout="} {
		assert.Contains(t, err.Error(), p)
	}
	require.NotNil(t, c)
	assert.True(t, c.ShellOnFail)
	assert.True(t, c.CopyToRAM)
	assert.Equal(t, "/init", c.Init)
	assert.Equal(t, DefaultTimeout, c.Timeout)
}

// tokens splits s as ParseCmdline does, "--" included.
func tokens(s string) []token {
	var out []token
	for s != "" {
		var t token
		t, s = nextToken(s)
		if t.key != "" || t.hasVal {
			out = append(out, t)
		}
	}
	return out
}

func FuzzParseCmdline(f *testing.F) {
	for _, s := range []string{
		"init=/nix/store/x/init root=LABEL=nixos boot.shell_on_fail console=ttyS0,115200n8",
		`a="x y" "b=z w" c=" q "d" e"f g"h -- init "arg s"`,
		"root=/dev/disk/by-label/a\\x20b live.timeout=2.5 copytoram=0 \xa0x",
		`"`, `=`, `""=""`, `a="`, `" 0`,
		"persistence=LABEL=nixlive-rw persistence.reset persistence=0 persistence=/dev/sdb1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCmdline(s)
		require.NotNil(t, c)
		require.Equal(t, s, c.Raw)
		if err == nil {
			require.True(t, strings.HasPrefix(c.Init, "/"))
			require.GreaterOrEqual(t, c.Timeout, time.Duration(0))
		}
		// Persistence names a device exactly when it is on.
		require.Equal(t, c.Persistence, c.PersistDev != Root{}, "%q", s)
		toks := tokens(s)
		// Without quotes, tokens are the whitespace-separated fields.
		if !strings.Contains(s, `"`) {
			fields := byteFields(s)
			require.Len(t, toks, len(fields))
			for i, tk := range toks {
				require.Equal(t, fields[i], tk.String())
			}
		}
		// Round trip: quoting every value gives the same tokens back.
		var b strings.Builder
		for _, tk := range toks {
			if f := byteFields(tk.key); strings.ContainsRune(tk.key+tk.val, '"') || len(f) != 1 || f[0] != tk.key {
				return // not expressible this way
			}
			b.WriteString(tk.key)
			if tk.hasVal {
				b.WriteString(`="` + tk.val + `"`)
			}
			b.WriteByte(' ')
		}
		require.Equal(t, toks, tokens(b.String()), "%q → %q", s, b.String())
	})
}

// byteFields splits s at the kernel's whitespace bytes.
func byteFields(s string) []string {
	var out []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i == len(s) || isSpace(s[i]) {
			if start >= 0 {
				out = append(out, s[start:i])
			}
			start = -1
		} else if start < 0 {
			start = i
		}
	}
	return out
}
