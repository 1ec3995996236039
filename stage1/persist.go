package stage1

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/nixlive/nixlive/live"
)

// Kinds of Mount that are not file system types for mount(2) but say how
// to mount Source.
const (
	BindMount = "bind" // MS_BIND of the directory Source
	MoveMount = "move" // MS_MOVE of the mount at Source
)

// persistFSTypes are the file systems that can hold / and an overlay's
// upper directory: owners, modes, extended attributes, whiteouts.
var persistFSTypes = []string{"ext4", "ext3", "ext2", "btrfs", "xfs", "f2fs"}

// PersistProbe is what stage 1 found for the command line's
// persistence device.
type PersistProbe struct {
	Device string // the block device; "" when none was found
	FSType string // its file system, as probed
	// NeedsRepair says why the file system must be repaired before it is
	// written to (the kernel's or the superblock's word); "" when clean.
	NeedsRepair string
}

// PersistFS is what stage 1 read on the persistence file system, mounted
// at live.PersistStage.
type PersistFS struct {
	ImageID []byte   // live.PersistStore/live.RWImageID; nil when absent
	Layer   bool     // live.PersistStore/live.RWUpper exists and is not empty
	Old     []string // the names in live.PersistOld
}

// PersistInput is everything the persistence decision depends on.
type PersistInput struct {
	Cmd   *live.Cmdline
	Probe PersistProbe
	// FS is what is on the persistence file system, nil when it was not
	// mounted; FSErr says why mounting or reading it failed.
	FS    *PersistFS
	FSErr error
	// Medium is the medium's live.ImageIDFile, nil when it has none.
	Medium []byte
}

// PersistDecision is what stage 1 does about persistence, as data.
// Carried out in this order: mount Mount; if SetAside, rename
// live.PersistStore to it (below the mount); make the store layer's
// directories; write WriteID into live.PersistStore/live.RWImageID; then
// the Plan.
type PersistDecision struct {
	// Mount is the persistence file system at live.PersistStage in the
	// initramfs, read-write; nil without persistence.
	Mount *Mount
	// Root: / is on the persistence file system. StoreLayer: so is the
	// store layer (live.RWStore); without it, a tmpfs as without
	// persistence.
	Root, StoreLayer bool
	// SetAside is where the store layer goes, relative to the persistence
	// file system's root (below live.PersistOld): it was for another
	// image, of no known image, or persistence.reset asked for a new one.
	SetAside string
	// WriteID is the image identity to write beside the store layer; nil
	// to leave it.
	WriteID []byte
	// RebuildDB: the Nix database starts empty and is loaded from the
	// image's registration; false only for a store layer kept for the
	// same image, whose database is kept with it.
	RebuildDB bool
	// Message is for the console, once: what was done and why; "" when
	// there is nothing to say.
	Message string
	// Plan is the mount plan. Sources of the bind of / and of the move of
	// the persistence file system are in the initramfs; every other
	// source is in the new root, as in Plan.
	Plan MountPlan
}

// PersistMount decides, from the command line and what the probe found,
// whether to mount the persistence file system: the mount, or nil and why
// not ("" when persistence is not asked for).
func PersistMount(cmd *live.Cmdline, p PersistProbe) (*Mount, string) {
	const without = "booting without persistence (/ and the store in RAM)"
	switch {
	case cmd == nil || !cmd.Persistence:
		if cmd != nil && cmd.PersistReset {
			return nil, "persistence.reset ignored: persistence is not on the kernel command line"
		}
		return nil, ""
	case p.Device == "":
		msg := fmt.Sprintf("persistence: no file system %s found; %s", cmd.PersistDev, without)
		if cmd.PersistDev == (live.Root{Label: live.PersistLabel}) {
			msg += fmt.Sprintf(". To make one: mkfs.ext4 -L %s /dev/<partition>", live.PersistLabel)
		}
		return nil, msg
	case p.NeedsRepair != "":
		return nil, fmt.Sprintf("persistence: %s (%s) needs repair (%s), so it is not mounted read-write; %s. Repair it with fsck -f %s, with persistence off or from another system",
			p.Device, cmd.PersistDev, p.NeedsRepair, without, p.Device)
	case !slices.Contains(persistFSTypes, p.FSType):
		fsType := p.FSType
		if fsType == "" {
			fsType = "no file system stage 1 knows"
		}
		return nil, fmt.Sprintf("persistence: %s (%s) holds %s, which cannot keep / and the store layer (it wants one of %s); %s",
			p.Device, cmd.PersistDev, fsType, strings.Join(persistFSTypes, ", "), without)
	}
	return &Mount{Source: p.Device, Target: live.PersistStage, FSType: p.FSType}, ""
}

