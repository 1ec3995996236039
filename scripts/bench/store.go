package main

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/nix-community/go-nix/pkg/nixbase32"
	"github.com/nixlive/nixlive/internal/copyfile"
	"github.com/nixlive/nixlive/internal/nix/closure"
	"github.com/nixlive/nixlive/internal/nix/storepath"
	"github.com/nixlive/nixlive/live"
)

// benchStore compares imagegen store with mksquashfs on the same closure.
func benchStore(work, imagegen, store, info string, paths []string) string {
	var rows, runList []string
	for _, c := range []struct {
		level int
		exact bool
	}{{19, false}, {19, true}, {3, false}} {
		level := c.level
		ours := filepath.Join(work, fmt.Sprintf("ours-%d.squashfs", level))
		ref := filepath.Join(work, fmt.Sprintf("mksquashfs-%d.squashfs", level))
		// The registration is copied in under its name inside the image.
		reg := filepath.Join(work, live.RegistrationName)
		must(copyfile.Copy(filepath.Join(info, "registration"), reg, 0o644))
		refArgs := nixosMksquashfs(ref, level, append([]string{reg}, hostPaths(store, paths)...)...)
		ourArgs := []string{"store", "-o", ours, "--store-root", store, "--closure-info", info,
			"--comp", "zstd", "--level", fmt.Sprint(level)}
		label := fmt.Sprintf("zstd %d, 1 MiB blocks", level)
		if c.exact {
			ourArgs = append(ourArgs, "--exact-level")
			label += ", --exact-level"
		}
		// Alternating runs, medians compared (see benchISO).
		var refRuns, ourRuns []time.Duration
		for i := 0; i < runs; i++ {
			os.Remove(ref)
			refRuns = append(refRuns, timed("mksquashfs", refArgs...))
			ourRuns = append(ourRuns, timed(imagegen, ourArgs...))
		}
		tOurs, tRef := median(ourRuns), median(refRuns)
		sOurs, sRef := size(ours), size(ref)
		rows = append(rows, fmt.Sprintf("| %s | %.2f s | %.2f s | **%.2f×** | %s | %s | **%.4f×** |",
			label, tOurs.Seconds(), tRef.Seconds(), tOurs.Seconds()/tRef.Seconds(), mib(sOurs), mib(sRef), float64(sOurs)/float64(sRef)))
		runList = append(runList, fmt.Sprintf("%s: %s", label, pairs(ourRuns, refRuns)))
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

Times: medians of %d alternating runs of each side.

| compression | imagegen store | mksquashfs (NixOS flags) | time ratio | our size | mksquashfs size | size ratio |
|---|---|---|---|---|---|---|
%s

Every run (ours / mksquashfs): %s.
`, len(paths), mib(content), sourceList(), runtime.NumCPU(), runtime.Version(), firstLine("mksquashfs", "-version"), runs, strings.Join(rows, "\n"), strings.Join(runList, "; "))
	return section
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

func sourceList() string {
	var s []string
	for _, src := range storeSources {
		s = append(s, src.dir)
	}
	return strings.Join(s, ", ")
}

// nixosMksquashfs is the mksquashfs command line of NixOS's
// make-squashfs.nix (zstd at level, 1 MiB blocks, on all cores), quiet.
func nixosMksquashfs(out string, level int, sources ...string) []string {
	return append(sources, out, "-noappend", "-no-hardlinks", "-keep-as-directory", "-all-root",
		"-b", "1048576", "-comp", "zstd", "-Xcompression-level", fmt.Sprint(level),
		"-processors", fmt.Sprint(runtime.NumCPU()), "-root-mode", "0755", "-quiet", "-no-progress")
}

func hostPaths(root string, paths []string) []string {
	var out []string
	for _, p := range paths {
		out = append(out, filepath.Join(root, p))
	}
	return out
}
