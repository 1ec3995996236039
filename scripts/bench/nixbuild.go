package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nixlive/nixlive/internal/copyfile"
	"github.com/nixlive/nixlive/internal/gobuild"
	"github.com/nixlive/nixlive/internal/nix/chrootnix"
	"github.com/nixlive/nixlive/live"
)

// nixBuildExpr is the Nix file of the "Nix build" section: nix/lib.nix with
// the static imagegen and Debian's boot files, the bench's closure (already
// in the store, named with builtins.storePath as a system's closure would
// be), the cloud kernel and the 16 MiB initrd.
const nixBuildExpr = `
let
  imagegen = builtins.path { path = %[1]q; name = "nixlive-imagegen"; };
  lib0 = import %[2]q { inherit imagegen; };
  nixlive = import %[2]q { inherit imagegen; bootFiles = lib0.debianBootFiles; };
  trees = map builtins.storePath (builtins.fromJSON %[3]q);
  kernel = builtins.path { path = %[4]q; name = "vmlinuz"; };
  initrd = builtins.path { path = %[5]q; name = "initrd"; };
  args = {
    isoName = "nixos-bench.iso";
    volumeID = "nixos-bench-25.05-x86_64";
    system = builtins.head trees;
    storeContents = trees;
    inherit kernel initrd;
    boot = { timeout = 10; };
  };
in {
  iso = nixlive.makeIsoImage args;
  spec = nixlive.isoSpec args;
  # The closureInfo makeIsoImage builds (rootPaths = storeContents ++ [ system ]).
  closure = nixlive.closureInfo { rootPaths = trees ++ [ (builtins.head trees) ]; };
}
`

