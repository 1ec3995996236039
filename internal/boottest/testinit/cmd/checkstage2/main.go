// Command checkstage2 stands in for stage 2 in boot tests: started by
// stage 1's switch_root, it checks from inside that the live layout is
// NixOS's (as package live names it: tmpfs /, the medium on /iso, the store
// image on a loop device under an overlay on /nix/store), prints one line
// per check and a verdict on the console, and powers off. It reads
// check.file=<path> and check.sha256=<hex> (a store file and its digest)
// and check.copytoram (the medium must be gone) from the command line.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/nixlive/nixlive/live"
)

const (
	tmpfsMagic    = 0x01021994
	isofsMagic    = 0x9660
	squashfsMagic = 0x73717368
	overlayMagic  = 0x794c7630
)

type mount struct{ source, target, fstype string }

// mounts maps each mount point to its mount (the last one on it, which is
// the one in effect).
func mounts() map[string]mount {
	m := map[string]mount{}
	infos, err := mountinfo.GetMounts(nil)
	if err != nil {
		return m
	}
	for _, i := range infos {
		m[i.Mountpoint] = mount{source: i.Source, target: i.Mountpoint, fstype: i.FSType}
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

func main() {
	os.MkdirAll("/proc", 0o555)
	unix.Mount("proc", "/proc", "proc", 0, "") // stage 1 moved it here; EBUSY is fine
	cmdline, _ := live.ReadCmdline()
	params := cmdline.Params
	_, copyToRAM := params["check.copytoram"]
	ok := true
	check := func(name string, pass bool, detail string) {
		verdict := "ok"
		if !pass {
			verdict, ok = "FAIL", false
		}
		fmt.Printf("NIXLIVE-CHECK %s %s %s\n", verdict, name, detail)
	}
	ms := mounts()
	check("root-tmpfs", fsMagic("/") == tmpfsMagic, fmt.Sprintf("fstype=%s", ms["/"].fstype))
	if copyToRAM {
		_, mounted := ms[live.ISODir]
		check("medium-released", !mounted, fmt.Sprintf("/iso mounted=%v", mounted))
	} else {
		check("iso-iso9660", fsMagic(live.ISODir) == isofsMagic, fmt.Sprintf("source=%s", ms[live.ISODir].source))
	}
	ro := ms[live.ROStore]
	check("ro-store-squashfs-loop", fsMagic(live.ROStore) == squashfsMagic && strings.HasPrefix(ro.source, "/dev/loop"), fmt.Sprintf("source=%s", ro.source))
	check("store-overlay", fsMagic(live.Store) == overlayMagic, ms[live.Store].fstype)
	probe := "/nix/store/.nixlive-write-test"
	werr := os.WriteFile(probe, []byte("written in stage 2\n"), 0o644)
	back, _ := os.ReadFile(probe)
	check("store-writable", werr == nil && string(back) == "written in stage 2\n", fmt.Sprint(werr))
	if p := params["check.file"]; p != "" {
		data, err := os.ReadFile(p)
		sum := sha256.Sum256(data)
		got := hex.EncodeToString(sum[:])
		check("store-file-intact", err == nil && got == params["check.sha256"], fmt.Sprintf("%s sha256=%s err=%v", p, got, err))
	}
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
	check("timeline", err == nil && len(tl.Steps) >= 5, strings.Join(names, ","))
	for _, s := range tl.Steps {
		fmt.Printf("NIXLIVE-TIMELINE %s %.6f\n", s.Name, s.At)
	}
	if ok {
		fmt.Println("NIXLIVE-STAGE2-RESULT PASS")
	} else {
		fmt.Println("NIXLIVE-STAGE2-RESULT FAIL")
	}
	unix.Sync()
	time.Sleep(50 * time.Millisecond)
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}
