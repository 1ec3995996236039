// Command checkstage2 stands in for stage 2 in boot tests: started by
// stage 1's switch_root, it checks from inside, before it does anything
// else, that stage 1 left the state NixOS's stage-2-init.sh relies on (as
// NixOS's scripted stage 1 leaves it: argv, environment, special file
// systems, /dev links, console, no stray processes; handover.go), that the
// live layout is NixOS's as iso-image.nix declares it (fstab.go), that the
// store reads and writes, and replays stage-2-init.sh's store step. It
// prints one line per check and a verdict on the console, and powers off.
// It reads check.file=<path> and check.sha256=<hex> (a store file and its
// digest), check.copytoram (the medium is copied to RAM) and
// check.persist=write|read (persistence: persist.go) from the command line.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/nixlive/nixlive/live"
)

const (
	procMagic     = 0x9fa0
	tmpfsMagic    = 0x01021994
	isofsMagic    = 0x9660
	squashfsMagic = 0x73717368
	overlayMagic  = 0x794c7630
)

type mount struct {
	source, target, fstype string
	opts, super            string // per-mount and superblock options
}

// mounts maps each mount point to its mount (the last one on it, which is
// the one in effect).
func mounts() map[string]mount {
	m := map[string]mount{}
	infos, err := mountinfo.GetMounts(nil)
	if err != nil {
		return m
	}
	for _, i := range infos {
		m[i.Mountpoint] = mount{source: i.Source, target: i.Mountpoint, fstype: i.FSType, opts: i.Options, super: i.VFSOptions}
	}
	return m
}

func fsMagic(p string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return -1
	}
	return st.Type
}

// checker prints the checks and remembers whether all passed.
type checker struct{ failed bool }

func (c *checker) check(name string, pass bool, detail string) {
	verdict := "ok"
	if !pass {
		verdict, c.failed = "FAIL", true
	}
	fmt.Printf("NIXLIVE-CHECK %s %s %s\n", verdict, name, detail)
}

