package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	if err := os.MkdirAll(filepath.Join(real, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	// dir/linkdir -> real; real/sub/up -> ../out: relative to real/sub,
	// not to dir/linkdir/sub lexically (which gives the same here, but
	// real/out through linkdir/sub/.. must not become dir/linkdir/out).
	mustSymlink(t, "real", filepath.Join(dir, "linkdir"))
	mustSymlink(t, "../out", filepath.Join(real, "sub", "up"))
	mustSymlink(t, filepath.Join(dir, "linkdir", "sub", "up"), filepath.Join(dir, "abs"))
	mustSymlink(t, "loop2", filepath.Join(dir, "loop1"))
	mustSymlink(t, "loop1", filepath.Join(dir, "loop2"))
	for _, tc := range []struct{ in, want string }{
		{filepath.Join(dir, "plain"), filepath.Join(dir, "plain")},
		{filepath.Join(dir, "abs"), filepath.Join(real, "out")},
		{filepath.Join(dir, "linkdir", "sub", "up"), filepath.Join(real, "out")},
	} {
		got, err := Resolve(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Resolve(%s) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := Resolve(filepath.Join(dir, "loop1")); err == nil || !strings.Contains(err.Error(), "too many levels") {
		t.Errorf("a link loop: %v", err)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func TestCreateRefuses(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, "fifo", filepath.Join(dir, "to-fifo"))
	for _, tc := range []struct{ path, want string }{
		{dir, "is a directory"},
		{fifo, "is a fifo"},
		{filepath.Join(dir, "to-fifo"), "to-fifo (-> " + fifo + "): is a fifo"},
		{filepath.Join(dir, "missing", "out"), "no such file"},
	} {
		f, err := Create(tc.path, 0o644)
		if err == nil {
			f.Abort()
			t.Errorf("Create(%s): no error", tc.path)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("Create(%s): %v; want the path and %q", tc.path, err, tc.want)
		}
	}
}

func TestWriteThroughSymlinkAndDevice(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	mustSymlink(t, "target", filepath.Join(dir, "link"))
	if err := WriteFile(filepath.Join(dir, "link"), []byte("data\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "link")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(target); string(b) != "data\n" {
		t.Errorf("target holds %q", b)
	}
	if err := WriteFile("/dev/null", []byte("data\n"), 0o644); err != nil {
		t.Errorf("/dev/null: %v", err)
	}
	if fi, err := os.Lstat("/dev/null"); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("/dev/null is now %v (%v)", fi.Mode(), err)
	}
	err := WriteFile("/dev/full", []byte("data\n"), 0o644)
	if err == nil || !strings.Contains(err.Error(), "write /dev/full: no space left on device") {
		t.Errorf("/dev/full: %v", err)
	}
}

// TestStale: a temporary file of ours older than StaleAge is removed by
// the next Create in its directory, and reported; a fresh one, or an old
// file by another name, stays.
func TestStale(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-StaleAge - time.Minute)
	stale := filepath.Join(dir, ".image.iso.tmp-123456")
	fresh := filepath.Join(dir, ".image.iso.tmp-654321")
	other := filepath.Join(dir, ".notes.tmp-x")
	for _, p := range []string{stale, fresh, other} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{stale, other} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	var reported []string
	OnStale = func(p string, age time.Duration) {
		if age < StaleAge {
			t.Errorf("%s reported at age %v", p, age)
		}
		reported = append(reported, p)
	}
	defer func() { OnStale = nil }()
	if err := WriteFile(filepath.Join(dir, "other-output"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale %s: %v, want removed", stale, err)
	}
	for _, p := range []string{fresh, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v, want kept", p, err)
		}
	}
	if len(reported) != 1 || reported[0] != stale {
		t.Errorf("reported %q, want %s", reported, stale)
	}
}

func TestTempDirAndRemoveTemps(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	old := time.Now().Add(-StaleAge - time.Minute)
	stale := filepath.Join(os.TempDir(), "imagegen-test-111")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	dir, remove, err := TempDir("imagegen-test-")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale %s: %v, want removed", stale, err)
	}
	f, err := Create(filepath.Join(dir, "out"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := TempDir("imagegen-test-")
	if err != nil {
		t.Fatal(err)
	}
	RemoveTemps()
	for _, p := range []string{dir, other, f.Name()} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s: %v after RemoveTemps", p, err)
		}
	}
	remove() // already gone: no harm
}