// PersistPlan decides what persistence does to base, the plan Plan gives
// for the medium: / and the store layer on the persistence file system
// instead of tmpfs, the store layer kept, set aside or started, and what to
// say about it.
func PersistPlan(base MountPlan, in PersistInput) PersistDecision {
	d := PersistDecision{RebuildDB: true, Plan: base}
	m, msg := PersistMount(in.Cmd, in.Probe)
	if m == nil {
		d.Message = msg
		return d
	}
	if in.FSErr != nil || in.FS == nil {
		why := "it was not mounted"
		if in.FSErr != nil {
			why = in.FSErr.Error()
		}
		d.Message = fmt.Sprintf("persistence: %s (%s): %s; booting without persistence (/ and the store in RAM)", in.Probe.Device, in.Cmd.PersistDev, why)
		return d
	}
	d.Mount, d.Root = m, true
	d.decideStore(in)
	d.Plan = persistMounts(base, d.StoreLayer)
	return d
}

// decideStore keeps, sets aside or starts the store layer, which belongs
// to one image.
func (d *PersistDecision) decideStore(in PersistInput) {
	dev, fs := in.Probe.Device, in.FS
	cur, err := live.ParseImageIdentity(in.Medium)
	if err != nil {
		why := "has no image identity (" + live.ImageIDFile + ")"
		if in.Medium != nil {
			why = fmt.Sprintf("has an unreadable %s (%v)", live.ImageIDFile, err)
		}
		d.Message = fmt.Sprintf("persistence: / is kept on %s, but the medium %s, so the store layer is in RAM this boot; the one on %s is left as it is",
			dev, why, dev)
		return
	}
	d.StoreLayer = true
	var old *live.ImageIdentity
	if o, err := live.ParseImageIdentity(fs.ImageID); err == nil {
		old = &o
	}
	present := fs.Layer || fs.ImageID != nil
	switch {
	case in.Cmd.PersistReset && present:
		d.SetAside = setAsideName(fs.Old, old)
		d.Message = fmt.Sprintf("persistence.reset: the store layer on %s (%s) is set aside as %s (kept; delete it when no longer needed); a fresh one for image %s; / is kept",
			dev, describe(old), path.Join(live.PersistDir, d.SetAside), cur)
	case in.Cmd.PersistReset:
		d.Message = fmt.Sprintf("persistence.reset: a fresh store layer on %s for image %s (there was none to set aside)", dev, cur)
	case old != nil && old.Same(cur):
		d.RebuildDB = false
		return
	case !present:
		d.Message = fmt.Sprintf("persistence: / and the store layer of image %s are kept on %s from now on", cur, dev)
	default:
		d.SetAside = setAsideName(fs.Old, old)
		d.Message = fmt.Sprintf("persistence: this is image %s, but the store layer on %s is %s: it is set aside as %s (kept; delete it when no longer needed); / is kept; the Nix database is rebuilt from this image's registration",
			cur, dev, describe(old), path.Join(live.PersistDir, d.SetAside))
	}
	d.WriteID = cur.Marshal()
}

func describe(old *live.ImageIdentity) string {
	if old == nil {
		return "of no known image"
	}
	return "for image " + old.String()
}

// setAsideName is a name below live.PersistOld for a store layer of image
// old (nil: unknown) that none of the existing names there takes:
// <n>-<volume ID>-<hash>, n one more than the highest number already used,
// so that the names sort by age.
func setAsideName(existing []string, old *live.ImageIdentity) string {
	tag := "unknown"
	if old != nil {
		tag = old.Short()
		if v := safeName(old.VolumeID); v != "" {
			tag = v + "-" + tag
		}
	}
	n := 1
	for _, e := range existing {
		num, _, _ := strings.Cut(e, "-")
		if i, err := strconv.Atoi(num); err == nil && i >= n && i < 1<<30 {
			n = i + 1
		}
	}
	for {
		name := strconv.Itoa(n) + "-" + tag
		if !slices.Contains(existing, name) {
			return path.Join(live.PersistOld, name)
		}
		n++
	}
}

// safeName keeps letters, digits, '.', '_' and '-' of a volume ID, to put
// it in a directory name.
func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	return strings.Trim(string(b), ".")
}

// persistMounts turns base into the persistent plan: / a bind of
// live.PersistRoot, the persistence file system moved to live.PersistDir,
// the store layer a bind of live.PersistStore (when kept there), and the
// Nix database a bind of the store layer's, so that it goes with it.
func persistMounts(base MountPlan, storeLayer bool) MountPlan {
	var p MountPlan
	for _, m := range base {
		switch {
		case m.Target == "/":
			p = append(p,
				Mount{Source: path.Join(live.PersistStage, live.PersistRoot), Target: "/", FSType: BindMount},
				Mount{Source: live.PersistStage, Target: live.PersistDir, FSType: MoveMount})
			continue
		case m.Target == live.RWStore && storeLayer:
			m = Mount{Source: path.Join(live.PersistDir, live.PersistStore), Target: live.RWStore, FSType: BindMount}
		}
		p = append(p, m)
	}
	return append(p, Mount{Source: path.Join(live.RWStore, live.RWDB), Target: live.NixDB, FSType: BindMount})
}
