// Command bench compares nixlive with the reference tools on the same input
// in one run and rewrites the measured section of BENCHMARKS.md. Run it
// through "make bench".
package main

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/nix-community/go-nix/pkg/nixbase32"
	"github.com/nixlive/nixlive/internal/closure"
	"github.com/nixlive/nixlive/internal/storepath"
)

// Host trees that stand in for store paths: a toolchain with many small
// files, large binaries, an interpreter's library, and documentation full
// of duplicates, as a NixOS closure has.
var storeSources = []struct{ name, dir string }{
	{"go-toolchain", "/usr/local/go"},
	{"gcc-lib", "/usr/lib/gcc"},
	{"python3.11-lib", "/usr/lib/python3.11"},
	{"perl-share", "/usr/share/perl"},
	{"doc", "/usr/share/doc"},
}

func main() {
	out := flag.String("out", "BENCHMARKS.md", "file whose measured section is rewritten")
	work := flag.String("work", "_out/bench", "work directory")
	flag.Parse()
	log.SetFlags(0)

	imagegen := filepath.Join(*work, "imagegen")
	run("go", "build", "-o", imagegen, "./cmd/imagegen")
	store, info, paths := makeStore(*work)

	var rows []string
	for _, level := range []int{19, 3} {
		ours := filepath.Join(*work, fmt.Sprintf("ours-%d.squashfs", level))
		ref := filepath.Join(*work, fmt.Sprintf("mksquashfs-%d.squashfs", level))
		refArgs := append([]string{filepath.Join(info, "registration")}, hostPaths(store, paths)...)
		// NixOS's make-squashfs.nix flags; the registration is copied in
		// under its name inside the image.
		reg := filepath.Join(*work, "nix-path-registration")
		copyFile(filepath.Join(info, "registration"), reg)
		refArgs[0] = reg
		refArgs = append(refArgs, ref, "-noappend", "-no-hardlinks", "-keep-as-directory", "-all-root",
			"-b", "1048576", "-comp", "zstd", "-Xcompression-level", fmt.Sprint(level),
			"-processors", fmt.Sprint(runtime.NumCPU()), "-root-mode", "0755", "-quiet", "-no-progress")
		tRef := timed("mksquashfs", refArgs...)
		tOurs := timed(imagegen, "store", "-o", ours, "--store-root", store, "--closure-info", info,
			"--comp", "zstd", "--level", fmt.Sprint(level))
		sOurs, sRef := size(ours), size(ref)
		rows = append(rows, fmt.Sprintf("| zstd %d, 1 MiB blocks | %.2f s | %.2f s | **%.2f×** | %s | %s | **%.4f×** |",
			level, tOurs.Seconds(), tRef.Seconds(), tOurs.Seconds()/tRef.Seconds(), mib(sOurs), mib(sRef), float64(sOurs)/float64(sRef)))
		os.Remove(ours)
		os.Remove(ref)
	}
	var content int64
	filepath.WalkDir(filepath.Join(store, "nix/store"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			fi, _ := d.Info()
			content += fi.Size()
		}
		return nil
	})
	section := fmt.Sprintf(`Input: %d store paths, %s of file content (copies of %s), page cache warm.
Machine: %d cores, %s. Reference: %s.

| compression | imagegen store | mksquashfs (NixOS flags) | time ratio | our size | mksquashfs size | size ratio |
|---|---|---|---|---|---|---|
%s
`, len(paths), mib(content), sourceList(), runtime.NumCPU(), runtime.Version(), firstLine("mksquashfs", "-version"), strings.Join(rows, "\n"))
	writeSection(*out, "store", section)
	fmt.Print(section)
}

func sourceList() string {
	var s []string
	for _, src := range storeSources {
		s = append(s, src.dir)
	}
	return strings.Join(s, ", ")
}

// makeStore copies the source trees into a store root as store paths with
// Nix-like modes and mtimes, and writes a closureInfo folder for them.
func makeStore(work string) (root, info string, paths []string) {
	root = filepath.Join(work, "store")
	info = filepath.Join(work, "closure-info")
	storeDir := filepath.Join(root, "nix/store")
	if _, err := os.Stat(info); err != nil {
		os.RemoveAll(root)
		must(os.MkdirAll(storeDir, 0o755))
		for _, src := range storeSources {
			h := sha256.Sum256([]byte(src.name))
			base := nixbase32.EncodeToString(h[:20]) + "-" + src.name
			dst := filepath.Join(storeDir, base)
			run("cp", "-a", "--no-preserve=ownership", src.dir, dst)
			run("chmod", "-R", "a-w", dst)
			run("find", dst, "-exec", "touch", "-h", "-d", "@1", "{}", "+")
		}
		r := storepath.Root{Dir: root}
		all, err := r.List()
		must(err)
		c, err := closure.FromStoreRoot(r, all)
		must(err)
		must(os.MkdirAll(info, 0o755))
		must(c.WriteClosureInfo(info))
	}
	b, err := os.ReadFile(filepath.Join(info, "store-paths"))
	must(err)
	paths = strings.Fields(string(b))
	// Warm the page cache so that both tools read from memory.
	run("sh", "-c", "find "+storeDir+" -type f -exec cat {} + > /dev/null")
	return root, info, paths
}

func hostPaths(root string, paths []string) []string {
	var out []string
	for _, p := range paths {
		out = append(out, filepath.Join(root, p))
	}
	return out
}

func timed(name string, args ...string) time.Duration {
	start := time.Now()
	run(name, args...)
	return time.Since(start)
}

func run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		log.Fatalf("bench: %s %s: %v", name, strings.Join(args, " "), err)
	}
}

func firstLine(name string, args ...string) string {
	b, _ := exec.Command(name, args...).CombinedOutput()
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(line)
}

func size(p string) int64 {
	fi, err := os.Stat(p)
	must(err)
	return fi.Size()
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func copyFile(from, to string) {
	b, err := os.ReadFile(from)
	must(err)
	must(os.WriteFile(to, b, 0o644))
}

func must(err error) {
	if err != nil {
		log.Fatal("bench: ", err)
	}
}

// writeSection replaces the text between "<!-- bench:NAME -->" and
// "<!-- /bench:NAME -->" in file, or appends the section.
func writeSection(file, name, body string) {
	open, close := "<!-- bench:"+name+" -->", "<!-- /bench:"+name+" -->"
	old, _ := os.ReadFile(file)
	block := open + "\n" + body + close
	var out []byte
	if i := bytes.Index(old, []byte(open)); i >= 0 {
		j := bytes.Index(old, []byte(close))
		must(nilIf(j < i, fmt.Errorf("%s: %s without %s", file, open, close)))
		out = append(append(append([]byte{}, old[:i]...), block...), old[j+len(close):]...)
	} else {
		out = append(append(old, '\n'), block+"\n"...)
	}
	must(os.WriteFile(file, out, 0o644))
}

func nilIf(cond bool, err error) error {
	if cond {
		return err
	}
	return nil
}
