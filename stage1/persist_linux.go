package stage1

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nixlive/nixlive/live"
)

// mediumStage is where stage 1 mounts the medium for a moment, read-only,
// to read its image identity before the new root exists.
const mediumStage = "/nixlive-medium"

// persistWait bounds the wait for the persistence device to show.
const persistWait = 2 * time.Second

// persistence decides and prepares persistence for base, the plan for the
// medium: without "persistence" on the kernel line it returns base
// untouched (and says only that a persistence.reset is ignored).
// Otherwise it finds, probes, mounts and readies the persistence file
// system, and returns the decision, whose Plan mountAll carries out.
func (b *Boot) persistence(base MountPlan, fsType string) (PersistDecision, error) {
	if !b.Cmd.Persistence {
		d := PersistPlan(base, PersistInput{Cmd: b.Cmd})
		if d.Message != "" {
			b.Log.Warn(d.Message)
		}
		return d, nil
	}
	in := PersistInput{Cmd: b.Cmd}
	in.Probe = b.probePersist()
	if m, _ := PersistMount(b.Cmd, in.Probe); m != nil {
		// A partition of the disk whose whole the medium is: the kernel
		// lets a file system hold the disk or its partitions, not both,
		// so the medium is read through a loop device over the disk,
		// attached before the partition is mounted.
		if err := b.loopMediumFor(in.Probe.Device); err != nil {
			return PersistDecision{}, err
		}
	}
	in.Medium = b.readMediumID(fsType)
	if m, _ := PersistMount(b.Cmd, in.Probe); m != nil {
		in.FS, in.FSErr = b.mountPersist(*m)
	}
	d := PersistPlan(base, in)
	if d.Mount == nil && in.FS != nil {
		unix.Unmount(live.PersistStage, 0)
	}
	if d.Mount != nil {
		if err := preparePersist(d); err != nil {
			unix.Unmount(live.PersistStage, 0)
			b.Log.Warn("persistence: cannot ready the file system; booting without persistence", "device", in.Probe.Device, "err", err)
			d = PersistPlan(base, PersistInput{Cmd: b.Cmd, Probe: in.Probe, Medium: in.Medium, FSErr: err})
		}
	}
	if d.Message != "" {
		if d.Mount == nil {
			b.Log.Warn(d.Message)
		} else {
			b.Log.Info(d.Message)
		}
	}
	detail := "off"
	if d.Mount != nil {
		detail = fmt.Sprintf("%s %s root=%v storeLayer=%v rebuildDB=%v", d.Mount.FSType, d.Mount.Source, d.Root, d.StoreLayer, d.RebuildDB)
		if d.RebuildDB {
			if err := writeRebuildDB(); err != nil {
				b.Log.Warn("persistence: cannot leave the rebuild-db note for stage 2", "path", live.RebuildDBNote, "err", err)
			}
		}
	}
	b.mark("persistence", detail)
	return d, nil
}

