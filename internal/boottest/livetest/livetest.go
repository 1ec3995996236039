// Package livetest builds what the live-CD boot tests boot, each piece once
// and only when a test asks for it, with the project's own tools: imagegen,
// a small store whose system's init is checkstage2 (the stand-in for stage
// 2), initrds with and without the rescue shell, and the live ISO; Parse
// reads what checkstage2 prints. Builds run in the background from the
// first Start or accessor call, shared by concurrent callers; the parent of
// parallel subtests should make the Env, whose directory outlives them.
// For tests only.
package livetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nixlive/nixlive/internal/boottest/vmtest"
	"github.com/nixlive/nixlive/internal/copyfile"
	"github.com/nixlive/nixlive/internal/gobuild"
)

// VolumeID is the test ISO's label: lower case, NixOS style, which the ISO
// and the kernel line must keep byte for byte.
const VolumeID = "nixlive-test-25.05-x86_64"

// Epoch dates everything on the ISO.
const Epoch = 315532800

// Packages built for the tests.
const (
	ImagegenPackage    = "github.com/nixlive/nixlive/cmd/imagegen"
	CheckStage2Package = "github.com/nixlive/nixlive/internal/boottest/testinit/cmd/checkstage2"
)

// Artifact names one thing an Env builds.
type Artifact int

const (
	Imagegen     Artifact = iota // the imagegen binary
	Store                        // the test store (and the checkstage2 binary in it)
	Initrd                       // imagegen initrd --kernel-modules
	RescueInitrd                 // the same with --rescue-shell
	ISO                          // imagegen build, with Initrd
	numArtifacts
)

func (a Artifact) String() string {
	return [...]string{"imagegen", "store", "initrd", "rescue initrd", "ISO"}[a]
}

// TestStore is the store the ISO carries.
type TestStore struct {
	Root   string // the directory standing for / (imagegen --store-root)
	System string // the system's store path; System+"/init" is checkstage2
	Data   string // a store path the system refers to
	File   string // a file in Data that spans several squashfs blocks
	SHA256 string // File's digest, hex
}

// Init is the stage 2 program, as the kernel line's init= names it.
func (s *TestStore) Init() string { return s.System + "/init" }

// Env builds the artifacts below its directory.
type Env struct {
	Dir    string
	Kernel vmtest.KernelFiles

	ctx    context.Context
	builds [numArtifacts]*build
	store  *TestStore
}

type build struct {
	once    sync.Once
	started atomic.Bool
	done    chan struct{}
	fn      func() (string, error)
	path    string
	err     error
	took    time.Duration
}

func (b *build) start() {
	b.once.Do(func() {
		b.started.Store(true)
		go func() {
			t0 := time.Now()
			b.path, b.err = b.fn()
			b.took = time.Since(t0)
			close(b.done)
		}()
	})
}

func (b *build) wait() (string, error) {
	b.start()
	<-b.done
	return b.path, b.err
}

// New makes an Env in a new temporary directory of t, for the kernel
// scripts/kernel.sh fetched. It skips the test if that kernel is missing,
// and, since the ISO needs them, if the bootloader files or grub-mkimage
// are.
func New(t testing.TB) *Env {
	t.Helper()
	k := vmtest.KernelAndModules(t)
	// imagegen.IsolinuxDir, SyslinuxBIOS and GrubEFIModDir, not imported:
	// the boot tests' binaries stay free of imagegen's cgo.
	for _, f := range []string{
		"/usr/lib/ISOLINUX/isolinux.bin",
		"/usr/lib/ISOLINUX/isohdpfx.bin",
		"/usr/lib/syslinux/modules/bios/ldlinux.c32",
		"/usr/lib/grub/x86_64-efi/linux.mod",
	} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("bootloader file missing (install isolinux, syslinux-common, grub-efi-amd64-bin; make test does): %v", err)
		}
	}
	if _, err := exec.LookPath("grub-mkimage"); err != nil {
		t.Skip("grub-mkimage not found (install grub-common; make test does)")
	}
	e := &Env{Dir: t.TempDir(), Kernel: k, ctx: t.Context()}
	e.builds[Imagegen] = &build{fn: e.buildImagegen}
	e.builds[Store] = &build{fn: e.buildStore}
	e.builds[Initrd] = &build{fn: func() (string, error) { return e.buildInitrd("initrd", false) }}
	e.builds[RescueInitrd] = &build{fn: func() (string, error) { return e.buildInitrd("initrd-rescue", true) }}
	e.builds[ISO] = &build{fn: e.buildISO}
	for _, b := range e.builds {
		b.done = make(chan struct{})
	}
	// The test's context is cancelled before its cleanups run, which stops
	// the builds; wait for them before the directory goes.
	t.Cleanup(func() {
		for _, b := range e.builds {
			if b.started.Load() {
				<-b.done
			}
		}
	})
	return e
}

