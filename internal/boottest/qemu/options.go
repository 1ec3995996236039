// Package qemu runs virtual machines under QEMU (a kernel and initrd, an
// ISO as a CD-ROM, raw disks; SeaBIOS or OVMF) and reads their serial
// console expect-style. QEMU always runs with TCG: KVM does not work on
// the machines this project is tested on. The machine is -M pc, whose IDE
// controller (ata_piix) Debian's cloud kernel drives. It does not import
// "testing", so that commands can use it; vmtest adds the test helpers.
package qemu

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// QEMU is the emulator this package runs.
const QEMU = "qemu-system-x86_64"

// DefaultOVMF is the Debian ovmf package's firmware image for -bios.
const DefaultOVMF = "/usr/share/ovmf/OVMF.fd"

// Firmware selects the machine's firmware.
type Firmware int

const (
	SeaBIOS Firmware = iota // QEMU's default BIOS
	OVMF                    // UEFI: DefaultOVMF (or Options.FirmwarePath) via -bios
)

func (f Firmware) String() string {
	switch f {
	case SeaBIOS:
		return "SeaBIOS"
	case OVMF:
		return "OVMF"
	}
	return "Firmware(" + strconv.Itoa(int(f)) + ")"
}

// Disk is a raw disk image attached to the machine.
type Disk struct {
	Path string
	// Virtio attaches it as a virtio-blk disk (/dev/vdX) instead of an IDE
	// hard disk (/dev/sdX through ata_piix).
	Virtio bool
	// Snapshot sends the guest's writes to a temporary overlay
	// (snapshot=on), leaving the image untouched.
	Snapshot bool
}

// Options describe a machine. The zero value boots nothing: give at least a
// Kernel, a CDROM or a Disk.
type Options struct {
	// Name identifies the machine in errors and names its console log
	// (<Name>.console.log); default "vm".
	Name string

	Kernel string // -kernel: a bzImage (vmlinuz)
	Initrd string // -initrd
	Append string // -append: the kernel command line

	CDROM string // -cdrom: an ISO image (IDE secondary master)
	// Disks are attached in order; IDE disks take the primary channel
	// (index 0 and 1: the first is the first hard disk), virtio disks
	// their own PCI slots.
	Disks []Disk

	Firmware     Firmware
	FirmwarePath string // overrides the default image of Firmware

	MemoryMB int // default 1024
	CPUs     int // default 1
	// CPU is the -cpu model; "" keeps QEMU's default (qemu64). "max"
	// offers RDRAND, so the guest kernel's random pool is ready at once,
	// as on real hardware; without it the first read of /dev/urandom (SQLite
	// makes one) waits about a second for jitter entropy.
	CPU string

	// ExtraArgs are appended to QEMU's command line.
	ExtraArgs []string

	// The rest is for Start, not part of QEMU's command line.

	// LogDir receives the console log (QEMU's command line, the raw
	// console, QEMU's stderr and exit status); "" keeps none.
	LogDir string
	// LogNote follows the log's path in errors (vmtest says there
	// whether the log outlives the test).
	LogNote string
	// Output, if not nil, receives the raw console output as it comes.
	Output io.Writer
}

// Args returns QEMU's arguments for opts (after the program name). It
// checks that the files named exist.
func (opts Options) Args() ([]string, error) {
	if opts.Kernel == "" && (opts.Initrd != "" || opts.Append != "") {
		return nil, errors.New("Initrd and Append need a Kernel")
	}
	args := []string{
		"-accel", "tcg",
		"-M", "pc",
		"-m", strconv.Itoa(orDefault(opts.MemoryMB, 1024)),
		"-smp", strconv.Itoa(orDefault(opts.CPUs, 1)),
	}
	if opts.CPU != "" {
		args = append(args, "-cpu", opts.CPU)
	}
	args = append(args,
		"-display", "none",
		"-monitor", "none",
		"-serial", "stdio",
		"-no-reboot",
		"-nic", "none",
	)
	fw, err := opts.firmwareArgs()
	if err != nil {
		return nil, err
	}
	args = append(args, fw...)
	for _, f := range []struct{ flag, path string }{
		{"-kernel", opts.Kernel}, {"-initrd", opts.Initrd}, {"-cdrom", opts.CDROM},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return nil, fmt.Errorf("%s: %w", f.flag, err)
		}
		args = append(args, f.flag, f.path)
	}
	if opts.Append != "" {
		args = append(args, "-append", opts.Append)
	}
	drives, err := driveArgs(opts.Disks)
	if err != nil {
		return nil, err
	}
	args = append(args, drives...)
	return append(args, opts.ExtraArgs...), nil
}

// orDefault returns v, or def if v is 0.
func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func (opts Options) firmwareArgs() ([]string, error) {
	switch opts.Firmware {
	case SeaBIOS:
		if opts.FirmwarePath != "" {
			return []string{"-bios", opts.FirmwarePath}, nil
		}
		return nil, nil
	case OVMF:
		fw := opts.FirmwarePath
		if fw == "" {
			fw = DefaultOVMF
		}
		return []string{"-bios", fw}, nil
	}
	return nil, fmt.Errorf("unknown firmware %v", opts.Firmware)
}

// driveArgs returns the -drive options of disks: IDE disks on the primary
// channel (the secondary one holds the CD-ROM), virtio disks apart.
func driveArgs(disks []Disk) ([]string, error) {
	var args []string
	ide := 0
	for _, d := range disks {
		if _, err := os.Stat(d.Path); err != nil {
			return nil, fmt.Errorf("disk: %w", err)
		}
		if strings.Contains(d.Path, ",") {
			return nil, fmt.Errorf("disk %q: QEMU -drive paths cannot hold commas", d.Path)
		}
		drive := "file=" + d.Path + ",format=raw"
		if d.Virtio {
			drive += ",if=virtio"
		} else {
			if ide == 2 {
				return nil, errors.New("at most two IDE disks (the secondary channel holds the CD-ROM)")
			}
			drive += ",if=ide,media=disk,index=" + strconv.Itoa(ide)
			ide++
		}
		if d.Snapshot {
			drive += ",snapshot=on"
		}
		args = append(args, "-drive", drive)
	}
	return args, nil
}
