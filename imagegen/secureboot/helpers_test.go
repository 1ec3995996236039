package secureboot

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"debug/pe"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// buildPE makes a small PE32+ EFI application: headers, one 512-byte
// section called name holding data, then 13 bytes of trailing data (so the
// file is not a multiple of 8 bytes, as signing must pad it). A name longer
// than 8 bytes goes in a COFF string table, as GNU ld writes .vendor_cert.
func buildPE(name string, data []byte) []byte {
	le := binary.LittleEndian
	b := make([]byte, 0x400)
	copy(b, "MZ")
	le.PutUint32(b[0x3c:], 0x40)
	copy(b[0x40:], "PE\x00\x00")
	coff := b[0x44:]
	le.PutUint16(coff[0:], 0x8664)  // x86-64
	le.PutUint16(coff[2:], 1)       // sections
	le.PutUint16(coff[16:], 240)    // SizeOfOptionalHeader
	le.PutUint16(coff[18:], 0x0206) // executable, no line numbers, no symbols
	opt := b[0x58:]
	le.PutUint16(opt[0:], 0x20b) // PE32+
	le.PutUint32(opt[4:], 0x200) // SizeOfCode
	le.PutUint32(opt[16:], 0x1000)
	le.PutUint32(opt[20:], 0x1000)
	le.PutUint32(opt[32:], 0x1000) // SectionAlignment
	le.PutUint32(opt[36:], 0x200)  // FileAlignment
	le.PutUint32(opt[56:], 0x2000) // SizeOfImage
	le.PutUint32(opt[60:], 0x200)  // SizeOfHeaders
	le.PutUint16(opt[68:], 10)     // EFI application
	le.PutUint32(opt[108:], 16)    // NumberOfRvaAndSizes
	sec := b[0x58+240:]
	le.PutUint32(sec[8:], 0x200)
	le.PutUint32(sec[12:], 0x1000)
	le.PutUint32(sec[16:], 0x200)
	le.PutUint32(sec[20:], 0x200)
	le.PutUint32(sec[36:], 0x60000020) // code, executable, readable
	copy(b[0x200:0x400], data)
	tail := []byte("trailing data")
	if len(name) <= 8 {
		copy(sec, name)
		return append(b, tail...)
	}
	copy(sec, "/4")
	le.PutUint32(coff[8:], uint32(len(b)+len(tail))) // PointerToSymbolTable, 0 symbols
	strtab := le.AppendUint32(nil, uint32(4+len(name)+1))
	strtab = append(append(strtab, name...), 0)
	return append(append(b, tail...), strtab...)
}

// codeOffset is the file offset of a byte in the middle of pe's first
// section, which every signature covers.
func codeOffset(t *testing.T, image []byte) int {
	f, err := pe.NewFile(bytes.NewReader(image))
	require.NoError(t, err)
	for _, s := range f.Sections {
		if s.Size > 0 {
			return int(s.Offset + s.Size/2)
		}
	}
	t.Fatal("no section with data")
	return 0
}

type testCA struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// newCert makes an RSA key and a certificate for it, issued by parent (or
// self-signed if parent is nil). Keys are 1024 bits to keep tests fast.
func newCert(t testing.TB, cn string, isCA bool, parent *testCA) *testCA {
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC),
		BasicConstraintsValid: true,
		IsCA:                  isCA,
	}
	issuer, signer := tmpl, crypto.Signer(key)
	if parent != nil {
		issuer, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, signer)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testCA{key: key, cert: cert}
}

func (c *testCA) signingKey() *Key { return &Key{Signer: c.key, Cert: c.cert} }

func writePEM(t *testing.T, path, typ string, der []byte) string {
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
	return path
}

// debianFile reads one of the Debian files the tests use, or skips.
func debianFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("%s not installed: run scripts/deps.sh", path)
	}
	require.NoError(t, err)
	return b
}

const (
	shimPath     = "/usr/lib/shim/shimx64.efi.signed"
	mokPath      = "/usr/lib/shim/mmx64.efi.signed"
	grubPath     = "/usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed"
	sdBootPath   = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"
	kernelPath   = "/var/cache/nixlive/kernel/vmlinuz"
	snakeoilKey  = "/usr/share/ovmf/PkKek-1-snakeoil.key"
	snakeoilCert = "/usr/share/ovmf/PkKek-1-snakeoil.pem"
)

// snakeoil loads Debian's OVMF test key. Debian ships it encrypted (the
// password is "snakeoil") and LoadKey reads plain keys only, so openssl
// decrypts it first.
func snakeoil(t *testing.T) *Key {
	t.Helper()
	debianFile(t, snakeoilKey)
	debianFile(t, snakeoilCert)
	tool(t, "openssl")
	plain := filepath.Join(t.TempDir(), "snakeoil.key")
	out, err := exec.Command("openssl", "pkey", "-in", snakeoilKey, "-passin", "pass:snakeoil", "-out", plain).CombinedOutput()
	require.NoError(t, err, "%s", out)
	k, err := LoadKey(plain, snakeoilCert)
	require.NoError(t, err)
	return k
}

func tool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed: run scripts/deps.sh", name)
	}
}

// sbverify runs sbsigntool's sbverify, the independent reader.
func sbverify(t *testing.T, args ...string) (string, error) {
	t.Helper()
	tool(t, "sbverify")
	out, err := exec.Command("sbverify", args...).CombinedOutput()
	return string(out), err
}

func writeTemp(t *testing.T, name string, b []byte) string {
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, b, 0o600))
	return p
}

func sbverifyTool() (string, error) { return exec.LookPath("sbverify") }
