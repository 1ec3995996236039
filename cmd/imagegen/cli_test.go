package main

import (
	"crypto/sha256"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nixlive/nixlive/internal/boottest/clitest"
	"github.com/nixlive/nixlive/internal/nix/nar"
	"github.com/nixlive/nixlive/internal/nix/registration"
	"github.com/nixlive/nixlive/internal/nix/storepath"
)

// imagegenCmd is the imagegen binary, for tests that need a real process
// (GOMAXPROCS, working directory, another user, hangs).
var imagegenCmd = &clitest.Command{Pkg: "github.com/nixlive/nixlive/cmd/imagegen"}

func TestMain(m *testing.M) {
	code := m.Run()
	imagegenCmd.Cleanup()
	os.Exit(code)
}

func imagegenBinary(t *testing.T) string { return imagegenCmd.Path(t) }

type cliOpts struct {
	dir    string   // working directory ("" : the test's)
	env    []string // added to the environment (SOURCE_DATE_EPOCH and GOMAXPROCS are removed first)
	nobody bool     // run as uid/gid 65534 with setpriv
}

type cliResult struct {
	code           int
	stdout, stderr string
}

// runCLI runs the imagegen binary with args (see clitest.Command.Run).
func runCLI(t *testing.T, o cliOpts, args ...string) cliResult {
	t.Helper()
	r := imagegenCmd.Run(t, clitest.Options{Dir: o.dir, Env: o.env, Nobody: o.nobody}, args...)
	return cliResult{code: r.Code, stdout: r.Stdout, stderr: r.Stderr}
}

// fakePath is a store path with a made-up hash: the hash character c
// repeated, which also orders the paths.
func fakePath(c byte, name string) string {
	return storepath.DefaultStoreDir + "/" + strings.Repeat(string(c), storepath.HashLen) + "-" + name
}

