// Package testinit builds the initrd that vmtest's tests boot to check a
// kernel and the harness itself: a newc cpio archive whose only program,
// /init, is ./cmd/testinit (static), which prints
// "NIXLIVE-TESTINIT-OK cmdline=<the kernel command line>" on the console
// and powers the machine off. For tests only.
package testinit

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/nixlive/nixlive/internal/gobuild"
	"github.com/nixlive/nixlive/internal/kmod"
)

// Marker starts the line testinit prints once it runs; the kernel command
// line follows after " cmdline=".
const Marker = "NIXLIVE-TESTINIT-OK"

// BlockMarker starts the lines that list block devices: "<marker> NAME BYTES".
const BlockMarker = "NIXLIVE-TESTINIT-BLOCK"

// Package is the import path of the init program.
const Package = "github.com/nixlive/nixlive/internal/boottest/testinit/cmd/testinit"

// Options add kernel modules to the initrd; testinit loads them (in order,
// each after its dependencies) before it lists the block devices.
type Options struct {
	// ModulesDir is a kernel's lib/modules/<version> directory, with the
	// modules.dep of depmod (vmtest.KernelFiles.Modules).
	ModulesDir string
	// Modules are module names (ata_piix, sr_mod, virtio_blk...); their
	// dependencies come along. Only uncompressed .ko files are supported.
	Modules []string
}

// Initrd builds the test initrd (gzip-compressed) into a fresh temporary
// directory of t and returns its path. It fails the test if the build fails.
func Initrd(t testing.TB) string {
	t.Helper()
	return InitrdWith(t, Options{})
}

// InitrdWith is Initrd with options.
func InitrdWith(t testing.TB, opts Options) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "testinit.cpio.gz")
	if err := BuildInitrdWith(t.Context(), out, opts); err != nil {
		t.Fatalf("building the test initrd: %v", err)
	}
	return out
}

// BuildInitrd builds the init program with `CGO_ENABLED=0 go build` and
// writes the initrd to out: gzip-compressed if out ends in ".gz", a plain
// cpio archive otherwise. The same program gives the same bytes.
//
// It runs the go command found in PATH (else $GOROOT/bin/go), from the
// current directory, which must be inside this module (as it is for
// tests).
func BuildInitrd(ctx context.Context, out string) error {
	return BuildInitrdWith(ctx, out, Options{})
}

// BuildInitrdWith is BuildInitrd with options.
func BuildInitrdWith(ctx context.Context, out string, opts Options) error {
	bin, err := BuildInit(ctx, filepath.Dir(out))
	if err != nil {
		return err
	}
	defer os.Remove(bin)
	prog, err := os.ReadFile(bin)
	if err != nil {
		return err
	}

	var buf bytes.Buffer
	if strings.HasSuffix(out, ".gz") {
		// A zero gzip header: no name, no mtime.
		zw := gzip.NewWriter(&buf)
		if err := WriteInitrd(zw, prog, opts); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
	} else if err := WriteInitrd(&buf, prog, opts); err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

// BuildInit builds the static init program into a new file in dir and
// returns its path.
func BuildInit(ctx context.Context, dir string) (string, error) {
	f, err := os.CreateTemp(dir, "testinit-*.bin")
	if err != nil {
		return "", err
	}
	bin := f.Name()
	f.Close()
	if err := gobuild.Static(ctx, bin, Package); err != nil {
		os.Remove(bin)
		return "", err
	}
	return bin, nil
}

// ModuleDir and LoadOrder are where the initrd keeps its modules and the
// list of their file names in load order, one a line.
const (
	ModuleDir = "lib/modules"
	LoadOrder = ModuleDir + "/load.order"
)

// WriteInitrd writes an uncompressed newc cpio archive holding prog as
// /init (mode 0755), the empty directories /dev, /proc and /sys, and the
// modules of opts, every record owned by root, dated 0, with fixed inode
// numbers.
func WriteInitrd(w io.Writer, prog []byte, opts Options) error {
	recs := []cpio.Record{
		cpio.Directory(".", 0o755),
		cpio.Directory("dev", 0o755),
		cpio.Directory("proc", 0o555),
		cpio.Directory("sys", 0o555),
		cpio.StaticRecord(prog, cpio.Info{Name: "init", Mode: cpio.S_IFREG | 0o755}),
	}
	if len(opts.Modules) > 0 {
		files, err := ResolveModules(opts.ModulesDir, opts.Modules)
		if err != nil {
			return err
		}
		recs = append(recs, cpio.Directory("lib", 0o755), cpio.Directory(ModuleDir, 0o755))
		var order strings.Builder
		for _, f := range files {
			data, err := os.ReadFile(filepath.Join(opts.ModulesDir, f))
			if err != nil {
				return err
			}
			name := filepath.Base(f)
			recs = append(recs, cpio.StaticRecord(data, cpio.Info{Name: ModuleDir + "/" + name, Mode: cpio.S_IFREG | 0o644}))
			order.WriteString(name + "\n")
		}
		recs = append(recs, cpio.StaticFile(LoadOrder, order.String(), 0o644))
	}
	for i := range recs {
		recs[i] = cpio.MakeReproducible(recs[i])
		recs[i].Ino = uint64(i + 1)
		recs[i].NLink = 1
		if recs[i].Mode&cpio.S_IFMT == cpio.S_IFDIR {
			recs[i].NLink = 2
		}
	}
	cw := cpio.Newc.Writer(w)
	if err := cpio.WriteRecords(cw, recs); err != nil {
		return err
	}
	return cpio.WriteTrailer(cw)
}

// ResolveModules returns the files (relative to modulesDir) of the named
// modules and of everything they depend on, per modulesDir/modules.dep, in
// an order that loads every module after its dependencies.
func ResolveModules(modulesDir string, names []string) ([]string, error) {
	db, err := kmod.Load(modulesDir)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if _, ok := db.Path(n); !ok {
			return nil, fmt.Errorf("module %s not in %s/modules.dep (built in?)", n, modulesDir)
		}
	}
	files, err := db.Resolve(names...)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if !strings.HasSuffix(f, ".ko") {
			return nil, fmt.Errorf("%s: compressed modules are not supported", f)
		}
	}
	return files, nil
}
