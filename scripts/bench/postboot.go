package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nixlive/nixlive/internal/boottest/fixture"
	"github.com/nixlive/nixlive/internal/gobuild"
	"github.com/nixlive/nixlive/internal/nix/registration"
)

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
