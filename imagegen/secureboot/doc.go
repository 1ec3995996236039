// Package secureboot signs PE/COFF EFI binaries (boot loaders, kernels with
// an EFI stub) with Authenticode signatures for UEFI Secure Boot, and reads
// those signatures back: which signatures an image carries (Signatures),
// whether one of them verifies against a certificate (SignedBy), and which
// certificate shim trusts besides the firmware's db (ShimVendorCert).
//
// Signing uses github.com/foxboron/go-uefi (authenticode, pkcs7); it never
// runs sbsign. What it makes:
//   - RSA keys only, PKCS#1 v1.5 over SHA-256: what UEFI firmware verifies,
//     and deterministic, so the same image and key give the same bytes,
//     which reproducible images need. LoadKey and Sign refuse other keys
//     (go-uefi would label an ECDSA signature as RSA).
//   - No authenticated attributes, so no signing time, and no timestamping:
//     either would put the clock into the image. (sbsign adds a signing-time
//     attribute; EDK2 and shim accept signatures with or without.)
//   - The new signature is appended to the image's certificate table,
//     never replacing what is there: a kernel signed by its distribution
//     keeps that signature, and shim or the firmware may accept either.
//   - The PE checksum is recomputed for the signed file, as sbsign does. It
//     lies outside the signed digest, so this changes no signature.
//
// Verification (SignedBy) is done here, not by go-uefi's Verify, which
// neither follows certificate chains nor checks the messageDigest attribute
// against the signed content, and which dereferences the authenticated
// attributes unconditionally, so it panics on the signatures Sign makes.
// It checks, as firmware does: the image's SHA-256 Authenticode digest, the
// RSA signature by the signer's key, and a chain of certificates embedded in
// the signature from the signer to the given certificate (each link's
// signature, and that each issuer is a CA). It does not check validity
// dates (firmware has no trusted clock, and Microsoft's 2011 UEFI CA has
// expired while its signatures still boot), revocation (dbx, SBAT) or
// extended key usage. SHA-1 or SHA-384 Authenticode digests are not
// supported, nor certificates signed with SHA-1 (Go refuses them): such a
// signature never verifies.
//
// Images whose certificate table is not at the end of the file, or whose
// headers or sections point outside it, are refused as malformed: go-uefi's
// parser assumes that layout (and panics on some that break it).
package secureboot
