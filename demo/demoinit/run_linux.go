package demoinit

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"runtime"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
	_ "modernc.org/sqlite"

	"github.com/nixlive/nixlive/internal/nix/registration"
	"github.com/nixlive/nixlive/live"
)

// Files the report reads, as NixOS and stage 1 and 2 leave them.
const (
	RegistrationFile = live.RegistrationPath
	DatabaseFile     = "/nix/var/nix/db/db.sqlite"
	ProfileLink      = "/nix/var/nix/profiles/system"
	writeTestName    = "nixlive-demo-write-test"
)

// Kernel parameter nixlive.demo=shell opens the shell without asking;
// nixlive.demo=poweroff powers off without asking.
const shellWait = 5 * time.Second

// Main is demo-init's main: report, then a shell or power off. As PID 1
// it never returns.
func Main() {
	start := live.Uptime()
	os.Setenv("PATH", "/run/current-system/sw/bin")
	r := Gather(start)
	r.Check()
	r.WriteText(os.Stdout)

	cmdline, _ := live.ReadCmdline()
	mode := cmdline.Params["nixlive.demo"]
	if mode == "shell" || (mode != "poweroff" && askShell()) {
		shell()
	}
	poweroff()
}

// Gather looks at the running system.
func Gather(start time.Duration) *Report {
	r := &Report{System: os.Getenv("systemConfig")}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		r.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if b, err := os.ReadFile("/etc/hostname"); err == nil {
		r.Hostname = strings.TrimSpace(string(b))
	}
	r.secureBoot()
	if err := r.database(); err != nil {
		r.Mismatches = append(r.Mismatches, err.Error())
	}
	_, err := os.Stat("/etc/NIXOS")
	r.NixOS = err == nil
	r.Profile = linkChain(ProfileLink)
	r.BootedSystem, _ = os.Readlink("/run/booted-system")
	r.CurrentSystem, _ = os.Readlink("/run/current-system")
	r.mounts()
	r.storeWrites()
	r.timeline(start)
	return r
}

// database checks every registered path against ValidPaths: present, with
// the registration's hash (as "sha256:<base16>") and size.
func (r *Report) database() error {
	f, err := os.Open(RegistrationFile)
	if err != nil {
		return err
	}
	recs, err := registration.Parse(bufio.NewReader(f), live.Store)
	f.Close()
	if err != nil {
		return err
	}
	r.Registered = len(recs)
	for _, rec := range recs {
		r.RegisteredRef += len(rec.References)
	}
	db, err := sql.Open("sqlite", DatabaseFile)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.QueryRow("SELECT count(*) FROM ValidPaths").Scan(&r.ValidPaths); err != nil {
		return fmt.Errorf("%s: %w", DatabaseFile, err)
	}
	if err := db.QueryRow("SELECT count(*) FROM Refs").Scan(&r.Refs); err != nil {
		return fmt.Errorf("%s: %w", DatabaseFile, err)
	}
	for _, rec := range recs {
		var hash string
		var size int64
		err := db.QueryRow("SELECT hash, narSize FROM ValidPaths WHERE path = ?", rec.Path).Scan(&hash, &size)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			r.Mismatches = append(r.Mismatches, rec.Path+": not valid")
		case err != nil:
			return err
		case hash != "sha256:"+hex.EncodeToString(rec.NarHash[:]) || uint64(size) != rec.NarSize:
			r.Mismatches = append(r.Mismatches, fmt.Sprintf("%s: %s %d in the database, registered %s %d", rec.Path, hash, size, rec.HashString(), rec.NarSize))
		default:
			r.Matching++
		}
	}
	return nil
}

// linkChain follows p link by link (as readlink would, one at a time)
// until a store path or a non-link.
func linkChain(p string) ProfileChain {
	chain := ProfileChain{p}
	for i := 0; i < 10; i++ {
		t, err := os.Readlink(p)
		if err != nil {
			break
		}
		if !path.IsAbs(t) {
			t = path.Join(path.Dir(p), t)
		}
		chain = append(chain, t)
		if strings.HasPrefix(t, "/nix/store/") {
			break
		}
		p = t
	}
	return chain
}

