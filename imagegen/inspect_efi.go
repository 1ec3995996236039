package imagegen

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/nixlive/nixlive/imagegen/fat"
	"github.com/nixlive/nixlive/imagegen/iso9660"
	"github.com/nixlive/nixlive/imagegen/secureboot"
)

// maxEFIBinary bounds what inspect reads of one file to look for
// signatures: kernels are tens of MiB, an image may claim anything.
const maxEFIBinary = 256 << 20

// efiBinary is a PE image found on the ISO or in its EFI image.
type efiBinary struct {
	where string // "ISO" or the EFI image's path
	path  string
	data  []byte
}

// inspectSecureBoot prints every EFI binary on the ISO 9660 side and in
// the El Torito EFI image with its signers, then whether the kernel is
// signed, by whom, and whether the ISO's shim trusts that signer.
func inspectSecureBoot(w io.Writer, r io.ReaderAt, im *iso9660.Image, entries []iso9660.Entry) error {
	var bins []efiBinary
	var unreadable []string // EFI images that are not FAT file systems
	shimSeen := false
	for _, e := range entries {
		if !e.Mode.IsRegular() || e.Size < 2 || e.Size > maxEFIBinary || e.Extents > 1 {
			continue
		}
		efiImage := isEFIImage(im, e)
		// Only PE images and the EFI image are read whole; the store
		// image, the kernel's neighbours and the rest are not.
		magic := make([]byte, 2)
		if _, err := r.ReadAt(magic, int64(e.LBA)*2048); err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
		if !efiImage && string(magic) != "MZ" {
			continue
		}
		data := make([]byte, e.Size)
		if _, err := r.ReadAt(data, int64(e.LBA)*2048); err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
		name := strings.TrimPrefix(e.Path, "/")
		if efiImage {
			fb, err := fatBinaries(name, data)
			if err != nil {
				unreadable = append(unreadable, err.Error())
			}
			bins = append(bins, fb...)
		}
		if bytes.HasPrefix(data, []byte("MZ")) {
			bins = append(bins, efiBinary{"ISO", name, data})
		}
	}
	for _, u := range unreadable {
		fmt.Fprintf(w, "EFI image:   %s\n", u)
	}
	if len(bins) == 0 {
		fmt.Fprintln(w, "EFI binaries: none")
		return nil
	}
	fmt.Fprintln(w, "EFI binaries: signer (issuer)")
	var kernel *efiBinary
	for i, b := range bins {
		sigs, err := secureboot.Signatures(b.data)
		desc := describeSignatures(sigs, err)
		fmt.Fprintf(w, "  %-12s %-24s %s\n", b.where, b.path, desc)
		if strings.EqualFold(b.path, efiBootX64) && !shimSeen {
			if c, err := secureboot.ShimVendorCert(b.data); err == nil {
				shimSeen = true
				fmt.Fprintf(w, "  %-12s %-24s is shim; it trusts %q besides the firmware's db\n", "", "", c.Subject.CommonName)
			}
		}
		if b.path == isoKernel && kernel == nil {
			kernel = &bins[i]
		}
	}
	if kernel == nil {
		fmt.Fprintf(w, "kernel:      no /%s\n", isoKernel)
		return nil
	}
	sigs, err := secureboot.Signatures(kernel.data)
	if err != nil || len(sigs) == 0 {
		fmt.Fprintf(w, "kernel:      /%s is unsigned: it boots only with Secure Boot off\n", isoKernel)
		return nil
	}
	fmt.Fprintf(w, "kernel:      /%s signed by %s\n", isoKernel, describeSignatures(sigs, nil))
	return nil
}

// isEFIImage reports whether e is the El Torito EFI entry's image.
func isEFIImage(im *iso9660.Image, e iso9660.Entry) bool {
	for _, b := range im.Boot {
		if b.Platform == iso9660.EFI && b.LBA == e.LBA {
			return true
		}
	}
	return false
}

// fatBinaries are the PE images in a FAT image.
func fatBinaries(name string, img []byte) ([]efiBinary, error) {
	fs, err := fat.Open(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var bins []efiBinary
	err = fs.Walk(func(e fat.ReadEntry) error {
		if e.Dir || e.Size < 2 {
			return nil
		}
		data, err := fs.ReadFile(e.Path)
		if err != nil {
			return err
		}
		if bytes.HasPrefix(data, []byte("MZ")) {
			bins = append(bins, efiBinary{name, e.Path, data})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return bins, nil
}

func describeSignatures(sigs []secureboot.Signature, err error) string {
	switch {
	case err != nil:
		return "not a PE image: " + err.Error()
	case len(sigs) == 0:
		return "unsigned"
	}
	var parts []string
	for _, s := range sigs {
		parts = append(parts, fmt.Sprintf("%s (%s)", s.Signer, s.Issuer))
	}
	return strings.Join(parts, "; ")
}
