package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nix-community/go-nix/pkg/nixbase32"

	"github.com/nixlive/nixlive/internal/atomicfile"
	"github.com/nixlive/nixlive/internal/nix/registration"
	"github.com/nixlive/nixlive/internal/nix/storepath"
)

// closureInfoCmd runs "imagegen closure-info": nixpkgs' closureInfo
// (closure-info.nix) as a Nix builder, without bash, coreutils or jq. It
// reads the exportReferencesGraph entry of the structured attributes
// (.attrs.json) and writes registration, store-paths and total-nar-size
// byte for byte as closure-info.nix's jq commands do (an SRI narHash,
// "sha256-<base64>", is written as Nix 2.8 writes it, "sha256:<nix32>").
func closureInfoCmd(ctx context.Context, args []string, stdout, stderr *os.File) error {
	fs := flag.NewFlagSet("imagegen closure-info", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output `dir`ectory, created if missing (default $out)")
	attrs := fs.String("attrs", "", "structured attributes `file` (default $NIX_ATTRS_JSON_FILE if it exists, else ./.attrs.json)")
	name := fs.String("name", "closure", "the exportReferencesGraph `key` to read")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: imagegen closure-info [-o DIR] [--attrs FILE] [--name KEY]\n\n"+
			"Writes nixpkgs' closureInfo (registration, store-paths, total-nar-size) from\n"+
			"the exportReferencesGraph of a derivation with __structuredAttrs = true.\n\nflags:\n")
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		fs.Usage()
		return errUsage
	}
	file := *attrs
	if file == "" {
		file = attrsFile()
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("closure-info: %w", err)
	}
	storeDir := os.Getenv("NIX_STORE")
	if storeDir == "" {
		storeDir = storepath.DefaultStoreDir
	}
	info, err := parseClosureInfo(data, *name, storeDir)
	if err != nil {
		return fmt.Errorf("closure-info: %s: %w", file, err)
	}
	dir := *out
	if dir == "" {
		dir = os.Getenv("out")
	}
	if dir == "" {
		dir = info.out
	}
	if dir == "" {
		return fmt.Errorf("closure-info: no -o, no $out and no outputs.out in %s: where should the closure info go?", file)
	}
	return info.write(dir)
}

// attrsFile is where the structured attributes are: $NIX_ATTRS_JSON_FILE
// if that file exists, else .attrs.json in the working directory (the
// build directory). Nix 2.8 sets $NIX_ATTRS_JSON_FILE to the host's path
// of the build directory, which a sandboxed build does not see
// (NixOS/nix#6736); the file is ./.attrs.json there.
func attrsFile() string {
	if f := os.Getenv("NIX_ATTRS_JSON_FILE"); f != "" {
		if _, err := os.Stat(f); err == nil {
			return f
		}
	}
	return ".attrs.json"
}

// closureInfo holds the three files of nixpkgs' closureInfo.
type closureInfo struct {
	registration, storePaths, totalNarSize []byte
	// out is the attributes' outputs.out: with __structuredAttrs, Nix 2.8
	// sets no $out in the builder's environment.
	out string
}

// graphEntry is one path of an exportReferencesGraph in the structured
// attributes, as Nix writes it.
type graphEntry struct {
	Path       *string      `json:"path"`
	NarHash    *string      `json:"narHash"`
	NarSize    *json.Number `json:"narSize"`
	References *[]string    `json:"references"`
}

