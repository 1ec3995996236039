// Command testinit is the /init of the test initrd: it loads the modules
// /lib/modules/load.order lists (if any), mounts /proc, /sys and /dev,
// prints "NIXLIVE-TESTINIT-OK cmdline=<the command line>" and one
// "NIXLIVE-TESTINIT-BLOCK <name> <bytes>" line per block device, and powers
// off (QEMU exits); with testinit.hang it waits forever instead. It must be
// built static (CGO_ENABLED=0): the initrd holds nothing else.
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nixlive/nixlive/live"
)

// loadOrder lists the modules of the initrd (see testinit.WriteInitrd).
const loadOrder = "/lib/modules/load.order"

// Marker starts the line that tells the harness that init ran.
const Marker = "NIXLIVE-TESTINIT-OK"

func main() {
	con := console()
	logf := func(format string, args ...any) { fmt.Fprintf(con, format+"\n", args...) }

	for _, m := range []struct{ fstype, target string }{
		{"proc", "/proc"},
		{"sysfs", "/sys"},
		{"devtmpfs", "/dev"},
	} {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			logf("testinit: mkdir %s: %v", m.target, err)
		}
		if err := unix.Mount(m.fstype, m.target, m.fstype, unix.MS_NOSUID|unix.MS_NOEXEC, ""); err != nil && err != unix.EBUSY {
			logf("testinit: mount %s on %s: %v", m.fstype, m.target, err)
		}
	}
	// Reopen the console now that devtmpfs provides it for sure.
	if f, err := os.OpenFile("/dev/console", os.O_WRONLY|unix.O_NOCTTY, 0); err == nil {
		con = f
	}

	if n := loadModules(logf); n > 0 {
		settleBlockDevices()
		logf("testinit: loaded %d modules", n)
	}

	cmdline, err := live.ReadCmdline()
	if err != nil {
		logf("testinit: %v", err)
	}
	logf("%s cmdline=%s", Marker, cmdline.Raw)
	for _, b := range blockDevices() {
		logf("NIXLIVE-TESTINIT-BLOCK %s %d", b.name, b.size)
	}

	if _, hang := cmdline.Params["testinit.hang"]; hang {
		logf("testinit: hanging (testinit.hang)")
		for {
			time.Sleep(time.Hour)
		}
	}
	unix.Sync()
	err = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	// Only reached on failure; returning from init panics the kernel,
	// which the harness reports with the console lines.
	logf("testinit: power off: %v", err)
	os.Exit(1)
}

// console returns the kernel console: init's stdout if the kernel opened
// one (it does from its built-in initramfs's /dev/console), else
// /dev/console, else stderr.
func console() io.Writer {
	if _, err := os.Stdout.Stat(); err == nil {
		return os.Stdout
	}
	if f, err := os.OpenFile("/dev/console", os.O_WRONLY|unix.O_NOCTTY, 0); err == nil {
		return f
	}
	return os.Stderr
}

// loadModules loads the modules listed in loadOrder, in order, and returns
// how many it loaded.
func loadModules(logf func(string, ...any)) int {
	raw, err := os.ReadFile(loadOrder)
	if err != nil {
		return 0
	}
	n := 0
	for _, name := range strings.Fields(string(raw)) {
		p := filepath.Join(filepath.Dir(loadOrder), name)
		f, err := os.Open(p)
		if err != nil {
			logf("testinit: %v", err)
			continue
		}
		err = unix.FinitModule(int(f.Fd()), "", 0)
		f.Close()
		if err != nil && err != unix.EEXIST {
			logf("testinit: loading %s: %v", p, err)
			continue
		}
		n++
	}
	return n
}

// settleBlockDevices waits until the list of block devices has not changed
// for a while (disks may appear after their driver's module is loaded),
// at most a few seconds.
func settleBlockDevices() {
	const quiet, limit, step = 300 * time.Millisecond, 5 * time.Second, 50 * time.Millisecond
	start := time.Now()
	last, since := fmt.Sprint(blockDevices()), time.Now()
	for time.Since(since) < quiet && time.Since(start) < limit {
		time.Sleep(step)
		if cur := fmt.Sprint(blockDevices()); cur != last {
			last, since = cur, time.Now()
		}
	}
}

type blockDev struct {
	name string
	size int64 // bytes
}

// blockDevices lists /sys/class/block, partitions included, sorted by name;
// loop and ram devices of size 0 are left out.
func blockDevices() []blockDev {
	entries, err := os.ReadDir("/sys/class/block")
	if err != nil {
		return nil
	}
	var out []blockDev
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join("/sys/class/block", e.Name(), "size"))
		if err != nil {
			continue
		}
		sectors, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
		if err != nil {
			continue
		}
		if sectors == 0 && (strings.HasPrefix(e.Name(), "loop") || strings.HasPrefix(e.Name(), "ram")) {
			continue
		}
		out = append(out, blockDev{e.Name(), sectors * 512})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}
