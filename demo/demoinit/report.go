// Package demoinit is the demo live system's init (cmd/demo-init): started
// by stage 2 as the system's sw/bin/init, it looks at the booted live CD
// from inside — the firmware's Secure Boot state and the kernel's lockdown,
// the Nix database against the registration, /etc/NIXOS, the system
// profile, /run/booted-system, the mounts, a write to the store, both
// stages' timeline — prints a report, and then powers off or opens a
// shell.
//
// The report is printed for people and once more as one JSON line after
// Marker, which the end-to-end test and "make demo" read (Parse).
package demoinit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/nixlive/nixlive/live"
)

// Marker starts the report's JSON line on the console.
const Marker = "NIXLIVE-DEMO-REPORT "

// ShellOffer starts demo-init's question after the report: a line with
// Enter alone opens the shell, "q" powers off at once.
const ShellOffer = "Press Enter within"

// ProfileChain is what the system profile leads to: the link itself, the
// generation link, the system's store path.
type ProfileChain []string

// Report is what demo-init found.
type Report struct {
	System   string `json:"system"`   // $systemConfig
	Kernel   string `json:"kernel"`   // uname -r
	Hostname string `json:"hostname"` // /etc/hostname, written by the activation script

	// SecureBoot is the firmware's Secure Boot state as Linux reads it
	// (the EFI variable SecureBoot through efivarfs): SecureBootEnabled,
	// SecureBootDisabled or NotUEFI, or "unknown (why)" when it could not
	// be read. Lockdown is the kernel's lockdown mode
	// (/sys/kernel/security/lockdown): "none", "integrity",
	// "confidentiality", or "unknown (why)".
	SecureBoot string `json:"secureBoot"`
	Lockdown   string `json:"lockdown"`

	// The registration on the medium against the database.
	Registered    int      `json:"registered"`    // records in nix-path-registration
	RegisteredRef int      `json:"registeredRef"` // references in it
	ValidPaths    int      `json:"validPaths"`    // rows of ValidPaths
	Refs          int      `json:"refs"`          // rows of Refs
	Matching      int      `json:"matching"`      // registered paths valid with the same hash and size
	Mismatches    []string `json:"mismatches,omitempty"`

	NixOS         bool         `json:"etcNixos"` // /etc/NIXOS exists
	Profile       ProfileChain `json:"profile"`
	BootedSystem  string       `json:"bootedSystem"`
	CurrentSystem string       `json:"currentSystem"`

	Mounts []Mount `json:"mounts"`
	// StoreWrite: a file written to /nix/store through a private
	// read-write remount, as nix-daemon writes, read back from the
	// system's own view; StoreReadOnly: a direct write is refused, the
	// store being mounted read-only as NixOS mounts it.
	StoreWrite    string `json:"storeWrite"` // "" when it worked, else why not
	StoreReadOnly bool   `json:"storeReadOnly"`

	Timeline []Step `json:"timeline"`

	Problems []string `json:"problems,omitempty"`
}

// Mount is one line of /proc/self/mountinfo that matters to a live CD.
type Mount struct {
	Target  string `json:"target"`
	FSType  string `json:"fstype"`
	Source  string `json:"source"`
	Options string `json:"options"`
}

// Step is a boot step with its time since the kernel started.
type Step struct {
	Name   string  `json:"name"`
	At     float64 `json:"at"` // seconds
	Detail string  `json:"detail,omitempty"`
}

// LiveMounts are the mount points the report lists, in order.
var LiveMounts = []string{"/", live.ISODir, live.ROStore, live.RWStore, live.Store}

