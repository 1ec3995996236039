package secureboot

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/foxboron/go-uefi/authenticode"
	"github.com/foxboron/go-uefi/efi/signature"
)

// image is a PE/COFF image whose layout has been checked, so go-uefi's
// parser can be trusted with it.
type image struct {
	bin      *authenticode.PECOFFBinary
	certDir  pe.DataDirectory // the Certificate Table data directory entry
	certs    []byte           // the attribute certificate table itself
	checksum int64            // file offset of the optional header's CheckSum
}

// parseImage checks what go-uefi's authenticode.Parse takes for granted:
// that the headers, the sections and the certificate table lie inside the
// file, and that the certificate table is at its end. Parse panics or
// writes a truncated image when they do not.
func parseImage(b []byte) (*image, error) {
	if len(b) < 0x40 || b[0] != 'M' || b[1] != 'Z' {
		return nil, errors.New("not a PE/COFF image: no MZ header")
	}
	f, err := pe.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("not a PE/COFF image: %w", err)
	}
	defer f.Close()

	// Offsets inside the optional header: CheckSum is at 64 in both
	// formats; the Certificate Table entry is data directory 4.
	var headers int64
	var dirs uint32
	var dir pe.DataDirectory
	var certEntry int64
	switch oh := f.OptionalHeader.(type) {
	case *pe.OptionalHeader32:
		headers, dirs, certEntry = int64(oh.SizeOfHeaders), oh.NumberOfRvaAndSizes, 128
		if dirs > 4 {
			dir = oh.DataDirectory[4]
		}
	case *pe.OptionalHeader64:
		headers, dirs, certEntry = int64(oh.SizeOfHeaders), oh.NumberOfRvaAndSizes, 144
		if dirs > 4 {
			dir = oh.DataDirectory[4]
		}
	default:
		return nil, errors.New("not a PE/COFF image: no optional header")
	}
	if dirs <= 4 {
		return nil, fmt.Errorf("malformed PE/COFF image: %d data directories, no Certificate Table entry", dirs)
	}
	opt := int64(binary.LittleEndian.Uint32(b[0x3c:])) + 24 // after "PE\0\0" and the COFF header
	size := int64(len(b))
	if certEntry+8 > int64(f.FileHeader.SizeOfOptionalHeader) || opt+certEntry+8 > headers || headers > size {
		return nil, fmt.Errorf("malformed PE/COFF image: headers (%d bytes) do not hold the optional header or do not fit the %d-byte file", headers, size)
	}

	// Authenticode hashes the headers, the sections, then the file from the
	// sum of their sizes to the certificate table.
	hashed := headers
	for _, s := range f.Sections {
		if s.Size == 0 {
			continue
		}
		if int64(s.Offset)+int64(s.Size) > size {
			return nil, fmt.Errorf("malformed PE/COFF image: section %q (%d bytes at %d) ends past the %d-byte file", s.Name, s.Size, s.Offset, size)
		}
		hashed += int64(s.Size)
	}
	if hashed > size {
		return nil, fmt.Errorf("malformed PE/COFF image: headers and sections add up to %d bytes, more than the %d-byte file", hashed, size)
	}
	if dir.Size != 0 && (int64(dir.VirtualAddress) < hashed || int64(dir.VirtualAddress)+int64(dir.Size) != size) {
		return nil, fmt.Errorf("malformed PE/COFF image: certificate table (%d bytes at %d) is not at the end of the %d-byte file after the sections", dir.Size, dir.VirtualAddress, size)
	}

	bin, err := authenticode.Parse(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("not a PE/COFF image: %w", err)
	}
	img := &image{bin: bin, certDir: dir, checksum: opt + 64}
	if dir.Size != 0 {
		img.certs = b[dir.VirtualAddress:]
	}
	return img, nil
}

// winCerts splits an attribute certificate table into the PKCS#7
// SignedData of its entries, in order. go-uefi's own reader trusts each
// entry's length (a length under 8 makes it allocate 4 GiB).
func winCerts(table []byte) ([][]byte, error) {
	const hdr = signature.SizeofWINCertificate
	var out [][]byte
	for off := 0; len(table)-off >= hdr; {
		n := uint64(binary.LittleEndian.Uint32(table[off:]))
		if n == 0 && allZero(table[off:]) {
			break // padding after the last entry
		}
		i := len(out) + 1
		if n < hdr || n > uint64(len(table)-off) {
			return nil, fmt.Errorf("signature %d: length %d does not fit the %d bytes left in the certificate table", i, n, len(table)-off)
		}
		if rev := binary.LittleEndian.Uint16(table[off+4:]); rev != signature.WIN_CERTIFICATE_REVISION {
			return nil, fmt.Errorf("signature %d: WIN_CERTIFICATE revision %#x, want %#x", i, rev, signature.WIN_CERTIFICATE_REVISION)
		}
		if typ := signature.WINCertType(binary.LittleEndian.Uint16(table[off+6:])); typ != signature.WIN_CERT_TYPE_PKCS_SIGNED_DATA {
			return nil, fmt.Errorf("signature %d: WIN_CERTIFICATE type %#x is not PKCS#7 signed data", i, uint16(typ))
		}
		out = append(out, table[off+hdr:off+int(n)])
		off += int((n + 7) &^ 7) // entries are 8-byte aligned
	}
	return out, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// setChecksum writes the PE checksum of b into b at off: the 16-bit
// one's-complement-style sum of the file (with the field itself as zero),
// plus the file's length.
func setChecksum(b []byte, off int64) {
	binary.LittleEndian.PutUint32(b[off:], 0)
	var sum uint64
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint64(binary.LittleEndian.Uint16(b[i:]))
		sum = (sum & 0xffff) + (sum >> 16)
	}
	if len(b)%2 == 1 {
		sum += uint64(b[len(b)-1])
		sum = (sum & 0xffff) + (sum >> 16)
	}
	binary.LittleEndian.PutUint32(b[off:], uint32(sum+uint64(len(b))))
}
