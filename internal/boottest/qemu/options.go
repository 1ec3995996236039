// Package qemu runs virtual machines under QEMU (a kernel and initrd, an
// ISO as a CD-ROM, raw disks; SeaBIOS, OVMF, or OVMF with Secure Boot
// enforced) and reads their serial console expect-style. QEMU always runs
// with TCG: KVM does not work on the machines this project is tested on.
//
// The machine is -M pc, whose IDE controller (ata_piix) Debian's cloud
// kernel drives, but with OVMFSecureBoot: Secure Boot is enforced by the
// SMM build of OVMF (OVMF_CODE_4M.secboot.fd), whose variable store the
// guest OS cannot write behind the firmware's back, and SMM needs
// -M q35,smm=on. There the CD-ROM and IDE disks hang off a virtio-scsi
// controller, which both OVMF and the cloud kernel (virtio_scsi, sr_mod,
// sd_mod) drive: the kernel has no AHCI driver for q35's own controller,
// and on an added PIIX3 IDE controller ata_piix ignores both channels,
// whose decode bits OVMF leaves off on q35. The guest still names them
// /dev/sr0 and /dev/sda.
//
// The package does not import "testing", so that commands can use it;
// vmtest adds the test helpers.
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

// Firmware images of Debian's ovmf package.
const (
	// DefaultOVMF is the firmware image of OVMF, for -bios.
	DefaultOVMF = "/usr/share/ovmf/OVMF.fd"
	// SecureBootCode is the code of OVMFSecureBoot, mapped read-only as
	// pflash unit 0: OVMF's 4 MB build with Secure Boot and SMM.
	SecureBootCode = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
	// MicrosoftVars is a variable store template for SecureBootCode with
	// Secure Boot on and Microsoft's keys enrolled in KEK and db (their
	// UEFI CA signs shim), Debian's in PK.
	MicrosoftVars = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
	// SnakeoilVars is a variable store template for SecureBootCode with
	// Secure Boot on and Debian's snakeoil test key as PK, KEK and db:
	// the firmware starts what /usr/share/ovmf/PkKek-1-snakeoil.key
	// (passphrase "snakeoil", certificate PkKek-1-snakeoil.pem) signs.
	SnakeoilVars = "/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd"
)

// Firmware selects the machine's firmware.
type Firmware int

const (
	SeaBIOS Firmware = iota // QEMU's default BIOS
	OVMF                    // UEFI: DefaultOVMF (or Options.FirmwarePath) via -bios
	// OVMFSecureBoot is UEFI with Secure Boot enforced: SecureBootCode
	// (or Options.FirmwarePath) and a private copy of the variable store
	// template Options.FirmwareVars, as pflash. What the firmware loads
	// from a CD-ROM or disk must be signed by a key in the store's db.
	//
	// A Kernel is not checked: Debian 12's OVMF starts a -kernel that
	// fails verification with its legacy loader. The kernel sees Secure
	// Boot on all the same, and locks itself down.
	OVMFSecureBoot
)

