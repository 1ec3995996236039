package gobuild_test

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixlive/nixlive/internal/gobuild"
)

// TestStaticCgo: imagegen, which needs cgo (zstd), comes out as a static
// ELF: no interpreter, no shared library, no NSS lookups left to glibc;
// it runs, and two builds give the same bytes.
func TestStaticCgo(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not found: imagegen needs cgo, and cgo a C compiler")
	}
	dir := t.TempDir()
	bins := []string{filepath.Join(dir, "a"), filepath.Join(dir, "b")}
	for _, bin := range bins {
		if err := gobuild.StaticCgo(context.Background(), bin, "github.com/nixlive/nixlive/cmd/imagegen"); err != nil {
			t.Fatal(err)
		}
	}
	f, err := elf.Open(bins[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s has a %s program header: not static", bins[0], p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s needs %q", bins[0], libs)
	}
	if f.Section(".symtab") != nil {
		t.Errorf("%s keeps its symbol table (-s)", bins[0])
	}
	out, err := exec.Command(bins[0], "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "usage: imagegen") {
		t.Errorf("%s --help: %v\n%s", bins[0], err, out)
	}
	if file, err := exec.Command("file", bins[0]).Output(); err == nil && !strings.Contains(string(file), "statically linked") {
		t.Errorf("file %s: %s", bins[0], file)
	}
	a, errA := os.ReadFile(bins[0])
	b, errB := os.ReadFile(bins[1])
	if errA != nil || errB != nil || !bytes.Equal(a, b) {
		t.Errorf("two builds differ (%v, %v)", errA, errB)
	}
}
