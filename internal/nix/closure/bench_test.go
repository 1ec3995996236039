package closure_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/nixlive/nixlive/internal/nix/closure"
	"github.com/nixlive/nixlive/internal/nix/storepath"
)

// BenchmarkFromStoreRoot measures the whole pipeline (read, NAR, hash,
// scan, parallel walk) on 100 paths of 1 MiB each, in files of 64 KiB
// of random bytes with references sprinkled in.
func BenchmarkFromStoreRoot(b *testing.B) {
	root := storepath.Root{Dir: b.TempDir()}
	r := rand.New(rand.NewPCG(1, 1))
	const n, files, fileSize = 100, 16, 64 << 10
	paths := make([]string, n)
	for i := range paths {
		paths[i] = fakePath(fmt.Sprintf("pkg%d", i))
	}
	for i, p := range paths {
		dir := root.HostPath(p)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := 0; f < files; f++ {
			data := make([]byte, fileSize)
			for k := range data {
				data[k] = byte(r.Uint32())
			}
			// a few references to random paths; path 0 (the root) refers
			// to every path, like a system's top-level does, so that the
			// walk has work for all workers
			for k := 0; k < 3; k++ {
				ref := paths[r.IntN(n)]
				copy(data[r.IntN(fileSize-len(ref)):], ref)
			}
			if i == 0 && f == 0 {
				for k, ref := range paths {
					copy(data[k*len(ref):], ref)
				}
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprint("f", f)), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.SetBytes(n * files * fileSize)
	for b.Loop() {
		c, err := closure.FromStoreRoot(root, paths[:1])
		if err != nil {
			b.Fatal(err)
		}
		if len(c.Paths) != n {
			b.Fatalf("closure has %d paths, want %d", len(c.Paths), n)
		}
	}
}