// probePersist finds the command line's persistence device among the
// block devices, waiting a little for one that is not there yet.
func (b *Boot) probePersist() PersistProbe {
	deadline := time.Now().Add(persistWait)
	for {
		for _, name := range blockDevices() {
			d := probeDevice(name)
			if "/dev/"+name == b.device || !matchRoot(b.Cmd.PersistDev, d) {
				continue
			}
			p := PersistProbe{Device: "/dev/" + name, FSType: d.FS.Type}
			p.NeedsRepair = needsRepair(p.Device, p.FSType)
			return p
		}
		if time.Now().After(deadline) {
			return PersistProbe{}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// loopMediumFor puts the medium on a loop device when it is the whole disk
// that dev is a partition of.
func (b *Boot) loopMediumFor(dev string) error {
	if b.Cmd.FindISO != "" || !strings.HasPrefix(b.device, "/dev/") {
		return nil
	}
	disk, ok := parentDisk(strings.TrimPrefix(dev, "/dev/"))
	if !ok || "/dev/"+disk != b.device {
		return nil
	}
	loop, release, err := attachLoop(b.device)
	if err != nil {
		return fmt.Errorf("stage1: persistence: loop device for the medium %s: %w", b.device, err)
	}
	// Held open until stage 2 is exec'd (close-on-exec): by then /iso's
	// mount holds the device.
	b.keep = append(b.keep, release)
	b.Log.Info("persistence: the medium is read through a loop device, its disk holding the persistence partition", "medium", b.device, "loop", loop)
	b.device = loop
	return nil
}

// parentDisk is the disk a partition (a name in /sys/class/block) is on.
func parentDisk(name string) (string, bool) {
	if _, err := os.Stat("/sys/class/block/" + name + "/partition"); err != nil {
		return "", false
	}
	real, err := filepath.EvalSymlinks("/sys/class/block/" + name)
	if err != nil {
		return "", false
	}
	return filepath.Base(filepath.Dir(real)), true
}

// readMediumID reads live.ImageIDFile on the medium, mounted read-only on
// mediumStage for the moment; nil when it has none or cannot be read.
func (b *Boot) readMediumID(fsType string) []byte {
	if err := os.MkdirAll(mediumStage, 0o755); err != nil {
		b.Log.Warn("persistence: cannot read the medium's identity", "err", err)
		return nil
	}
	defer os.Remove(mediumStage)
	m := Mount{FSType: fsType, Data: mediumMountData(fsType), ReadOnly: true, Loop: b.Cmd.FindISO != ""}
	if err := b.mount(b.device, mediumStage, m); err != nil {
		b.Log.Warn("persistence: cannot read the medium's identity", "err", err)
		return nil
	}
	defer unix.Unmount(mediumStage, 0)
	f, err := os.Open(path.Join(mediumStage, live.ImageIDFile))
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			b.Log.Warn("persistence: cannot read the medium's identity", "err", err)
		}
		return nil
	}
	defer f.Close()
	id, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		b.Log.Warn("persistence: cannot read the medium's identity", "err", err)
		return nil
	}
	return id
}

// Ext2/3/4 superblock: at 1024 bytes into the device.
const (
	extSuperOffset  = 1024
	extMagicOff     = 0x38 // s_magic, le16
	extStateOff     = 0x3A // s_state, le16
	extCompatOff    = 0x5C // s_feature_compat, le32
	extErrCountOff  = 0x194
	extMagic        = 0xEF53
	extValidFS      = 0x0001 // s_state: cleanly unmounted
	extErrorFS      = 0x0002 // s_state: errors detected
	extHasJournal   = 0x0004 // s_feature_compat
	extSuperReadLen = 0x198
)

// needsRepair reads an ext2/3/4 superblock: errors recorded (s_state's
// error bit or s_error_count), or, without a journal to replay, not
// cleanly unmounted. A journaled file system that was not unmounted
// (power lost) is left to the kernel's journal recovery. Other file
// systems are left to the kernel.
func needsRepair(dev, fsType string) string {
	if fsType != "ext2" && fsType != "ext3" && fsType != "ext4" {
		return ""
	}
	f, err := os.Open(dev)
	if err != nil {
		return ""
	}
	defer f.Close()
	sb := make([]byte, extSuperReadLen)
	if _, err := f.ReadAt(sb, extSuperOffset); err != nil {
		return ""
	}
	return extNeedsRepair(sb)
}

// extNeedsRepair judges a superblock read from extSuperOffset.
func extNeedsRepair(sb []byte) string {
	if len(sb) < extSuperReadLen || binary.LittleEndian.Uint16(sb[extMagicOff:]) != extMagic {
		return ""
	}
	state := binary.LittleEndian.Uint16(sb[extStateOff:])
	errs := binary.LittleEndian.Uint32(sb[extErrCountOff:])
	journal := binary.LittleEndian.Uint32(sb[extCompatOff:])&extHasJournal != 0
	switch {
	case state&extErrorFS != 0:
		return "the superblock says errors were detected"
	case errs > 0:
		return fmt.Sprintf("the superblock records %d errors", errs)
	case state&extValidFS == 0 && !journal:
		return "not cleanly unmounted, and no journal to recover it"
	}
	return ""
}

