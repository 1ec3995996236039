package imagegen

import (
	"fmt"
	"os"
	"path/filepath"
)

// BIOSFiles are the directories the BIOS boot path's files come from. The
// defaults are Debian's isolinux and syslinux-common packages; a Nix build
// hands in store paths (syslinux's share/syslinux holds both).
type BIOSFiles struct {
	// Isolinux holds isolinux.bin (the El Torito BIOS loader) and
	// isohdpfx.bin (the isohybrid MBR of boot.usb).
	Isolinux string `json:"isolinux"`
	// SyslinuxModules holds the BIOS .c32 modules the menu loads
	// (ldlinux.c32, menu.c32, chain.c32, libcom32.c32, libutil.c32).
	SyslinuxModules string `json:"syslinuxModules"`
}

// DefaultBIOSFiles are Debian's directories.
var DefaultBIOSFiles = BIOSFiles{Isolinux: IsolinuxDir, SyslinuxModules: SyslinuxBIOS}

// checkBootFiles fills in the default directories of boot.biosFiles and
// boot.efiFiles.grubModules (Debian's: DefaultBIOSFiles,
// DefaultEFIFiles.GrubModules) and refuses relative ones.
func (b *BootSpec) checkBootFiles() error {
	for _, f := range []struct {
		field string
		dst   *string
		def   string
	}{
		{"boot.biosFiles.isolinux", &b.BIOSFiles.Isolinux, DefaultBIOSFiles.Isolinux},
		{"boot.biosFiles.syslinuxModules", &b.BIOSFiles.SyslinuxModules, DefaultBIOSFiles.SyslinuxModules},
		{"boot.efiFiles.grubModules", &b.EFIFiles.GrubModules, DefaultEFIFiles.GrubModules},
	} {
		if *f.dst == "" {
			*f.dst = f.def
		}
		if !filepath.IsAbs(*f.dst) {
			return fmt.Errorf("%s %q: want an absolute directory path", f.field, *f.dst)
		}
	}
	return nil
}

// hostDir finds a directory the spec names on the host, as hostFile does
// for files: under the store root when it is in the store.
func (b *ISO) hostDir(field, p, pkg string) (string, error) {
	h := b.onHost(p)
	fi, err := os.Stat(h)
	switch {
	case err != nil:
		return "", fmt.Errorf("%s: %w (install %s, or set %s)", field, err, pkg, field)
	case !fi.IsDir():
		return "", fmt.Errorf("%s: %s is not a directory", field, h)
	}
	return h, nil
}

// biosFile is the host path of name in the boot.biosFiles directory
// field names (dir is its value), checked to be a regular file.
func (b *ISO) biosFile(field, dir, name, pkg string) (string, error) {
	h, err := b.hostFile(field, filepath.Join(dir, name))
	if err != nil {
		return "", fmt.Errorf("%w (install %s, or set %s)", err, pkg, field)
	}
	return h, nil
}
