// Command bench compares nixlive with the reference tools on the same input
// in one run and rewrites the measured section of BENCHMARKS.md. Run it
// through "make bench".
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
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
	only := flag.String("only", "", "run one section: store, iso or boot (default: all)")
	flag.Parse()
	log.SetFlags(0)

	imagegen := filepath.Join(*work, "imagegen")
	run("go", "build", "-o", imagegen, "./cmd/imagegen")
	store, info, paths := makeStore(*work)

	sections := []struct {
		name string
		run  func() string
	}{
		{"store", func() string { return benchStore(*work, imagegen, store, info, paths) }},
		{"iso", func() string { return benchISO(*work, imagegen, store, paths) }},
		{"boot", func() string { return benchBoot(*work, imagegen) }},
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
	var rows []string
	for _, c := range []struct {
		level int
		exact bool
	}{{19, false}, {19, true}, {3, false}} {
		level := c.level
		ours := filepath.Join(work, fmt.Sprintf("ours-%d.squashfs", level))
		ref := filepath.Join(work, fmt.Sprintf("mksquashfs-%d.squashfs", level))
		refArgs := append([]string{filepath.Join(info, "registration")}, hostPaths(store, paths)...)
		// NixOS's make-squashfs.nix flags; the registration is copied in
		// under its name inside the image.
		reg := filepath.Join(work, "nix-path-registration")
		copyFile(filepath.Join(info, "registration"), reg)
		refArgs[0] = reg
		refArgs = append(refArgs, ref, "-noappend", "-no-hardlinks", "-keep-as-directory", "-all-root",
			"-b", "1048576", "-comp", "zstd", "-Xcompression-level", fmt.Sprint(level),
			"-processors", fmt.Sprint(runtime.NumCPU()), "-root-mode", "0755", "-quiet", "-no-progress")
		tRef := timed("mksquashfs", refArgs...)
		ourArgs := []string{"store", "-o", ours, "--store-root", store, "--closure-info", info,
			"--comp", "zstd", "--level", fmt.Sprint(level)}
		label := fmt.Sprintf("zstd %d, 1 MiB blocks", level)
		if c.exact {
			ourArgs = append(ourArgs, "--exact-level")
			label += ", --exact-level"
		}
		tOurs := timed(imagegen, ourArgs...)
		sOurs, sRef := size(ours), size(ref)
		rows = append(rows, fmt.Sprintf("| %s | %.2f s | %.2f s | **%.2f×** | %s | %s | **%.4f×** |",
			label, tOurs.Seconds(), tRef.Seconds(), tOurs.Seconds()/tRef.Seconds(), mib(sOurs), mib(sRef), float64(sOurs)/float64(sRef)))
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
	run("go", "build", "-o", filepath.Join(dir, "store", sys, "init"), "./internal/testinit/cmd/checkstage2")
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
		out, err := exec.Command("timeout", "120", "qemu-system-x86_64", "-accel", "tcg", "-M", "pc", "-m", "1024",
			"-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot", "-nic", "none", "-cdrom", iso).Output()
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
func benchISO(work, imagegen, store string, paths []string) string {
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
	tOurs := timed(imagegen, "build", specPath, "-o", ours, "--store-root", store)

	// The reference gets our boot files (menus, efi.img, loaders) as its
	// input tree, so both do the same work from there.
	root := filepath.Join(dir, "root")
	run("osirrox", "-indev", ours, "-extract", "/", root)
	run("chmod", "-R", "u+w", root)
	must(os.Remove(filepath.Join(root, "nix-store.squashfs")))
	must(os.Remove(filepath.Join(root, ".boot.cat")))
	reg := filepath.Join(dir, "nix-path-registration")
	copyFile(filepath.Join(work, "closure-info", "registration"), reg)
	sq := filepath.Join(root, "nix-store.squashfs")
	args := append([]string{reg}, hostPaths(store, paths)...)
	args = append(args, sq, "-noappend", "-no-hardlinks", "-keep-as-directory", "-all-root",
		"-b", "1048576", "-comp", "zstd", "-Xcompression-level", "19",
		"-processors", fmt.Sprint(runtime.NumCPU()), "-root-mode", "0755", "-quiet", "-no-progress")
	tSq := timed("mksquashfs", args...)
	ref := filepath.Join(dir, "ref.iso")
	xorriso := []string{"-as", "mkisofs", "-quiet", "-iso-level", "3", "-volid", "nixos-bench-25.05-x86_64",
		"-full-iso9660-filenames", "-joliet", "-r",
		"-eltorito-boot", "isolinux/isolinux.bin", "-eltorito-catalog", ".boot.cat", "-no-emul-boot",
		"-boot-load-size", "4", "-boot-info-table", "-isohybrid-mbr", "/usr/lib/ISOLINUX/isohdpfx.bin",
		"-eltorito-alt-boot", "-e", "boot/efi.img", "-no-emul-boot", "-isohybrid-gpt-basdat",
		"-o", ref, root}
	tX := timed("xorriso", xorriso...)

	// Assembly alone: both given the same squashfs.
	ours2 := filepath.Join(dir, "ours-assembly.iso")
	tA := timed(imagegen, "build", specPath, "-o", ours2, "--store-root", store, "--squashfs", sq)
	os.Remove(ref)
	tX2 := timed("xorriso", xorriso...)

	pipeline := tSq + tX
	res := fmt.Sprintf(`Same closure as above (zstd 19, NixOS's level), Debian's cloud kernel, a 16 MiB initrd, BIOS + UEFI + USB.
Reference: mksquashfs (make-squashfs.nix flags) then %s with make-iso9660-image.sh's flags, on the same boot files.

| step | imagegen build | NixOS pipeline | ratio |
|---|---|---|---|
| whole build (store image + ISO) | %.2f s | %.2f s (mksquashfs %.2f s + xorriso %.2f s) | **%.2f×** |
| ISO assembly alone, given the squashfs | %.2f s | %.2f s (xorriso) | **%.2f×** |

ISO sizes: ours %s, reference %s.
`, firstLine("xorriso", "-version"), tOurs.Seconds(), pipeline.Seconds(), tSq.Seconds(), tX.Seconds(), tOurs.Seconds()/pipeline.Seconds(),
		tA.Seconds(), tX2.Seconds(), tA.Seconds()/tX2.Seconds(), mib(size(ours)), mib(size(ref)))
	for _, p := range []string{ours, ours2, ref, sq} {
		os.Remove(p)
	}
	return res
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