// mountPersist mounts the persistence file system read-write at
// live.PersistStage and reads what is there.
func (b *Boot) mountPersist(m Mount) (*PersistFS, error) {
	b.loadFSModules(m.FSType)
	if err := os.MkdirAll(m.Target, 0o755); err != nil {
		return nil, err
	}
	if err := unix.Mount(m.Source, m.Target, m.FSType, 0, m.Data); err != nil {
		os.Remove(m.Target)
		return nil, fmt.Errorf("mount %s (%s) on %s: %w", m.Source, m.FSType, m.Target, err)
	}
	fs, err := readPersistFS(m.Target)
	if err != nil {
		unix.Unmount(m.Target, 0)
		return nil, err
	}
	return fs, nil
}

// readPersistFS reads what the decision needs from the file system at dir.
func readPersistFS(dir string) (*PersistFS, error) {
	fs := &PersistFS{}
	store := path.Join(dir, live.PersistStore)
	id, err := os.ReadFile(path.Join(store, live.RWImageID))
	switch {
	case err == nil:
		fs.ImageID = id
	case !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.ENOTDIR):
		return nil, fmt.Errorf("read %s: %w", live.RWImageID, err)
	}
	upper, err := os.ReadDir(path.Join(store, live.RWUpper))
	switch {
	case err == nil:
		fs.Layer = len(upper) > 0
	case !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.ENOTDIR):
		return nil, fmt.Errorf("read %s: %w", path.Join(live.PersistStore, live.RWUpper), err)
	}
	old, err := os.ReadDir(path.Join(dir, live.PersistOld))
	switch {
	case err == nil:
		for _, e := range old {
			fs.Old = append(fs.Old, e.Name())
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("read %s: %w", live.PersistOld, err)
	}
	return fs, nil
}

// preparePersist carries out the decision on the mounted file system: the
// store layer set aside, the directories made, the identity written.
func preparePersist(d PersistDecision) error {
	at := func(p string) string { return path.Join(live.PersistStage, p) }
	if d.SetAside != "" {
		if err := os.MkdirAll(path.Dir(at(d.SetAside)), 0o755); err != nil {
			return err
		}
		if err := os.Rename(at(live.PersistStore), at(d.SetAside)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("set aside the store layer: %w", err)
		}
		if err := syncDir(path.Dir(at(d.SetAside))); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(at(live.PersistRoot), 0o755); err != nil {
		return err
	}
	if d.StoreLayer {
		if err := os.MkdirAll(at(live.PersistStore), 0o755); err != nil {
			return err
		}
		// 0700, as stage-1-init.sh makes the overlay's directories.
		for _, dir := range []struct {
			name string
			mode os.FileMode
		}{{live.RWUpper, 0o700}, {live.RWWork, 0o700}, {live.RWDB, 0o755}} {
			if err := os.Mkdir(path.Join(at(live.PersistStore), dir.name), dir.mode); err != nil && !errors.Is(err, os.ErrExist) {
				return err
			}
		}
	}
	if d.WriteID != nil {
		if err := writeFileAtomic(path.Join(at(live.PersistStore), live.RWImageID), d.WriteID); err != nil {
			return fmt.Errorf("write the image identity: %w", err)
		}
	}
	return nil
}

// writeFileAtomic replaces name with data: a temporary file written and
// synced, renamed over name, and the directory synced.
func writeFileAtomic(name string, data []byte) error {
	tmp := name + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		return err
	}
	return syncDir(path.Dir(name))
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func writeRebuildDB() error {
	if err := os.MkdirAll(path.Dir(live.RebuildDBNote), 0o755); err != nil {
		return err
	}
	return os.WriteFile(live.RebuildDBNote, []byte("the Nix database is to be loaded from the image's registration\n"), 0o644)
}