// Start starts building the artifacts (and what they need) in the
// background; it does not wait.
func (e *Env) Start(as ...Artifact) {
	for _, a := range as {
		e.builds[a].start()
	}
}

// Path waits for an artifact and returns its path (for Store: the store
// root). It fails the test if the build failed.
func (e *Env) Path(t testing.TB, a Artifact) string {
	t.Helper()
	p, err := e.builds[a].wait()
	if err != nil {
		t.Fatalf("building the %s: %v", a, err)
	}
	return p
}

// Store waits for the test store.
func (e *Env) Store(t testing.TB) *TestStore {
	t.Helper()
	e.Path(t, Store)
	return e.store
}

// Took reports how long each finished build took (its own work and the
// wait for what it needs).
func (e *Env) Took() map[string]time.Duration {
	m := map[string]time.Duration{}
	for i, b := range e.builds {
		select {
		case <-b.done:
			if b.err == nil {
				m[Artifact(i).String()] = b.took.Round(10 * time.Millisecond)
			}
		default:
		}
	}
	return m
}

// Cmdline is the kernel command line of the ISO's default menu entry with
// a serial console, for boots that load the kernel and initrd directly;
// extra parameters follow.
func (e *Env) Cmdline(t testing.TB, extra ...string) string {
	t.Helper()
	s := e.Store(t)
	p := append([]string{
		"init=" + s.Init(), "root=LABEL=" + VolumeID, "systemConfig=" + s.System,
	}, e.kernelParams(s)...)
	p = append(p, "console=ttyS0,115200n8")
	return strings.Join(append(p, extra...), " ")
}

// kernelParams are the spec's kernelParams: quiet (the serial console is
// slow under TCG) and what checkstage2 checks.
func (e *Env) kernelParams(s *TestStore) []string {
	return []string{"quiet", "check.file=" + s.File, "check.sha256=" + s.SHA256}
}

// goBuild builds pkg into out with the flags every build of this module
// uses, so that the build cache serves all of them.
func (e *Env) goBuild(pkg, out string, static bool) error {
	if static {
		return gobuild.Static(e.ctx, out, pkg)
	}
	return gobuild.Host(e.ctx, out, pkg)
}

func (e *Env) buildImagegen() (string, error) {
	out := filepath.Join(e.Dir, "bin", "imagegen")
	return out, e.goBuild(ImagegenPackage, out, false)
}

// imagegen runs the imagegen binary.
func (e *Env) imagegen(args ...string) error {
	bin, err := e.builds[Imagegen].wait()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(e.ctx, bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("imagegen %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return nil
}

// storePath makes a made-up but valid store path for name.
func storePath(name string) string {
	const nix32 = "0123456789abcdfghijklmnpqrsvwxyz"
	h := sha256.Sum256([]byte("nixlive livetest " + name))
	var b strings.Builder
	for i := 0; i < 32; i++ {
		b.WriteByte(nix32[h[i]%32])
	}
	return "/nix/store/" + b.String() + "-" + name
}

// dataSize is the size of the data file: two full 1 MiB squashfs blocks and
// a tail in a fragment.
const dataSize = 2<<20 + 300<<10

// pseudoRandom returns n bytes that do not compress, the same every time.
func pseudoRandom(n int) []byte {
	out := make([]byte, 0, n+32)
	for i := 0; len(out) < n; i++ {
		h := sha256.Sum256(fmt.Appendf(nil, "block %d", i))
		out = append(out, h[:]...)
	}
	return out[:n]
}

func (e *Env) buildStore() (string, error) {
	root := filepath.Join(e.Dir, "store")
	s := &TestStore{
		Root:   root,
		System: storePath("nixlive-test-system"),
		Data:   storePath("nixlive-test-data"),
	}
	s.File = s.Data + "/share/data.bin"
	host := func(p string) string { return filepath.Join(root, p) }
	for _, d := range []string{host(s.System), filepath.Dir(host(s.File))} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	data := pseudoRandom(dataSize)
	sum := sha256.Sum256(data)
	s.SHA256 = hex.EncodeToString(sum[:])
	if err := os.WriteFile(host(s.File), data, 0o644); err != nil {
		return "", err
	}
	// The reference that puts Data in the system's closure.
	if err := os.WriteFile(host(s.System)+"/data-path", []byte(s.Data+"\n"), 0o644); err != nil {
		return "", err
	}
	if err := e.goBuild(CheckStage2Package, host(s.Init()), true); err != nil {
		return "", err
	}
	e.store = s
	return root, nil
}

func (e *Env) buildInitrd(name string, rescue bool) (string, error) {
	out := filepath.Join(e.Dir, name)
	args := []string{"initrd", "-o", out, "--kernel-modules", e.Kernel.Modules}
	if rescue {
		args = append(args, "--rescue-shell")
	}
	return out, e.imagegen(args...)
}

// Spec returns the JSON spec of the test ISO, for the initrd at initrd:
// the system of the test store, BIOS, EFI and USB, no menu delay, a
// serial console.
func (e *Env) Spec(t testing.TB, initrd string) []byte {
	t.Helper()
	b, err := e.spec(e.Store(t), initrd)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *Env) spec(s *TestStore, initrd string) ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"isoName":         "nixlive-test.iso",
		"volumeID":        VolumeID,
		"system":          s.System,
		"kernel":          e.Kernel.Vmlinuz,
		"initrd":          initrd,
		"kernelParams":    e.kernelParams(s),
		"boot":            map[string]any{"timeout": 0, "serialConsole": true},
		"sourceDateEpoch": Epoch,
	}, "", "  ")
}

