package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nixlive/nixlive/internal/copyfile"
	"github.com/nixlive/nixlive/live"
)

// benchISO compares "imagegen build" with NixOS's pipeline (mksquashfs, then
// xorriso with make-iso9660-image.sh's flags) on the same closure and the
// same boot files; and ISO assembly alone, given the squashfs.
//
// The whole builds alternate, ours then the pipeline, runs times, and the
// medians are compared: on a shared machine one run of a minute-long,
// CPU-bound job can be off by tens of percent.
func benchISO(work, imagegen, store, info string, paths []string) string {
	dir := filepath.Join(work, "iso")
	os.RemoveAll(dir)
	must(os.MkdirAll(dir, 0o755))
	specPath := writeISOSpec(dir, paths)

	ours := filepath.Join(dir, "ours.iso")
	// The reference gets our boot files (menus, efi.img, loaders) as its
	// input tree, so both do the same work from there.
	root := filepath.Join(dir, "root")
	reg := filepath.Join(dir, live.RegistrationName)
	sq := filepath.Join(root, live.StoreImage)
	ref := filepath.Join(dir, "ref.iso")
	args := nixosMksquashfs(sq, 19, append([]string{reg}, hostPaths(store, paths)...)...)
	xorriso := xorrisoArgs(ref, root)
	var oursRuns, sqRuns, xRuns, pipeRuns, oursCPU, pipeCPU []time.Duration
	var content contentStats
	for i := 0; i < runs; i++ {
		os.Remove(ours)
		// Both start from the same closureInfo, as NixOS's pipeline does.
		tOurs, cOurs, out := timedOutput(nil, nil, imagegen, "build", specPath, "-o", ours, "--store-root", store, "--closure-info", info)
		if i == 0 {
			content = parseContent(out)
			run("osirrox", "-indev", ours, "-extract", "/", root)
			run("chmod", "-R", "u+w", root)
			must(os.Remove(filepath.Join(root, ".boot.cat")))
			must(copyfile.Copy(filepath.Join(work, "closure-info", "registration"), reg, 0o644))
		}
		os.Remove(sq)
		os.Remove(ref)
		tSq, cSq := timedCPU(nil, nil, "mksquashfs", args...)
		tX, cX := timedCPU(nil, nil, "xorriso", xorriso...)
		oursRuns, sqRuns, xRuns, pipeRuns = append(oursRuns, tOurs), append(sqRuns, tSq), append(xRuns, tX), append(pipeRuns, tSq+tX)
		oursCPU, pipeCPU = append(oursCPU, cOurs), append(pipeCPU, cSq+cX)
	}
	tOurs, pipeline := median(oursRuns), median(pipeRuns)
	tSq, tX := median(sqRuns), median(xRuns)

	dupOne, dupTwo := mksquashfsDuplicates(work, store)

	// Assembly alone: both given the same squashfs.
	ours2 := filepath.Join(dir, "ours-assembly.iso")
	tA := timed(imagegen, "build", specPath, "-o", ours2, "--store-root", store, "--squashfs", sq)
	os.Remove(ref)
	tX2 := timed("xorriso", xorriso...)

	res := fmt.Sprintf(`Same closure as above (zstd 19, NixOS's level), given to both as the same closureInfo; Debian's cloud kernel, a 16 MiB initrd, BIOS + UEFI + USB.
Reference: mksquashfs (make-squashfs.nix flags) then %s with make-iso9660-image.sh's flags, on the same boot files.
Whole builds: %d alternating runs of each side, medians compared.

| step | imagegen build | NixOS pipeline | ratio |
|---|---|---|---|
| whole build (store image + ISO), median wall time | %.2f s | %.2f s (mksquashfs %.2f s + xorriso %.2f s) | **%.2f×** |
| whole build, median CPU time (user + system) | %.1f s | %.1f s | %.2f× |
| ISO assembly alone, given the squashfs | %.2f s | %.2f s (xorriso) | **%.2f×** |

Every whole-build run (ours / pipeline, in order): %s.

ISO sizes: ours %s, reference %s.

What reaches zstd level 19 (from "imagegen build"'s summary): of %s of content, %s are duplicates and %s
sparse, which we never compress; %s of the rest keeps level 1's result. mksquashfs compresses
duplicates before it finds them (one file of 32 MiB from this input: %.1f s; the same file twice: %.1f s,
medians of 3), so it hands level 19 all %s of non-sparse content, and we hand it %s: **%.2f×** the
work. Both call libzstd's ZSTD_compressCCtx at level 19 on 1 MiB blocks, the same parameters, and
that call is 97%% of both sides' CPU time, so at equal speed per byte our whole build cannot be
expected to take much less than %.2f× the pipeline's.
`, strings.TrimSuffix(firstLine("xorriso", "-version"), "."), runs, tOurs.Seconds(), pipeline.Seconds(), tSq.Seconds(), tX.Seconds(), tOurs.Seconds()/pipeline.Seconds(),
		median(oursCPU).Seconds(), median(pipeCPU).Seconds(), median(oursCPU).Seconds()/median(pipeCPU).Seconds(),
		tA.Seconds(), tX2.Seconds(), tA.Seconds()/tX2.Seconds(), pairs(oursRuns, pipeRuns), mib(size(ours)), mib(size(ref)),
		mib(content.content), mib(content.duplicate), mib(content.sparse), mib(content.trialKept),
		dupOne.Seconds(), dupTwo.Seconds(), mib(content.content-content.sparse), mib(content.level19()), content.workRatio(), content.workRatio())
	for _, p := range []string{ours, ours2, ref, sq} {
		os.Remove(p)
	}
	return res
}

