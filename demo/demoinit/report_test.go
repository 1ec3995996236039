package demoinit

import (
	"bytes"
	"errors"
	"fmt"
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
		SecureBoot: SecureBootEnabled, Lockdown: "integrity",
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
	assert.Contains(t, out, "\nSecure Boot: enabled, lockdown: integrity\n")
	assert.Contains(t, out, "stage2: postboot")
	got, err := Parse(out)
	require.NoError(t, err)
	assert.Equal(t, r, got)

	_, err = Parse("no report here\n")
	assert.Error(t, err)
	_, err = Parse(Marker + "{not json\n")
	assert.Error(t, err)
}

func TestSecureBootLine(t *testing.T) {
	for _, tc := range []struct{ sb, lockdown, want string }{
		{SecureBootEnabled, "integrity", "Secure Boot: enabled, lockdown: integrity"},
		{SecureBootDisabled, "none", "Secure Boot: disabled, lockdown: none"},
		{NotUEFI, "none", "Secure Boot: not UEFI, lockdown: none"},
		{Unknown(errors.New("mount efivarfs: no such device")), Unknown(errors.New("no lockdown LSM")),
			"Secure Boot: unknown (mount efivarfs: no such device), lockdown: unknown (no lockdown LSM)"},
	} {
		r := &Report{SecureBoot: tc.sb, Lockdown: tc.lockdown}
		assert.Equal(t, tc.want, r.SecureBootLine())
	}
}

// TestSecureBootVarName builds the variable's file name as efivarfs does
// (name, '-', the GUID's fields in hex) from EFI_GLOBAL_VARIABLE as the
// UEFI specification writes it.
func TestSecureBootVarName(t *testing.T) {
	d1, d2, d3 := uint32(0x8BE4DF61), uint16(0x93CA), uint16(0x11D2)
	d4 := [8]byte{0xAA, 0x0D, 0x00, 0xE0, 0x98, 0x03, 0x2B, 0x8C}
	want := fmt.Sprintf("SecureBoot-%08x-%04x-%04x-%x-%x", d1, d2, d3, d4[:2], d4[2:])
	assert.Equal(t, want, SecureBootVar)
}

func TestParseSecureBootVar(t *testing.T) {
	// Attributes as OVMF sets them: boot service and runtime access.
	attrs := []byte{0x06, 0, 0, 0}
	for _, tc := range []struct {
		name string
		b    []byte
		want string
		err  string
	}{
		{"enabled", append(attrs, 1), SecureBootEnabled, ""},
		{"disabled", append(attrs, 0), SecureBootDisabled, ""},
		{"non-volatile attributes", []byte{0x07, 0, 0, 0, 1}, SecureBootEnabled, ""},
		{"empty", nil, "", "0 bytes, want 5"},
		{"attributes only", attrs, "", "4 bytes, want 5"},
		{"truncated attributes", []byte{6, 0, 1}, "", "3 bytes, want 5"},
		{"two bytes of value", append(attrs, 1, 0), "", "6 bytes, want 5"},
		{"value 2", append(attrs, 2), "", "holds 2, want 0 or 1"},
		{"value 0xff", append(attrs, 0xff), "", "holds 255, want 0 or 1"},
		{"text", []byte("1\n"), "", "2 bytes, want 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSecureBootVar(append([]byte(nil), tc.b...))
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				assert.Contains(t, err.Error(), SecureBootVar)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseLockdown(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"none [integrity] confidentiality\n", "integrity", ""},
		{"[none] integrity confidentiality\n", "none", ""},
		{"none integrity [confidentiality]\n", "confidentiality", ""},
		{"[none]", "none", ""},
		{"  none\t[integrity]  confidentiality  ", "integrity", ""},
		{"none [integrity] confidentiality [future]\n", "", "more than one mode"},
		{"none integrity confidentiality\n", "", "no mode in brackets"},
		{"", "", "no mode in brackets"},
		{"\n", "", "no mode in brackets"},
		{"none [] confidentiality", "", `"[]" is not a mode`},
		{"none [integrity confidentiality", "", "lacks its closing bracket"},
		{"none integrity] confidentiality", "", `"integrity]" is not a mode`},
		{"none [[integrity]] confidentiality", "", "is not a mode"},
		{"none [Integrity] confidentiality", "", "is not a mode"},
		{"none [integrity]x confidentiality", "", "lacks its closing bracket"},
		{"none [in tegrity] confidentiality", "", "lacks its closing bracket"},
		{"\x00\xff[integrity]", "", "is not a mode"},
	} {
		got, err := ParseLockdown(tc.in)
		if tc.err != "" {
			if assert.Error(t, err, "%q", tc.in) {
				assert.Contains(t, err.Error(), tc.err, "%q", tc.in)
			}
			continue
		}
		if assert.NoError(t, err, "%q", tc.in) {
			assert.Equal(t, tc.want, got, "%q", tc.in)
		}
	}
}

// FuzzParseLockdown: any input gives a mode that was bracketed in it, or
// an error, never a panic.
func FuzzParseLockdown(f *testing.F) {
	f.Add("none [integrity] confidentiality\n")
	f.Add("[none")
	f.Fuzz(func(t *testing.T, s string) {
		mode, err := ParseLockdown(s)
		if err == nil && !strings.Contains(s, "["+mode+"]") {
			t.Fatalf("ParseLockdown(%q) = %q, not bracketed in the input", s, mode)
		}
	})
}
