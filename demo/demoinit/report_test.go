package demoinit

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sys = "/nix/store/hh19222lrfi29d2jn5w4vrxmf5rq76pg-nixos-system-nixlive-demo-25.05"

// good is what a working live CD reports.
func good() *Report {
	return &Report{
		System: sys, Kernel: "6.1.0", Hostname: "nixlive-demo",
		Registered: 8, RegisteredRef: 9, ValidPaths: 8, Refs: 9, Matching: 8,
		NixOS:        true,
		Profile:      ProfileChain{ProfileLink, ProfileLink + "-1-link", sys},
		BootedSystem: sys, CurrentSystem: sys,
		Mounts: []Mount{
			{"/", "tmpfs", "tmpfs", "rw"}, {"/iso", "iso9660", "/dev/sr0", "ro"},
			{"/nix/.ro-store", "squashfs", "/dev/loop0", "ro"}, {"/nix/.rw-store", "tmpfs", "tmpfs", "rw"},
			{"/nix/store", "overlay", "overlay", "ro,nosuid,nodev"},
		},
		StoreReadOnly: true,
		Timeline: []Step{
			{Name: "stage1: start", At: 2.1}, {Name: "stage1: switch_root", At: 3.0},
			{Name: "stage2: start", At: 3.3}, {Name: "stage2: postboot", At: 4.0},
			{Name: "stage2: exec init", At: 4.1}, {Name: "demo-init: start", At: 4.4},
		},
	}
}

func TestCheckGood(t *testing.T) {
	r := good()
	r.Check()
	assert.Empty(t, r.Problems)
	assert.True(t, r.OK())
}

// TestCheckFindsEachDefect breaks one thing at a time; Check must name it.
func TestCheckFindsEachDefect(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(r *Report)
		want  string
	}{
		{"path not valid", func(r *Report) { r.Matching, r.ValidPaths = 7, 7 }, "8 paths registered, 7 valid"},
		{"hash differs", func(r *Report) { r.Matching = 7 }, "7 with the same hash and size"},
		{"refs missing", func(r *Report) { r.Refs = 3 }, "9 references registered, 3 in the database"},
		{"no /etc/NIXOS", func(r *Report) { r.NixOS = false }, "/etc/NIXOS is missing"},
		{"profile elsewhere", func(r *Report) { r.Profile[2] = "/nix/store/x" }, "profile chain"},
		{"generation 2", func(r *Report) { r.Profile[1] = ProfileLink + "-2-link" }, "system-1-link"},
		{"booted-system", func(r *Report) { r.BootedSystem = "" }, "/run/booted-system"},
		{"store not overlay", func(r *Report) { r.Mounts[4].FSType = "squashfs" }, `/nix/store is "squashfs", want overlay`},
		{"no /iso", func(r *Report) { r.Mounts = r.Mounts[:1] }, `/iso is "", want iso9660`},
		{"write failed", func(r *Report) { r.StoreWrite = "EROFS" }, "store write: EROFS"},
		{"store writable", func(r *Report) { r.StoreReadOnly = false }, "accepts direct writes"},
		{"no postboot step", func(r *Report) { r.Timeline = r.Timeline[:3] }, `timeline lacks "stage2: postboot"`},
		{"no system", func(r *Report) { r.System = "" }, "no systemConfig"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := good()
			tc.spoil(r)
			r.Check()
			require.False(t, r.OK())
			assert.Contains(t, strings.Join(r.Problems, "\n"), tc.want)
		})
	}
}

// TestReportRoundTrip prints a report among console noise and parses it
// back from the JSON line.
func TestReportRoundTrip(t *testing.T) {
	r := good()
	r.Check()
	var b bytes.Buffer
	b.WriteString("[    4.1] some kernel line\r\n")
	require.NoError(t, r.WriteText(&b))
	b.WriteString("Press Enter within 5 s for a shell\n")
	out := b.String()
	assert.Contains(t, out, "verdict             ok")
	assert.Contains(t, out, "stage2: postboot")
	got, err := Parse(out)
	require.NoError(t, err)
	assert.Equal(t, r, got)

	_, err = Parse("no report here\n")
	assert.Error(t, err)
	_, err = Parse(Marker + "{not json\n")
	assert.Error(t, err)
}
