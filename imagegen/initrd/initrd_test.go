package initrd_test

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/DataDog/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/u-root/u-root/pkg/cpio"

	"github.com/nixlive/nixlive/imagegen/initrd"
	"github.com/nixlive/nixlive/internal/boottest/vmtest"
	"github.com/nixlive/nixlive/live"
)

// initrdMaxSize bounds the initrd without the rescue shell: stage 1 and the
// modules of a CD, a USB stick and a virtio disk.
const initrdMaxSize = 6 << 20

// initrdBuild runs "imagegen initrd -o out --kernel-modules modules args..."
// (the binary bin) in dir (inside this module: stage 1 is built from its
// source) with a fresh TMPDIR, which must be empty afterwards, and env
// added. Unlike runCLI it allows the ten minutes a rescue shell build may
// take on a loaded machine with a cold build cache.
func initrdBuild(bin, out, modules, dir, tmp string, env []string, args ...string) error {
	argv := append([]string{"initrd", "-o", out, "--kernel-modules", modules}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, argv...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "SOURCE_DATE_EPOCH" && k != "GOMAXPROCS" && k != "TMPDIR" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, "TMPDIR="+tmp), env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("imagegen %s: %v\nstdout: %s\nstderr: %s", strings.Join(argv, " "), err, stdout.String(), stderr.String())
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		return fmt.Errorf("imagegen %s left %d files in TMPDIR, such as %s", strings.Join(argv, " "), len(left), left[0].Name())
	}
	return nil
}

// initrdRecords reads an initrd: zstd, then newc cpio (u-root's reader).
func initrdRecords(t *testing.T, p string) []cpio.Record {
	t.Helper()
	z, err := os.ReadFile(p)
	require.NoError(t, err)
	raw, err := zstd.Decompress(nil, z)
	require.NoError(t, err, "%s: not zstd", p)
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	require.NoError(t, err, "%s: not a newc cpio archive", p)
	return recs
}

// initrdData reads a record's contents.
func initrdData(t *testing.T, r cpio.Record) []byte {
	t.Helper()
	if r.ReaderAt == nil {
		return nil
	}
	b, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
	require.NoError(t, err, r.Name)
	return b
}

type initrdOnce struct {
	once sync.Once
	err  error
}

// initrdModDB is a module directory read independently of internal/kmod:
// modules.dep (file → dependency files, in order) and modules.builtin.
type initrdModDB struct {
	dir     string              // where the module files are, "" for none
	files   map[string]string   // normalized name → file
	deps    map[string][]string // file → files it needs
	lines   map[string]string   // file → its modules.dep line
	builtin map[string]bool     // normalized names
}

func initrdModName(file string) string {
	n := path.Base(file)
	if i := strings.Index(n, ".ko"); i >= 0 {
		n = n[:i]
	}
	return strings.ReplaceAll(n, "-", "_")
}

func initrdReadModDB(t *testing.T, dir string, dep, builtin []byte) *initrdModDB {
	t.Helper()
	db := &initrdModDB{dir: dir, files: map[string]string{}, deps: map[string][]string{}, lines: map[string]string{}, builtin: map[string]bool{}}
	sc := bufio.NewScanner(bytes.NewReader(dep))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		file, rest, ok := strings.Cut(sc.Text(), ":")
		require.True(t, ok, "modules.dep line %q", sc.Text())
		db.files[initrdModName(file)] = file
		db.deps[file] = strings.Fields(rest)
		db.lines[file] = sc.Text()
	}
	for _, l := range strings.Fields(string(builtin)) {
		db.builtin[initrdModName(l)] = true
	}
	return db
}

// closure returns the files of names and of everything they need.
func (db *initrdModDB) closure(t *testing.T, names []string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	var add func(f string)
	add = func(f string) {
		if out[f] {
			return
		}
		out[f] = true
		for _, d := range db.deps[f] {
			add(d)
		}
	}
	for _, n := range names {
		f, ok := db.files[strings.ReplaceAll(n, "-", "_")]
		require.True(t, ok, "module %s not in modules.dep", n)
		add(f)
	}
	return out
}

