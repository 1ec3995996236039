package refscan_test

import (
	"bytes"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/nix-community/go-nix/pkg/storepath/references"

	"github.com/nixlive/nixlive/internal/nix/refscan"
)

// benchSize is the amount of data each benchmark scans per iteration.
const benchSize = 100 << 20

// words gives text blocks a realistic letter mix: English and shell-ish
// words are mostly nix32 letters, which is what makes text slower to scan
// than binary data (runs of nix32 bytes stop the scanner from skipping).
var words = []string{
	"the", "of", "and", "to", "in", "is", "for", "that", "with", "on", "lib", "bin",
	"share", "include", "export", "PATH", "if", "then", "fi", "echo", "local",
	"function", "return", "configuration", "static", "const", "struct", "int",
	"char", "void", "0x7fff", "1024", "usr", "etc", "systemd", "service", "unit",
	"ExecStart", "WantedBy", "multi-user.target", "lorem", "ipsum", "dolor",
	"sit", "amet", "consectetur", "adipiscing", "elit", "libraries", "kernel",
}

type corpus struct {
	cands []string
	data  []byte // benchSize bytes
}

var (
	corpusOnce sync.Once
	theCorpus  corpus
)

// realistic builds ~100 MB resembling a NixOS closure's NAR streams: about
// 60% binary (ELF-like: zero runs, random bytes, embedded C strings and
// RPATHs naming store paths), 35% text (scripts, configs, docs with store
// paths), and 5% long nix32 runs (hash lists as in .drv files and
// registrations), the scanner's worst case. 2,000 candidates, the size of
// a large system closure.
func realistic() corpus {
	corpusOnce.Do(func() {
		r := rand.New(rand.NewPCG(42, 42))
		cands := candidates(r, 2000)
		var buf bytes.Buffer
		buf.Grow(benchSize + 1<<16)
		storePath := func() string {
			if r.IntN(4) == 0 {
				// a path that is not a candidate
				return "/nix/store/" + randHash(r) + "-other"
			}
			return cands[r.IntN(len(cands))]
		}
		for buf.Len() < benchSize {
			switch k := r.IntN(100); {
			case k < 60: // binary block
				n := 4096 + r.IntN(60000)
				for i := 0; i < n; {
					switch r.IntN(20) {
					case 0:
						s := storePath() + "/lib\x00"
						buf.WriteString(s)
						i += len(s)
					case 1, 2:
						s := words[r.IntN(len(words))] + "\x00"
						buf.WriteString(s)
						i += len(s)
					case 3, 4, 5, 6:
						z := 1 + r.IntN(64)
						buf.Write(make([]byte, z))
						i += z
					default:
						for j := 0; j < 16; j++ {
							buf.WriteByte(byte(r.Uint32()))
						}
						i += 16
					}
				}
			case k < 95: // text block
				n := 1024 + r.IntN(30000)
				for i := 0; i < n; {
					var s string
					switch r.IntN(40) {
					case 0:
						s = storePath() + "/bin/sh"
					case 1:
						s = "\n"
					default:
						s = words[r.IntN(len(words))]
					}
					buf.WriteString(s)
					buf.WriteByte(' ')
					i += len(s) + 1
				}
			default: // nix32 hash list
				for n := 20 + r.IntN(200); n > 0; n-- {
					buf.WriteString("sha256:")
					for j := 0; j < 52; j++ {
						buf.WriteByte(alphabet[r.IntN(32)])
					}
					buf.WriteByte('\n')
				}
			}
		}
		theCorpus = corpus{cands: cands, data: buf.Bytes()[:benchSize]}
	})
	return theCorpus
}

// writeChunks feeds data in 64 KiB writes, as nar.Info's buffer does.
func writeChunks(w interface{ Write([]byte) (int, error) }, data []byte) {
	for len(data) > 0 {
		n := min(len(data), 64<<10)
		_, _ = w.Write(data[:n])
		data = data[n:]
	}
}

func BenchmarkScanRealistic(b *testing.B) {
	c := realistic()
	set, err := refscan.NewSet(c.cands)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(c.data)))
	b.ResetTimer()
	for b.Loop() {
		sc := set.NewScanner()
		writeChunks(sc, c.data)
		if len(sc.Found()) == 0 {
			b.Fatal("nothing found")
		}
	}
}

// BenchmarkScanAllNix32 is the worst case: every byte is nix32, so every
// position is a window to look up.
func BenchmarkScanAllNix32(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	cands := candidates(r, 2000)
	data := make([]byte, 16<<20)
	for i := range data {
		data[i] = alphabet[r.IntN(32)]
	}
	set, err := refscan.NewSet(cands)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		sc := set.NewScanner()
		writeChunks(sc, data)
	}
}

// BenchmarkGoNixRealistic is go-nix's (window-aligned, incomplete)
// scanner on the same data, for scale.
func BenchmarkGoNixRealistic(b *testing.B) {
	c := realistic()
	b.SetBytes(int64(len(c.data)))
	b.ResetTimer()
	for b.Loop() {
		sc, err := references.NewReferenceScanner(c.cands)
		if err != nil {
			b.Fatal(err)
		}
		writeChunks(sc, c.data)
	}
}
