package stage2

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/live"
)

func TestChooseInit(t *testing.T) {
	sys := "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-system"
	have := func(paths ...string) func(string) bool {
		m := map[string]bool{}
		for _, p := range paths {
			m[p] = true
		}
		return func(p string) bool { return m[p] }
	}
	systemd := sys + "/systemd/lib/systemd/systemd"
	swInit := sys + "/sw/bin/init"
	cases := []struct {
		name    string
		exists  func(string) bool
		cmdline string
		want    string
	}{
		{"systemd first", have(systemd, swInit, "/x"), "live.init=/x", systemd},
		{"sw/bin/init", have(swInit, "/x"), "live.init=/x", swInit},
		{"live.init", have("/x"), "live.init=/x", "/x"},
		{"missing live.init", have(), "live.init=/x", ""},
		{"nothing", have(), "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ChooseInit(sys, parse(t, c.cmdline), c.exists)
			require.Equal(t, c.want, got.Path)
			require.NotEmpty(t, got.Reason)
		})
	}
}

func TestSystemConfig(t *testing.T) {
	sys := "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-system"
	require.Equal(t, "/env", SystemConfig("/env", parse(t, "systemConfig="+sys), sys+"/init"))
	require.Equal(t, sys, SystemConfig("", parse(t, "quiet systemConfig="+sys+" init="+sys+"/init"), "/init"))
	require.Equal(t, sys, SystemConfig("", parse(t, ""), sys+"/init"))
	require.Equal(t, "", SystemConfig("", parse(t, ""), "/sbin/init"))
}

func parse(t *testing.T, cmdline string) *live.Cmdline {
	c, err := live.ParseCmdline(cmdline)
	require.NoError(t, err)
	return c
}
