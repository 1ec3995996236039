package secureboot

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/foxboron/go-uefi/authenticode"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests against Debian's signed binaries, with sbverify (sbsigntool) as
// the independent reader.

func TestSignDebianSbverify(t *testing.T) {
	k := snakeoil(t)
	vendor, err := ShimVendorCert(debianFile(t, shimPath))
	require.NoError(t, err)
	for _, tc := range []struct {
		path string
		had  []Signature // the signatures it comes with
	}{
		{sdBootPath, nil},
		{kernelPath, []Signature{{"Debian Secure Boot Signer 2022 - linux", "Debian Secure Boot CA"}}},
	} {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			orig := debianFile(t, tc.path)
			signed, err := Sign(orig, k)
			require.NoError(t, err)
			again, err := Sign(orig, k)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(signed, again), "signing twice gives the same bytes")
			assertChecksum(t, signed)

			snake := Signature{"O=SnakeOil,L=Fort Collins,ST=Colorado,C=US", "O=SnakeOil,L=Fort Collins,ST=Colorado,C=US"}
			sigs, err := Signatures(signed)
			require.NoError(t, err)
			assert.Equal(t, append(append([]Signature{}, tc.had...), snake), sigs)

			file := writeTemp(t, "signed.efi", signed)
			out, err := sbverify(t, "--cert", snakeoilCert, file)
			assert.NoError(t, err, "sbverify --cert snakeoil: %s", out)
			out, err = sbverify(t, "--list", file)
			require.NoError(t, err, out)
			assert.Equal(t, len(sigs), len(regexp.MustCompile(`(?m)^signature \d+$`).FindAllString(out, -1)), out)
			assert.Contains(t, out, "subject: /C=US/ST=Colorado/L=Fort Collins/O=SnakeOil")
			for _, s := range tc.had {
				assert.Contains(t, out, "subject: /CN="+s.Signer)
			}

			// Debian's signature survives ours.
			ok, err := SignedBy(signed, vendor)
			require.NoError(t, err)
			assert.Equal(t, tc.had != nil, ok, "signed by the Debian Secure Boot CA")
			ok, err = SignedBy(signed, k.Cert)
			require.NoError(t, err)
			assert.True(t, ok, "signed by snakeoil")

			tampered := bytes.Clone(signed)
			tampered[codeOffset(t, tampered)] ^= 0x40
			for _, c := range []*x509.Certificate{k.Cert, vendor} {
				ok, err = SignedBy(tampered, c)
				require.NoError(t, err)
				assert.False(t, ok, "tampered image signed by %s", c.Subject)
			}
			out, err = sbverify(t, "--cert", snakeoilCert, writeTemp(t, "tampered.efi", tampered))
			assert.Error(t, err, "sbverify accepted a tampered image: %s", out)
		})
	}
}

func TestShimVendorCertDebian(t *testing.T) {
	vendor, err := ShimVendorCert(debianFile(t, shimPath))
	require.NoError(t, err)
	assert.Equal(t, "Debian Secure Boot CA", vendor.Subject.CommonName)

	for path, want := range map[string]bool{
		kernelPath: true, // through "Debian Secure Boot Signer 2022 - linux"
		grubPath:   true,
		mokPath:    true,
		sdBootPath: false, // unsigned
		shimPath:   false, // Microsoft's
	} {
		ok, err := SignedBy(debianFile(t, path), vendor)
		require.NoError(t, err, path)
		assert.Equal(t, want, ok, path)
	}

	// sbverify agrees that the vendor certificate verifies the kernel.
	pemFile := writeTemp(t, "vendor.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: vendor.Raw}))
	debianFile(t, kernelPath)
	out, err := sbverify(t, "--cert", pemFile, kernelPath)
	assert.NoError(t, err, out)

	_, err = ShimVendorCert(debianFile(t, sdBootPath))
	assert.ErrorContains(t, err, "no .vendor_cert section")
}

func TestSignaturesShim(t *testing.T) {
	shim := debianFile(t, shimPath)
	sigs, err := Signatures(shim)
	require.NoError(t, err)
	assert.Contains(t, sigs, Signature{"Microsoft Windows UEFI Driver Publisher", "Microsoft Corporation UEFI CA 2011"})
	assert.Contains(t, sigs, Signature{"Microsoft UEFI CA 2023 signer", "Microsoft UEFI CA 2023"})

	tool(t, "sbverify")
	out, err := exec.Command("sbverify", "--list", shimPath).Output()
	require.NoError(t, err)
	assert.Equal(t, len(sigs), len(regexp.MustCompile(`(?m)^signature \d+$`).FindAll(out, -1)), "%s", out)

	// Microsoft's signatures carry authenticated attributes and embed the
	// CA: each verifies against the CA that issued its signer.
	img, err := parseImage(shim)
	require.NoError(t, err)
	entries, err := winCerts(img.certs)
	require.NoError(t, err)
	for _, e := range entries {
		auth, err := authenticode.ParseAuthenticode(e)
		require.NoError(t, err)
		for _, c := range auth.Pkcs.Certs {
			if !c.IsCA {
				continue
			}
			ok, err := SignedBy(shim, c)
			require.NoError(t, err)
			assert.True(t, ok, "shim signed by %s", c.Subject.CommonName)
			tampered := bytes.Clone(shim)
			tampered[codeOffset(t, tampered)] ^= 1
			ok, err = SignedBy(tampered, c)
			require.NoError(t, err)
			assert.False(t, ok, "tampered shim signed by %s", c.Subject.CommonName)
		}
	}
}