// glob returns the names of the modules whose files, without ".ko" and
// what follows, match one of patterns (path.Match) and none of those that
// start with "!".
func (db *initrdModDB) glob(patterns []string) []string {
	var names []string
	for name, f := range db.files {
		stem := f[:strings.Index(f, ".ko")]
		in, out := false, false
		for _, p := range patterns {
			x, neg := strings.CutPrefix(p, "!")
			if ok, _ := path.Match(x, stem); ok {
				in, out = in || !neg, out || neg
			}
		}
		if in && !out {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// loadOrder is the order modprobe loads names in: for each, its
// dependencies (modules.dep lists them with the one needed first last),
// then itself; each file once.
func (db *initrdModDB) loadOrder(names []string) []string {
	var order []string
	seen := map[string]bool{}
	var visit func(f string)
	visit = func(f string) {
		if seen[f] {
			return
		}
		seen[f] = true
		d := db.deps[f]
		for i := len(d) - 1; i >= 0; i-- {
			visit(d[i])
		}
		order = append(order, f)
	}
	for _, n := range names {
		if f, ok := db.files[strings.ReplaceAll(n, "-", "_")]; ok {
			visit(f)
		}
	}
	return order
}

// TestInitrd builds initrds with "imagegen initrd" for Debian's cloud
// kernel and reads them back with u-root's cpio reader.
func TestInitrd(t *testing.T) {
	k := vmtest.KernelAndModules(t)
	bin := imagegenBinary(t)
	dir := t.TempDir()
	var mu sync.Mutex
	builds := map[string]*initrdOnce{}
	// build makes the initrd called name once, whichever subtest asks
	// first, and returns its path.
	build := func(t *testing.T, name, cwd string, env []string, args ...string) string {
		t.Helper()
		mu.Lock()
		b := builds[name]
		if b == nil {
			b = &initrdOnce{}
			builds[name] = b
		}
		mu.Unlock()
		out := filepath.Join(dir, name)
		b.once.Do(func() {
			tmp := filepath.Join(dir, name+".tmp")
			if b.err = os.Mkdir(tmp, 0o755); b.err == nil {
				b.err = initrdBuild(bin, out, k.Modules, cwd, tmp, env, args...)
			}
		})
		if b.err != nil {
			t.Fatalf("building %s: %v", name, b.err)
		}
		return out
	}
	plain := func(t *testing.T) string { return build(t, "initrd", "", nil) }
	rescue := func(t *testing.T) string { return build(t, "initrd-rescue", "", nil, "--rescue-shell") }

	// The same inputs give the same bytes: another working directory (the
	// module's root), another TMPDIR, one core.
	for _, tc := range []struct {
		name  string
		first func(*testing.T) string
		args  []string
	}{
		{"reproducible", plain, nil},
		{"reproducible-rescue", rescue, []string{"--rescue-shell"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := tc.first(t)
			b := build(t, tc.name+"-again", "../..", []string{"GOMAXPROCS=1"}, tc.args...)
			da, err := os.ReadFile(a)
			require.NoError(t, err)
			db, err := os.ReadFile(b)
			require.NoError(t, err)
			if !bytes.Equal(da, db) {
				t.Errorf("two builds differ: %d and %d bytes, first difference at byte %d", len(da), len(db), initrdFirstDiff(da, db))
			}
			t.Logf("%s: %d bytes", filepath.Base(a), len(da))
		})
	}

	t.Run("size", func(t *testing.T) {
		t.Parallel()
		fi, err := os.Stat(plain(t))
		require.NoError(t, err)
		assert.Less(t, fi.Size(), int64(initrdMaxSize), "initrd without the rescue shell")
		t.Logf("initrd: %d bytes (%.2f MiB)", fi.Size(), float64(fi.Size())/(1<<20))
	})

	// The default initrd: /init is stage 1, static; the modules of the
	// default list that the kernel does not build in, with every module
	// they need as modules.dep says; the module database cut to them; the
	// list stage 1 loads.
	t.Run("contents", func(t *testing.T) {
		t.Parallel()
		recs := initrdRecords(t, plain(t))
		hostDep, err := os.ReadFile(filepath.Join(k.Modules, "modules.dep"))
		require.NoError(t, err)
		hostBuiltin, err := os.ReadFile(filepath.Join(k.Modules, "modules.builtin"))
		require.NoError(t, err)
		host := initrdReadModDB(t, k.Modules, hostDep, hostBuiltin)

		var want []string // the default modules the kernel has as files
		for _, n := range initrd.DefaultModules {
			if _, ok := host.files[strings.ReplaceAll(n, "-", "_")]; ok && !host.builtin[strings.ReplaceAll(n, "-", "_")] {
				want = append(want, n)
			}
		}
		require.NotEmpty(t, want)
		base := "lib/modules/" + k.Version + "/"
		checkInitrdRecords(t, recs, base, host, want, host.glob(initrd.DefaultHardware))
	})

	// --modules: exactly those and what they need.
	t.Run("explicit-modules", func(t *testing.T) {
		t.Parallel()
		recs := initrdRecords(t, build(t, "initrd-explicit", "", nil, "--modules", "isofs,sr_mod"))
		hostDep, err := os.ReadFile(filepath.Join(k.Modules, "modules.dep"))
		require.NoError(t, err)
		host := initrdReadModDB(t, k.Modules, hostDep, nil)
		checkInitrdRecords(t, recs, "lib/modules/"+k.Version+"/", host, []string{"isofs", "sr_mod"}, nil)
	})

	// A module the kernel does not have, named explicitly, is an error that
	// names it, and leaves no output.
	t.Run("unknown-module", func(t *testing.T) {
		t.Parallel()
		// A stand-in stage 1 (a static x86-64 ELF header, which --stage1
		// takes): the module list is what is under test.
		fake := filepath.Join(t.TempDir(), "stage1")
		mustWrite(t, fake, tinyELF(elf.ELFCLASS64, elf.EM_X86_64, elf.ET_EXEC, false), 0o755)
		for _, mods := range []string{"nosuchmod", "isofs,nosuchmod,sr_mod"} {
			out := filepath.Join(t.TempDir(), "initrd")
			res := runCLI(t, cliOpts{}, "initrd", "-o", out, "--kernel-modules", k.Modules, "--stage1", fake, "--modules", mods)
			assert.Equal(t, 1, res.code, "--modules %s: exit code; stderr: %s", mods, res.stderr)
			assert.Contains(t, res.stderr, `"nosuchmod"`, "--modules %s: the error names the module", mods)
			for _, ok := range []string{`"isofs"`, `"sr_mod"`} {
				assert.NotContains(t, res.stderr, ok, "--modules %s: the error blames a module that exists", mods)
			}
			_, err := os.Stat(out)
			assert.True(t, errors.Is(err, os.ErrNotExist), "--modules %s: a failed build leaves no initrd: %v", mods, err)
		}
	})

	// --rescue-shell adds /bin with the shell as /bin/sh.
	t.Run("rescue-contents", func(t *testing.T) {
		t.Parallel()
		recs := initrdRecords(t, rescue(t))
		byName := map[string]cpio.Record{}
		for _, r := range recs {
			byName[r.Name] = r
		}
		sh, ok := byName[strings.TrimPrefix(live.RescueShell, "/")]
		if assert.True(t, ok, "no %s", live.RescueShell) {
			assert.Equal(t, uint64(cpio.S_IFLNK), sh.Mode&cpio.S_IFMT, "%s is a symlink", live.RescueShell)
			assert.Equal(t, "gosh", string(initrdData(t, sh)))
		}
		for _, c := range initrd.RescueCommands {
			r, ok := byName["bin/"+c]
			if assert.True(t, ok, "no bin/%s", c) {
				assert.Equal(t, uint64(cpio.S_IFREG|0o755), r.Mode, "bin/%s", c)
				assertStaticELF(t, "bin/"+c, initrdData(t, r))
			}
		}
	})
}

// checkInitrdRecords checks an initrd's records: /init, the directories
// stage 1 mounts on, every record owned by root and dated 0, parents before
// children, no name twice; under base the module files of the closure of
// names (as host's modules.dep has them, byte for byte), modules.dep cut
// to them, and nixlive.modules listing names; the load order that follows
// from the initrd's own files puts every module after what it needs. The
// initrd carries the modules of carried too (for coldplug), and what they
// need, but does not list them.
func checkInitrdRecords(t *testing.T, recs []cpio.Record, base string, host *initrdModDB, names, carried []string) {
	t.Helper()
	byName := map[string]cpio.Record{}
	var listing []string
	for _, r := range recs {
		assert.NotContains(t, byName, r.Name, "%s twice", r.Name)
		byName[r.Name] = r
		listing = append(listing, r.Name)
		if r.Name != "." {
			_, ok := byName[path.Dir(r.Name)]
			assert.True(t, ok, "%s comes before its directory", r.Name)
		}
		assert.Zero(t, r.UID, "%s: uid", r.Name)
		assert.Zero(t, r.GID, "%s: gid", r.Name)
		assert.Zero(t, r.MTime, "%s: mtime", r.Name)
	}
	init, ok := byName["init"]
	if assert.True(t, ok, "no /init; the initrd lists %q", listing) {
		assert.Equal(t, uint64(cpio.S_IFREG|0o755), init.Mode, "/init mode")
		assertStaticELF(t, "init", initrdData(t, init))
	}
	for _, d := range []string{"dev", "proc", "sys", "run", strings.TrimPrefix(live.NewRoot, "/")} {
		r, ok := byName[d]
		if assert.True(t, ok, "no /%s", d) {
			assert.Equal(t, uint64(cpio.S_IFDIR), r.Mode&cpio.S_IFMT, "/%s is a directory", d)
		}
	}

	list, ok := byName[base+live.ModulesList]
	require.True(t, ok, "no %s%s; the initrd lists %q", base, live.ModulesList, listing)
	assert.Equal(t, strings.Join(names, "\n")+"\n", string(initrdData(t, list)), live.ModulesList)

	wantFiles := host.closure(t, append(append([]string{}, names...), carried...))
	gotFiles := map[string]bool{}
	for _, r := range recs {
		rel, ok := strings.CutPrefix(r.Name, base)
		if !ok || !strings.Contains(path.Base(rel), ".ko") {
			continue
		}
		gotFiles[rel] = true
		hostData, err := os.ReadFile(filepath.Join(host.dir, rel))
		if assert.NoError(t, err, "%s is not the kernel's", rel) {
			assert.True(t, bytes.Equal(hostData, initrdData(t, r)), "%s differs from the kernel's file", rel)
		}
	}
	assert.Equal(t, sortedKeys(wantFiles), sortedKeys(gotFiles), "the module files: the closure of %q as modules.dep says", names)

	// The database in the initrd: the host's lines of those files.
	depRec, ok := byName[base+"modules.dep"]
	require.True(t, ok, "no %smodules.dep", base)
	builtinRec, ok := byName[base+"modules.builtin"]
	require.True(t, ok, "no %smodules.builtin", base)
	_, ok = byName[base+"modules.alias"]
	assert.True(t, ok, "no %smodules.alias", base)
	inDB := initrdReadModDB(t, "", initrdData(t, depRec), initrdData(t, builtinRec))
	for f := range gotFiles {
		assert.Equal(t, host.lines[f], inDB.lines[f], "modules.dep line of %s", f)
	}
	assert.Len(t, inDB.lines, len(gotFiles), "modules.dep lists the files the initrd holds, no more")

	// Loaded in modprobe's order from the initrd's own list and database,
	// every module comes after what it needs, and all of them load.
	order := inDB.loadOrder(names)
	pos := map[string]int{}
	for i, f := range order {
		pos[f] = i
		assert.True(t, gotFiles[f], "stage 1 would load %s, which the initrd lacks", f)
	}
	for _, f := range order {
		for _, d := range host.deps[f] {
			if assert.Contains(t, pos, d, "%s needs %s, which the initrd cannot load", f, d) {
				assert.Less(t, pos[d], pos[f], "%s loads before %s, which needs it", d, f)
			}
		}
	}
	assert.Equal(t, sortedKeys(host.closure(t, names)), sortedKeys(setOf(order)), "the modules stage 1 loads")
	t.Logf("load order: %s", strings.Join(order, " "))
}

func setOf(s []string) map[string]bool {
	m := map[string]bool{}
	for _, v := range s {
		m[v] = true
	}
	return m
}

func sortedKeys(m map[string]bool) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	slices.Sort(s)
	return s
}

// assertStaticELF checks that data is an x86-64 executable without an
// interpreter: it runs in an initrd with no libc.
func assertStaticELF(t *testing.T, name string, data []byte) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(data))
	if !assert.NoError(t, err, "%s is not ELF", name) {
		return
	}
	defer f.Close()
	assert.Equal(t, elf.EM_X86_64, f.Machine, "%s machine", name)
	for _, p := range f.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "%s is dynamically linked", name)
	}
}

func initrdFirstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
