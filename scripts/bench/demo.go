package main

import (
	"fmt"
	"log"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/nixlive/nixlive/demo/demoinit"
	"github.com/nixlive/nixlive/internal/boottest/qemu"
	"github.com/nixlive/nixlive/live"
)

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
		rep := demoBoot(i, filepath.Join(dir, "nixlive-demo.iso"))
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
-cpu max) to demo-init, timed from the timeline stage 1 and 2 leave in %s (%d store paths registered).

| measure | median of 5 | min | max |
|---|---|---|---|
| stage 2: start → exec of the system's init | **%.0f ms** | %.0f ms | %.0f ms |
| of which postboot (load-db, /etc/NIXOS, set-profile) | %.0f ms | %.0f ms | %.0f ms |
| demo-init reached, since the kernel started | %.1f s | %.1f s | %.1f s |
`, build.Seconds(), live.TimelinePath, paths, stage2[2], stage2[0], stage2[4], post[2], post[0], post[4], reached[2], reached[0], reached[4])
}

// demoBoot boots the demo ISO and returns demo-init's report. It answers
// demo-init's offer of a shell with "q", which powers off at once.
func demoBoot(i int, iso string) *demoinit.Report {
	deadline := time.Now().Add(5 * time.Minute)
	// -cpu max: RDRAND, so postboot's SQLite does not wait for entropy
	// (see qemu.Options.CPU).
	vm, err := qemu.Start(qemu.Options{Name: "demo", CDROM: iso, CPU: "max"})
	must(err)
	_, err = vm.ExpectString(demoinit.ShellOffer, time.Until(deadline))
	if err == nil {
		err = vm.Type("q")
	}
	if err == nil {
		err = vm.Wait(time.Until(deadline))
	}
	vm.Stop()
	console := strings.ReplaceAll(vm.Console(), "\r", "")
	rep, perr := demoinit.Parse(console)
	if perr != nil || !rep.OK() {
		log.Fatalf("bench: demo boot %d: %v %v\n%s", i, err, perr, console)
	}
	return rep
}
