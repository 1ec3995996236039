package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nixlive/nixlive/imagegen/squashfs"
	"github.com/nixlive/nixlive/internal/boottest/nixtest"
	"github.com/nixlive/nixlive/internal/boottest/sqfscheck"
	"github.com/nixlive/nixlive/internal/copyfile"
	"github.com/nixlive/nixlive/internal/nix/closure"
	"github.com/nixlive/nixlive/internal/nix/registration"
	"github.com/nixlive/nixlive/internal/nix/storepath"
	"github.com/nixlive/nixlive/live"
)

// testEpoch is the SOURCE_DATE_EPOCH the tests build with; it is not the
// default (315532800), so that a writer ignoring the variable is caught.
const testEpoch = 1234567890

// nixFixture is a small store made by real Nix (nix-bin) under a temporary
// store root:
//
//   - nix-store --add paths: "tool", a directory with an executable, a
//     relative symlink, an empty file, an empty directory and a 150 KB
//     file (many 4 KiB blocks plus a fragment); "file.txt"; and
//     "unrelated.txt", which nothing refers to and which must stay out of
//     every image;
//   - builtins.toFile paths whose references Nix recorded itself: a chain
//     c3 -> c2 -> c1 -> file.txt (c3 also -> tool) and a diamond
//     top -> left, right -> bottom (top also -> c1).
//
// The roots are given to imagegen as c3 (a store path) and a host symlink
// "result" leading to top, as a GC root would.
type nixFixture struct {
	root      string   // store root (Nix's --store DIR)
	args      []string // the roots as given to imagegen
	roots     []string // the store paths they designate
	closure   []string // the closure of roots, sorted
	unrelated string
	tool      string
	result    string // the host symlink to top
}

