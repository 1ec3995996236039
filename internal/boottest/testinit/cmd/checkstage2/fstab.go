package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nixlive/nixlive/live"
)

// fstab checks the file systems NixOS's iso-image.nix declares, as its
// fstab has them (systemd in stage 2 checks each against what is mounted):
// their types in every boot mode, /dev/root and its udev rule, the store
// image's loop device and the overlay's directories; and that nothing else
// of stage 1's is mounted.
func (c *checker) fstab(copyToRAM bool, mediumFS string) {
	ms := mounts()
	isoType := "iso9660"
	switch {
	case copyToRAM:
		isoType = "tmpfs" // NixOS: a tmpfs on /iso with the medium copied into it
	case mediumFS != "":
		isoType = mediumFS
	}
	pass := true
	var ds []string
	for _, w := range [][2]string{{"/", "tmpfs"}, {live.ISODir, isoType}, {live.ROStore, "squashfs"}, {live.RWStore, "tmpfs"}, {live.Store, "overlay"}} {
		got := ms[w[0]].fstype
		pass = pass && got == w[1]
		ds = append(ds, fmt.Sprintf("%s=%s", w[0], got))
	}
	c.check("fstab-types", pass, strings.Join(ds, " "))

	// /dev/root: the medium (NixOS links it at root=), which is /iso's
	// source unless /iso is the copy in RAM.
	link, _ := os.Readlink(live.DevRoot)
	root, err := filepath.EvalSymlinks(live.DevRoot)
	var st unix.Stat_t
	isBlock := err == nil && unix.Stat(root, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK
	if copyToRAM {
		c.check("dev-root", isBlock && !mountedFrom(ms, root), fmt.Sprintf("%s -> %s (%s) mounted=%v", live.DevRoot, link, root, mountedFrom(ms, root)))
	} else {
		c.check("dev-root", isBlock && root == ms[live.ISODir].source, fmt.Sprintf("%s -> %s (%s) /iso source=%s", live.DevRoot, link, root, ms[live.ISODir].source))
	}

	// The rule stage-1-init.sh writes for the device of /iso; none when
	// that is a tmpfs (major 0), as for copytoram.
	var iso unix.Stat_t
	unix.Stat(live.ISODir, &iso)
	rule, err := os.ReadFile(live.DevRootRule)
	if maj, min := unix.Major(iso.Dev), unix.Minor(iso.Dev); maj == 0 {
		c.check("dev-root-udev-rule", errors.Is(err, fs.ErrNotExist), fmt.Sprintf("/iso on %d:%d: no rule; got %q err=%v", maj, min, rule, err))
	} else {
		want := fmt.Sprintf(`ACTION=="add|change", SUBSYSTEM=="block", ENV{MAJOR}=="%d", ENV{MINOR}=="%d", SYMLINK+="root"`+"\n", maj, min)
		c.check("dev-root-udev-rule", err == nil && string(rule) == want, fmt.Sprintf("%q err=%v", rule, err))
	}

	ro := ms[live.ROStore].source
	bf, err := os.ReadFile(path.Join("/sys/block", path.Base(ro), "loop/backing_file"))
	wantBF := path.Join(live.ISODir, live.StoreImage)
	c.check("ro-store-backing-file", strings.HasPrefix(ro, "/dev/loop") && err == nil && strings.TrimSpace(string(bf)) == wantBF,
		fmt.Sprintf("%s backing_file=%q want %s err=%v", ro, strings.TrimSpace(string(bf)), wantBF, err))

	c.overlayDirs(ms[live.Store])
	c.strayMounts(ms)
}

// mountedFrom says whether some mount's source is dev.
func mountedFrom(ms map[string]mount, dev string) bool {
	for _, m := range ms {
		if m.source == dev {
			return true
		}
	}
	return false
}

// overlayDirs checks the store overlay's options (iso-image.nix's, with
// stage 1's /mnt-root before each directory) and that its upper and work
// directories were made 0700, as stage-1-init.sh makes them.
func (c *checker) overlayDirs(m mount) {
	opts := map[string]string{}
	for _, o := range strings.Split(m.super, ",") {
		k, v, _ := strings.Cut(o, "=")
		opts[k] = strings.TrimPrefix(v, live.NewRoot)
	}
	pass := opts["lowerdir"] == live.ROStore && path.Dir(opts["upperdir"]) == live.RWStore && path.Dir(opts["workdir"]) == live.RWStore
	detail := fmt.Sprintf("lowerdir=%s upperdir=%s workdir=%s", opts["lowerdir"], opts["upperdir"], opts["workdir"])
	for _, d := range []string{opts["upperdir"], opts["workdir"]} {
		fi, err := os.Stat(d)
		pass = pass && err == nil && fi.Mode().Perm() == 0o700
		if err == nil {
			detail += fmt.Sprintf(" %s=%o", d, fi.Mode().Perm())
		}
	}
	c.check("overlay-dirs-0700", pass, detail)
}

// strayMounts checks that stage 2 sees no mount but the live layout's and
// the special file systems (and what the kernel mounts below /proc, /sys
// and /dev): the findiso host's file system, in particular, stays out of
// sight as NixOS's /findiso does.
func (c *checker) strayMounts(ms map[string]mount) {
	layout := []string{"/", live.ISODir, live.ROStore, live.RWStore, live.Store}
	var stray []string
	for p, m := range ms {
		if !slices.Contains(layout, p) && !specialTarget(p) {
			stray = append(stray, fmt.Sprintf("%s(%s %s)", p, m.fstype, m.source))
		}
	}
	slices.Sort(stray)
	c.check("no-stray-mounts", len(stray) == 0, fmt.Sprintf("unexpected: %v", stray))
}