// writeISOSpec writes the spec of the bench ISO (Debian's kernel, a 16 MiB
// incompressible initrd, the closure of paths) in dir; it returns its path.
func writeISOSpec(dir string, paths []string) string {
	initrd := filepath.Join(dir, "initrd")
	must(os.WriteFile(initrd, pseudoRandom(16<<20), 0o644))
	spec := map[string]any{
		"volumeID":      "nixos-bench-25.05-x86_64",
		"system":        paths[0],
		"kernel":        "/var/cache/nixlive/kernel/vmlinuz",
		"initrd":        initrd,
		"storeContents": paths,
		"boot":          map[string]any{"timeout": 10},
	}
	specPath := filepath.Join(dir, "spec.json")
	b, err := json.Marshal(spec)
	must(err)
	must(os.WriteFile(specPath, b, 0o644))
	return specPath
}

// xorrisoArgs are make-iso9660-image.sh's xorriso flags for the ISO ref
// of the tree root.
func xorrisoArgs(ref, root string) []string {
	return []string{"-as", "mkisofs", "-quiet", "-iso-level", "3", "-volid", "nixos-bench-25.05-x86_64",
		"-full-iso9660-filenames", "-joliet", "-r",
		"-eltorito-boot", "isolinux/isolinux.bin", "-eltorito-catalog", ".boot.cat", "-no-emul-boot",
		"-boot-load-size", "4", "-boot-info-table", "-isohybrid-mbr", "/usr/lib/ISOLINUX/isohdpfx.bin",
		"-eltorito-alt-boot", "-e", "boot/efi.img", "-no-emul-boot", "-isohybrid-gpt-basdat",
		"-o", ref, root}
}

// contentStats are the figures of imagegen's summary line, in bytes (to
// its 0.1 MiB).
type contentStats struct{ content, duplicate, sparse, compressed, trialKept int64 }

var contentLine = regexp.MustCompile(`([0-9.]+) MiB of content: ([0-9.]+) MiB duplicate, ([0-9.]+) MiB sparse, ([0-9.]+) MiB compressed(?: \(([0-9.]+) MiB of it kept level 1's result\))?`)

func parseContent(out []byte) contentStats {
	m := contentLine.FindStringSubmatch(string(out))
	if m == nil {
		log.Fatalf("bench: no content summary in imagegen's output:\n%s", out)
	}
	f := make([]int64, 5)
	for i := range f {
		if m[i+1] != "" {
			v, err := strconv.ParseFloat(m[i+1], 64)
			must(err)
			f[i] = int64(v * (1 << 20))
		}
	}
	return contentStats{f[0], f[1], f[2], f[3], f[4]}
}

// level19 is what we compress at the level asked.
func (c contentStats) level19() int64 { return c.compressed - c.trialKept }

// workRatio compares it with what mksquashfs compresses: all non-sparse
// content, duplicates included.
func (c contentStats) workRatio() float64 {
	return float64(c.level19()) / float64(c.content-c.sparse)
}

// mksquashfsDuplicates times mksquashfs (NixOS's flags) on 32 MiB of the
// bench input alone and beside a copy of itself: whether a duplicate costs
// it a compression.
func mksquashfsDuplicates(work, store string) (one, two time.Duration) {
	dir := filepath.Join(work, "dup")
	os.RemoveAll(dir)
	var sample []byte
	var files []string
	filepath.WalkDir(filepath.Join(store, "nix/store"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	for _, p := range files {
		if len(sample) >= 32<<20 {
			break
		}
		b, err := os.ReadFile(p)
		must(err)
		sample = append(sample, b...)
	}
	sample = sample[:32<<20]
	for _, d := range []string{"one", "two"} {
		must(os.MkdirAll(filepath.Join(dir, d), 0o755))
		must(os.WriteFile(filepath.Join(dir, d, "a"), sample, 0o644))
	}
	must(os.WriteFile(filepath.Join(dir, "two", "b"), sample, 0o644))
	var ones, twos []time.Duration
	for range 3 {
		for _, d := range []string{"one", "two"} {
			out := filepath.Join(dir, d+".squashfs")
			os.Remove(out)
			t := timed("mksquashfs", nixosMksquashfs(out, 19, filepath.Join(dir, d))...)
			if d == "one" {
				ones = append(ones, t)
			} else {
				twos = append(twos, t)
			}
		}
	}
	os.RemoveAll(dir)
	return median(ones), median(twos)
}

// pseudoRandom is incompressible filler, deterministic across runs.
func pseudoRandom(n int) []byte {
	b := make([]byte, n)
	x := uint64(0x9E3779B97F4A7C15)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}
