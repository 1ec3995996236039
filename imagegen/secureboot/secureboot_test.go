package secureboot

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/foxboron/go-uefi/pkcs7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSignThrowawayKey(t *testing.T) {
	ca := newCert(t, "nixlive test", true, nil)
	dir := t.TempDir()
	pk8, err := x509.MarshalPKCS8PrivateKey(ca.key)
	require.NoError(t, err)
	keyFile := writePEM(t, filepath.Join(dir, "db.key"), "PRIVATE KEY", pk8)
	certFile := writeTemp(t, "db.der", ca.cert.Raw) // DER
	k, err := LoadKey(keyFile, certFile)
	require.NoError(t, err)

	unsigned := buildPE(".text", bytes.Repeat([]byte{0xc3}, 512))
	orig := bytes.Clone(unsigned)
	sigs, err := Signatures(unsigned)
	require.NoError(t, err)
	assert.Empty(t, sigs)
	assert.NotNil(t, sigs, "none is an empty slice")
	ok, err := SignedBy(unsigned, ca.cert)
	require.NoError(t, err)
	assert.False(t, ok, "unsigned")

	signed, err := Sign(unsigned, k)
	require.NoError(t, err)
	assert.Equal(t, orig, unsigned, "Sign must not modify its input")
	assert.Zero(t, len(signed)%8, "signed image is padded to 8 bytes")
	assert.Equal(t, orig[0x200:], signed[0x200:len(orig)], "the sections and trailing data are kept")
	assert.Equal(t, []byte{0, 0, 0}, signed[len(orig):len(orig)+3], "then padding to 8 bytes, then the certificate table")
	again, err := Sign(unsigned, k)
	require.NoError(t, err)
	assert.Equal(t, signed, again, "signing is deterministic")

	sigs, err = Signatures(signed)
	require.NoError(t, err)
	assert.Equal(t, []Signature{{Signer: "nixlive test", Issuer: "nixlive test"}}, sigs)
	ok, err = SignedBy(signed, ca.cert)
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = SignedBy(signed, newCert(t, "someone else", true, nil).cert)
	require.NoError(t, err)
	assert.False(t, ok, "another certificate")
	assertChecksum(t, signed)

	// A second signature is appended; both verify.
	other := newCert(t, "second signer", false, nil)
	twice, err := Sign(signed, other.signingKey())
	require.NoError(t, err)
	sigs, err = Signatures(twice)
	require.NoError(t, err)
	assert.Equal(t, []Signature{{"nixlive test", "nixlive test"}, {"second signer", "second signer"}}, sigs)
	for _, c := range []*x509.Certificate{ca.cert, other.cert} {
		ok, err = SignedBy(twice, c)
		require.NoError(t, err)
		assert.True(t, ok, c.Subject.CommonName)
	}

	// One byte of code changed: signed by no one.
	tampered := bytes.Clone(twice)
	tampered[codeOffset(t, tampered)] ^= 1
	for _, c := range []*x509.Certificate{ca.cert, other.cert} {
		ok, err = SignedBy(tampered, c)
		require.NoError(t, err)
		assert.False(t, ok, c.Subject.CommonName)
	}

	if _, err := sbverifyTool(); err == nil {
		caPEM := writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.cert.Raw)
		out, err := sbverify(t, "--cert", caPEM, writeTemp(t, "signed.efi", twice))
		assert.NoError(t, err, out)
		out, err = sbverify(t, "--cert", caPEM, writeTemp(t, "tampered.efi", tampered))
		assert.Error(t, err, out)
	}
}

// assertChecksum checks the PE checksum as Microsoft's CheckSumMappedFile
// computes it, independently of setChecksum.
func assertChecksum(t *testing.T, image []byte) {
	t.Helper()
	off := int(binary.LittleEndian.Uint32(image[0x3c:])) + 24 + 64
	want := binary.LittleEndian.Uint32(image[off:])
	b := bytes.Clone(image)
	copy(b[off:], []byte{0, 0, 0, 0})
	if len(b)%2 == 1 {
		b = append(b, 0)
	}
	var sum uint32
	for i := 0; i < len(b); i += 2 {
		sum += uint32(binary.LittleEndian.Uint16(b[i:]))
		sum = sum&0xffff + sum>>16
	}
	assert.Equal(t, sum+uint32(len(image)), want, "PE checksum")
}