func (r *Report) mounts() {
	infos, err := mountinfo.GetMounts(nil)
	if err != nil {
		return
	}
	// The last mount on a target is the one in effect (/nix/store has the
	// overlay, then NixOS's read-only bind over it).
	last := map[string]*mountinfo.Info{}
	for _, m := range infos {
		last[m.Mountpoint] = m
	}
	for _, t := range LiveMounts {
		if m := last[t]; m != nil {
			r.Mounts = append(r.Mounts, Mount{Target: t, FSType: m.FSType, Source: m.Source, Options: m.Options})
		}
	}
}

// storeWrites writes a file into /nix/store the way nix-daemon does — in a
// private mount namespace where the store's bind mount is read-write — and
// reads it back from the system's view; then checks that a direct write is
// refused.
func (r *Report) storeWrites() {
	name := "/nix/store/" + writeTestName
	data := []byte(fmt.Sprintf("written by demo-init at %s\n", live.Uptime()))
	written, cleanup := make(chan error), make(chan struct{})
	go func() {
		// The thread changes namespace and is never given back to the
		// scheduler: it ends with the goroutine.
		runtime.LockOSThread()
		err := func() error {
			if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
				return fmt.Errorf("unshare: %w", err)
			}
			if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
				return fmt.Errorf("make / private: %w", err)
			}
			if err := unix.Mount("", live.Store, "", unix.MS_REMOUNT|unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("remount /nix/store read-write: %w", err)
			}
			return os.WriteFile(name, data, 0o444)
		}()
		written <- err
		if err == nil {
			<-cleanup
			os.Remove(name)
		}
		close(written)
	}()
	if err := <-written; err != nil {
		r.StoreWrite = err.Error()
	} else {
		got, err := os.ReadFile(name)
		switch {
		case err != nil:
			r.StoreWrite = "written, but the system does not see it: " + err.Error()
		case !bytes.Equal(got, data):
			r.StoreWrite = "written, but reads back different"
		}
		if _, err := os.Stat(live.RWStore + "/store/" + writeTestName); err != nil && r.StoreWrite == "" {
			r.StoreWrite = "not in the overlay's upper layer " + live.RWStore + "/store: " + err.Error()
		}
		close(cleanup)
		<-written
	}
	err := os.WriteFile(name+"-direct", data, 0o444)
	r.StoreReadOnly = errors.Is(err, unix.EROFS)
	if err == nil {
		os.Remove(name + "-direct")
	}
}

func (r *Report) timeline(start time.Duration) {
	if f, err := os.Open(live.TimelinePath); err == nil {
		tl, err := live.ReadTimeline(f)
		f.Close()
		if err == nil {
			for _, s := range tl.Steps {
				r.Timeline = append(r.Timeline, Step{Name: s.Name, At: time.Duration(s.At).Seconds(), Detail: s.Detail})
			}
		}
	}
	r.Timeline = append(r.Timeline, Step{Name: "demo-init: start", At: start.Seconds()},
		Step{Name: "demo-init: report", At: live.Uptime().Seconds()})
}

// askShell offers a shell on the console for a few seconds; a line with
// anything but "q" (Enter alone, say) takes it.
func askShell() bool {
	fmt.Printf("\n%s %d s for a shell (q: power off now).\n", ShellOffer, int(shellWait.Seconds()))
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		return strings.TrimSpace(s) != "q"
	case <-time.After(shellWait):
		return false
	}
}

// shell runs the system's shell on the console until it exits.
func shell() {
	fmt.Println("nixlive demo: starting the shell; \"poweroff\" (or exit) ends the demo.")
	sh := "/run/current-system/sw/bin/sh"
	cmd := exec.Command(sh)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = []string{"PATH=/run/current-system/sw/bin", "HOME=/root", "TERM=vt100", "USER=root",
		"systemConfig=" + os.Getenv("systemConfig")}
	cmd.Dir = "/"
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "nixlive demo: %s: %v\n", sh, err)
	}
}

func poweroff() {
	fmt.Println("nixlive demo: powering off.")
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}