func newNixFixture(t *testing.T) *nixFixture {
	t.Helper()
	nixtest.HaveNix(t)
	f := &nixFixture{root: nixtest.NewStore(t)}

	src := t.TempDir()
	tool := filepath.Join(src, "tool")
	mustMkdir(t, filepath.Join(tool, "bin"), filepath.Join(tool, "share", "empty"), filepath.Join(tool, "data"))
	mustWrite(t, filepath.Join(tool, "bin", "hello"), []byte("#!/bin/sh\necho hello from the store\n"), 0o755)
	mustWrite(t, filepath.Join(tool, "share", "empty-file"), nil, 0o644)
	mustWrite(t, filepath.Join(tool, "data", "blob"), blob(150*1024+123), 0o644)
	if err := os.Symlink("../bin/hello", filepath.Join(tool, "share", "hello-link")); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(src, "file.txt")
	mustWrite(t, file, []byte("some data\n"), 0o644)
	unrelated := filepath.Join(src, "unrelated.txt")
	mustWrite(t, unrelated, []byte("nobody refers to me\n"), 0o644)

	f.tool = nixtest.Add(t, f.root, tool)
	fileP := nixtest.Add(t, f.root, file)
	f.unrelated = nixtest.Add(t, f.root, unrelated)

	c1 := nixtest.ToFile(t, f.root, "c1", "first "+fileP+"\n")
	c2 := nixtest.ToFile(t, f.root, "c2", "then "+c1+"\n")
	c3 := nixtest.ToFile(t, f.root, "c3", "last "+c2+"\nrun "+f.tool+"/bin/hello\n")
	bottom := nixtest.ToFile(t, f.root, "bottom", "base\n")
	left := nixtest.ToFile(t, f.root, "left", "l "+bottom+"\n")
	right := nixtest.ToFile(t, f.root, "right", "r "+bottom+"\n")
	top := nixtest.ToFile(t, f.root, "top", left+" "+right+" "+c1+"\n")

	// Give the store's files owners other than root (as root, Nix made
	// them root's), so that the image's all-root rule is visible.
	if os.Geteuid() == 0 {
		for _, p := range []string{f.tool, fileP, c1, top} {
			err := filepath.WalkDir(filepath.Join(f.root, p), func(p string, _ fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				return os.Lchown(p, 12345, 23456)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}

	f.result = filepath.Join(t.TempDir(), "result")
	if err := os.Symlink(top, f.result); err != nil {
		t.Fatal(err)
	}
	f.args = []string{c3, f.result}
	f.roots = []string{c3, top}
	f.closure = []string{f.tool, fileP, c1, c2, c3, bottom, left, right, top}
	slices.Sort(f.closure)
	// Our expectation of the closure must be Nix's own, or the fixture is
	// wrong rather than the code under test.
	if got := requisites(t, f.root, f.roots...); !slices.Equal(got, f.closure) {
		t.Fatalf("fixture: Nix's closure of the roots is\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(f.closure, "\n"))
	}
	return f
}

// blob is n bytes of deterministic data: a compressible half and an
// incompressible half.
func blob(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		if i < n/2 {
			b[i] = byte("the quick brown fox jumps over the lazy dog\n"[i%44])
			continue
		}
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func mustMkdir(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func mustWrite(t *testing.T, name string, data []byte, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(name, data, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(name, perm); err != nil { // whatever the umask
		t.Fatal(err)
	}
}

// tempDir is t.TempDir that may be filled with read-only directories (copies
// of store paths): they are made writable again before it is removed.
func tempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Cleanup(func() {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(p, 0o755)
			}
			return nil
		})
	})
	return dir
}

// runMain runs the command line in-process and returns the exit code and what
// it wrote to stdout and stderr.
func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	o, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	e, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	code = run(args, o, e)
	ob, _ := os.ReadFile(o.Name())
	eb, _ := os.ReadFile(e.Name())
	return code, string(ob), string(eb)
}

// mustMain is runMain that fails the test unless the command succeeds.
func mustMain(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := runMain(t, args...)
	if code != 0 {
		t.Fatalf("imagegen %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout
}

// storeArgs is the command line that builds out from f's roots.
func (f *nixFixture) storeArgs(out string, extra ...string) []string {
	args := []string{"store", "-o", out, "--store-root", f.root}
	args = append(args, extra...)
	return append(args, f.args...)
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// extract reads one file out of image with unsquashfs.
func extract(t *testing.T, image, name string) []byte {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "x")
	if out, err := exec.Command("unsquashfs", "-n", "-d", dir, image, name).CombinedOutput(); err != nil {
		t.Fatalf("unsquashfs -d %s %s %s: %v\n%s", dir, image, name, err, out)
	}
	return readFile(t, filepath.Join(dir, name))
}

// topLevel lists the entries at the root of image (unsquashfs listing).
func topLevel(t *testing.T, image string) []sqfscheck.Entry {
	t.Helper()
	entries, err := sqfscheck.Listing(image)
	if err != nil {
		t.Fatal(err)
	}
	var out []sqfscheck.Entry
	for _, e := range entries {
		if e.Path != "." && !strings.Contains(e.Path, "/") {
			out = append(out, e)
		}
	}
	return out
}

// imagePaths returns the store paths an image holds: its top-level entries
// except nix-path-registration, as /nix/store/... paths, sorted.
func imagePaths(t *testing.T, image string) []string {
	t.Helper()
	var out []string
	for _, e := range topLevel(t, image) {
		if e.Path != live.RegistrationName {
			out = append(out, storepath.DefaultStoreDir+"/"+e.Path)
		}
	}
	slices.Sort(out)
	return out
}

func parseRegistration(t *testing.T, data []byte) []registration.Record {
	t.Helper()
	recs, err := registration.Parse(bytes.NewReader(data), "")
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func recordPaths(recs []registration.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Path)
	}
	return out
}

// requisites is `nix-store -q --requisites paths...`, sorted.
func requisites(t *testing.T, storeRoot string, paths ...string) []string {
	t.Helper()
	out := nixtest.Lines(nixtest.Run(t, storeRoot, append([]string{"-q", "--requisites"}, paths...)...))
	slices.Sort(out)
	return out
}

// verifyStore runs `nix-store --verify --check-contents` and fails on any
// complaint: Nix exits 0 even when it drops a path that disappeared, so its
// messages are checked too.
func verifyStore(t *testing.T, storeRoot string) {
	t.Helper()
	_, stderr, err := nixtest.Exec(t, storeRoot, nil, "nix-store", "--verify", "--check-contents")
	if err != nil {
		t.Fatalf("nix-store --verify --check-contents: %v", err)
	}
	for _, bad := range []string{"disappeared", "modified", "error", "warning", "invalid"} {
		if strings.Contains(string(stderr), bad) {
			t.Fatalf("nix-store --verify --check-contents complains (%q):\n%s", bad, stderr)
		}
	}
}

// freshStoreWith makes a new store root holding copies of paths' files
// (from the store root from) and loads reg into its database.
func freshStoreWith(t *testing.T, from string, paths []string, reg []byte) string {
	t.Helper()
	dir := nixtest.NewStore(t)
	nixtest.CopyStorePaths(t, from, dir, paths)
	nixtest.RunInput(t, dir, reg, "--load-db")
	return dir
}

func setMtime(p string, mt time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(mt.UnixNano()), unix.NsecToTimespec(mt.UnixNano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// mirror lays out on the host what the image of paths must hold: a 0755
// root dated epoch, nix-path-registration (0644, dated epoch) holding reg,
// and a copy of each store path with its store modes and mtimes.
func mirror(t *testing.T, storeRoot string, paths []string, reg []byte, epoch int64) string {
	t.Helper()
	dir := filepath.Join(tempDir(t), "image")
	mustMkdir(t, dir)
	reg0 := filepath.Join(dir, live.RegistrationName)
	mustWrite(t, reg0, reg, 0o644)
	for _, p := range paths {
		if err := copyfile.Tree(filepath.Join(storeRoot, p), filepath.Join(dir, path.Base(p))); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{reg0, dir} {
		if err := setMtime(p, time.Unix(epoch, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestStoreRegistrationAgainstNix builds the image of a Nix-made store and
// checks it with readers and tools that share no code with ours: the
// registration inside the image (read by unsquashfs) is the one written
// beside it, carries Nix's own hashes, sizes and references, and once
// loaded into a fresh store Nix verifies every path's contents and finds
// the image's path set as the closure; the image holds exactly that
// closure, owned by root, with store modes and mtimes, dated
// SOURCE_DATE_EPOCH at the root.
func TestStoreRegistrationAgainstNix(t *testing.T) {
	sqfscheck.HaveTools(t)
	f := newNixFixture(t)
	t.Setenv("SOURCE_DATE_EPOCH", strconv.Itoa(testEpoch))

	out := t.TempDir()
	img := filepath.Join(out, "nix-store.squashfs")
	regOut := filepath.Join(out, "registration")
	stdout := mustMain(t, f.storeArgs(img, "--registration-out", regOut)...)
	if !strings.Contains(stdout, fmt.Sprintf("%d store paths", len(f.closure))) {
		t.Errorf("stdout %q does not report %d store paths", stdout, len(f.closure))
	}

	reg := readFile(t, regOut)
	if inImage := extract(t, img, live.RegistrationName); !bytes.Equal(inImage, reg) {
		t.Fatalf("nix-path-registration in the image differs from --registration-out:\nimage:\n%s\nfile:\n%s", inImage, reg)
	}
	if !bytes.HasSuffix(reg, []byte("\n")) || bytes.HasSuffix(reg, []byte("\n\n")) {
		t.Errorf("registration must end with exactly one newline: %q", reg[max(0, len(reg)-40):])
	}

	// The image holds exactly the closure, and the registration describes
	// exactly the image.
	paths := imagePaths(t, img)
	if !slices.Equal(paths, f.closure) {
		t.Fatalf("image holds\n%s\nwant the closure\n%s", strings.Join(paths, "\n"), strings.Join(f.closure, "\n"))
	}
	if slices.Contains(paths, f.unrelated) {
		t.Fatalf("image holds %s, which nothing refers to", f.unrelated)
	}
	recs := parseRegistration(t, reg)
	if got := recordPaths(recs); !slices.Equal(got, f.closure) {
		t.Fatalf("registration records (in this order)\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(f.closure, "\n"))
	}

	t.Run("NixOwnData", func(t *testing.T) {
		// Nix registered these paths itself (--add, toFile): its database
		// must hold the same hash, size and references for each.
		dump := nixtest.Run(t, f.root, append([]string{"--dump-db"}, f.closure...)...)
		want := map[string]registration.Record{}
		for _, r := range parseRegistration(t, []byte(dump)) {
			want[r.Path] = r
		}
		for _, r := range recs {
			w, ok := want[r.Path]
			switch {
			case !ok:
				t.Errorf("%s: not in Nix's database", r.Path)
			case r.NarHash != w.NarHash:
				t.Errorf("%s: NAR hash %s, Nix has %s", r.Path, r.HashString(), w.HashString())
			case r.NarSize != w.NarSize:
				t.Errorf("%s: NAR size %d, Nix has %d", r.Path, r.NarSize, w.NarSize)
			case !slices.Equal(r.References, sorted(w.References)):
				t.Errorf("%s: references\n%v\nNix has\n%v", r.Path, r.References, w.References)
			case r.Deriver != "":
				t.Errorf("%s: deriver %q, want none", r.Path, r.Deriver)
			}
		}
	})

	t.Run("LoadDB", func(t *testing.T) {
		fresh := freshStoreWith(t, f.root, paths, reg)
		verifyStore(t, fresh)
		if got := requisites(t, fresh, f.roots...); !slices.Equal(got, paths) {
			t.Errorf("in the loaded store, -q --requisites of the roots is\n%s\nwant the image's paths\n%s", strings.Join(got, "\n"), strings.Join(paths, "\n"))
		}
		for _, r := range f.roots {
			got, want := requisites(t, fresh, r), requisites(t, f.root, r)
			if !slices.Equal(got, want) {
				t.Errorf("-q --requisites %s: loaded store says\n%s\nthe original store says\n%s", r, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		}
		// The check above has teeth: a changed byte is caught.
		victim := filepath.Join(fresh, f.tool, "bin", "hello")
		if err := os.Chmod(filepath.Dir(victim), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(victim, 0o755); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, victim, []byte("#!/bin/sh\necho HELLO from the store\n"), 0o555)
		if _, stderr, err := nixtest.Exec(t, fresh, nil, "nix-store", "--verify", "--check-contents"); err == nil && !strings.Contains(string(stderr), "modified") {
			t.Errorf("nix-store --verify --check-contents did not notice a modified file:\n%s", stderr)
		}
	})

	want := mirror(t, f.root, f.closure, reg, testEpoch)

	t.Run("Listing", func(t *testing.T) {
		// Whole tree: paths, types, modes, sizes, symlink targets, mtimes
		// (to the minute), every entry 0/0.
		if err := sqfscheck.CompareListing(img, want, 0, 0); err != nil {
			t.Error(err)
		}
		entries, err := sqfscheck.Listing(img)
		if err != nil {
			t.Fatal(err)
		}
		epochMinute := time.Unix(testEpoch, 0).UTC().Truncate(time.Minute)
		storeMinute := time.Unix(1, 0).UTC().Truncate(time.Minute)
		for _, e := range entries {
			if e.Uid != 0 || e.Gid != 0 {
				t.Errorf("%s: owner %d/%d, want 0/0", e.Path, e.Uid, e.Gid)
			}
			switch e.Path {
			case ".":
				if e.Mode != fs.ModeDir|0o755 {
					t.Errorf("root: mode %v, want drwxr-xr-x", e.Mode)
				}
				fallthrough
			case live.RegistrationName:
				if !e.ModTime.Equal(epochMinute) {
					t.Errorf("%s: mtime %s, want SOURCE_DATE_EPOCH %s", e.Path, e.ModTime, epochMinute)
				}
			default:
				if !e.ModTime.Equal(storeMinute) {
					t.Errorf("%s: mtime %s, want the store's %s", e.Path, e.ModTime, storeMinute)
				}
			}
		}
		info, err := sqfscheck.Superblock(img)
		if err != nil {
			t.Fatal(err)
		}
		if info.Raw.ModTime != testEpoch {
			t.Errorf("superblock mtime %d, want SOURCE_DATE_EPOCH %d", info.Raw.ModTime, testEpoch)
		}
	})

	t.Run("Extract", func(t *testing.T) {
		// Contents, and mtimes to the second (1 for the store, the epoch
		// for the root and the registration).
		if err := sqfscheck.ExtractAndDiff(img, want); err != nil {
			t.Error(err)
		}
	})

	t.Run("KernelMount", func(t *testing.T) {
		sqfscheck.RequireMount(t)
		if err := sqfscheck.MountAndDiff(img, want); err != nil {
			t.Error(err)
		}
	})
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestStoreClosureInfoSameBytes checks that --closure-info gives the image
// scanning gives, whether the closureInfo folder is ours (WriteClosureInfo)
// or made from Nix's own data (`-q --requisites` for store-paths,
// `--dump-db` with its base16 hashes for registration); and that the
// folder's contents are what Nix thinks the closure is.
func TestStoreClosureInfoSameBytes(t *testing.T) {
	sqfscheck.HaveTools(t)
	f := newNixFixture(t)
	t.Setenv("SOURCE_DATE_EPOCH", strconv.Itoa(testEpoch))
	out := t.TempDir()

	scanImg := filepath.Join(out, "scan.squashfs")
	mustMain(t, f.storeArgs(scanImg, "--registration-out", filepath.Join(out, "scan.reg"))...)
	scan := readFile(t, scanImg)

	// Ours.
	c, err := closure.FromStoreRoot(storepath.Root{Dir: f.root}, f.args)
	if err != nil {
		t.Fatal(err)
	}
	ours := filepath.Join(out, "ours")
	mustMkdir(t, ours)
	if err := c.WriteClosureInfo(ours); err != nil {
		t.Fatal(err)
	}
	oursImg := filepath.Join(out, "ours.squashfs")
	mustMain(t, f.storeArgs(oursImg, "--closure-info", ours)...)
	if !bytes.Equal(readFile(t, oursImg), scan) {
		t.Errorf("--closure-info %s (WriteClosureInfo) gives other bytes than scanning", ours)
	}
	storePaths := nixtest.Lines(string(readFile(t, filepath.Join(ours, "store-paths"))))
	if !slices.Equal(storePaths, requisites(t, f.root, f.roots...)) {
		t.Errorf("store-paths %v is not Nix's -q --requisites of the roots", storePaths)
	}
	fresh := freshStoreWith(t, f.root, storePaths, readFile(t, filepath.Join(ours, "registration")))
	if got := requisites(t, fresh, f.roots...); !slices.Equal(got, storePaths) {
		t.Errorf("after --load-db of our registration, -q --requisites of the roots is\n%s\nwant store-paths\n%s",
			strings.Join(got, "\n"), strings.Join(storePaths, "\n"))
	}

	// Nix's.
	nix := filepath.Join(out, "nix")
	mustMkdir(t, nix)
	req := requisites(t, f.root, f.roots...)
	mustWrite(t, filepath.Join(nix, "store-paths"), []byte(strings.Join(req, "\n")+"\n"), 0o644)
	dump := nixtest.Run(t, f.root, append([]string{"--dump-db"}, req...)...)
	mustWrite(t, filepath.Join(nix, "registration"), []byte(dump), 0o644)
	nixImg := filepath.Join(out, "nix.squashfs")
	nixReg := filepath.Join(out, "nix.reg")
	mustMain(t, f.storeArgs(nixImg, "--closure-info", nix, "--registration-out", nixReg)...)
	if !bytes.Equal(readFile(t, nixImg), scan) {
		t.Errorf("--closure-info with Nix's own requisites and dump-db gives other bytes than scanning")
	}
	if !bytes.Equal(readFile(t, nixReg), readFile(t, filepath.Join(out, "scan.reg"))) {
		t.Errorf("registration from Nix's closureInfo differs from the scanned one")
	}

	// The closure does come from the folder: a smaller one (c3's only)
	// gives an image of just that.
	small := filepath.Join(out, "small")
	mustMkdir(t, small)
	smallReq := requisites(t, f.root, f.roots[0])
	mustWrite(t, filepath.Join(small, "store-paths"), []byte(strings.Join(smallReq, "\n")+"\n"), 0o644)
	mustWrite(t, filepath.Join(small, "registration"), []byte(nixtest.Run(t, f.root, append([]string{"--dump-db"}, smallReq...)...)), 0o644)
	smallImg := filepath.Join(out, "small.squashfs")
	mustMain(t, "store", "-o", smallImg, "--store-root", f.root, "--closure-info", small, f.roots[0])
	if !slices.Equal(imagePaths(t, smallImg), smallReq) {
		t.Errorf("image from closureInfo %v holds %v", smallReq, imagePaths(t, smallImg))
	}
	if len(smallReq) >= len(req) {
		t.Fatalf("fixture: c3's closure (%d) should be smaller than the whole (%d)", len(smallReq), len(req))
	}
}

// TestStoreReproducible checks that the image bytes depend only on the
// store paths and SOURCE_DATE_EPOCH: not on the run, the number of cores
// (GOMAXPROCS=1 and 4, the CLI binary run as a process), the working
// directory, or the mtimes of what lies outside the store paths (the store
// root, /nix, /nix/store, the database, the link given as a root); and
// that SOURCE_DATE_EPOCH does change them.
func TestStoreReproducible(t *testing.T) {
	f := newNixFixture(t)
	imagegenBinary(t)
	t.Setenv("SOURCE_DATE_EPOCH", strconv.Itoa(testEpoch))
	out := t.TempDir()

	// Default settings (zstd 19, 1 MiB blocks), twice in-process.
	a, b := filepath.Join(out, "a.squashfs"), filepath.Join(out, "b.squashfs")
	mustMain(t, f.storeArgs(a)...)
	mustMain(t, f.storeArgs(b)...)
	if !bytes.Equal(readFile(t, a), readFile(t, b)) {
		t.Fatal("two in-process builds of the same input differ")
	}

	// Small blocks, so that the blob is cut into many blocks that the
	// workers compress in parallel.
	small := []string{"--block-size", "4096", "--comp", "zstd", "--level", "9"}
	ref := filepath.Join(out, "ref.squashfs")
	mustMain(t, f.storeArgs(ref, small...)...)
	want := readFile(t, ref)

	for _, procs := range []string{"1", "4"} {
		cwd := t.TempDir() // a different working directory each time
		res := runCLI(t, cliOpts{dir: cwd, env: []string{"GOMAXPROCS=" + procs, "SOURCE_DATE_EPOCH=" + strconv.Itoa(testEpoch)}},
			f.storeArgs("out.squashfs", small...)...) // relative to cwd
		if res.code != 0 {
			t.Fatalf("GOMAXPROCS=%s: exit %d\n%s", procs, res.code, res.stderr)
		}
		if got := readFile(t, filepath.Join(cwd, "out.squashfs")); !bytes.Equal(got, want) {
			t.Errorf("GOMAXPROCS=%s in %s: image differs from the in-process build", procs, cwd)
		}
	}

	// Host mtimes outside the store paths.
	old := time.Unix(987654321, 0)
	for _, p := range []string{
		f.root,
		filepath.Join(f.root, "nix"),
		filepath.Join(f.root, "nix", "store"),
		filepath.Join(f.root, "nix", "var", "nix", "db", "db.sqlite"),
		filepath.Join(f.root, "nix", "var", "nix", "db"),
		f.result,
		filepath.Dir(f.result),
	} {
		if err := setMtime(p, old); err != nil {
			t.Fatal(err)
		}
	}
	after := filepath.Join(out, "after.squashfs")
	mustMain(t, f.storeArgs(after, small...)...)
	if !bytes.Equal(readFile(t, after), want) {
		t.Error("changing mtimes outside the store paths changed the image")
	}

	// SOURCE_DATE_EPOCH matters, so the comparisons above can fail.
	t.Setenv("SOURCE_DATE_EPOCH", strconv.Itoa(testEpoch+60))
	other := filepath.Join(out, "other.squashfs")
	mustMain(t, f.storeArgs(other, small...)...)
	if bytes.Equal(readFile(t, other), want) {
		t.Error("a different SOURCE_DATE_EPOCH gives the same bytes")
	}
}

// TestStoreCompressors builds the image with each compressor through the
// CLI and checks with unsquashfs that the superblock names the chosen
// compressor, level and block size, and that the extracted tree is the
// store's, byte for byte.
func TestStoreCompressors(t *testing.T) {
	sqfscheck.HaveTools(t)
	f := newNixFixture(t)
	t.Setenv("SOURCE_DATE_EPOCH", strconv.Itoa(testEpoch))
	out := t.TempDir()

	regFile := filepath.Join(out, "reg")
	mustMain(t, f.storeArgs(filepath.Join(out, "default.squashfs"), "--registration-out", regFile)...)
	want := mirror(t, f.root, f.closure, readFile(t, regFile), testEpoch)

	cases := []struct {
		name       string
		args       []string
		comp       string // as unsquashfs -s names it
		level      int    // printed compression-level, 0: none printed
		option     string // another option line that must be printed
		blockSize  int
		compressed bool
	}{
		{"default", nil, "zstd", 19, "", 1 << 20, true},
		{"zstd-3", []string{"--comp", "zstd", "--level", "3"}, "zstd", 3, "", 1 << 20, true},
		{"gzip", []string{"--comp", "gzip"}, "gzip", 0, "", 1 << 20, true},
		{"gzip-1", []string{"--comp", "gzip", "--level", "1"}, "gzip", 1, "", 1 << 20, true},
		{"xz", []string{"--comp", "xz"}, "xz", 0, "", 1 << 20, true},
		{"lz4", []string{"--comp", "lz4"}, "lz4", 0, "", 1 << 20, true},
		{"lz4-hc", []string{"--comp", "lz4", "--level", "9"}, "lz4", 0, "High Compression option specified (-Xhc)", 1 << 20, true},
		{"none", []string{"--comp", "none"}, "gzip", 0, "", 1 << 20, false},
		{"zstd-4k", []string{"--block-size", "4096"}, "zstd", 19, "", 4096, true},
		{"gzip-64k", []string{"--comp", "gzip", "--block-size", "65536"}, "gzip", 0, "", 65536, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := filepath.Join(out, tc.name+".squashfs")
			mustMain(t, f.storeArgs(img, tc.args...)...)
			info, err := sqfscheck.Superblock(img)
			if err != nil {
				t.Fatal(err)
			}
			if info.Compression != tc.comp {
				t.Errorf("compression %q, want %q", info.Compression, tc.comp)
			}
			level, ok := info.CompressionLevel()
			switch {
			case tc.level != 0 && (!ok || level != tc.level):
				t.Errorf("compression level %d (printed: %v), want %d; options %q", level, ok, tc.level, info.CompressionOptions)
			case tc.level == 0 && ok:
				t.Errorf("compression level %d printed, want the compressor's default (none printed)", level)
			}
			if tc.option != "" && !slices.Contains(info.CompressionOptions, tc.option) {
				t.Errorf("compressor options %q lack %q", info.CompressionOptions, tc.option)
			}
			if info.BlockSize != tc.blockSize {
				t.Errorf("block size %d, want %d", info.BlockSize, tc.blockSize)
			}
			if info.DataCompressed != tc.compressed || info.InodesCompressed != tc.compressed {
				t.Errorf("data compressed %v, inodes compressed %v, want %v", info.DataCompressed, info.InodesCompressed, tc.compressed)
			}
			if info.Raw.ModTime != testEpoch {
				t.Errorf("superblock mtime %d, want %d", info.Raw.ModTime, testEpoch)
			}
			if err := sqfscheck.ExtractAndDiff(img, want); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestDescribeContent checks the wording of the line "imagegen store" and
// "imagegen build" print about where the content went.
func TestDescribeContent(t *testing.T) {
	st := squashfs.Stats{Content: 100 << 20, Duplicate: 10 << 20, Sparse: 1 << 20, Compressed: 89 << 20}
	for _, c := range []struct {
		trialKept int64
		want      string
	}{
		{0, "100.0 MiB of content: 10.0 MiB duplicate, 1.0 MiB sparse, 89.0 MiB compressed"},
		{3 << 19, "100.0 MiB of content: 10.0 MiB duplicate, 1.0 MiB sparse, 89.0 MiB compressed (1.5 MiB of it kept level 1's result)"},
	} {
		st.TrialKept = c.trialKept
		if got := describeContent(st); got != c.want {
			t.Errorf("DescribeContent(%+v) = %q, want %q", st, got, c.want)
		}
	}
}
