package registration

import (
	"crypto/sha1"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/nix-community/go-nix/pkg/nixbase32"
)

// FakePath is a syntactically valid store path that no Nix made, named
// after name.
func FakePath(name string) string {
	h := sha1.Sum([]byte("postboot-test:" + name))
	return "/nix/store/" + nixbase32.EncodeToString(h[:]) + "-" + name
}

// Synthetic makes n records of fake paths with fake hashes, for tests and
// benchmarks of load-db (which never looks at the files): every third path
// refers to itself, and each refers to up to four earlier ones, so there is
// no cycle. The same n and seed give the same records.
func Synthetic(n int, seed uint64) []Record {
	rng := rand.New(rand.NewPCG(seed, 1))
	recs := make([]Record, n)
	for i := range recs {
		r := &recs[i]
		r.Path = FakePath(fmt.Sprintf("synth-%d-%d", seed, i))
		for j := range r.NarHash {
			r.NarHash[j] = byte(rng.Uint32())
		}
		r.NarSize = 120 + uint64(rng.IntN(1<<20))
		if i%3 == 0 {
			r.References = append(r.References, r.Path)
		}
		for k := rng.IntN(5); k > 0 && i > 0; k-- {
			r.References = append(r.References, recs[rng.IntN(i)].Path)
		}
		slices.Sort(r.References)
		r.References = slices.Compact(r.References)
	}
	return recs
}
