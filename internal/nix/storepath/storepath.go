// Package storepath parses and validates Nix store paths
// (/nix/store/<hash>-<name>), computes the paths Nix gives to
// content-addressed objects, and maps store paths onto a host directory
// that stands in for the store the way Nix's `--store DIR` does.
//
// The rules are those of Nix 2.8: a 32-character hash in Nix's base-32
// alphabet, a dash, and a name of 1 to 211 characters from
// [A-Za-z0-9+-._?=] that does not start with a dot. Parsing is strict: only
// the canonical spelling (no trailing slash, no doubled slash, no "." or
// "..") is accepted, because every producer we read (registrations,
// store-paths files, directory listings) writes canonical paths and a
// lenient parser would let two spellings of one path disagree.
package storepath

import (
	"fmt"
	"path"
	"strings"

	"github.com/nix-community/go-nix/pkg/nixbase32"
)

// DefaultStoreDir is the store directory of a standard Nix installation.
const DefaultStoreDir = "/nix/store"

// HashLen is the length of the hash part of a store path's base name.
const HashLen = 32

// MaxNameLen is the longest name Nix accepts after the hash and dash.
const MaxNameLen = 211

// StorePath is a parsed store path: its hash part and its name. It does not
// carry the store directory, so the same value can be printed for any
// store (see Abs).
type StorePath struct {
	Hash string // 32 nix32 characters
	Name string
}

// Base returns the base name, "<hash>-<name>".
func (p StorePath) Base() string { return p.Hash + "-" + p.Name }

// Abs returns the absolute path of p in storeDir ("" means DefaultStoreDir).
func (p StorePath) Abs(storeDir string) string {
	if storeDir == "" {
		storeDir = DefaultStoreDir
	}
	return storeDir + "/" + p.Base()
}

// CheckStoreDir reports whether dir is usable as a store directory: an
// absolute, canonical path other than "/". Nix canonicalises its store dir
// the same way, so a trailing slash here would only produce paths that no
// Nix would print.
func CheckStoreDir(dir string) error {
	if dir == "" || dir[0] != '/' {
		return fmt.Errorf("storepath: store dir %q: not an absolute path", dir)
	}
	if dir == "/" || path.Clean(dir) != dir {
		return fmt.Errorf("storepath: store dir %q: not a canonical directory path", dir)
	}
	return nil
}

// Parse parses the absolute store path abs in storeDir ("" means
// DefaultStoreDir). abs must name a top-level store object, not a file
// inside one.
func Parse(storeDir, abs string) (StorePath, error) {
	if storeDir == "" {
		storeDir = DefaultStoreDir
	}
	if err := CheckStoreDir(storeDir); err != nil {
		return StorePath{}, err
	}
	rest, ok := strings.CutPrefix(abs, storeDir+"/")
	if !ok {
		return StorePath{}, fmt.Errorf("storepath: %q: not in the store %s", abs, storeDir)
	}
	if strings.Contains(rest, "/") {
		return StorePath{}, fmt.Errorf("storepath: %q: not a top-level store path (contains %q after the store dir)", abs, "/")
	}
	p, err := ParseBase(rest)
	if err != nil {
		// Re-wrap so the message names what the caller passed.
		return StorePath{}, fmt.Errorf("storepath: %q: %w", abs, err)
	}
	return p, nil
}

// ParseBase parses a base name "<hash>-<name>" as found in a store
// directory listing. Its errors do not carry the "storepath:" prefix so
// that Parse can wrap them; callers of ParseBase should add context.
func ParseBase(base string) (StorePath, error) {
	if len(base) < HashLen+2 {
		return StorePath{}, fmt.Errorf("too short for <32-char hash>-<name>")
	}
	if base[HashLen] != '-' {
		return StorePath{}, fmt.Errorf("no %q after the %d-character hash", "-", HashLen)
	}
	h, name := base[:HashLen], base[HashLen+1:]
	if err := CheckHash(h); err != nil {
		return StorePath{}, err
	}
	if err := CheckName(name); err != nil {
		return StorePath{}, err
	}
	return StorePath{Hash: h, Name: name}, nil
}

// CheckHash reports whether h is a valid hash part: exactly 32 characters
// from the nix32 alphabet. Any such string decodes (160 bits fill 32
// five-bit digits exactly), so the alphabet is the whole check.
func CheckHash(h string) error {
	if len(h) != HashLen {
		return fmt.Errorf("hash %q: length %d, want %d", h, len(h), HashLen)
	}
	for i := 0; i < len(h); i++ {
		if !nixbase32.Is(h[i]) {
			return fmt.Errorf("hash %q: character %q is not in the nix32 alphabet", h, h[i])
		}
	}
	return nil
}

// CheckName reports whether name is a valid store path name.
func CheckName(name string) error {
	if name == "" {
		return fmt.Errorf("empty name")
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("name is %d characters long, more than %d", len(name), MaxNameLen)
	}
	if name[0] == '.' {
		// Nix forbids this so that names like "." and ".." (and hidden
		// files) can never be store objects.
		return fmt.Errorf("name %q starts with %q", name, ".")
	}
	for i := 0; i < len(name); i++ {
		if !nameChar(name[i]) {
			return fmt.Errorf("name contains %q", name[i])
		}
	}
	return nil
}

func nameChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("+-._?=", c) >= 0
}

// Valid reports whether abs parses as a store path in storeDir.
func Valid(storeDir, abs string) bool {
	_, err := Parse(storeDir, abs)
	return err == nil
}

// HashPart returns the hash part of a store path's base name, without
// validation; it is meant for paths that were parsed already.
func HashPart(abs string) string {
	base := path.Base(abs)
	if len(base) < HashLen {
		return base
	}
	return base[:HashLen]
}

// ToStorePath maps a path inside the store (a store path or any file below
// one, e.g. /nix/store/<hash>-bash/bin/sh) to the store path containing it,
// the way Nix's toStorePath does. p must be canonical.
func ToStorePath(storeDir, p string) (StorePath, error) {
	if storeDir == "" {
		storeDir = DefaultStoreDir
	}
	rest, ok := strings.CutPrefix(p, storeDir+"/")
	if !ok {
		return StorePath{}, fmt.Errorf("storepath: %q: not in the store %s", p, storeDir)
	}
	base, _, _ := strings.Cut(rest, "/")
	sp, err := ParseBase(base)
	if err != nil {
		return StorePath{}, fmt.Errorf("storepath: %q: %w", p, err)
	}
	return sp, nil
}
