package imagegen

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nixlive/nixlive/imagegen/fat"
	"github.com/nixlive/nixlive/imagegen/secureboot"
)

// The EFI loaders an ISO can boot through (boot.efiLoader).
const (
	// EFILoaderShim is Microsoft-signed shim loading Debian's signed GRUB,
	// which asks shim to verify the kernel: it boots with Secure Boot on
	// as Debian's, Ubuntu's and Fedora's ISOs do, given a kernel signed by
	// a key shim trusts (Debian's, or one enrolled with MokManager).
	EFILoaderShim = "shim"
	// EFILoaderGrubMkimage is a GRUB built with grub-mkimage, unsigned:
	// custom, but refused by firmware with Secure Boot on.
	EFILoaderGrubMkimage = "grub-mkimage"
	// EFILoaderSystemdBoot is systemd-boot with the kernel and initrd in
	// the EFI image; with boot.secureBoot both loader and kernel are signed
	// with the user's key, and the firmware itself verifies the kernel.
	EFILoaderSystemdBoot = "systemd-boot"
)

// EFIFiles are the prebuilt EFI binaries the loaders are made of. The
// defaults are where Debian's shim-signed, grub-efi-amd64-signed and
// systemd-boot-efi packages put them; a Nix build hands in store paths.
type EFIFiles struct {
	Shim        string `json:"shim"`        // shimx64.efi.signed
	MokManager  string `json:"mokManager"`  // mmx64.efi.signed, run by shim to enroll keys
	Grub        string `json:"grub"`        // gcdx64.efi.signed: monolithic, for CDs
	SystemdBoot string `json:"systemdBoot"` // systemd-bootx64.efi
	// GrubModules is the directory of GRUB's x86_64-efi modules that
	// grub-mkimage builds efiLoader "grub-mkimage" from (its -d);
	// default GrubEFIModDir.
	GrubModules string `json:"grubModules"`
}

// DefaultEFIFiles are Debian's paths.
var DefaultEFIFiles = EFIFiles{
	Shim:        "/usr/lib/shim/shimx64.efi.signed",
	MokManager:  "/usr/lib/shim/mmx64.efi.signed",
	Grub:        "/usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed",
	SystemdBoot: "/usr/lib/systemd/boot/efi/systemd-bootx64.efi",
	GrubModules: GrubEFIModDir,
}

// SecureBootKey is the user's own Secure Boot signing key (an RSA key in
// PEM, unencrypted) and its certificate, which the firmware's db holds.
type SecureBootKey struct {
	Key         string `json:"key"`
	Certificate string `json:"certificate"`
}

// checkEFI fills in the EFI defaults and refuses combinations that cannot
// boot as asked.
func (b *BootSpec) checkEFI() error {
	d := DefaultEFIFiles
	for _, f := range []struct {
		dst *string
		def string
	}{
		{&b.EFIFiles.Shim, d.Shim}, {&b.EFIFiles.MokManager, d.MokManager},
		{&b.EFIFiles.Grub, d.Grub}, {&b.EFIFiles.SystemdBoot, d.SystemdBoot},
	} {
		if *f.dst == "" {
			*f.dst = f.def
		}
	}
	if b.EFILoader == "" {
		b.EFILoader = EFILoaderShim
		if b.SecureBoot != nil {
			b.EFILoader = EFILoaderSystemdBoot
		}
	}
	switch b.EFILoader {
	case EFILoaderShim, EFILoaderGrubMkimage, EFILoaderSystemdBoot:
	default:
		return fmt.Errorf("boot.efiLoader %q: want %q, %q or %q", b.EFILoader, EFILoaderShim, EFILoaderGrubMkimage, EFILoaderSystemdBoot)
	}
	k := b.SecureBoot
	if k == nil {
		return nil
	}
	switch {
	case b.EFILoader != EFILoaderSystemdBoot:
		return fmt.Errorf("boot.secureBoot: signing with your own key takes efiLoader %q, not %q (shim trusts Microsoft's and Debian's keys, and a GRUB from grub-mkimage verifies no kernel)", EFILoaderSystemdBoot, b.EFILoader)
	case !b.EFI:
		return errors.New("boot.secureBoot: boot.efi is off, so there is nothing to sign")
	case k.Key == "":
		return errors.New("boot.secureBoot.key: required (the PEM private key)")
	case k.Certificate == "":
		return errors.New("boot.secureBoot.certificate: required (the certificate the firmware's db holds)")
	}
	return nil
}