func TestSignedByChain(t *testing.T) {
	root := newCert(t, "root", true, nil)
	inter := newCert(t, "intermediate", true, root)
	leaf := newCert(t, "leaf", false, inter)
	notCA := newCert(t, "not a CA", false, root)
	underNotCA := newCert(t, "under a non-CA", false, notCA)

	// Sign embeds only the signer; go-uefi can embed the intermediate too.
	signWith := func(signer, extra *testCA) []byte {
		img, err := parseImage(buildPE(".text", []byte("code")))
		require.NoError(t, err)
		_, err = img.bin.Sign(signer.key, signer.cert, pkcs7.NoAttr(), pkcs7.WithAdditionalCerts([]*x509.Certificate{extra.cert}))
		require.NoError(t, err)
		return img.bin.Bytes()
	}
	chained := signWith(leaf, inter)
	for _, tc := range []struct {
		image []byte
		cert  *testCA
		want  bool
	}{
		{chained, leaf, true},
		{chained, inter, true},
		{chained, root, true},
		{chained, notCA, false},
		{signWith(underNotCA, notCA), root, false}, // an issuer must be a CA
		{signWith(underNotCA, notCA), underNotCA, true},
	} {
		ok, err := SignedBy(tc.image, tc.cert.cert)
		require.NoError(t, err)
		assert.Equal(t, tc.want, ok, tc.cert.cert.Subject.CommonName)
	}

	// Sign itself: the intermediate is not embedded, so the root is out of
	// reach, but the intermediate that issued the signer is not.
	signed, err := Sign(buildPE(".text", []byte("code")), leaf.signingKey())
	require.NoError(t, err)
	for c, want := range map[*testCA]bool{leaf: true, inter: true, root: false} {
		ok, err := SignedBy(signed, c.cert)
		require.NoError(t, err)
		assert.Equal(t, want, ok, c.cert.Subject.CommonName)
	}
}

// Signatures with authenticated attributes (sbsign's, Microsoft's, and
// go-uefi's without NoAttr) verify too: the attributes are what is signed.
func TestSignedByAuthenticatedAttributes(t *testing.T) {
	ca := newCert(t, "attrs", true, nil)
	img, err := parseImage(buildPE(".text", []byte("code")))
	require.NoError(t, err)
	_, err = img.bin.Sign(ca.key, ca.cert)
	require.NoError(t, err)
	signed := img.bin.Bytes()
	ok, err := SignedBy(signed, ca.cert)
	require.NoError(t, err)
	assert.True(t, ok)
	signed[codeOffset(t, signed)] ^= 1
	ok, err = SignedBy(signed, ca.cert)
	require.NoError(t, err)
	assert.False(t, ok)
}

// A signature need not embed its signer's certificate (pkcs7.NoCerts):
// Signatures names what it can, SignedBy uses the certificate it is given.
func TestSignatureWithoutCertificate(t *testing.T) {
	ca := newCert(t, "bare", true, nil)
	img, err := parseImage(buildPE(".text", []byte("code")))
	require.NoError(t, err)
	_, err = img.bin.Sign(ca.key, ca.cert, pkcs7.NoAttr(), pkcs7.NoCerts())
	require.NoError(t, err)
	signed := img.bin.Bytes()
	sigs, err := Signatures(signed)
	require.NoError(t, err)
	assert.Equal(t, []Signature{{Signer: fmt.Sprintf("serial %x (certificate not embedded)", ca.cert.SerialNumber), Issuer: "bare"}}, sigs)
	ok, err := SignedBy(signed, ca.cert)
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = SignedBy(signed, newCert(t, "bare", true, nil).cert)
	require.NoError(t, err)
	assert.False(t, ok, "same name, another key")
}

func TestNotPE(t *testing.T) {
	k := newCert(t, "k", true, nil)
	elf := append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 200)...)
	truncated := buildPE(".text", nil)[:0x300]
	for name, b := range map[string][]byte{"empty": nil, "ELF": elf, "text": []byte("hello, world"), "truncated": truncated} {
		_, err := Sign(b, k.signingKey())
		assert.ErrorContains(t, err, "secureboot: sign: ", name)
		_, err = Signatures(b)
		assert.Error(t, err, name)
		_, err = SignedBy(b, k.cert)
		assert.Error(t, err, name)
		_, err = ShimVendorCert(b)
		assert.Error(t, err, name)
	}
	_, err := Sign(elf, k.signingKey())
	assert.ErrorContains(t, err, "not a PE/COFF image")
	_, err = Sign(truncated, k.signingKey())
	assert.ErrorContains(t, err, "ends past the")
}

func TestSignRefusesKey(t *testing.T) {
	img := buildPE(".text", nil)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	a, b := newCert(t, "a", true, nil), newCert(t, "b", true, nil)
	for name, tc := range map[string]struct {
		k    *Key
		want string
	}{
		"nil":      {nil, "key or certificate missing"},
		"no cert":  {&Key{Signer: a.key}, "key or certificate missing"},
		"ECDSA":    {&Key{Signer: ec, Cert: a.cert}, "ECDSA key: UEFI firmware verifies RSA signatures only"},
		"mismatch": {&Key{Signer: a.key, Cert: b.cert}, `key does not match the certificate "b"`},
	} {
		_, err := Sign(img, tc.k)
		assert.ErrorContains(t, err, "secureboot: sign: "+tc.want, name)
	}
}

