package storepath

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/nix-community/go-nix/pkg/nixbase32"
	"github.com/nix-community/go-nix/pkg/nixhash"
)

// MakeStorePath computes a store path as Nix's makeStorePath does
// (src/libstore/store-api.cc) for an object of type typ ("source", "text",
// "output:out", ...) with SHA-256 innerHash: the fingerprint
// <type>[:<ref>...][:self]:sha256:<hex>:<storeDir>:<name>, references
// sorted, hashed and folded to 20 bytes in nix32. As Nix, it refuses
// references for types other than "text" and "source".
func MakeStorePath(typ string, innerHash []byte, name string, refs []string, self bool, storeDir string) (string, error) {
	if storeDir == "" {
		storeDir = DefaultStoreDir
	}
	if err := CheckStoreDir(storeDir); err != nil {
		return "", err
	}
	if len(innerHash) != sha256.Size {
		return "", fmt.Errorf("storepath: make %q: inner hash is %d bytes, want a %d-byte sha256", name, len(innerHash), sha256.Size)
	}
	if err := CheckName(name); err != nil {
		return "", fmt.Errorf("storepath: make %q: %w", name, err)
	}
	if (len(refs) > 0 || self) && typ != "text" && typ != "source" {
		return "", fmt.Errorf("storepath: make %q: type %q cannot have references", name, typ)
	}
	sorted := slices.Clone(refs)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)

	var fp strings.Builder
	fp.WriteString(typ)
	for _, r := range sorted {
		if _, err := Parse(storeDir, r); err != nil {
			return "", fmt.Errorf("storepath: make %q: reference: %w", name, err)
		}
		fp.WriteString(":")
		fp.WriteString(r)
	}
	if self {
		fp.WriteString(":self")
	}
	fp.WriteString(":sha256:")
	fp.WriteString(hex.EncodeToString(innerHash))
	fp.WriteString(":")
	fp.WriteString(storeDir)
	fp.WriteString(":")
	fp.WriteString(name)

	sum := sha256.Sum256([]byte(fp.String()))
	folded := nixhash.CompressHash(sum[:], 20)
	return storeDir + "/" + nixbase32.EncodeToString(folded) + "-" + name, nil
}

// SourcePath returns the path `nix-store --add` (and builtins.path /
// filterSource) gives to a file or directory whose NAR serialisation has
// SHA-256 narHash: a recursive SHA-256 ingestion is named with type
// "source" directly over the NAR hash, not via the "output:out" indirection
// other fixed-output paths use.
func SourcePath(name string, narHash [32]byte, storeDir string) (string, error) {
	return MakeStorePath("source", narHash[:], name, nil, false, storeDir)
}

// TextPath returns the path builtins.toFile gives to a file with the given
// contents' SHA-256 and references (absolute store paths). Text paths can
// never refer to themselves: their name depends on their contents.
func TextPath(name string, contentHash [32]byte, refs []string, storeDir string) (string, error) {
	return MakeStorePath("text", contentHash[:], name, refs, false, storeDir)
}
