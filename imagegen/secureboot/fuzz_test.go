package secureboot

import (
	"encoding/binary"
	"testing"
)

// FuzzSignatures: the readers take arbitrary bytes (a file named on the
// command line, a downloaded kernel) and must answer or fail, never panic.
// The seeds are small signed images, so mutations reach the certificate
// table and the PKCS#7 inside it.
func FuzzSignatures(f *testing.F) {
	ca := newCert(f, "fuzz", true, nil)
	leaf := newCert(f, "fuzz leaf", false, ca)
	unsigned := buildPE(".text", []byte("code"))
	once, err := Sign(unsigned, leaf.signingKey())
	if err != nil {
		f.Fatal(err)
	}
	twice, err := Sign(once, ca.signingKey())
	if err != nil {
		f.Fatal(err)
	}
	vendor := binary.LittleEndian.AppendUint32(nil, uint32(len(ca.cert.Raw)))
	vendor = append(vendor, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0)
	for _, seed := range [][]byte{nil, []byte("MZ"), unsigned, once, twice, buildPE(".vendor_cert", append(vendor, ca.cert.Raw...))} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Signatures(b)
		_, _ = SignedBy(b, ca.cert)
		_, _ = ShimVendorCert(b)
	})
}
