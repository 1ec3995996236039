// Package nixtest runs Debian's Nix 2.8 tools (nix-bin) from tests. Every
// nix-store and nix-instantiate call carries `--store DIR`, a throw-away
// store root: a bare nix-store call as root opens the real store and
// creates /nix on the host (even `nix-store --version` does), which tests
// must never do. For tests only.
package nixtest

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nixlive/nixlive/internal/copyfile"
	"github.com/nixlive/nixlive/internal/nix/chrootnix"
)

// tools are the programs the helpers run; HaveNix checks them all so that
// a partial install skips cleanly instead of failing halfway through.
var tools = []string{"nix-store", "nix-instantiate", "nix-build", "nix-hash"}

// HaveNix skips the test unless the Nix command-line tools are installed.
func HaveNix(t testing.TB) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install nix-bin (make test installs it)", tool)
		}
	}
}

// NewStore returns a fresh, empty directory to use as a store root
// (`--store DIR`); Nix creates DIR/nix/store and DIR/nix/var on first use.
// It is removed when the test ends.
func NewStore(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	// Nix makes store directories read-only; make them writable again so
	// that the TempDir cleanup (which runs after this) can remove them
	// when the tests do not run as root.
	t.Cleanup(func() { makeWritable(dir) })
	return dir
}

func makeWritable(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
}

// CopyStorePaths copies the files of the given store paths from one store
// root to another (DIR/nix/store/...), keeping symlinks, the executable bit
// and read-only modes, as a fresh store to --load-db a registration into.
func CopyStorePaths(t testing.TB, fromRoot, toRoot string, paths []string) {
	t.Helper()
	for _, p := range paths {
		if err := copyfile.Tree(filepath.Join(fromRoot, p), filepath.Join(toRoot, p)); err != nil {
			t.Fatalf("copying %s: %v", p, err)
		}
	}
}

// env is chrootnix.Env with a HOME of the test's own.
func env(t testing.TB) []string { return chrootnix.Env(t.TempDir()) }

// commonArgs go first on every command line.
func commonArgs(storeRoot string) []string { return chrootnix.Args(storeRoot) }

// Exec runs tool (nix-store, nix-instantiate or nix-build) with `--store storeRoot`
// and args, feeding stdin, and returns stdout, stderr and the error; it
// does not fail the test, for callers that expect Nix to refuse.
func Exec(t testing.TB, storeRoot string, stdin []byte, tool string, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	if storeRoot == "" {
		t.Fatalf("nixtest: %s without a store root would touch /nix", tool)
	}
	cmd := exec.Command(tool, append(commonArgs(storeRoot), args...)...)
	cmd.Env = env(t)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s %s: %w\n%s", tool, strings.Join(args, " "), err, e.Bytes())
	}
	return o.Bytes(), e.Bytes(), err
}

// Run runs `nix-store --store storeRoot args...` and returns its stdout,
// failing the test if it fails.
func Run(t testing.TB, storeRoot string, args ...string) string {
	t.Helper()
	return RunInput(t, storeRoot, nil, args...)
}