func main() {
	// What stage 1 handed over, before anything else.
	s := start{args: os.Args, env: os.Environ(), pid: os.Getpid()}
	c := &checker{}
	procMounted := fsMagic("/proc") == procMagic
	if !procMounted { // failed below; mount it to go on checking
		os.MkdirAll("/proc", 0o555)
		unix.Mount("proc", "/proc", "proc", 0, "")
	}
	cmdline, err := live.ReadCmdline()
	if err != nil {
		c.check("cmdline", false, err.Error())
		cmdline = &live.Cmdline{Params: map[string]string{}}
	}
	params := cmdline.Params
	_, copyToRAM := params["check.copytoram"]
	c.handover(s, cmdline.Init)
	// check.medium-fs: the medium is a stick holding the ISO's files (NixOS's
	// fstab mounts /iso as "auto"), not the ISO itself.
	mediumFS := params["check.medium-fs"]
	c.fstab(copyToRAM, mediumFS)
	c.layout(copyToRAM, mediumFS, params)
	c.nixosStore(params)
	persist := params["check.persist"]
	if persist != "" {
		c.persistence(persist)
	}
	c.timeline()
	secureBootLog()
	if c.failed {
		fmt.Println("NIXLIVE-STAGE2-RESULT FAIL")
	} else {
		fmt.Println("NIXLIVE-STAGE2-RESULT PASS")
	}
	unix.Sync()
	if persist != "" {
		freezePersistence()
	}
	time.Sleep(50 * time.Millisecond)
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

// layout checks the live layout by file system magic, and that the store
// reads and takes writes.
func (c *checker) layout(copyToRAM bool, mediumFS string, params map[string]string) {
	ms := mounts()
	c.check("root-tmpfs", fsMagic("/") == tmpfsMagic, fmt.Sprintf("fstype=%s", ms["/"].fstype))
	if copyToRAM {
		// The medium is copied onto a tmpfs at /iso (which stays mounted:
		// NixOS's fstab mounts /dev/root there without nofail) and no
		// longer mounted, so it can be ejected.
		medium, _ := filepath.EvalSymlinks(live.DevRoot)
		_, err := os.Stat(path.Join(live.ISODir, live.StoreImage))
		c.check("medium-released", fsMagic(live.ISODir) == tmpfsMagic && err == nil && !mountedFrom(ms, medium),
			fmt.Sprintf("/iso=%s medium=%s mounted=%v", ms[live.ISODir].fstype, medium, mountedFrom(ms, medium)))
	} else if mediumFS != "" {
		c.check("iso-"+mediumFS, ms[live.ISODir].fstype == mediumFS, fmt.Sprintf("source=%s", ms[live.ISODir].source))
	} else {
		c.check("iso-iso9660", fsMagic(live.ISODir) == isofsMagic, fmt.Sprintf("source=%s", ms[live.ISODir].source))
	}
	ro := ms[live.ROStore]
	c.check("ro-store-squashfs-loop", fsMagic(live.ROStore) == squashfsMagic && strings.HasPrefix(ro.source, "/dev/loop"), fmt.Sprintf("source=%s", ro.source))
	c.check("store-overlay", fsMagic(live.Store) == overlayMagic, ms[live.Store].fstype)
	probe := path.Join(live.Store, ".nixlive-write-test")
	werr := os.WriteFile(probe, []byte("written in stage 2\n"), 0o644)
	back, _ := os.ReadFile(probe)
	c.check("store-writable", werr == nil && string(back) == "written in stage 2\n", fmt.Sprint(werr))
	if p := params["check.file"]; p != "" {
		data, err := os.ReadFile(p)
		sum := sha256.Sum256(data)
		got := hex.EncodeToString(sum[:])
		c.check("store-file-intact", err == nil && got == params["check.sha256"], fmt.Sprintf("%s sha256=%s err=%v", p, got, err))
	}
}

// nixosStore replays stage-2-init.sh's store step: "chown -f 0:30000
// /nix/store; chmod -f 1775 /nix/store; mount --bind /nix/store
// /nix/store; mount -o remount,ro,bind,nosuid,nodev /nix/store" (NixOS
// does it when nix.readOnlyStore is on, the default), and checks that the
// store is then root:nixbld 1775, read-only, nosuid, nodev, and reads.
func (c *checker) nixosStore(params map[string]string) {
	const s = live.Store
	errs := []error{os.Chown(s, 0, 30000), os.Chmod(s, 0o775|os.ModeSticky),
		unix.Mount(s, s, "", unix.MS_BIND, ""),
		unix.Mount(s, s, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, "")}
	var st unix.Stat_t
	unix.Stat(s, &st)
	m := mounts()[s]
	werr := os.WriteFile(path.Join(s, ".nixlive-ro-test"), nil, 0o644)
	readOK := true
	if p := params["check.file"]; p != "" {
		_, err := os.ReadFile(p)
		readOK = err == nil
	}
	opts := strings.Split(m.opts, ",")
	pass := errors.Join(errs...) == nil && st.Uid == 0 && st.Gid == 30000 && st.Mode&0o7777 == 0o1775 &&
		slices.Contains(opts, "ro") && slices.Contains(opts, "nosuid") && slices.Contains(opts, "nodev") &&
		m.fstype == "overlay" && errors.Is(werr, unix.EROFS) && readOK
	c.check("store-nixos-ro", pass, fmt.Sprintf("%d:%d %o %s %s write=%v read=%v errs=%v",
		st.Uid, st.Gid, st.Mode&0o7777, m.fstype, m.opts, werr, readOK, errors.Join(errs...)))
}

// timeline checks stage 1's timeline and prints its steps.
func (c *checker) timeline() {
	var tl struct {
		Steps []struct {
			Name string  `json:"name"`
			At   float64 `json:"at"`
		} `json:"steps"`
	}
	raw, err := os.ReadFile(live.Stage1TimelinePath)
	if err == nil {
		err = json.Unmarshal(raw, &tl)
	}
	var names []string
	for _, s := range tl.Steps {
		names = append(names, s.Name)
	}
	c.check("timeline", err == nil && len(tl.Steps) >= 5, strings.Join(names, ","))
	for _, s := range tl.Steps {
		fmt.Printf("NIXLIVE-TIMELINE %s %.6f\n", s.Name, s.At)
	}
}

// secureBootLog prints the kernel's messages about Secure Boot and
// lockdown from its log (/dev/kmsg), which "quiet" keeps off the console,
// as NIXLIVE-KLOG lines: what the boot tests look for to know the
// firmware enforced Secure Boot.
func secureBootLog() {
	// Raw reads: an os.File would wait in the poller at the log's end
	// instead of returning EAGAIN.
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Printf("NIXLIVE-KLOG unreadable: %v\n", err)
		return
	}
	defer unix.Close(fd)
	buf := make([]byte, 8192)
	for {
		n, err := unix.Read(fd, buf) // one record per read
		if err == unix.EPIPE {
			continue // records overwritten while reading
		}
		if err != nil || n <= 0 {
			return // EAGAIN: the end of the log
		}
		_, msg, _ := strings.Cut(string(buf[:n]), ";")
		msg, _, _ = strings.Cut(msg, "\n")
		if strings.Contains(msg, "Secure boot") || strings.Contains(msg, "locked down") {
			fmt.Printf("NIXLIVE-KLOG %s\n", msg)
		}
	}
}
