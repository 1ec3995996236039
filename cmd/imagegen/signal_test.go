package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests of interruption: SIGINT and SIGTERM at several points of a
// run leave no output, no temporary file and nothing in $TMPDIR, and the
// exit status says which signal; a temporary file a killed run left is
// removed by the next run once old enough.

// signalFixture is a store whose one path holds 48 MiB of text and noise
// in turns: enough for zstd at level 19 to take many seconds, with output
// that grows all along, so that a run is caught well before its end.
type signalFixture struct {
	in   *isoInputs
	big  string // the store path
	spec map[string]any
}

// mixed is n bytes of 64 KiB pieces of text and of fresh noise in turns.
func mixed(n int) []byte {
	text := blob(128 << 10)[:64<<10]
	b := make([]byte, n)
	x := uint32(88172645)
	for i := range b {
		if (i>>16)%2 == 0 {
			b[i] = text[i%len(text)]
			continue
		}
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func newSignalFixture(t *testing.T) *signalFixture {
	t.Helper()
	in := newISOInputs(t, "", "")
	f := &signalFixture{in: in, big: in.extra}
	mustWrite(t, filepath.Join(in.storeRoot, in.extra, "share", "big"), mixed(48<<20), 0o644)
	f.spec = in.spec()
	f.spec["squashfsCompression"] = "zstd -Xcompression-level 19"
	return f
}

// running is an imagegen process started by a test.
type running struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	out, tmp       string // its output directory and $TMPDIR
}

// startCLI starts the imagegen binary with args, in its own $TMPDIR.
func startCLI(t *testing.T, out string, args ...string) *running {
	t.Helper()
	r := &running{cmd: exec.Command(imagegenBinary(t), args...), done: make(chan struct{}), out: out, tmp: t.TempDir()}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "SOURCE_DATE_EPOCH" && k != "GOMAXPROCS" && k != "TMPDIR" {
			r.cmd.Env = append(r.cmd.Env, kv)
		}
	}
	r.cmd.Env = append(r.cmd.Env, "TMPDIR="+r.tmp, "GOMAXPROCS=2")
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			r.cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

func (r *running) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// waitFor polls cond until it holds; it fails the test if the process
// ends first or after a minute.
func (r *running) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if r.exited() {
			t.Fatalf("the process ended before %s\nstdout: %s\nstderr: %s", what, r.stdout.String(), r.stderr.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after a minute", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// readsUnder says whether the process has a file under dir open.
func (r *running) readsUnder(dir string) bool {
	fdDir := "/proc/" + strconv.Itoa(r.cmd.Process.Pid) + "/fd"
	fds, _ := os.ReadDir(fdDir)
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err == nil && strings.HasPrefix(l, dir+"/") {
			return true
		}
	}
	return false
}

// files lists the regular files under the output directory and $TMPDIR
// with their sizes.
func (r *running) files() map[string]int64 {
	m := map[string]int64{}
	for _, d := range []string{r.out, r.tmp} {
		filepath.Walk(d, func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				m[p] = fi.Size()
			}
			return nil
		})
	}
	return m
}

// growing returns a condition that holds once a file whose base name
// matches pattern has grown between two looks at it, past least bytes.
func (r *running) growing(pattern string, least int64) func() bool {
	last := map[string]int64{}
	return func() bool {
		for p, n := range r.files() {
			if ok, _ := filepath.Match(pattern, filepath.Base(p)); !ok {
				continue
			}
			if prev, seen := last[p]; seen && n > prev && prev >= least {
				return true
			}
			last[p] = n
		}
		return false
	}
}

