package refscan_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/nix-community/go-nix/pkg/storepath/references"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/nix/refscan"
)

const alphabet = "0123456789abcdfghijklmnpqrsvwxyz"

func randHash(r *rand.Rand) string {
	b := make([]byte, 32)
	for i := range b {
		b[i] = alphabet[r.IntN(32)]
	}
	return string(b)
}

func candidates(r *rand.Rand, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("/nix/store/%s-pkg-%d", randHash(r), i)
	}
	return out
}

func hashOf(p string) string { return path.Base(p)[:32] }

// naive is the obviously correct reference: a candidate is found if its
// hash part occurs anywhere.
func naive(data []byte, cands []string) []string {
	var out []string
	for _, c := range cands {
		if bytes.Contains(data, []byte(hashOf(c))) {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

func scan(t testing.TB, set *refscan.Set, chunks ...[]byte) []string {
	sc := set.NewScanner()
	for _, c := range chunks {
		n, err := sc.Write(c)
		require.NoError(t, err)
		require.Equal(t, len(c), n)
	}
	return sc.Found()
}

// TestPrecededByNix32 is the case go-nix's scanner gets wrong: a hash
// directly preceded by other nix32 characters, so that it does not start
// at a multiple of 32 within its run.
func TestPrecededByNix32(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cands := candidates(r, 3)
	set, err := refscan.NewSet(cands)
	require.NoError(t, err)
	data := []byte("prefix x" + hashOf(cands[1]) + " suffix")
	require.Equal(t, []string{cands[1]}, scan(t, set, data))

	// Document go-nix's behaviour on the same input, without depending on
	// it staying broken.
	gn, err := references.NewReferenceScanner(cands)
	require.NoError(t, err)
	_, _ = gn.Write(data)
	if len(gn.References()) == 0 {
		t.Logf("go-nix references scanner misses %q (as expected)", data)
	}
}

// TestEveryOffset puts a hash inside a run of nix32 characters at every
// offset, with every possible split into two writes.
func TestEveryOffset(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	cands := candidates(r, 5)
	set, err := refscan.NewSet(cands)
	require.NoError(t, err)
	h := hashOf(cands[2])
	for pre := 0; pre <= 70; pre++ {
		for _, post := range []int{0, 1, 31, 40} {
			data := []byte("\x00" + strings.Repeat("x", pre) + h + strings.Repeat("z", post) + "/")
			for split := 0; split <= len(data); split++ {
				got := scan(t, set, data[:split], data[split:])
				require.Equal(t, []string{cands[2]}, got, "pre=%d post=%d split=%d", pre, post, split)
			}
		}
	}
}

func TestByteAtATime(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	cands := candidates(r, 10)
	set, err := refscan.NewSet(cands)
	require.NoError(t, err)
	data := []byte("a" + hashOf(cands[0]) + hashOf(cands[1]) + "-" + hashOf(cands[3]) + "q")
	var chunks [][]byte
	for i := range data {
		chunks = append(chunks, data[i:i+1])
	}
	want := []string{cands[0], cands[1], cands[3]}
	slices.Sort(want)
	require.Equal(t, want, scan(t, set, chunks...))
}

func TestNoFalsePositives(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	cands := candidates(r, 2)
	set, err := refscan.NewSet(cands)
	require.NoError(t, err)
	h := hashOf(cands[0])
	// 31 characters of the hash, or the hash broken by a non-nix32 byte
	// ('e' is not in the alphabet), is no reference.
	for _, s := range []string{h[:31], h[1:], h[:10] + "e" + h[11:], strings.ToUpper(h)} {
		require.Empty(t, scan(t, set, []byte(s)), s)
	}
}

func TestReset(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	cands := candidates(r, 2)
	set, err := refscan.NewSet(cands)
	require.NoError(t, err)
	h := hashOf(cands[0])
	sc := set.NewScanner()
	_, _ = sc.Write([]byte(h[:20]))
	sc.Reset()
	_, _ = sc.Write([]byte(h[20:]))
	require.Empty(t, sc.Found(), "a reset must also forget a partial hash")
	_, _ = sc.Write([]byte(" " + h))
	require.Equal(t, []string{cands[0]}, sc.Found())
}

func TestSharedHashPart(t *testing.T) {
	h := strings.Repeat("a", 32)
	set, err := refscan.NewSet([]string{"/nix/store/" + h + "-b", "/nix/store/" + h + "-a", "/nix/store/" + h + "-a"})
	require.NoError(t, err)
	require.Equal(t, 2, set.Len())
	require.Equal(t, []string{"/nix/store/" + h + "-a", "/nix/store/" + h + "-b"}, scan(t, set, []byte(h)))
}

func TestBadCandidate(t *testing.T) {
	for _, p := range []string{"/nix/store/short", "/nix/store/" + strings.Repeat("e", 32) + "-x", "/nix/store/" + strings.Repeat("a", 33)} {
		_, err := refscan.NewSet([]string{p})
		require.ErrorContains(t, err, p)
	}
}

// TestRandomAgainstNaive plants hashes in random nix32-heavy data and
// compares with bytes.Contains under random write splits.
func TestRandomAgainstNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	cands := candidates(r, 200)
	set, err := refscan.NewSet(cands)
	require.NoError(t, err)
	for iter := 0; iter < 300; iter++ {
		data := make([]byte, r.IntN(3000))
		for i := range data {
			if r.IntN(10) == 0 {
				data[i] = byte(r.IntN(256))
			} else {
				data[i] = alphabet[r.IntN(32)]
			}
		}
		for k := r.IntN(5); k > 0 && len(data) >= 32; k-- {
			copy(data[r.IntN(len(data)-31):], hashOf(cands[r.IntN(len(cands))]))
		}
		var chunks [][]byte
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 1+r.IntN(80))
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}
		require.Equal(t, naive(data, cands), scan(t, set, chunks...), "iteration %d", iter)
	}
}

func FuzzScan(f *testing.F) {
	r := rand.New(rand.NewPCG(13, 14))
	cands := candidates(r, 4)
	set, err := refscan.NewSet(cands)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("x"+hashOf(cands[0])), uint16(3))
	f.Add([]byte(hashOf(cands[1])+hashOf(cands[2])), uint16(40))
	f.Add([]byte("/nix/store/"+hashOf(cands[3])+"-pkg"), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		s := min(int(split), len(data))
		require.Equal(t, naive(data, cands), scan(t, set, data[:s], data[s:]))
	})
}