func TestLoadKeyErrors(t *testing.T) {
	dir := t.TempDir()
	a, b := newCert(t, "a", true, nil), newCert(t, "b", true, nil)
	aKey := writePEM(t, filepath.Join(dir, "a.key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(a.key))
	aCert := writePEM(t, filepath.Join(dir, "a.pem"), "CERTIFICATE", a.cert.Raw)
	bCert := writePEM(t, filepath.Join(dir, "b.pem"), "CERTIFICATE", b.cert.Raw)

	k, err := LoadKey(aKey, aCert) // PKCS#1, PEM certificate
	require.NoError(t, err)
	assert.Equal(t, a.cert.Raw, k.Cert.Raw)

	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ecPKCS8, err := x509.MarshalPKCS8PrivateKey(ec)
	require.NoError(t, err)
	ecSEC1, err := x509.MarshalECPrivateKey(ec)
	require.NoError(t, err)
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	edPKCS8, err := x509.MarshalPKCS8PrivateKey(edKey)
	require.NoError(t, err)
	garbage := writeTemp(t, "garbage", []byte("-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n"))
	missing := filepath.Join(dir, "missing.key")

	for name, tc := range map[string]struct{ key, cert, want string }{
		"missing key":  {missing, aCert, "secureboot: key: open " + missing + ": no such file"},
		"missing cert": {aKey, missing, "secureboot: certificate: open " + missing + ": no such file"},
		"garbage key":  {garbage, aCert, "secureboot: key " + garbage + ": no PEM private key in it"},
		"garbage cert": {aKey, garbage, "secureboot: certificate " + garbage + ": neither a PEM nor a DER certificate"},
		"PEM not cert": {aKey, aKey, "secureboot: certificate " + aKey + ": no PEM CERTIFICATE block in it"},
		"not DER":      {aKey, writeTemp(t, "cert.der", []byte("\x30\x03\x02\x01\x01")), "neither a PEM nor a DER certificate"},
		"bad PKCS#8":   {writePEM(t, filepath.Join(dir, "bad.key"), "PRIVATE KEY", []byte("\x30\x00")), aCert, "bad.key: PRIVATE KEY: asn1: syntax error"},
		"EC PKCS#8":    {writePEM(t, filepath.Join(dir, "ec8.key"), "PRIVATE KEY", ecPKCS8), aCert, "ECDSA key: UEFI firmware verifies RSA signatures only"},
		"EC SEC1":      {writePEM(t, filepath.Join(dir, "ec.key"), "EC PRIVATE KEY", ecSEC1), aCert, "ec.key: ECDSA key: UEFI firmware verifies RSA"},
		"Ed25519":      {writePEM(t, filepath.Join(dir, "ed.key"), "PRIVATE KEY", edPKCS8), aCert, "Ed25519 key: UEFI firmware verifies RSA"},
		"encrypted":    {writePEM(t, filepath.Join(dir, "enc.key"), "ENCRYPTED PRIVATE KEY", []byte("x")), aCert, "enc.key: key is encrypted"},
		"mismatch":     {aKey, bCert, "secureboot: key " + aKey + ", certificate " + bCert + `: key does not match the certificate "b"`},
	} {
		_, err := LoadKey(tc.key, tc.cert)
		assert.ErrorContains(t, err, tc.want, name)
	}
}

func TestShimVendorCertSynthetic(t *testing.T) {
	ca := newCert(t, "vendor", true, nil)
	section := func(authSize, authOff uint32, payload []byte) []byte {
		le := binary.LittleEndian
		b := le.AppendUint32(nil, authSize)
		b = le.AppendUint32(b, 0)
		b = le.AppendUint32(b, authOff)
		b = le.AppendUint32(b, authOff+authSize)
		return append(b, payload...)
	}
	good := buildPE(".vendor_cert", section(uint32(len(ca.cert.Raw)), 16, ca.cert.Raw))
	c, err := ShimVendorCert(good)
	require.NoError(t, err)
	assert.Equal(t, ca.cert.Raw, c.Raw)

	for name, tc := range map[string]struct {
		image []byte
		want  string
	}{
		"no section":  {buildPE(".text", nil), "no .vendor_cert section"},
		"empty":       {buildPE(".vendor_cert", section(0, 16, nil)), ".vendor_cert holds no certificate"},
		"outside":     {buildPE(".vendor_cert", section(4000, 16, nil)), "lies outside the 512-byte .vendor_cert section"},
		"not a cert":  {buildPE(".vendor_cert", section(8, 16, []byte("notacert"))), "does not hold a DER certificate"},
		"not a PE":    {[]byte("MZ"), "not a PE/COFF image"},
		"no vendor":   {buildPE(".vendorX", nil), "no .vendor_cert section"},
		"wrong field": {buildPE(".vendor_cert", section(uint32(len(ca.cert.Raw)), 17, ca.cert.Raw)), "does not hold a DER certificate"},
	} {
		_, err := ShimVendorCert(tc.image)
		assert.ErrorContains(t, err, "secureboot: shim vendor certificate: ", name)
		assert.ErrorContains(t, err, tc.want, name)
	}
}