// Check fills Problems with what differs from a working live CD.
func (r *Report) Check() {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	if r.System == "" {
		add("no systemConfig in the environment")
	}
	if r.Registered == 0 {
		add("the registration lists no paths")
	}
	if r.Matching != r.Registered || r.ValidPaths != r.Registered {
		add("%d paths registered, %d valid in the database, %d with the same hash and size", r.Registered, r.ValidPaths, r.Matching)
	}
	if r.Refs != r.RegisteredRef {
		add("%d references registered, %d in the database", r.RegisteredRef, r.Refs)
	}
	if !r.NixOS {
		add("/etc/NIXOS is missing")
	}
	if len(r.Profile) != 3 || r.Profile[len(r.Profile)-1] != r.System || !strings.HasSuffix(r.Profile[1], "/system-1-link") {
		add("profile chain %v does not lead to the system through system-1-link", r.Profile)
	}
	if r.BootedSystem != r.System || r.CurrentSystem != r.System {
		add("/run/booted-system -> %q, /run/current-system -> %q, want %q", r.BootedSystem, r.CurrentSystem, r.System)
	}
	want := map[string]string{"/": "tmpfs", live.ISODir: "iso9660", live.ROStore: "squashfs", live.RWStore: "tmpfs", live.Store: "overlay"}
	got := map[string]string{}
	for _, m := range r.Mounts {
		got[m.Target] = m.FSType
	}
	for _, t := range LiveMounts {
		if got[t] != want[t] {
			add("%s is %q, want %s", t, got[t], want[t])
		}
	}
	if r.StoreWrite != "" {
		add("store write: %s", r.StoreWrite)
	}
	if !r.StoreReadOnly {
		add("/nix/store accepts direct writes: NixOS mounts it read-only")
	}
	names := map[string]bool{}
	for _, s := range r.Timeline {
		names[s.Name] = true
	}
	for _, n := range []string{"stage1: switch_root", "stage2: postboot", "stage2: exec init", "demo-init: start"} {
		if !names[n] {
			add("timeline lacks %q", n)
		}
	}
	r.Problems = p
}

// OK reports whether Check found nothing wrong.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// WriteText prints the report for people, then the JSON line.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	f := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	f("\n=== nixlive demo: the live system, seen from inside ===\n")
	f("system              %s\n", r.System)
	f("kernel              %s, hostname %s\n", r.Kernel, r.Hostname)
	f("%s\n", r.SecureBootLine())
	f("\nboot timeline (seconds since the kernel started)\n")
	var prev float64
	for i, s := range r.Timeline {
		delta := ""
		if i > 0 {
			delta = fmt.Sprintf("+%4.0f ms", (s.At-prev)*1000)
		}
		prev = s.At
		detail := s.Detail
		if len(detail) > 60 {
			detail = detail[:57] + "..."
		}
		f("  %9.3f  %-9s  %-32s %s\n", s.At, delta, s.Name, detail)
	}
	f("\nNix database        %d paths registered (%d references): %d valid with the same hash and size; ValidPaths %d rows, Refs %d\n",
		r.Registered, r.RegisteredRef, r.Matching, r.ValidPaths, r.Refs)
	for _, m := range r.Mismatches {
		f("                    %s\n", m)
	}
	f("/etc/NIXOS          %s\n", present(r.NixOS))
	f("system profile      %s\n", strings.Join(r.Profile, " -> "))
	f("/run/booted-system  -> %s\n", r.BootedSystem)
	f("/run/current-system -> %s\n", r.CurrentSystem)
	f("\nmounts\n")
	for _, m := range r.Mounts {
		f("  %-16s %-9s %-22s %s\n", m.Target, m.FSType, m.Source, m.Options)
	}
	if r.StoreWrite == "" {
		f("store writes        ok: a new file in /nix/store lands in the tmpfs overlay (written as nix-daemon does, through a private read-write remount)\n")
	} else {
		f("store writes        FAILED: %s\n", r.StoreWrite)
	}
	f("store read-only     %s\n", yesNo(r.StoreReadOnly, "yes, direct writes are refused, as on NixOS", "NO"))
	if r.OK() {
		f("\nverdict             ok\n")
	} else {
		f("\nverdict             %d problem(s):\n", len(r.Problems))
		for _, p := range r.Problems {
			f("  - %s\n", p)
		}
	}
	js, err := json.Marshal(r)
	if err != nil {
		return err
	}
	f("%s%s\n", Marker, js)
	_, err = io.WriteString(w, b.String())
	return err
}

func present(b bool) string { return yesNo(b, "present", "MISSING") }

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

// Parse finds the report's JSON line in console output.
func Parse(console string) (*Report, error) {
	i := strings.LastIndex(console, Marker)
	if i < 0 {
		return nil, errors.New("demo-init printed no report")
	}
	line, _, _ := strings.Cut(console[i+len(Marker):], "\n")
	var r Report
	if err := json.Unmarshal([]byte(strings.TrimSpace(line)), &r); err != nil {
		return nil, fmt.Errorf("demo-init report: %w", err)
	}
	return &r, nil
}
