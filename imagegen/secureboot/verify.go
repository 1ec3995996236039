package secureboot

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/foxboron/go-uefi/authenticode"
	"github.com/foxboron/go-uefi/pkcs7"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Signature describes one signature of a PE image: the signer
// certificate's subject CN (or its full subject if it has no CN) and its
// issuer's CN (likewise).
type Signature struct {
	Signer, Issuer string
}

// Signatures lists the signatures of pe in order, as sbverify --list does;
// an unsigned image has none. It does not verify them (see SignedBy).
func Signatures(pe []byte) ([]Signature, error) {
	img, err := parseImage(pe)
	if err != nil {
		return nil, fmt.Errorf("secureboot: signatures: %w", err)
	}
	entries, err := winCerts(img.certs)
	if err != nil {
		return nil, fmt.Errorf("secureboot: signatures: %w", err)
	}
	out := []Signature{}
	for i, e := range entries {
		s, err := describe(e)
		if err != nil {
			return nil, fmt.Errorf("secureboot: signatures: signature %d: %w", i+1, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func describe(der []byte) (Signature, error) {
	auth, err := authenticode.ParseAuthenticode(der)
	if err != nil {
		return Signature{}, err
	}
	sis := signerInfos(auth.Pkcs)
	if len(sis) == 0 {
		return Signature{}, errors.New("no signer")
	}
	si := sis[0] // Authenticode allows exactly one
	if c := si.certIn(auth.Pkcs.Certs); len(c) > 0 {
		return Signature{Signer: subjectName(c[0]), Issuer: nameOf(c[0].Issuer)}, nil
	}
	// The signer's certificate is not embedded: say what the signature
	// itself says of it.
	var rdn pkix.RDNSequence
	var issuer pkix.Name
	if rest, err := asn1.Unmarshal(si.issuer, &rdn); err == nil && len(rest) == 0 {
		issuer.FillFromRDNSequence(&rdn)
	}
	return Signature{Signer: fmt.Sprintf("serial %x (certificate not embedded)", si.serial), Issuer: nameOf(issuer)}, nil
}

// SignedBy reports whether some signature of pe verifies against cert:
// made by cert's key, or by a certificate that a chain of certificates
// embedded in the signature leads up to cert (as Debian's kernel: signed by
// "Debian Secure Boot Signer 2022 - linux", issued by the "Debian Secure
// Boot CA" that shim embeds). The signed digest must be the image's: a
// modified image is signed by no one. Validity dates are not checked, as
// firmware does not. A signature that does not parse or is not SHA-256
// does not count.
func SignedBy(pe []byte, cert *x509.Certificate) (bool, error) {
	if cert == nil {
		return false, errors.New("secureboot: signed by: no certificate")
	}
	img, err := parseImage(pe)
	if err != nil {
		return false, fmt.Errorf("secureboot: signed by: %w", err)
	}
	entries, err := winCerts(img.certs)
	if err != nil {
		return false, fmt.Errorf("secureboot: signed by: %w", err)
	}
	if len(entries) == 0 {
		return false, nil
	}
	digest := img.bin.Hash(crypto.SHA256)
	if digest == nil {
		return false, errors.New("secureboot: signed by: cannot read the image to hash it")
	}
	for _, e := range entries {
		if verifies(e, digest, cert) {
			return true, nil
		}
	}
	return false, nil
}

// verifies reports whether one Authenticode signature covers digest and
// chains to trusted.
func verifies(der, digest []byte, trusted *x509.Certificate) bool {
	auth, err := authenticode.ParseAuthenticode(der)
	if err != nil || !auth.Algid.Algorithm.Equal(pkcs7.OIDDigestAlgorithmSHA256) || !bytes.Equal(auth.Digest, digest) {
		return false
	}
	// The content signed is the SpcIndirectDataContent's value, without
	// its tag and length (RFC 2315 9.3), as EDK2 and shim hash it.
	s := cryptobyte.String(auth.Pkcs.ContentInfo)
	var content cryptobyte.String
	if !s.ReadASN1(&content, cbasn1.SEQUENCE) {
		return false
	}
	contentSum := sha256.Sum256(content)
	candidates := append(append([]*x509.Certificate{}, auth.Pkcs.Certs...), trusted)
	for _, si := range signerInfos(auth.Pkcs) {
		if !si.digestAlg.Equal(pkcs7.OIDDigestAlgorithmSHA256) {
			continue
		}
		signed := []byte(content)
		if si.attrs != nil {
			// Signed attributes stand in for the content, so they must
			// carry its digest.
			if !bytes.Equal(si.attrs.MessageDigest, contentSum[:]) {
				continue
			}
			signed = si.attrs.RawBytes
		}
		for _, signer := range si.certIn(candidates) {
			if signer.CheckSignature(x509.SHA256WithRSA, signed, si.sig) == nil &&
				chainsTo(signer, auth.Pkcs.Certs, trusted) {
				return true
			}
		}
	}
	return false
}

// chainsTo reports whether c is trusted or, following issuers among pool,
// leads to a certificate trusted issued. Like firmware it checks signatures
// and that issuers are CAs (x509's CheckSignatureFrom does), not dates.
func chainsTo(c *x509.Certificate, pool []*x509.Certificate, trusted *x509.Certificate) bool {
	for range len(pool) + 1 { // each step moves up one certificate; bounds cycles
		if c.Equal(trusted) || c.CheckSignatureFrom(trusted) == nil {
			return true
		}
		var next *x509.Certificate
		for _, p := range pool {
			if !p.Equal(c) && bytes.Equal(p.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(p) == nil {
				next = p
				break
			}
		}
		if next == nil {
			return false
		}
		c = next
	}
	return false
}

// signerInfo is what we use of a PKCS#7 SignerInfo (go-uefi's type is
// unexported, its fields are not).
type signerInfo struct {
	issuer    []byte // DER Name
	serial    *big.Int
	digestAlg asn1.ObjectIdentifier
	attrs     *pkcs7.Attributes // nil if there are no authenticated attributes
	sig       []byte
}

func signerInfos(p *pkcs7.PKCS7) []signerInfo {
	var out []signerInfo
	for _, si := range p.SignerInfo {
		if si == nil || si.IssuerAndSerialnumber == nil || si.DigestAlgorithm == nil {
			continue
		}
		out = append(out, signerInfo{
			issuer:    si.IssuerAndSerialnumber.RawIssuer,
			serial:    si.IssuerAndSerialnumber.SerialNumber,
			digestAlg: si.DigestAlgorithm.Algorithm,
			attrs:     si.AuthenticatedAttributes,
			sig:       si.EncryptedDigest,
		})
	}
	return out
}

// certIn returns the certificates of certs that the signer info names.
func (si signerInfo) certIn(certs []*x509.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	for _, c := range certs {
		if c != nil && bytes.Equal(c.RawIssuer, si.issuer) && c.SerialNumber != nil && si.serial != nil && c.SerialNumber.Cmp(si.serial) == 0 {
			out = append(out, c)
		}
	}
	return out
}

func subjectName(c *x509.Certificate) string { return nameOf(c.Subject) }

// nameOf is a name's CN, or the whole name if it has none.
func nameOf(n pkix.Name) string {
	if n.CommonName != "" {
		return n.CommonName
	}
	return n.String()
}
