// Command bench compares nixlive with the reference tools on the same input
// in one run and rewrites the measured section of BENCHMARKS.md. Run it
// through "make bench".
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nix-community/go-nix/pkg/nixbase32"

	"github.com/nixlive/nixlive/demo/demoinit"
	"github.com/nixlive/nixlive/internal/boottest/fixture"
	"github.com/nixlive/nixlive/internal/boottest/vmtest"
	"github.com/nixlive/nixlive/internal/copyfile"
	"github.com/nixlive/nixlive/internal/gobuild"
	"github.com/nixlive/nixlive/internal/nix/closure"
	"github.com/nixlive/nixlive/internal/nix/registration"
	"github.com/nixlive/nixlive/internal/nix/storepath"
	"github.com/nixlive/nixlive/live"
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
	only := flag.String("only", "", "run one section: store, iso, boot, postboot or demo (default: all)")
	flag.IntVar(&runs, "runs", 3, "alternating runs of each side of the whole-ISO comparison (the median counts)")
	flag.Parse()
	log.SetFlags(0)

	imagegen := filepath.Join(*work, "imagegen")
	must(gobuild.Host(context.Background(), imagegen, "./cmd/imagegen"))
	store, info, paths := makeStore(*work)

	sections := []struct {
		name string
		run  func() string
	}{
		{"store", func() string { return benchStore(*work, imagegen, store, info, paths) }},
		{"iso", func() string { return benchISO(*work, imagegen, store, info, paths) }},
		{"boot", func() string { return benchBoot(*work, imagegen) }},
		{"postboot", func() string { return benchPostboot(*work) }},
		{"demo", func() string { return benchDemo(*work, imagegen) }},
	}
	for _, sec := range sections {
		if *only != "" && *only != sec.name {
			continue
		}
		text := sec.run()
		writeSection(*out, sec.name, text)
		fmt.Print(text)
	}
}

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

// benchBoot boots a small live ISO five times under QEMU (TCG, SeaBIOS,
// -cdrom) into checkstage2 and reads stage 1's timeline from the console:
// the median of stage 1's own work (everything but module loading and
// waiting for the medium), and the initrd sizes.
func benchBoot(work, imagegen string) string {
	dir := filepath.Join(work, "boot")
	os.RemoveAll(dir)
	sys := "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-system"
	must(os.MkdirAll(filepath.Join(dir, "store", sys), 0o755))
	must(gobuild.Static(context.Background(), filepath.Join(dir, "store", sys, "init"), "./internal/boottest/testinit/cmd/checkstage2"))
	initrd := filepath.Join(dir, "initrd")
	mods := "/var/cache/nixlive/kernel/modules"
	run(imagegen, "initrd", "-o", initrd, "--kernel-modules", mods)
	rescue := filepath.Join(dir, "initrd-rescue")
	run(imagegen, "initrd", "-o", rescue, "--kernel-modules", mods, "--rescue-shell")
	spec := map[string]any{
		"volumeID": "nixos-bench", "system": sys, "kernel": "/var/cache/nixlive/kernel/vmlinuz", "initrd": initrd,
		"kernelParams": []string{"console=ttyS0,115200"}, "squashfsCompression": "zstd:3", "boot": map[string]any{"timeout": 0},
	}
	b, _ := json.Marshal(spec)
	specPath := filepath.Join(dir, "spec.json")
	must(os.WriteFile(specPath, b, 0o644))
	iso := filepath.Join(dir, "live.iso")
	run(imagegen, "build", specPath, "-o", iso, "--store-root", filepath.Join(dir, "store"))

	var own, total []float64
	for i := 0; i < 5; i++ {
		out, err := qemu(120, vmtest.Options{CDROM: iso}).Output()
		if err != nil && !strings.Contains(string(out), "NIXLIVE-STAGE2-RESULT") {
			log.Fatalf("bench: boot %d: %v\n%s", i, err, out)
		}
		steps := map[string]float64{}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(strings.TrimSpace(line))
			if len(f) >= 3 && f[0] == "NIXLIVE-TIMELINE" {
				var v float64
				fmt.Sscan(f[len(f)-1], &v)
				steps[strings.Join(f[1:len(f)-1], " ")] = v
			}
		}
		// Stage 1's own work: from start to switch_root, less the kernel's
		// module init (start of "modules" step = end of early mounts) and
		// the wait for the device to appear.
		modules := steps["modules"] - steps["early mounts"]
		wait := steps["medium found"] - steps["modules"]
		t := steps["switch_root"] - steps["start"]
		own = append(own, (t-modules-wait)*1000)
		total = append(total, t*1000)
	}
	sort.Float64s(own)
	sort.Float64s(total)
	return fmt.Sprintf(`Five boots of a small live ISO (SeaBIOS, -cdrom, QEMU TCG, Debian's cloud kernel %s) into a test stage 2,
timed from stage 1's own timeline (/run/nixlive/stage1.json, printed by the test stage 2).

| measure | median of 5 | min | max | target |
|---|---|---|---|---|
| stage 1's own work (start → switch_root, less module init and device wait) | **%.0f ms** | %.0f ms | %.0f ms | < 150 ms |
| stage 1 in all (start → switch_root) | %.0f ms | %.0f ms | %.0f ms | |

| initrd (zstd, default modules) | size | target |
|---|---|---|
| without rescue shell | **%s** | < 6 MiB |
| with --rescue-shell | %s | |
`, strings.TrimSpace(readFile("/var/cache/nixlive/kernel/version")), own[2], own[0], own[4], total[2], total[0], total[4], mib(size(initrd)), mib(size(rescue)))
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

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

	ours := filepath.Join(dir, "ours.iso")
	// The reference gets our boot files (menus, efi.img, loaders) as its
	// input tree, so both do the same work from there.
	root := filepath.Join(dir, "root")
	reg := filepath.Join(dir, live.RegistrationName)
	sq := filepath.Join(root, live.StoreImage)
	ref := filepath.Join(dir, "ref.iso")
	args := nixosMksquashfs(sq, 19, append([]string{reg}, hostPaths(store, paths)...)...)
	xorriso := []string{"-as", "mkisofs", "-quiet", "-iso-level", "3", "-volid", "nixos-bench-25.05-x86_64",
		"-full-iso9660-filenames", "-joliet", "-r",
		"-eltorito-boot", "isolinux/isolinux.bin", "-eltorito-catalog", ".boot.cat", "-no-emul-boot",
		"-boot-load-size", "4", "-boot-info-table", "-isohybrid-mbr", "/usr/lib/ISOLINUX/isohdpfx.bin",
		"-eltorito-alt-boot", "-e", "boot/efi.img", "-no-emul-boot", "-isohybrid-gpt-basdat",
		"-o", ref, root}
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