// Paths of the EFI loaders' files, in the EFI image and on the ISO.
const (
	efiBootDir    = "EFI/BOOT/"
	efiBootX64    = efiBootDir + "BOOTX64.EFI" // where firmware looks on removable media
	efiShimGrub   = efiBootDir + "grubx64.efi" // what shim loads from its own directory
	efiMokManager = efiBootDir + "mmx64.efi"
	// isoShimMenu is where Debian's signed GRUB, whose built-in prefix is
	// /boot/grub, finds its menu on a CD.
	isoShimMenu = "boot/grub/grub.cfg"
	// The systemd-boot menu (the Boot Loader Specification's type #1
	// entries) and the kernel it loads, in the EFI image.
	sdLoaderConf = "loader/loader.conf"
	sdEntries    = "loader/entries/"
)

// efiBoot is what an EFI loader puts on the ISO: the files of the FAT
// image that the El Torito EFI entry and a USB stick's EFI system
// partition boot, the files beside it on the ISO 9660 side, and the kernel
// when the loader signs it.
type efiBoot struct {
	esp     []espFile
	iso     []input
	kernel  []byte // the kernel for every loader when signed here; nil: the spec's
	warning string // why Secure Boot firmware will refuse the ISO; "" if it boots
}

type espFile struct {
	name string
	data []byte
}

func (b *ISO) efiBoot(m *menu, tmp string, p *isoPlan) (*efiBoot, error) {
	switch b.Spec.Boot.EFILoader {
	case EFILoaderGrubMkimage:
		mods, err := b.hostDir("boot.efiFiles.grubModules", b.Spec.Boot.EFIFiles.GrubModules, "grub-efi-amd64-bin")
		if err != nil {
			return nil, err
		}
		return m.grubMkimageBoot(tmp, mods)
	case EFILoaderSystemdBoot:
		return b.systemdBoot(m, p)
	}
	return b.shimBoot(m, p)
}

// grubMkimageBoot is our own GRUB: its early config, built in, finds the
// ISO and its menu.
func (m *menu) grubMkimageBoot(tmp, modDir string) (*efiBoot, error) {
	efiBin, err := m.buildGrubEFI(tmp, modDir)
	if err != nil {
		return nil, err
	}
	loader, err := os.ReadFile(efiBin)
	if err != nil {
		return nil, err
	}
	cfg := []byte(m.grubCfg())
	return &efiBoot{
		esp: []espFile{{efiBootX64, loader}, {isoGrubCfg, cfg}},
		iso: []input{{target: isoGrubEFI, data: loader}, {target: isoGrubCfg, data: cfg}, {target: m.marker, data: []byte{}}},
		warning: fmt.Sprintf("efiLoader %q: GRUB from grub-mkimage is unsigned, so firmware with Secure Boot on refuses the ISO (Secure Boot off boots it)",
			EFILoaderGrubMkimage),
	}, nil
}

// shimBoot is Debian's chain: shim, signed by Microsoft, loads the signed
// GRUB beside it, which finds its menu on the ISO 9660 side of a CD
// (/boot/grub). Booted from a USB stick's EFI partition it finds none
// there and reads grub.cfg beside itself, which finds the ISO by its
// marker file and reads the same menu.
func (b *ISO) shimBoot(m *menu, p *isoPlan) (*efiBoot, error) {
	f := b.Spec.Boot.EFIFiles
	shim, err := b.readHostFile("boot.efiFiles.shim", f.Shim, "shim-signed")
	if err != nil {
		return nil, err
	}
	mm, err := b.readHostFile("boot.efiFiles.mokManager", f.MokManager, "shim-signed")
	if err != nil {
		return nil, err
	}
	grub, err := b.readHostFile("boot.efiFiles.grub", f.Grub, "grub-efi-amd64-signed")
	if err != nil {
		return nil, err
	}
	warning, err := shimWarning(shim, grub, p.kernel, b.Spec.Kernel)
	if err != nil {
		return nil, err
	}
	early := []byte(fmt.Sprintf("search --no-floppy --set=root --file /%s\nset prefix=($root)/boot/grub\nconfigfile ($root)/%s\n", m.marker, isoShimMenu))
	e := &efiBoot{
		esp:     []espFile{{efiBootX64, shim}, {efiShimGrub, grub}, {efiMokManager, mm}, {isoGrubCfg, early}},
		warning: warning,
	}
	for _, f := range e.esp {
		e.iso = append(e.iso, input{target: f.name, data: f.data})
	}
	e.iso = append(e.iso, input{target: isoShimMenu, data: []byte(m.grubCfg())}, input{target: m.marker, data: []byte{}})
	return e, nil
}