// benchNixBuild builds the whole ISO as a Nix build: nix-build of lib.nix's
// makeIsoImage in a chroot store (Debian's Nix 2.8, its sandbox, the static
// imagegen as builder), timed end to end; the same static imagegen outside
// Nix on the same spec and closureInfo; and NixOS's method outside Nix
// (Debian's mksquashfs and xorriso are dynamically linked and cannot run
// in the shell-less sandbox) on the same closure, registration and boot
// files. One run of each.
func benchNixBuild(work, benchStore string, paths []string) string {
	dir, err := filepath.Abs(filepath.Join(work, "nixbuild"))
	must(err)
	removeTree(dir)
	must(os.MkdirAll(dir, 0o755))
	n := &nixRunner{store: filepath.Join(dir, "store"), home: filepath.Join(dir, "home")}
	must(os.MkdirAll(n.home, 0o755))
	pkg := filepath.Join(dir, "imagegen-pkg")
	file := filepath.Join(dir, "bench.nix")
	trees, tAdd := n.nixBuildInputs(dir, pkg, file, benchStore, paths)

	var loads []string
	loads = append(loads, loadAvg())
	// 1. Ours in Nix, end to end: evaluation, closureInfo, the ISO
	// derivation in the sandbox, the output registered.
	tNix, cNix, out := n.run("nix-build", "--no-out-link", file, "-A", "iso")
	nixOut := strings.TrimSpace(string(out))
	nixISO := filepath.Join(n.store, nixOut, "iso", "nixos-bench.iso")
	_, _, out = n.run("nix-build", "--no-out-link", file, "-A", "closure")
	ci := filepath.Join(n.store, strings.TrimSpace(string(out)))

	// 2. Ours outside Nix: the same binary, spec and closureInfo.
	loads = append(loads, loadAvg())
	_, _, specJSON := n.run("nix-instantiate", "--eval", "--strict", "--json", file, "-A", "spec")
	specPath := filepath.Join(dir, "spec.json")
	must(os.WriteFile(specPath, specJSON, 0o644))
	outISO := filepath.Join(dir, "outside.iso")
	tOut, cOut, _ := timedOutput(nil, nil, filepath.Join(pkg, "bin", "imagegen"), "build", specPath, "-o", outISO,
		"--store-root", n.store, "--closure-info", ci)

	// 3. NixOS's method outside Nix: the boot file tree of the ISO Nix
	// built (menus, efi.img, loaders), closureInfo's registration and
	// store-paths, mksquashfs then xorriso.
	root := filepath.Join(dir, "root")
	run("osirrox", "-indev", nixISO, "-extract", "/", root)
	run("chmod", "-R", "u+w", root)
	must(os.Remove(filepath.Join(root, ".boot.cat")))
	sq := filepath.Join(root, live.StoreImage)
	must(os.Remove(sq))
	reg := filepath.Join(dir, live.RegistrationName)
	must(copyfile.Copy(filepath.Join(ci, "registration"), reg, 0o644))
	b, err := os.ReadFile(filepath.Join(ci, "store-paths"))
	must(err)
	ref := filepath.Join(dir, "ref.iso")
	loads = append(loads, loadAvg())
	tSq, cSq := timedCPU(nil, nil, "mksquashfs", nixosMksquashfs(sq, 19, append([]string{reg}, hostPaths(n.store, strings.Fields(string(b)))...)...)...)
	tX, cX := timedCPU(nil, nil, "xorriso", xorrisoArgs(ref, root)...)
	loads = append(loads, loadAvg())

	// Where Nix's time goes besides imagegen: evaluation alone (the .drv
	// exists), the closureInfo derivation alone (rebuilt with --check).
	tEval, _, _ := n.run("nix-instantiate", file, "-A", "iso")
	tCI, _, _ := n.run("nix-build", "--no-out-link", "--check", file, "-A", "closure")

	same := "differ"
	if h1, h2 := fileSHA256(nixISO), fileSHA256(outISO); h1 == h2 {
		same = "are the same bytes (SHA-256 " + h1[:16] + "…)"
	}
	var content int64
	for _, t := range trees {
		content += treeSize(filepath.Join(n.store, t))
	}
	tRef, cRef := tSq+tX, cSq+cX
	res := fmt.Sprintf(`Input: the bench's store of the sections above (%d store paths, %s of file content at this run: it copies host trees), added to a fresh chroot store
(%s, --store DIR, sandbox on) with builtins.path in %.1f s (not counted), as a system's closure is there before its ISO is built;
Debian's cloud kernel, a 16 MiB initrd, lib.nix's debianBootFiles, zstd 19, BIOS + UEFI + USB. One run of each, in the order of the rows;
load average (1, 5, 15 min) before each row and after the last: %s.
Command: %s

| build | wall time | vs NixOS's method | CPU time (user + system) | vs NixOS's method | ISO size |
|---|---|---|---|---|---|
| ours in Nix: nix-build of lib.nix's makeIsoImage, end to end (evaluation, closureInfo, imagegen in the sandbox, output registered) | %.2f s | **%.2f×** | %.1f s | %.2f× | %s |
| ours outside Nix: the same static imagegen, spec and closureInfo | %.2f s | %.2f× | %.1f s | %.2f× | %s |
| NixOS's method outside Nix: mksquashfs (make-squashfs.nix flags) + xorriso (make-iso9660-image.sh flags), same closure, registration and boot files | %.2f s (mksquashfs %.2f s + xorriso %.2f s) | 1 | %.1f s | 1 | %s |

Nix's overhead on our build: %.2f s wall (%.1f%%), of which evaluation alone %.2f s and the closureInfo derivation alone (nix-build --check) %.2f s;
the rest, %.2f s, is not timed apart: the sandbox's set-up and Nix registering the %s output (hashing it and scanning it for references).
The ISO built in Nix and the one built outside it %s.
`, len(trees), mib(content), firstLine("nix-build", "--version"), tAdd.Seconds(), strings.Join(loads, "; "), benchCommand(),
		tNix.Seconds(), tNix.Seconds()/tRef.Seconds(), cNix.Seconds(), cNix.Seconds()/cRef.Seconds(), mib(size(nixISO)),
		tOut.Seconds(), tOut.Seconds()/tRef.Seconds(), cOut.Seconds(), cOut.Seconds()/cRef.Seconds(), mib(size(outISO)),
		tRef.Seconds(), tSq.Seconds(), tX.Seconds(), cRef.Seconds(), mib(size(ref)),
		(tNix - tOut).Seconds(), 100*(tNix-tOut).Seconds()/tOut.Seconds(), tEval.Seconds(), tCI.Seconds(),
		(tNix - tOut - tEval - tCI).Seconds(), mib(size(nixISO)), same)
	checkHostNix()
	removeTree(dir)
	return res
}

