package stage1

import (
	"fmt"
	"path"
	"strings"

	"github.com/nixlive/nixlive/live"
)

// Mount is one mount of the plan, as data: stage 1 carries it out, tests
// read it.
type Mount struct {
	Source string // a device, a file to loop-mount, or the file system name
	Target string // inside the new root
	FSType string
	Data   string // mount options
	// ReadOnly mounts read-only; Loop attaches Source to a read-only,
	// auto-clearing loop device first.
	ReadOnly, Loop bool
}

// MountPlan is what stage 1 mounts, in order, below live.NewRoot.
type MountPlan []Mount

// Plan returns the mounts for a medium at device (a block device, or for
// findiso a loop over the ISO file) holding a file system of type fsType (as
// probed: iso9660, or vfat or ext2/3/4 for the ISO's files copied onto a
// stick) with the store image at image (a path
// on the medium, in RAM for copytoram). multiThreaded selects the
// squashfs threads=multi option of kernels from 6.2 on.
func Plan(device, fsType string, copyToRAM, multiThreaded bool) MountPlan {
	sqOpts := ""
	if multiThreaded {
		sqOpts = "threads=multi"
	}
	// copytoram too: the medium is copied onto a tmpfs at /iso, as NixOS
	// does, and the image loop-mounted from there.
	image := path.Join(live.ISODir, live.StoreImage)
	return MountPlan{
		{Source: "tmpfs", Target: "/", FSType: "tmpfs", Data: "mode=0755"},
		{Source: device, Target: live.ISODir, FSType: fsType, Data: mediumMountData(fsType), ReadOnly: true},
		{Source: image, Target: live.ROStore, FSType: "squashfs", Data: sqOpts, ReadOnly: true, Loop: true},
		{Source: "tmpfs", Target: live.RWStore, FSType: "tmpfs", Data: "mode=0755"},
		{Source: "overlay", Target: live.Store, FSType: "overlay",
			Data: fmt.Sprintf("lowerdir=%s,upperdir=%s/store,workdir=%s/work", live.ROStore, live.RWStore, live.RWStore)},
	}
}

// String lists the plan one mount a line, as mount(8) would be called.
func (p MountPlan) String() string {
	var b strings.Builder
	for _, m := range p {
		opts := m.Data
		if m.ReadOnly {
			opts = strings.Trim("ro,"+opts, ",")
		}
		if m.Loop {
			opts = strings.Trim("loop,"+opts, ",")
		}
		fmt.Fprintf(&b, "%-18s %-8s %s (%s)\n", m.Target, m.FSType, m.Source, opts)
	}
	return b.String()
}