// shimWarning says why shim would refuse what it is to run: GRUB and the
// kernel must carry a signature by the certificate shim carries (Debian's
// CA in Debian's shim); a key enrolled with MokManager is the way round.
func shimWarning(shim, grub []byte, kernelHost, kernelField string) (string, error) {
	vendor, err := secureboot.ShimVendorCert(shim)
	if err != nil {
		return "", fmt.Errorf("boot.efiFiles.shim: %w", err)
	}
	trusted := vendor.Subject.CommonName
	if ok, err := secureboot.SignedBy(grub, vendor); !ok {
		return fmt.Sprintf("boot.efiFiles.grub carries no signature by %q, which shim trusts (%v): with Secure Boot on shim refuses it", trusted, orUnsigned(err)), nil
	}
	kernel, err := os.ReadFile(kernelHost)
	if err != nil {
		return "", fmt.Errorf("kernel: %w", err)
	}
	if ok, err := secureboot.SignedBy(kernel, vendor); !ok {
		return fmt.Sprintf("kernel %s carries no signature by %q, which shim trusts (%v): it boots with Secure Boot off, or on once its signing key is enrolled with MokManager", kernelField, trusted, orUnsigned(err)), nil
	}
	return "", nil
}

// orUnsigned is why a file is not signed: not a PE image at all, or not
// signed by that key.
func orUnsigned(err error) string {
	if err != nil {
		return err.Error()
	}
	return "signed by others or not at all"
}

// systemdBoot is systemd-boot with the kernel and initrd beside it in the
// EFI image (firmware reads no ISO 9660). It loads the kernel through the
// firmware, which checks the kernel's signature against its db: with
// boot.secureBoot, both are signed with the user's key, and a kernel
// changed after signing is refused before it runs.
func (b *ISO) systemdBoot(m *menu, p *isoPlan) (*efiBoot, error) {
	s := b.Spec
	loader, err := b.readHostFile("boot.efiFiles.systemdBoot", s.Boot.EFIFiles.SystemdBoot, "systemd-boot-efi")
	if err != nil {
		return nil, err
	}
	kernel, err := os.ReadFile(p.kernel)
	if err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	initrd, err := os.ReadFile(p.initrd)
	if err != nil {
		return nil, fmt.Errorf("initrd: %w", err)
	}
	e := &efiBoot{warning: fmt.Sprintf("efiLoader %q without boot.secureBoot: nothing is signed for it, so firmware with Secure Boot on refuses the ISO", EFILoaderSystemdBoot)}
	if k := s.Boot.SecureBoot; k != nil {
		key, err := b.secureBootKey(k)
		if err != nil {
			return nil, err
		}
		if loader, err = secureboot.Sign(loader, key); err != nil {
			return nil, fmt.Errorf("boot.efiFiles.systemdBoot: %w", err)
		}
		if kernel, err = secureboot.Sign(kernel, key); err != nil {
			return nil, fmt.Errorf("kernel %s: %w", s.Kernel, err)
		}
		e.kernel, e.warning = kernel, ""
	}
	e.esp = append([]espFile{{efiBootX64, loader}, {sdLoaderConf, []byte(m.loaderConf())}}, m.loaderEntries()...)
	e.esp = append(e.esp, espFile{isoKernel, kernel}, espFile{isoInitrd, initrd})
	return e, nil
}

func (b *ISO) secureBootKey(k *SecureBootKey) (*secureboot.Key, error) {
	key, err := b.hostFile("boot.secureBoot.key", k.Key)
	if err != nil {
		return nil, err
	}
	cert, err := b.hostFile("boot.secureBoot.certificate", k.Certificate)
	if err != nil {
		return nil, err
	}
	sk, err := secureboot.LoadKey(key, cert)
	if err != nil {
		return nil, fmt.Errorf("boot.secureBoot: %w", err)
	}
	return sk, nil
}

// readHostFile reads a boot loader file the spec names; pkg is the Debian
// package that has it at the default path.
func (b *ISO) readHostFile(field, p, pkg string) ([]byte, error) {
	h, err := b.hostFile(field, p)
	if err != nil {
		return nil, fmt.Errorf("%w (install %s, or set %s)", err, pkg, field)
	}
	return os.ReadFile(h)
}

// image is the FAT file system the El Torito EFI entry points at (and the
// GPT's EFI system partition), named by its contents for reproducibility.
func (e *efiBoot) image(epoch time.Time) ([]byte, error) {
	h := sha256.New()
	files := make([]fat.File, 0, len(e.esp))
	for _, f := range e.esp {
		fmt.Fprintf(h, "%s\x00%d\x00", f.name, len(f.data))
		h.Write(f.data)
		files = append(files, fat.File{Name: f.name, Size: int64(len(f.data)), Open: opener(f.data)})
	}
	var buf bytes.Buffer
	_, err := fat.Build(&buf, files, fat.Options{VolumeLabel: "EFIBOOT", VolumeID: binary.LittleEndian.Uint32(h.Sum(nil)[:4]), ModTime: epoch})
	if err != nil {
		return nil, fmt.Errorf("efi.img: %w", err)
	}
	return buf.Bytes(), nil
}
