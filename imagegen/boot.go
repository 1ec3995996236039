package imagegen

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Bootloader files from Debian's isolinux, syslinux-common and
// grub-efi-amd64-bin packages: the defaults of boot.biosFiles.isolinux,
// boot.biosFiles.syslinuxModules and boot.efiFiles.grubModules.
var (
	IsolinuxDir   = "/usr/lib/ISOLINUX"
	SyslinuxBIOS  = "/usr/lib/syslinux/modules/bios"
	GrubEFIModDir = "/usr/lib/grub/x86_64-efi"
)

// isolinuxModules are the syslinux modules the BIOS menu uses: the menu,
// chain loading to the hard disk, and the libraries both need.
var isolinuxModules = []string{"ldlinux.c32", "menu.c32", "chain.c32", "libcom32.c32", "libutil.c32"}

// grubModules are built into the EFI loader, so it needs nothing from the
// ISO before it has found it.
var grubModules = []string{
	"part_gpt", "part_msdos", "fat", "iso9660", "search", "search_fs_file", "configfile",
	"linux", "normal", "echo", "test", "all_video", "efi_gop", "serial", "terminal",
	"chain", "reboot", "halt", "boot", "ls", "gzio", "cat",
}

// Paths on the ISO.
const (
	isoKernel   = "boot/bzImage"
	isoInitrd   = "boot/initrd"
	isoEFIImage = "boot/efi.img"
	isoGrubCfg  = "EFI/BOOT/grub.cfg"
	isoGrubEFI  = "EFI/BOOT/BOOTX64.EFI"
	isoCatalog  = ".boot.cat" // NixOS's name (make-iso9660-image.sh)
)

// menuEntry is one way to boot the live system.
type menuEntry struct {
	id, label string
	params    []string // kernel parameters beyond the common ones
}

// menu is what both boot menus offer.
type menu struct {
	label    string
	timeout  int // seconds, -1: wait
	serial   bool
	cmdline  string // common kernel parameters
	entries  []menuEntry
	marker   string // file the EFI loader searches for to find the ISO
	volumeID string
}

func newMenu(s *Spec) *menu {
	common := append([]string{
		"init=" + s.System + "/init",
		kernelRoot(s.VolumeID),
		"systemConfig=" + s.System,
	}, s.KernelParams...)
	if s.Boot.SerialConsole {
		common = append(common, "console=tty0", "console=ttyS0,115200n8") // the last is /dev/console
	}
	h := sha256.Sum256([]byte(s.VolumeID + "\x00" + s.System))
	return &menu{
		label:    s.Boot.Label,
		timeout:  s.Boot.Timeout,
		serial:   s.Boot.SerialConsole,
		cmdline:  strings.Join(common, " "),
		marker:   "EFI/nixlive-" + hex.EncodeToString(h[:6]),
		volumeID: s.VolumeID,
		entries: []menuEntry{
			{id: "live", label: s.Boot.Label},
			{id: "copytoram", label: s.Boot.Label + " (copy to RAM)", params: []string{"copytoram"}},
			{id: "serial", label: s.Boot.Label + " (serial console)", params: []string{"console=ttyS0,115200n8"}},
			{id: "nomodeset", label: s.Boot.Label + " (nomodeset)", params: []string{"nomodeset"}},
		},
	}
}

func (m *menu) line(e menuEntry) string {
	return strings.TrimSpace(m.cmdline + " " + strings.Join(e.params, " "))
}

// isolinuxCfg is the BIOS menu.
func (m *menu) isolinuxCfg() string {
	var b strings.Builder
	if m.serial {
		b.WriteString("SERIAL 0 115200\n")
	}
	fmt.Fprintf(&b, "UI menu.c32\nPROMPT 0\nMENU TITLE %s\n", m.label)
	switch {
	case m.timeout < 0:
		b.WriteString("TIMEOUT 0\n") // wait for a choice
	case m.timeout == 0:
		b.WriteString("TIMEOUT 1\n")
	default:
		fmt.Fprintf(&b, "TIMEOUT %d\n", m.timeout*10)
	}
	b.WriteString("DEFAULT live\n")
	for _, e := range m.entries {
		fmt.Fprintf(&b, "\nLABEL %s\n  MENU LABEL %s\n  LINUX /%s\n  INITRD /%s\n  APPEND %s\n", e.id, e.label, isoKernel, isoInitrd, m.line(e))
	}
	b.WriteString("\nLABEL hd\n  MENU LABEL Boot from hard disk\n  COM32 chain.c32\n  APPEND hd0\n")
	return b.String()
}

