package nixtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixlive/nixlive/internal/gobuild"
)

// BuildPure runs nix-build in the store on the file or expression
// (`--expr` among args) with the extra args, as Nix would anywhere: in its
// sandbox, with nothing of the host bound in (unlike Build), so a builder
// must be a store path and sees only its inputs. It returns the output
// paths, or the error with nix-build's stderr, without failing the test.
func BuildPure(t testing.TB, storeRoot string, args ...string) ([]string, error) {
	t.Helper()
	out, _, err := Exec(t, storeRoot, nil, "nix-build", append([]string{"--no-out-link"}, args...)...)
	if err != nil {
		return nil, err
	}
	return Lines(string(out)), nil
}

// MustBuildPure is BuildPure that fails the test on error.
func MustBuildPure(t testing.TB, storeRoot string, args ...string) []string {
	t.Helper()
	paths, err := BuildPure(t, storeRoot, args...)
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

// EvalJSON evaluates expr strictly (`nix-instantiate --eval --strict
// --json`) in the store and returns the JSON. No store path is written:
// the evaluation runs in read-only mode.
func EvalJSON(t testing.TB, storeRoot, expr string) ([]byte, error) {
	t.Helper()
	out, _, err := Exec(t, storeRoot, nil, "nix-instantiate", "--eval", "--strict", "--json", "--expr", expr)
	return out, err
}

// Parse runs `nix-instantiate --parse FILE` in the store and returns the
// error (with Nix's message), if any.
func Parse(t testing.TB, storeRoot, file string) error {
	t.Helper()
	_, _, err := Exec(t, storeRoot, nil, "nix-instantiate", "--parse", file)
	return err
}

// StaticImagegenPackage builds the flake's nixlive-static package from
// this module: cmd/imagegen as a static binary (gobuild.StaticCgo, as
// make imagegen-static) in DIR/bin/imagegen, and the static stage1 and
// postboot beside it, the layout of a Nix package for lib.nix's imagegen
// argument, which Nix copies into the store with builtins.path. It runs
// the go command from the current directory, which must be inside this
// module (as it is for tests).
func StaticImagegenPackage(ctx context.Context, dir string) error {
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	if err := gobuild.Static(ctx, bin+"/", "github.com/nixlive/nixlive/cmd/stage1", "github.com/nixlive/nixlive/cmd/postboot"); err != nil {
		return err
	}
	return gobuild.StaticCgo(ctx, filepath.Join(bin, "imagegen"), "github.com/nixlive/nixlive/cmd/imagegen")
}

// HostNix describes the host's /nix for a check that no Nix command
// touched it: NixState("/").
func HostNix() string { return NixState("/") }

// NixState describes root/nix: "absent", or the modes and modification
// times of nix, nix/store and nix/var/nix/db, which any store Nix opens
// or writes there changes.
func NixState(root string) string {
	var b strings.Builder
	for _, p := range []string{"nix", "nix/store", "nix/var/nix/db"} {
		fi, err := os.Lstat(filepath.Join(root, p))
		if os.IsNotExist(err) && p == "nix" {
			return "absent"
		}
		if err != nil {
			fmt.Fprintf(&b, "/%s: %v; ", p, err)
			continue
		}
		fmt.Fprintf(&b, "/%s: %s %v; ", p, fi.Mode(), fi.ModTime().UnixNano())
	}
	return b.String()
}

// MustEvalString evaluates attribute attr of the Nix file (nix-instantiate
// --eval -A) to a string and returns it; paths stay as they are (the
// evaluation is read-only: a path not yet in the store is an error).
func MustEvalString(t testing.TB, storeRoot, file, attr string) string {
	t.Helper()
	out, _, err := Exec(t, storeRoot, nil, "nix-instantiate", "--eval", "--json", file, "-A", attr)
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("nix-instantiate --eval -A %s: not a string: %s", attr, out)
	}
	return s
}

// NarHashHex is NarHash in base16 (nix-hash --type sha256 hostPath), the
// bytes of an SRI hash (sha256-<base64>).
func NarHashHex(t testing.TB, hostPath string) string {
	t.Helper()
	cmd := exec.Command("nix-hash", "--type", "sha256", hostPath)
	cmd.Env = env(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nix-hash %s: %v", hostPath, err)
	}
	return strings.TrimSpace(string(out))
}
