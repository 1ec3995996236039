package stage2

import (
	"testing"

	"github.com/stretchr/testify/require"
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
		cmdline map[string]string
		want    string
	}{
		{"systemd first", have(systemd, swInit, "/x"), map[string]string{"live.init": "/x"}, systemd},
		{"sw/bin/init", have(swInit, "/x"), map[string]string{"live.init": "/x"}, swInit},
		{"live.init", have("/x"), map[string]string{"live.init": "/x"}, "/x"},
		{"missing live.init", have(), map[string]string{"live.init": "/x"}, ""},
		{"nothing", have(), map[string]string{}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ChooseInit(sys, c.cmdline, c.exists)
			require.Equal(t, c.want, got.Path)
			require.NotEmpty(t, got.Reason)
		})
	}
}

func TestSystemConfig(t *testing.T) {
	sys := "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-system"
	require.Equal(t, "/env", SystemConfig("/env", map[string]string{"systemConfig": sys}, sys+"/init"))
	require.Equal(t, sys, SystemConfig("", ParseCmdline("quiet systemConfig="+sys+" init="+sys+"/init"), "/init"))
	require.Equal(t, sys, SystemConfig("", map[string]string{}, sys+"/init"))
	require.Equal(t, "", SystemConfig("", map[string]string{}, "/sbin/init"))
}