// grubCfg is the EFI menu, read from the ISO once the loader found it.
func (m *menu) grubCfg() string {
	var b strings.Builder
	if m.serial {
		b.WriteString("serial --unit=0 --speed=115200\nterminal_input console serial\nterminal_output console serial\n")
	}
	timeout := m.timeout
	if timeout < 0 {
		b.WriteString("unset timeout\n")
	} else {
		fmt.Fprintf(&b, "set timeout=%d\n", timeout)
	}
	b.WriteString("set default=0\n")
	for _, e := range m.entries {
		fmt.Fprintf(&b, "\nmenuentry %s --id %s {\n  linux /%s %s\n  initrd /%s\n}\n", grubString(e.label), e.id, isoKernel, grubQuote(m.line(e)), isoInitrd)
	}
	b.WriteString("\nmenuentry \"Boot from hard disk\" --id hd {\n  exit\n}\n")
	b.WriteString("\nmenuentry \"Firmware setup\" --id fwsetup {\n  fwsetup\n}\n")
	return b.String()
}

// loaderConf is systemd-boot's loader.conf: the timeout and the default
// entry (entry IDs are the file names, .conf included).
func (m *menu) loaderConf() string {
	timeout := strconv.Itoa(m.timeout)
	if m.timeout < 0 {
		timeout = "menu-force" // wait for a choice
	}
	return fmt.Sprintf("timeout %s\ndefault %s\neditor yes\n", timeout, sdEntryName(m.entries[0]))
}

// loaderEntries are systemd-boot's menu entries, in the menus' order
// (sort-key), loading the kernel and initrd beside the loader. There is no
// "boot from hard disk": systemd-boot adds firmware setup itself.
func (m *menu) loaderEntries() []espFile {
	var files []espFile
	for i, e := range m.entries {
		conf := fmt.Sprintf("title %s\nsort-key nixlive-%d\nlinux /%s\ninitrd /%s\noptions %s\n", e.label, i, isoKernel, isoInitrd, m.line(e))
		files = append(files, espFile{sdEntries + sdEntryName(e), []byte(conf)})
	}
	return files
}

func sdEntryName(e menuEntry) string { return "nixlive-" + e.id + ".conf" }

// grubEarlyCfg is built into the EFI loader: find the ISO by its marker
// file (a label lookup would read the Joliet label, cut at 16 characters)
// and hand over to the menu on it.
func (m *menu) grubEarlyCfg() string {
	return fmt.Sprintf("search --no-floppy --set=root --file /%s\nset prefix=($root)/EFI/BOOT\nconfigfile ($root)/%s\n", m.marker, isoGrubCfg)
}

// buildGrubEFI runs grub-mkimage, the bootloader's own build step (its
// output is reproducible), in a temporary directory.
func (m *menu) buildGrubEFI(tmp, modDir string) (string, error) {
	cfg := filepath.Join(tmp, "grub-early.cfg")
	if err := os.WriteFile(cfg, []byte(m.grubEarlyCfg()), 0o644); err != nil {
		return "", err
	}
	out := filepath.Join(tmp, "BOOTX64.EFI")
	args := append([]string{"-O", "x86_64-efi", "-d", modDir, "-o", out, "-p", "/EFI/BOOT", "-c", cfg}, grubModules...)
	if b, err := exec.Command("grub-mkimage", args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("grub-mkimage: %v: %s", err, strings.TrimSpace(string(b)))
	}
	return out, nil
}

// udevSafe are the bytes udev leaves as they are in /dev/disk/by-label
// names (blkid_encode_string); it writes any other as \xHH.
func udevSafe(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("#+-.:=@_", c) >= 0
}

// kernelRoot is the root= parameter that finds the medium by its volume
// ID: root=LABEL=<id> (NixOS's form) when every byte is plain, else
// root=/dev/disk/by-label/<id> with every other byte, spaces, quotes,
// backslashes and non-ASCII included, as udev's \xHH escape. The kernel
// line then holds no byte it splits at (the kernel takes 0xA0 for a space
// too) and no quote, and stage 1 decodes the escapes (live.ParseCmdline).
func kernelRoot(volumeID string) string {
	plain := true
	var b strings.Builder
	for i := 0; i < len(volumeID); i++ {
		c := volumeID[i]
		if udevSafe(c) {
			b.WriteByte(c)
			continue
		}
		plain = false
		fmt.Fprintf(&b, `\x%02x`, c)
	}
	if plain {
		return "root=LABEL=" + volumeID
	}
	return "root=/dev/disk/by-label/" + b.String()
}

// grubQuote quotes each space-separated word of a kernel line for GRUB's
// script: a word of plain characters as is, any other in single quotes,
// where GRUB takes every byte literally ($, ;, \ and the rest). GRUB then
// passes \xHH escapes to the kernel unchanged.
func grubQuote(line string) string {
	words := strings.Split(line, " ")
	for i, w := range words {
		plain := w != ""
		for j := 0; j < len(w); j++ {
			if c := w[j]; !udevSafe(c) && strings.IndexByte("/,%^~", c) < 0 {
				plain = false
				break
			}
		}
		if !plain {
			words[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
	}
	return strings.Join(words, " ")
}

// grubString is s in GRUB's double quotes, where $ would expand a
// variable and \ escape the next character (Validate refuses " and
// newlines in labels).
func grubString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `$`, `\$`).Replace(s) + `"`
}
