package secureboot

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Key is a signing key and its certificate.
type Key struct {
	Signer crypto.Signer
	Cert   *x509.Certificate
}

// LoadKey reads a PEM private key (PKCS#1 or PKCS#8, unencrypted) and a
// certificate (PEM or DER). It refuses a non-RSA key, since UEFI firmware
// verifies RSA and RSA PKCS#1 v1.5 signatures are deterministic, which
// reproducible images need; and a key that does not match the certificate.
func LoadKey(keyFile, certFile string) (*Key, error) {
	signer, err := readKey(keyFile)
	if err != nil {
		return nil, err
	}
	cert, err := readCert(certFile)
	if err != nil {
		return nil, err
	}
	k := &Key{Signer: signer, Cert: cert}
	if err := k.check(); err != nil {
		return nil, fmt.Errorf("secureboot: key %s, certificate %s: %w", keyFile, certFile, err)
	}
	return k, nil
}

// check is what Sign needs of a Key: an RSA key, since go-uefi's pkcs7
// labels every signature as RSA, and the certificate of that key, since
// the signature names the certificate and firmware checks it with its key.
func (k *Key) check() error {
	if k == nil || k.Signer == nil || k.Cert == nil {
		return errors.New("key or certificate missing")
	}
	pub, ok := k.Signer.Public().(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("%s key: UEFI firmware verifies RSA signatures only", keyKind(k.Signer))
	}
	if !pub.Equal(k.Cert.PublicKey) {
		return fmt.Errorf("key does not match the certificate %q", subjectName(k.Cert))
	}
	return nil
}

func readKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secureboot: key: %w", err)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("secureboot: key %s: %s", path, fmt.Sprintf(format, a...))
	}
	// Skip blocks such as "EC PARAMETERS" that openssl writes before a key.
	var block *pem.Block
	for rest := data; ; {
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, bad("no PEM private key in it")
		}
		if strings.HasSuffix(block.Type, "PRIVATE KEY") {
			break
		}
	}
	if block.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
		return nil, bad("key is encrypted; decrypt it first (openssl pkey -in KEY -out PLAIN.key)")
	}
	var key any
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, bad("PEM block %q is not a PKCS#1 or PKCS#8 private key", block.Type)
	}
	if err != nil {
		return nil, bad("%s: %v", block.Type, err)
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, bad("%s key: UEFI firmware verifies RSA signatures only", keyKind(key))
	}
	return rsaKey, nil
}

func readCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secureboot: certificate: %w", err)
	}
	der := data
	if block, rest := pem.Decode(data); block != nil {
		for block != nil && block.Type != "CERTIFICATE" {
			block, rest = pem.Decode(rest)
		}
		if block == nil {
			return nil, fmt.Errorf("secureboot: certificate %s: no PEM CERTIFICATE block in it", path)
		}
		der = block.Bytes
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("secureboot: certificate %s: neither a PEM nor a DER certificate: %w", path, err)
	}
	return cert, nil
}

func keyKind(key any) string {
	if s, ok := key.(crypto.Signer); ok {
		key = s.Public()
	}
	switch key.(type) {
	case *rsa.PublicKey, *rsa.PrivateKey:
		return "RSA"
	case *ecdsa.PublicKey, *ecdsa.PrivateKey:
		return "ECDSA"
	case ed25519.PublicKey, ed25519.PrivateKey:
		return "Ed25519"
	case *ecdh.PublicKey, *ecdh.PrivateKey:
		return "ECDH"
	}
	return fmt.Sprintf("%T", key)
}
