package secureboot

import (
	"bytes"
	"crypto/x509"
	"debug/pe"
	"encoding/binary"
	"fmt"
)

// ShimVendorCert returns the certificate shim trusts besides the
// firmware's db: the DER certificate in shim's .vendor_cert section. The
// section starts with four little-endian uint32s (authorized size,
// deauthorized size, authorized offset, deauthorized offset; offsets from
// the section start). A shim built with an EFI signature list (vendor_db)
// instead of one certificate is not supported.
func ShimVendorCert(shim []byte) (*x509.Certificate, error) {
	f, err := pe.NewFile(bytes.NewReader(shim))
	if err != nil {
		return nil, fmt.Errorf("secureboot: shim vendor certificate: not a PE/COFF image: %w", err)
	}
	defer f.Close()
	sec := f.Section(".vendor_cert")
	if sec == nil {
		return nil, fmt.Errorf("secureboot: shim vendor certificate: no .vendor_cert section (not a shim?)")
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("secureboot: shim vendor certificate: reading .vendor_cert: %w", err)
	}
	if len(data) < 16 {
		return nil, fmt.Errorf("secureboot: shim vendor certificate: .vendor_cert is %d bytes, too short for its header", len(data))
	}
	size := uint64(binary.LittleEndian.Uint32(data[0:]))
	off := uint64(binary.LittleEndian.Uint32(data[8:]))
	if size == 0 {
		return nil, fmt.Errorf("secureboot: shim vendor certificate: .vendor_cert holds no certificate")
	}
	if off+size > uint64(len(data)) {
		return nil, fmt.Errorf("secureboot: shim vendor certificate: certificate (%d bytes at %d) lies outside the %d-byte .vendor_cert section", size, off, len(data))
	}
	cert, err := x509.ParseCertificate(data[off : off+size])
	if err != nil {
		return nil, fmt.Errorf("secureboot: shim vendor certificate: .vendor_cert does not hold a DER certificate: %w", err)
	}
	return cert, nil
}