// nixBuildInputs builds the static imagegen package into pkg, adds the
// bench's store paths to the chroot store (timed: the duration is
// returned with their new store paths) and writes the Nix file.
func (n *nixRunner) nixBuildInputs(dir, pkg, file, benchStore string, paths []string) (trees []string, tAdd time.Duration) {
	benchStore, err := filepath.Abs(benchStore)
	must(err)
	must(os.MkdirAll(filepath.Join(pkg, "bin"), 0o755))
	must(gobuild.StaticCgo(context.Background(), filepath.Join(pkg, "bin", "imagegen"), "github.com/nixlive/nixlive/cmd/imagegen"))
	kernel, err := filepath.EvalSymlinks("/var/cache/nixlive/kernel/vmlinuz")
	must(err)
	initrd := filepath.Join(dir, "initrd")
	must(os.WriteFile(initrd, pseudoRandom(16<<20), 0o644))
	libNix, err := filepath.Abs("nix/lib.nix")
	must(err)

	// The closure goes into the store first, as a system's closure is
	// there before its ISO is built: not counted.
	var adds []string
	for _, p := range paths {
		_, name, _ := strings.Cut(filepath.Base(p), "-")
		adds = append(adds, fmt.Sprintf(`"${builtins.path { path = %s; name = %s; }}"`,
			strconvQuote(filepath.Join(benchStore, p)), strconvQuote(name)))
	}
	tAdd, _, out := n.run("nix-instantiate", "--read-write-mode", "--eval", "--strict", "--json", "--expr", "[ "+strings.Join(adds, " ")+" ]")
	must(json.Unmarshal(out, &trees))
	treesJSON, err := json.Marshal(trees)
	must(err)
	must(os.WriteFile(file, []byte(fmt.Sprintf(nixBuildExpr, pkg, libNix, string(treesJSON), kernel, initrd)), 0o644))
	// The other inputs (imagegen, kernel, initrd, boot files: 40 MB) are
	// added by the build's own evaluation, as in nix/iso_test.go.
	return trees, tAdd
}

// nixRunner runs Debian's Nix tools on a chroot store only
// (chrootnix: --store, a scratch HOME, no build users, no substituters).
type nixRunner struct{ store, home string }

func (n *nixRunner) run(tool string, args ...string) (wall, cpu time.Duration, stdout []byte) {
	checkHostNix()
	cmd := exec.Command(tool, append(chrootnix.Args(n.store), args...)...)
	cmd.Env = chrootnix.Env(n.home)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	start := time.Now()
	err := cmd.Run()
	wall = time.Since(start)
	checkHostNix()
	if err != nil {
		log.Fatalf("bench: %s %s: %v\n%s", tool, strings.Join(args, " "), err, e.Bytes())
	}
	return wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), o.Bytes()
}

// checkHostNix stops the bench if the host has a /nix: no Nix command
// here may create it.
func checkHostNix() {
	if _, err := os.Lstat("/nix"); err == nil {
		log.Fatal("bench: /nix exists on the host: a Nix command ran without --store, or something else made it")
	}
}

// removeTree removes a tree that Nix made read-only.
func removeTree(dir string) {
	if _, err := os.Lstat(dir); err == nil {
		run("chmod", "-R", "u+w", dir)
		must(os.RemoveAll(dir))
	}
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func fileSHA256(p string) string {
	f, err := os.Open(p)
	must(err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	must(err)
	return hex.EncodeToString(h.Sum(nil))
}

func treeSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// strconvQuote quotes s as a Nix string (no '$' or '\' expected in paths).
func strconvQuote(s string) string {
	if strings.ContainsAny(s, "\"\\$") {
		log.Fatalf("bench: %q: a path Nix would need escaped", s)
	}
	return `"` + s + `"`
}

// benchCommand is the command line that ran the bench, as typed.
func benchCommand() string {
	s := []string{"go run ./scripts/bench"}
	flag.Visit(func(f *flag.Flag) { s = append(s, "-"+f.Name+" "+f.Value.String()) })
	return "`" + strings.Join(s, " ") + "`"
}