// TestSignals sends SIGINT and SIGTERM to imagegen store and imagegen
// build (with and without compressImage) at several points: while it
// reads the store, while the output grows (the store image being
// compressed), and while compressImage compresses the ISO. Each time the
// exit status is 128 + the signal (130, 143), stderr says the build was
// interrupted, within seconds, and neither the output directory nor the
// process's own $TMPDIR holds anything.
func TestSignals(t *testing.T) {
	t.Parallel()
	haveISOTools(t)
	f := newSignalFixture(t)
	specFile := writeISOSpec(t, f.spec)
	compressed := map[string]any{}
	for k, v := range f.spec {
		compressed[k] = v
	}
	compressed["squashfsCompression"] = "gzip -Xcompression-level 9"
	compressed["compressImage"] = "bzip2"
	compressedSpec := writeISOSpec(t, compressed)

	type point struct {
		name string
		cond func(r *running) func() bool
	}
	reading := point{"reading", func(r *running) func() bool {
		return func() bool { return r.readsUnder(f.in.storeRoot) || len(r.files()) > 0 }
	}}
	// The ISO holds some MiB of boot files before the store image.
	writing := point{"writing", func(r *running) func() bool { return r.growing(".*.tmp-*", 6<<20) }}
	for _, tc := range []struct {
		name   string
		args   func(out string) []string
		points []point
	}{
		{"store", func(out string) []string {
			return []string{"store", "-o", filepath.Join(out, "nix-store.squashfs"), "--registration-out", filepath.Join(out, "registration"),
				"--store-root", f.in.storeRoot, "--comp", "zstd", "--level", "19", "--exact-level", f.big}
		}, []point{reading, writing}},
		{"build", func(out string) []string {
			return []string{"build", specFile, "-o", out, "--store-root", f.in.storeRoot}
		}, []point{reading, writing}},
		{"build-compressImage", func(out string) []string {
			return []string{"build", compressedSpec, "-o", out, "--store-root", f.in.storeRoot}
		}, []point{
			{"writing-iso", func(r *running) func() bool { return r.growing(".image.iso.tmp-*", 6<<20) }},
			{"compressing", func(r *running) func() bool { return r.growing(".nixos-test.iso.bz2.tmp-*", 1) }},
		}},
	} {
		for _, p := range tc.points {
			for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
				t.Run(tc.name+"/"+p.name+"/"+sigName(sig), func(t *testing.T) {
					out := t.TempDir()
					r := startCLI(t, out, tc.args(out)...)
					r.waitFor(t, p.name, p.cond(r))
					t.Logf("at %s: %v", p.name, r.files())
					if err := r.cmd.Process.Signal(sig); err != nil {
						t.Fatal(err)
					}
					sent := time.Now()
					select {
					case <-r.done:
					case <-time.After(30 * time.Second):
						t.Fatalf("still running 30s after %s", sigName(sig))
					}
					t.Logf("%s ended %v after %s; stderr: %s", tc.name, time.Since(sent).Round(time.Millisecond), sigName(sig), r.stderr.String())
					if took := time.Since(sent); took > 5*time.Second {
						t.Errorf("took %v to stop", took)
					}
					if code, want := r.cmd.ProcessState.ExitCode(), 128+int(sig); code != want {
						t.Errorf("exit status %d (%v), want %d", code, r.cmd.ProcessState, want)
					}
					for _, w := range []string{"imagegen " + strings.Split(tc.name, "-")[0] + ": interrupted by " + sigName(sig), "build was stopped"} {
						if !strings.Contains(r.stderr.String(), w) {
							t.Errorf("stderr lacks %q:\n%s", w, r.stderr.String())
						}
					}
					if r.stdout.Len() > 0 {
						t.Errorf("stdout reports: %s", r.stdout.String())
					}
					assertEmptyDir(t, out)
					assertEmptyDir(t, r.tmp)
				})
			}
		}
	}
}

func sigName(s syscall.Signal) string {
	return map[syscall.Signal]string{syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM"}[s]
}

// TestStaleTemp leaves what a killed run leaves (a temporary output in
// the output directory, a temporary directory in $TMPDIR), once old and
// once fresh: the next run removes the old ones and says so on stderr,
// and keeps the fresh ones, which may be a concurrent run's.
func TestStaleTemp(t *testing.T) {
	t.Parallel()
	haveISOTools(t)
	in := newISOInputs(t, "", "")
	specFile := writeISOSpec(t, in.spec())
	out, tmp := t.TempDir(), t.TempDir()
	old := time.Now().Add(-time.Hour)
	staleFile := filepath.Join(out, ".nixos-test.iso.tmp-1234567")
	freshFile := filepath.Join(out, ".nixos-test.iso.tmp-7654321")
	staleDir := filepath.Join(tmp, "imagegen-1234567")
	freshDir := filepath.Join(tmp, "imagegen-7654321")
	for _, d := range []string{staleDir, freshDir} {
		mustMkdir(t, d)
		mustWrite(t, filepath.Join(d, "image.iso"), blob(4096), 0o644)
	}
	mustWrite(t, staleFile, blob(4096), 0o644)
	mustWrite(t, freshFile, blob(4096), 0o644)
	for _, p := range []string{staleFile, staleDir, filepath.Join(staleDir, "image.iso")} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	res := runCLI(t, cliOpts{env: []string{"TMPDIR=" + tmp}}, "build", specFile, "-o", out, "--store-root", in.storeRoot)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	t.Logf("stderr: %s", res.stderr)
	for _, p := range []string{staleFile, staleDir} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("stale %s: %v, want it removed", p, err)
		}
		if !strings.Contains(res.stderr, "removed "+p+", left by an interrupted run") {
			t.Errorf("stderr does not report removing %s:\n%s", p, res.stderr)
		}
	}
	for _, p := range []string{freshFile, freshDir} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("fresh %s: %v, want it kept", p, err)
		}
		if strings.Contains(res.stderr, p) {
			t.Errorf("stderr names the fresh %s:\n%s", p, res.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "nixos-test.iso")); err != nil {
		t.Errorf("the ISO: %v", err)
	}
}