// openUp gives "other" read and search permission on dir and every parent
// that lacks it, so that another user can reach what is inside.
func openUp(t *testing.T, dir string) {
	t.Helper()
	for p := dir; p != "/" && p != "."; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o005 != 0o005 {
			if err := os.Chmod(p, fi.Mode().Perm()|0o005); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// writeClosureInfo writes a closureInfo folder; records get the paths' NAR
// hashes in storeRoot (the image is checked against them), made-up ones
// for paths that have none (a FIFO inside, say).
func writeClosureInfo(t *testing.T, dir, storeRoot string, storePaths []string, regPaths ...string) {
	t.Helper()
	mustMkdir(t, dir)
	var recs []registration.Record
	for _, p := range regPaths {
		rec := registration.Record{Path: p, NarHash: sha256.Sum256([]byte(p)), NarSize: 1234}
		if h, n, err := nar.Hash(filepath.Join(storeRoot, p)); err == nil {
			rec.NarHash, rec.NarSize = h, n
		}
		recs = append(recs, rec)
	}
	mustWrite(t, filepath.Join(dir, "store-paths"), []byte(strings.Join(storePaths, "\n")+"\n"), 0o644)
	mustWrite(t, filepath.Join(dir, "registration"), registration.Marshal(recs), 0o644)
}

// TestStoreBadInput runs the CLI on bad input of every kind and checks that
// it fails (exit 1), that stderr names the culprit (the path, or the file
// and line), and that the output directory is left empty: no image, no
// registration, no temporary file.
func TestStoreBadInput(t *testing.T) {
	imagegenBinary(t)

	// A hand-made store (no Nix needed: scanning reads files only).
	storeRoot := tempDir(t)
	host := func(p string) string { return filepath.Join(storeRoot, p) }
	good := fakePath('1', "good")
	mustMkdir(t, host(good)+"/bin")
	mustWrite(t, host(good)+"/bin/prog", blob(200<<10), 0o755) // written before a later path fails
	withFifo := fakePath('8', "with-fifo")
	mustMkdir(t, host(withFifo))
	mustWrite(t, host(withFifo)+"/a-file", []byte("fine\n"), 0o644)
	pipe := host(withFifo) + "/pipe"
	if err := syscall.Mkfifo(pipe, 0o644); err != nil {
		t.Fatal(err)
	}
	secretPath := fakePath('9', "secret")
	mustMkdir(t, host(secretPath))
	secret := host(secretPath) + "/secret"
	mustWrite(t, secret, []byte("top secret\n"), 0o000)
	missing := fakePath('2', "missing")
	outside := filepath.Join(t.TempDir(), "outside-the-store")
	mustWrite(t, outside, []byte("not a store path\n"), 0o644)
	openUp(t, host(good))
	openUp(t, host(secretPath))

	ci := t.TempDir()
	fifoInfo := filepath.Join(ci, "fifo")
	writeClosureInfo(t, fifoInfo, storeRoot, []string{good, withFifo}, good, withFifo)
	secretInfo := filepath.Join(ci, "secret")
	writeClosureInfo(t, secretInfo, storeRoot, []string{good, secretPath}, good, secretPath)
	openUp(t, secretInfo)
	noReg := filepath.Join(ci, "no-registration")
	writeClosureInfo(t, noReg, storeRoot, []string{good}, good)
	if err := os.Remove(filepath.Join(noReg, "registration")); err != nil {
		t.Fatal(err)
	}
	badHash := filepath.Join(ci, "bad-hash")
	writeClosureInfo(t, badHash, storeRoot, []string{good}, good)
	mustWrite(t, filepath.Join(badHash, "registration"), []byte(good+"\nsha256:not-a-hash\n1234\n\n0\n"), 0o644)
	writeClosureInfo(t, noReg+"-ok", storeRoot, []string{good}, good)
	unregistered := filepath.Join(ci, "unregistered")
	writeClosureInfo(t, unregistered, storeRoot, []string{good, withFifo}, good)

	cases := []struct {
		name   string
		args   []string
		nobody bool
		want   []string // in stderr
	}{
		{"MissingStorePath", []string{missing}, false, []string{missing}},
		{"MissingBesideGood", []string{good, missing}, false, []string{missing}},
		{"OutsideStoreEtcPasswd", []string{"/etc/passwd"}, false, []string{"/etc/passwd", "not in the store"}},
		{"OutsideStoreTempFile", []string{outside}, false, []string{outside, "not in the store"}},
		{"FifoScanning", []string{good, withFifo}, false, []string{pipe}},
		{"FifoClosureInfo", []string{"--closure-info", fifoInfo, good}, false, []string{pipe}},
		{"UnreadableScanning", []string{good, secretPath}, true, []string{secret, "permission denied"}},
		{"UnreadableClosureInfo", []string{"--closure-info", secretInfo, good}, true, []string{secret, "permission denied"}},
		{"ClosureInfoNoRegistration", []string{"--closure-info", noReg, good}, false, []string{filepath.Join(noReg, "registration")}},
		{"ClosureInfoBadHash", []string{"--closure-info", badHash, good}, false, []string{filepath.Join(badHash, "registration"), "line 2", "not-a-hash"}},
		{"RootNotInClosureInfo", []string{"--closure-info", noReg + "-ok", good, withFifo}, false, []string{withFifo, "not in the closure"}},
		{"ClosureInfoUnregistered", []string{"--closure-info", unregistered, good}, false, []string{filepath.Join(unregistered, "store-paths"), "line 2", withFifo}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			if tc.nobody {
				if os.Geteuid() == 0 {
					openUp(t, out)
					if err := os.Chmod(out, 0o777); err != nil {
						t.Fatal(err)
					}
				} else {
					tc.nobody = false // already a user that cannot read a 0000 file
				}
			}
			args := append([]string{"store", "-o", filepath.Join(out, "nix-store.squashfs"),
				"--registration-out", filepath.Join(out, "registration"),
				"--store-root", storeRoot, "--comp", "gzip", "--block-size", "4096"}, tc.args...)
			res := runCLI(t, cliOpts{dir: out, nobody: tc.nobody, env: []string{"SOURCE_DATE_EPOCH=1234567890"}}, args...)
			if res.code != 1 {
				t.Errorf("exit code %d, want 1\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("stderr does not name %q:\n%s", w, res.stderr)
				}
			}
			t.Logf("stderr: %s", res.stderr)
			if strings.Contains(res.stdout, "store paths") {
				t.Errorf("stdout reports success: %s", res.stdout)
			}
			assertEmptyDir(t, out)
		})
	}

	t.Run("NoOutput", func(t *testing.T) {
		out := t.TempDir()
		res := runCLI(t, cliOpts{dir: out}, "store", "--store-root", storeRoot, good)
		if res.code != 2 {
			t.Errorf("exit code %d, want 2\nstderr: %s", res.code, res.stderr)
		}
		for _, w := range []string{"-o is required", "usage: imagegen store"} {
			if !strings.Contains(res.stderr, w) {
				t.Errorf("stderr lacks %q:\n%s", w, res.stderr)
			}
		}
		assertEmptyDir(t, out)
	})

	// The same command lines succeed once the culprit is gone, so the
	// failures above are about the culprits and not the setup.
	t.Run("Control", func(t *testing.T) {
		out := t.TempDir()
		openUp(t, out)
		if err := os.Chmod(out, 0o777); err != nil {
			t.Fatal(err)
		}
		img := filepath.Join(out, "nix-store.squashfs")
		for _, nobody := range []bool{false, os.Geteuid() == 0} {
			res := runCLI(t, cliOpts{dir: out, nobody: nobody}, "store", "-o", img, "--registration-out", filepath.Join(out, "registration"),
				"--store-root", storeRoot, "--comp", "gzip", "--block-size", "4096", good)
			if res.code != 0 {
				t.Fatalf("nobody=%v: exit %d\n%s", nobody, res.code, res.stderr)
			}
		}
		entries, err := os.ReadDir(out)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 2 {
			t.Errorf("output dir holds %d entries, want the image and the registration", len(entries))
		}
	})
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, _ := e.Info()
		var mode fs.FileMode
		if info != nil {
			mode = info.Mode()
		}
		t.Errorf("left behind in the output directory: %s (%v)", e.Name(), mode)
	}
}