func (f Firmware) String() string {
	switch f {
	case SeaBIOS:
		return "SeaBIOS"
	case OVMF:
		return "OVMF"
	case OVMFSecureBoot:
		return "OVMF-SecureBoot"
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

	Firmware Firmware
	// FirmwarePath overrides the default image of Firmware (with
	// OVMFSecureBoot, the code; it must not need SMM).
	FirmwarePath string
	// FirmwareVars is OVMFSecureBoot's variable store template (default
	// MicrosoftVars): the keys enrolled in it decide what the firmware
	// starts. The firmware writes to its variable store, so Start gives it
	// a private copy of the template, removed once QEMU has exited; the
	// template is not changed. Other firmwares take none.
	FirmwareVars string

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
// checks that the files named exist. It fails for OVMFSecureBoot, whose
// writable copy of the variable store Start makes: see ArgsWithVars.
func (opts Options) Args() ([]string, error) { return opts.ArgsWithVars("") }

// ArgsWithVars is Args for a machine whose OVMFSecureBoot variable store
// is the file vars, a writable copy of the template opts.FirmwareVars
// (the firmware changes it). Other firmwares take vars "". It writes no
// file: Start makes the copy.
func (opts Options) ArgsWithVars(vars string) ([]string, error) {
	if opts.Kernel == "" && (opts.Initrd != "" || opts.Append != "") {
		return nil, errors.New("Initrd and Append need a Kernel")
	}
	machine := "pc"
	if opts.Firmware == OVMFSecureBoot {
		machine = "q35,smm=on"
	}
	args := []string{
		"-accel", "tcg",
		"-M", machine,
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
	fw, err := opts.firmwareArgs(vars)
	if err != nil {
		return nil, err
	}
	args = append(args, fw...)
	cdrom := opts.CDROM
	if opts.Firmware == OVMFSecureBoot {
		cdrom = "" // on the SCSI bus (driveArgs)
	}
	for _, f := range []struct{ flag, path string }{
		{"-kernel", opts.Kernel}, {"-initrd", opts.Initrd}, {"-cdrom", cdrom},
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
	if opts.Firmware == OVMFSecureBoot {
		drives, err = scsiArgs(opts.Disks, opts.CDROM)
	}
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

func (opts Options) firmwareArgs(vars string) ([]string, error) {
	if opts.Firmware != OVMFSecureBoot {
		if opts.FirmwareVars != "" {
			return nil, fmt.Errorf("FirmwareVars is for %v only, not %v", OVMFSecureBoot, opts.Firmware)
		}
		if vars != "" {
			return nil, fmt.Errorf("a variable store is for %v only, not %v", OVMFSecureBoot, opts.Firmware)
		}
	}
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
	case OVMFSecureBoot:
		code := opts.secureBootCode()
		if _, err := os.Stat(code); err != nil {
			return nil, fmt.Errorf("%v code: %w (install ovmf)", opts.Firmware, err)
		}
		if _, err := os.Stat(opts.varsTemplate()); err != nil {
			return nil, fmt.Errorf("%v variable store template: %w (install ovmf)", opts.Firmware, err)
		}
		if vars == "" {
			return nil, fmt.Errorf("%v needs a writable copy of its variable store template %s: Start makes one (or see ArgsWithVars)",
				opts.Firmware, opts.varsTemplate())
		}
		if _, err := os.Stat(vars); err != nil {
			return nil, fmt.Errorf("%v variable store: %w", opts.Firmware, err)
		}
		if err := drivePath("firmware code", code); err != nil {
			return nil, err
		}
		if err := drivePath("firmware variable store", vars); err != nil {
			return nil, err
		}
		return []string{
			"-global", "driver=cfi.pflash01,property=secure,value=on", // SMM alone writes the variables
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + code,
			"-drive", "if=pflash,format=raw,unit=1,file=" + vars,
		}, nil
	}
	return nil, fmt.Errorf("unknown firmware %v", opts.Firmware)
}

// secureBootCode returns OVMFSecureBoot's code image: FirmwarePath, or
// SecureBootCode.
func (opts Options) secureBootCode() string {
	if opts.FirmwarePath != "" {
		return opts.FirmwarePath
	}
	return SecureBootCode
}

// varsTemplate returns OVMFSecureBoot's variable store template:
// FirmwareVars, or MicrosoftVars.
func (opts Options) varsTemplate() string {
	if opts.FirmwareVars != "" {
		return opts.FirmwareVars
	}
	return MicrosoftVars
}

// drivePath checks that path can follow -drive's file=.
func drivePath(what, path string) error {
	if strings.Contains(path, ",") {
		return fmt.Errorf("%s %q: QEMU -drive paths cannot hold commas", what, path)
	}
	return nil
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
		if err := drivePath("disk", d.Path); err != nil {
			return nil, err
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

// scsiArgs attaches, on q35, the disks that would be IDE disks and the
// CD-ROM to one virtio-scsi controller, in that order (so the guest's
// /dev/sda is the first disk, /dev/sr0 the CD-ROM); virtio disks as
// driveArgs does.
func scsiArgs(disks []Disk, cdrom string) ([]string, error) {
	args := []string{"-device", "virtio-scsi-pci,id=scsi"}
	n := 0
	add := func(path, media string, extra string) error {
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("%s: %w", media, err)
		}
		if err := drivePath(media, path); err != nil {
			return err
		}
		id := "scsi" + strconv.Itoa(n)
		dev := map[string]string{"disk": "scsi-hd", "cdrom": "scsi-cd"}[media]
		args = append(args, "-drive", "if=none,id="+id+",format=raw,media="+media+",file="+path+extra,
			"-device", dev+",drive="+id+",bus=scsi.0,scsi-id="+strconv.Itoa(n))
		n++
		return nil
	}
	var virtio []Disk
	for _, d := range disks {
		if d.Virtio {
			virtio = append(virtio, d)
			continue
		}
		extra := ""
		if d.Snapshot {
			extra = ",snapshot=on"
		}
		if err := add(d.Path, "disk", extra); err != nil {
			return nil, err
		}
	}
	if cdrom != "" {
		if err := add(cdrom, "cdrom", ",readonly=on"); err != nil {
			return nil, err
		}
	}
	v, err := driveArgs(virtio)
	return append(args, v...), err
}