// benchDemo builds the demo live system and boots it five times (SeaBIOS,
// -cdrom) to demo-init, whose report carries both stages' timeline: stage
// 2's time from its start to the exec of the system's init, and the part
// of it that postboot takes.
func benchDemo(work, imagegen string) string {
	dir := filepath.Join(work, "demo")
	t0 := time.Now()
	run(imagegen, "demo", "-o", dir)
	build := time.Since(t0)
	var stage2, post, reached []float64
	var paths int
	for i := 0; i < 5; i++ {
		// -cpu max: RDRAND, so postboot's SQLite does not wait for
		// entropy (see vmtest.Options.CPU).
		cmd := qemu(300, vmtest.Options{CDROM: filepath.Join(dir, "nixlive-demo.iso"), CPU: "max"})
		stdin, err := cmd.StdinPipe()
		must(err)
		out := &syncBuffer{}
		cmd.Stdout = out
		must(cmd.Start())
		// "q": demo-init powers off at once instead of offering a shell.
		go func() {
			for !strings.Contains(out.String(), demoinit.ShellOffer) {
				time.Sleep(200 * time.Millisecond)
			}
			stdin.Write([]byte("q\n"))
		}()
		err = cmd.Wait()
		rep, perr := demoinit.Parse(strings.ReplaceAll(out.String(), "\r", ""))
		if perr != nil || !rep.OK() {
			log.Fatalf("bench: demo boot %d: %v %v\n%s", i, err, perr, out.String())
		}
		at := map[string]float64{}
		for _, s := range rep.Timeline {
			at[s.Name] = s.At
		}
		stage2 = append(stage2, (at["stage2: exec init"]-at["stage2: start"])*1000)
		post = append(post, (at["stage2: postboot"]-at["stage2: system links"])*1000)
		reached = append(reached, at["demo-init: start"])
		paths = rep.Registered
	}
	sort.Float64s(stage2)
	sort.Float64s(post)
	sort.Float64s(reached)
	return fmt.Sprintf(`"imagegen demo" built the demo live system in %.1f s; five boots of its ISO (SeaBIOS, -cdrom, QEMU TCG,
-cpu max) to demo-init, timed from the timeline stage 1 and 2 leave in /run/nixlive/timeline.json (%d store paths registered).

| measure | median of 5 | min | max |
|---|---|---|---|
| stage 2: start → exec of the system's init | **%.0f ms** | %.0f ms | %.0f ms |
| of which postboot (load-db, /etc/NIXOS, set-profile) | %.0f ms | %.0f ms | %.0f ms |
| demo-init reached, since the kernel started | %.1f s | %.1f s | %.1f s |
`, build.Seconds(), paths, stage2[2], stage2[0], stage2[4], post[2], post[0], post[4], reached[2], reached[0], reached[4])
}

