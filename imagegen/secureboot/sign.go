package secureboot

import (
	"fmt"

	"github.com/foxboron/go-uefi/pkcs7"
)

// Sign returns pe with an Authenticode signature by k appended to the
// signatures it already has, so a kernel signed by its distribution keeps
// that signature. The same pe and k give the same bytes: the signature has
// no signing time (pkcs7.NoAttr) and RSA PKCS#1 v1.5 takes no randomness.
// The result's PE checksum is recomputed; pe itself is not modified.
func Sign(pe []byte, k *Key) ([]byte, error) {
	if err := k.check(); err != nil {
		return nil, fmt.Errorf("secureboot: sign: %w", err)
	}
	img, err := parseImage(pe)
	if err != nil {
		return nil, fmt.Errorf("secureboot: sign: %w", err)
	}
	// go-uefi appends the new entry right after the table's last byte and
	// pads the file to 8 bytes before a new table; both must already be
	// aligned for readers to find the new entry and for the table not to
	// move away from where the header says it is.
	if d := img.certDir; d.Size != 0 && (d.VirtualAddress%8 != 0 || d.Size%8 != 0) {
		return nil, fmt.Errorf("secureboot: sign: the existing certificate table (%d bytes at %d) is not 8-byte aligned, so no signature can be appended to it", d.Size, d.VirtualAddress)
	}
	if _, err := winCerts(img.certs); err != nil {
		return nil, fmt.Errorf("secureboot: sign: existing certificate table: %w", err)
	}
	if _, err := img.bin.Sign(k.Signer, k.Cert, pkcs7.NoAttr()); err != nil {
		return nil, fmt.Errorf("secureboot: sign: %w", err)
	}
	out := img.bin.Bytes()
	setChecksum(out, img.checksum)

	// Our own reader is the check that go-uefi laid the file out as the
	// header says: a signature firmware cannot find is worse than an error.
	ok, err := SignedBy(out, k.Cert)
	if err != nil {
		return nil, fmt.Errorf("secureboot: sign: reading back the signed image: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("secureboot: sign: the signed image does not verify against %q", subjectName(k.Cert))
	}
	return out, nil
}