// parseClosureInfo reads the structured attributes data and makes the
// closure info of its key entry. Errors name the field at fault.
func parseClosureInfo(data []byte, key, storeDir string) (*closureInfo, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	var outputs struct {
		Out string `json:"out"`
	}
	if o, ok := top["outputs"]; ok {
		if err := json.Unmarshal(o, &outputs); err != nil {
			return nil, fmt.Errorf("outputs: %w", err)
		}
	}
	raw, ok := top[key]
	if !ok {
		return nil, fmt.Errorf("no %q: want the derivation's exportReferencesGraph.%s with __structuredAttrs = true", key, key)
	}
	var entries []graphEntry
	if err := decodeEntries(raw, &entries); err != nil {
		return nil, fmt.Errorf("%s%w", key, err)
	}
	var reg, paths bytes.Buffer
	var total uint64
	for i, e := range entries {
		where := fmt.Sprintf("%s[%d]", key, i)
		size, err := e.check(storeDir)
		if err != nil {
			return nil, fmt.Errorf("%s.%w", where, err)
		}
		if total+size < total {
			return nil, fmt.Errorf("%s.narSize: the sum of the NAR sizes overflows 64 bits", where)
		}
		total += size
		// closure-info.nix: .closure | map([.path, .narHash, .narSize, "",
		// (.references | length)] + .references) | add | map("\(.)\n") | add
		fmt.Fprintf(&reg, "%s\n%s\n%d\n\n%d\n", *e.Path, *e.NarHash, size, len(*e.References))
		for _, r := range *e.References {
			reg.WriteString(r + "\n")
		}
		paths.WriteString(*e.Path + "\n")
	}
	// What we write must be what our own readers and nix-store --load-db
	// read back.
	if _, err := registration.Parse(bytes.NewReader(reg.Bytes()), storeDir); err != nil {
		return nil, fmt.Errorf("%s: the registration made from it does not read back: %w", key, err)
	}
	return &closureInfo{
		registration: reg.Bytes(),
		storePaths:   paths.Bytes(),
		totalNarSize: []byte(strconv.FormatUint(total, 10) + "\n"),
		out:          outputs.Out,
	}, nil
}

// decodeEntries decodes the graph list, keeping numbers as written; an
// error names the entry and its field.
func decodeEntries(raw json.RawMessage, entries *[]graphEntry) error {
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return fmt.Errorf(": want a list of {path, narHash, narSize, references}, not %.20s", raw)
	}
	*entries = make([]graphEntry, len(list))
	for i, r := range list {
		dec := json.NewDecoder(bytes.NewReader(r))
		dec.UseNumber()
		if err := dec.Decode(&(*entries)[i]); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) && te.Field != "" {
				return fmt.Errorf("[%d].%s: a JSON %s, want %s", i, te.Field, te.Value, te.Type)
			}
			return fmt.Errorf("[%d]: want {path, narHash, narSize, references}: %w", i, err)
		}
	}
	return nil
}

// check validates one entry and returns its NAR size; the error starts
// with the name of the field at fault.
func (e graphEntry) check(storeDir string) (uint64, error) {
	switch {
	case e.Path == nil:
		return 0, errors.New("path: missing")
	case e.NarHash == nil:
		return 0, errors.New("narHash: missing")
	case e.NarSize == nil:
		return 0, errors.New("narSize: missing")
	case e.References == nil:
		return 0, errors.New("references: missing")
	}
	if _, err := storepath.Parse(storeDir, *e.Path); err != nil {
		return 0, fmt.Errorf("path: %w", err)
	}
	s := e.NarSize.String()
	size, err := strconv.ParseUint(s, 10, 64)
	if err != nil || strings.HasPrefix(s, "+") {
		return 0, fmt.Errorf("narSize: %s is not a byte count (a whole number from 0 to 2^64-1)", s)
	}
	if sri, ok := strings.CutPrefix(*e.NarHash, "sha256-"); ok {
		// Nix versions that write SRI hashes here: "sha256:" + nix32,
		// the spelling Nix 2.8 writes and every reader takes.
		h, err := base64.StdEncoding.DecodeString(sri)
		if err != nil || len(h) != 32 {
			return 0, fmt.Errorf("narHash: %q: not an SRI SHA-256 (base64 of 32 bytes)", *e.NarHash)
		}
		*e.NarHash = "sha256:" + nixbase32.EncodeToString(h)
	}
	// The hash alone, in a one-record registration: registration.Parse
	// knows the spellings nix-store --load-db takes.
	one := *e.Path + "\n" + *e.NarHash + "\n0\n\n0\n"
	if strings.Contains(*e.NarHash, "\n") {
		return 0, fmt.Errorf("narHash: %q: contains a newline", *e.NarHash)
	}
	if _, err := registration.Parse(strings.NewReader(one), storeDir); err != nil {
		return 0, fmt.Errorf("narHash: %q: %w", *e.NarHash, err)
	}
	for j, r := range *e.References {
		if _, err := storepath.Parse(storeDir, r); err != nil {
			return 0, fmt.Errorf("references[%d]: %w", j, err)
		}
	}
	return size, nil
}

// write creates dir (and its parents) and writes the three files into it.
func (c *closureInfo) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("closure-info: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"registration", c.registration}, {"store-paths", c.storePaths}, {"total-nar-size", c.totalNarSize}} {
		if err := atomicfile.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			return fmt.Errorf("closure-info: %w", err)
		}
	}
	return nil
}
