package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nixlive/nixlive/internal/boottest/qemu"
	"github.com/nixlive/nixlive/internal/gobuild"
	"github.com/nixlive/nixlive/live"
)

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
		out, err := qemuCommand(120, qemu.Options{CDROM: iso}).Output()
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
timed from stage 1's own timeline (%s, printed by the test stage 2).

| measure | median of 5 | min | max | target |
|---|---|---|---|---|
| stage 1's own work (start → switch_root, less module init and device wait) | **%.0f ms** | %.0f ms | %.0f ms | < 150 ms |
| stage 1 in all (start → switch_root) | %.0f ms | %.0f ms | %.0f ms | |

| initrd (zstd, default modules) | size | target |
|---|---|---|
| without rescue shell | **%s** | < 6 MiB |
| with --rescue-shell | %s | |
`, strings.TrimSpace(readFile("/var/cache/nixlive/kernel/version")), live.Stage1TimelinePath, own[2], own[0], own[4], total[2], total[0], total[4], mib(size(initrd)), mib(size(rescue)))
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// qemuCommand runs the tests' machine (package qemu's arguments) under a
// time limit.
func qemuCommand(seconds int, opts qemu.Options) *exec.Cmd {
	args, err := opts.Args()
	must(err)
	return exec.Command("timeout", append([]string{fmt.Sprint(seconds), qemu.QEMU}, args...)...)
}