// RunInput is Run with stdin (for --load-db, --import).
func RunInput(t testing.TB, storeRoot string, stdin []byte, args ...string) string {
	t.Helper()
	out, _, err := Exec(t, storeRoot, stdin, "nix-store", args...)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// Lines splits Nix's line-per-item output.
func Lines(s string) []string {
	return strings.Fields(s)
}

// Add copies hostPath (a file, executable or directory tree) into the
// store as `nix-store --add` does and returns the new store path.
func Add(t testing.TB, storeRoot, hostPath string) string {
	t.Helper()
	out := strings.TrimSpace(Run(t, storeRoot, "--add", hostPath))
	if !strings.HasPrefix(out, "/nix/store/") || strings.Contains(out, "\n") {
		t.Fatalf("nix-store --add %s: unexpected output %q", hostPath, out)
	}
	return out
}

var storePathRE = regexp.MustCompile(`/nix/store/[0-9abcdfghijklmnpqrsvwxyz]{32}-[A-Za-z0-9+\-._?=]+`)

// ToFile creates a text store path with builtins.toFile and returns it.
// Every store path mentioned in text becomes a reference of the new path:
// it is spliced in with builtins.storePath, which gives the string the
// context that toFile turns into references (a plain string mentioning a
// path would give a file without references). The mentioned paths must be
// valid in the store.
func ToFile(t testing.TB, storeRoot, name, text string) string {
	t.Helper()
	var parts []string
	last := 0
	for _, m := range storePathRE.FindAllStringIndex(text, -1) {
		parts = append(parts, nixString(text[last:m[0]]))
		parts = append(parts, "(builtins.storePath "+nixString(text[m[0]:m[1]])+")")
		last = m[1]
	}
	parts = append(parts, nixString(text[last:]))
	expr := fmt.Sprintf("builtins.toFile %s (builtins.concatStringsSep \"\" [ %s ])",
		nixString(name), strings.Join(parts, " "))
	out, _, err := Exec(t, storeRoot, nil, "nix-instantiate", "--read-write-mode", "--eval", "--expr", expr)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Unquote(strings.TrimSpace(string(out)))
	if err != nil || !strings.HasPrefix(p, "/nix/store/") {
		t.Fatalf("nix-instantiate toFile %q: unexpected output %q", name, out)
	}
	return p
}

// nixString quotes s as a Nix double-quoted string literal. Every '$' is
// escaped so that "${" can never start an antiquotation.
func nixString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\', '$':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Build builds the derivation expression expr with nix-build in the store
// and returns its output path(s): store paths whose references Nix, not
// we, found (self-references, hashes at odd offsets). A diverted store
// builds in Nix's chroot, with the host's /bin, /usr and /lib bound in
// for builders such as ShellDerivation's /bin/sh; that needs root, so the
// test is skipped for other users.
func Build(t testing.TB, storeRoot, expr string) []string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("nix-build into a --store DIR needs root for Nix's build chroot")
	}
	var binds []string
	for _, d := range []string{"/bin", "/usr", "/lib", "/lib64"} {
		real, err := filepath.EvalSymlinks(d)
		if err != nil {
			continue
		}
		binds = append(binds, d+"="+real)
	}
	out, _, err := Exec(t, storeRoot, nil, "nix-build",
		"--option", "sandbox-paths", strings.Join(binds, " "),
		"--no-out-link", "--expr", expr)
	if err != nil {
		t.Fatal(err)
	}
	return Lines(string(out))
}

// ShellDerivation returns a derivation expression that runs script (a Nix
// string expression, so it may interpolate store paths) with /bin/sh,
// with $out to fill.
func ShellDerivation(name, script string) string {
	return fmt.Sprintf(`derivation {
  name = %s;
  system = builtins.currentSystem;
  builder = "/bin/sh";
  PATH = "/bin";
  args = [ "-c" (%s) ];
}`, nixString(name), script)
}

// NixString quotes s as a Nix string literal.
func NixString(s string) string { return nixString(s) }

// NarHash returns `nix-hash --type sha256 --base32 hostPath`: the nix32
// SHA-256 of the path's NAR serialisation. nix-hash does not open a store.
func NarHash(t testing.TB, hostPath string) string {
	t.Helper()
	cmd := exec.Command("nix-hash", "--type", "sha256", "--base32", hostPath)
	cmd.Env = env(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nix-hash %s: %v", hostPath, err)
	}
	return strings.TrimSpace(string(out))
}

// NarSize returns the length of `nix-store --dump hostPath`. The dump is
// counted as it streams, not held in memory.
func NarSize(t testing.TB, hostPath string) uint64 {
	t.Helper()
	// --store points at a directory that is never created: --dump does
	// not open a store, and the flag guards against it ever doing so.
	cmd := exec.Command("nix-store", append(commonArgs(filepath.Join(t.TempDir(), "unused")), "--dump", hostPath)...)
	cmd.Env = env(t)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var n uint64
	buf := make([]byte, 1<<16)
	for {
		k, rerr := stdout.Read(buf)
		n += uint64(k)
		if rerr != nil {
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("nix-store --dump %s: %v", hostPath, err)
	}
	return n
}