func (e *Env) buildISO() (string, error) {
	if _, err := e.builds[Store].wait(); err != nil {
		return "", err
	}
	initrd, err := e.builds[Initrd].wait()
	if err != nil {
		return "", err
	}
	spec, err := e.spec(e.store, initrd)
	if err != nil {
		return "", err
	}
	specFile := filepath.Join(e.Dir, "spec.json")
	if err := os.WriteFile(specFile, spec, 0o644); err != nil {
		return "", err
	}
	out := filepath.Join(e.Dir, "live.iso")
	return out, e.imagegen("build", specFile, "-o", out, "--store-root", e.store.Root)
}

// BuildISO runs imagegen build on a spec (JSON) with the test store, and
// extra flags (such as --squashfs FILE); it returns the ISO's path.
func (e *Env) BuildISO(t testing.TB, name string, spec []byte, flags ...string) string {
	t.Helper()
	s := e.Store(t)
	dir := t.TempDir()
	specFile := filepath.Join(dir, "spec.json")
	if err := os.WriteFile(specFile, spec, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	args := append([]string{"build", specFile, "-o", out, "--store-root", s.Root}, flags...)
	if err := e.imagegen(args...); err != nil {
		t.Fatal(err)
	}
	return out
}

// FileExtent returns where a file of the ISO's Rock Ridge tree (such as
// "nix-store.squashfs") lies in the image, in bytes, as xorriso (an
// independent reader) reports it.
func FileExtent(iso, name string) (off, size int64, err error) {
	out, err := exec.Command("xorriso", "-indev", iso, "-find", "/"+name, "-exec", "report_lba", "--").CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("xorriso -indev %s: %v\n%s", iso, err, out)
	}
	ms := reportLBA.FindAllSubmatch(out, -1)
	if len(ms) == 0 {
		return 0, 0, fmt.Errorf("%s: no %s (xorriso: %s)", iso, name, bytes.TrimSpace(out))
	}
	for i, m := range ms { // one line per extent
		lba, _ := strconv.ParseInt(string(m[1]), 10, 64)
		n, _ := strconv.ParseInt(string(m[2]), 10, 64)
		if i == 0 {
			off = lba * 2048
		} else if lba*2048 != off+size {
			return 0, 0, fmt.Errorf("%s: %s is not contiguous", iso, name)
		}
		size += n
	}
	return off, size, nil
}

// reportLBA matches a line of xorriso's -exec report_lba: extent number,
// start block, blocks, bytes, path.
var reportLBA = regexp.MustCompile(`(?m)^File data lba:\s*\d+\s*,\s*(\d+)\s*,\s*\d+\s*,\s*(\d+)\s*,`)

// Ext4Image makes an ext4 disk image at img holding file at path inside
// it (mkfs.ext4 -d: no root, no mount), with room to spare.
func Ext4Image(ctx context.Context, img, label, file, path string) error {
	fi, err := os.Stat(file)
	if err != nil {
		return err
	}
	stage, err := os.MkdirTemp(filepath.Dir(img), "ext4-root-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	dst := filepath.Join(stage, filepath.FromSlash(strings.TrimPrefix(path, "/")))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Link(file, dst); err != nil {
		if err := copyfile.Copy(file, dst, 0o644); err != nil {
			return err
		}
	}
	sizeKiB := (fi.Size()+fi.Size()/4)>>10 + 16<<10
	cmd := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-L", label, "-d", stage, img, fmt.Sprintf("%dk", sizeKiB))
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.ext4: %v\n%s", err, msg)
	}
	return nil
}

// ExtractFile copies the first n bytes (all of it if n < 0) of the file
// name of the ISO to dst.
func ExtractFile(iso, name, dst string, n int64) error {
	off, size, err := FileExtent(iso, name)
	if err != nil {
		return err
	}
	if n < 0 || n > size {
		n = size
	}
	f, err := os.Open(iso)
	if err != nil {
		return err
	}
	defer f.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, io.NewSectionReader(f, off, n)); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
