// Command vfatcheck is the /init of the initrd that imagegen/fat's tests
// boot under QEMU to read FAT images with the Linux kernel's vfat driver.
// It mounts /proc, /sys and devtmpfs, loads the modules the initrd holds
// (internal/boottest/testinit's layout), mounts every virtio disk (/dev/vda, vdb...,
// as many as vfatcheck.disks=N on the command line says) read-only with
// -t vfat -o utf8,tz=UTC, and prints one line per entry:
//
//	VFAT-ENTRY <disk> <d|f> <size> <mtime unix> <sha256 or -> <Go-quoted path>
//
// then the kernel's FAT-fs messages as "VFAT-KMSG <quoted line>", problems
// as "VFAT-ERROR <text>", and "VFAT-DONE" before it powers the machine
// off. It must be built static (CGO_ENABLED=0).
package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nixlive/nixlive/live"
)

// report writes the VFAT-* lines.
type report struct{ out io.Writer }

func (r *report) say(format string, args ...any)  { fmt.Fprintf(r.out, format+"\n", args...) }
func (r *report) fail(format string, args ...any) { r.say("VFAT-ERROR "+format, args...) }

func main() {
	r := &report{out: os.Stdout}
	if _, err := os.Stdout.Stat(); err != nil {
		r.out = os.Stderr
	}
	for _, m := range []struct{ fstype, target string }{
		{"proc", "/proc"}, {"sysfs", "/sys"}, {"devtmpfs", "/dev"},
	} {
		os.MkdirAll(m.target, 0o755)
		if err := unix.Mount(m.fstype, m.target, m.fstype, unix.MS_NOSUID|unix.MS_NOEXEC, ""); err != nil && err != unix.EBUSY {
			r.fail("mount %s: %v", m.target, err)
		}
	}
	if f, err := os.OpenFile("/dev/console", os.O_WRONLY|unix.O_NOCTTY, 0); err == nil {
		r.out = f
	}
	r.loadModules()
	cmdline, _ := live.ReadCmdline()
	disks, _ := strconv.Atoi(cmdline.Params["vfatcheck.disks"])
	for i := range disks {
		r.disk(i)
	}
	r.kernelMessages()
	r.say("VFAT-DONE")
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		r.fail("power off: %v", err)
	}
	os.Exit(1)
}

// loadModules loads the initrd's modules in the order load.order gives.
func (r *report) loadModules() {
	raw, err := os.ReadFile("/lib/modules/load.order")
	if err != nil {
		return
	}
	for _, name := range strings.Fields(string(raw)) {
		f, err := os.Open("/lib/modules/" + name)
		if err != nil {
			r.fail("%v", err)
			continue
		}
		if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && err != unix.EEXIST {
			r.fail("loading %s: %v", name, err)
		}
		f.Close()
	}
}

// disk mounts virtio disk i as vfat and prints one line per entry.
func (r *report) disk(i int) {
	dev := "/dev/vd" + string(rune('a'+i))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(dev); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mnt := "/mnt/" + strconv.Itoa(i)
	os.MkdirAll(mnt, 0o755)
	if err := unix.Mount(dev, mnt, "vfat", unix.MS_RDONLY, "utf8,tz=UTC"); err != nil {
		r.fail("mount %s: %v", dev, err)
		return
	}
	err := filepath.WalkDir(mnt, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == mnt {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(mnt, p)
		kind, sum := "f", "-"
		if fi.IsDir() {
			kind = "d"
		} else if sum, err = sha256File(p); err != nil {
			return err
		}
		r.say("VFAT-ENTRY %d %s %d %d %s %q", i, kind, fi.Size(), fi.ModTime().Unix(), sum, rel)
		return nil
	})
	if err != nil {
		r.fail("disk %d: %v", i, err)
	}
	if err := unix.Unmount(mnt, 0); err != nil {
		r.fail("umount %s: %v", mnt, err)
	}
}

func sha256File(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", p, err)
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}

// kernelMessages prints the kernel's FAT-fs messages.
func (r *report) kernelMessages() {
	buf := make([]byte, 1<<20)
	n, err := unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
	if err != nil {
		r.fail("klogctl: %v", err)
		return
	}
	for _, line := range bytes.Split(buf[:n], []byte("\n")) {
		if bytes.Contains(line, []byte("FAT-fs")) {
			r.say("VFAT-KMSG %q", line)
		}
	}
}