// syncBuffer is a bytes.Buffer that a command writes while we read it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// benchPostboot compares "postboot load-db" (the static binary the live CD
// runs) with "nix-store --load-db" on the same synthetic registrations,
// each into a fresh root, process start included, alternating, five runs
// each; medians compared.
func benchPostboot(work string) string {
	dir := filepath.Join(work, "postboot")
	os.RemoveAll(dir)
	must(os.MkdirAll(dir, 0o755))
	bin := filepath.Join(dir, "postboot")
	must(gobuild.Static(context.Background(), bin, "./cmd/postboot"))
	const n = 5
	var rows []string
	for _, paths := range []int{2000, 20000} {
		reg := filepath.Join(dir, fmt.Sprintf("registration-%d", paths))
		must(os.WriteFile(reg, registration.Marshal(fixture.Synthetic(paths, 1)), 0o644))
		var ours, nix, oursCPU, nixCPU []time.Duration
		for i := 0; i < n; i++ {
			root := filepath.Join(dir, fmt.Sprintf("ours-%d-%d", paths, i))
			w, c := timedCPU(nil, nil, bin, "--root", root, "--registration", reg, "load-db")
			ours, oursCPU = append(ours, w), append(oursCPU, c)
			root = filepath.Join(dir, fmt.Sprintf("nix-%d-%d", paths, i))
			in, err := os.Open(reg)
			must(err)
			w, c = timedCPU(in, []string{"HOME=" + dir, "NIX_CONFIG=", "NIX_USER_CONF_FILES="},
				"nix-store", "--store", root, "--option", "build-users-group", "", "--load-db")
			in.Close()
			nix, nixCPU = append(nix, w), append(nixCPU, c)
		}
		rows = append(rows, fmt.Sprintf("| %d paths | %.0f ms (CPU %.0f ms) | %.0f ms (CPU %.0f ms) | **%.1f×** |",
			paths, ms(median(ours)), ms(median(oursCPU)), ms(median(nix)), ms(median(nixCPU)), ms(median(nix))/ms(median(ours))))
	}
	return fmt.Sprintf(`Synthetic registrations (every third path refers to itself, up to four references each), each loaded
into a fresh root; process start included; %d alternating runs each, medians. Reference: %s.

| registration | postboot load-db | nix-store --load-db | speed-up |
|---|---|---|---|
%s
`, n, firstLine("nix-store", "--version"), strings.Join(rows, "\n"))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// timedCPU runs a command and returns its wall time and CPU time (user +
// system).
func timedCPU(stdin *os.File, env []string, name string, args ...string) (wall, cpu time.Duration) {
	wall, cpu, _ = timedOutput(stdin, env, name, args...)
	return wall, cpu
}

// timedOutput is timedCPU that also returns what the command printed.
func timedOutput(stdin *os.File, env []string, name string, args ...string) (wall, cpu time.Duration, out []byte) {
	cmd := exec.Command(name, args...)
	cmd.Stdin = stdin
	cmd.Env = append(os.Environ(), env...)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	start := time.Now()
	if err := cmd.Run(); err != nil {
		log.Fatalf("bench: %s %s: %v\n%s", name, strings.Join(args, " "), err, b.Bytes())
	}
	return time.Since(start), cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), b.Bytes()
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

var runs int

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func pairs(a, b []time.Duration) string {
	var s []string
	for i := range a {
		s = append(s, fmt.Sprintf("%.1f / %.1f s", a[i].Seconds(), b[i].Seconds()))
	}
	return strings.Join(s, ", ")
}

func timed(name string, args ...string) time.Duration {
	wall, _ := timedCPU(nil, nil, name, args...)
	return wall
}

// qemu runs the tests' machine (vmtest's QEMU arguments) under a time limit.
func qemu(seconds int, opts vmtest.Options) *exec.Cmd {
	args, err := opts.Args()
	must(err)
	return exec.Command("timeout", append([]string{fmt.Sprint(seconds), vmtest.QEMU}, args...)...)
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
