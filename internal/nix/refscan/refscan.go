// Package refscan finds store path references in a byte stream the way
// Nix does: a store object refers to a candidate path if the candidate's
// 32-character hash part occurs anywhere in the object's NAR serialisation
// (file contents, file names, symlink targets), at any byte offset.
//
// A Set holds the candidates and is shared read-only; a Scanner is an
// io.Writer fed one stream (one store object) and remembers which
// candidates it saw. Writes may split the stream anywhere, including in
// the middle of a hash.
//
// Unlike go-nix's storepath/references scanner, which restarts its
// 32-character window after every 32 nix32 characters and so misses a
// hash preceded by other nix32 characters (say "x" + hash), every window
// of 32 consecutive nix32 characters is checked here, as Nix does.
package refscan

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"path"
	"slices"

	"github.com/nixlive/nixlive/internal/nix/storepath"
)

const hashLen = storepath.HashLen

// isNix32 is the byte class table for the nix32 alphabet
// 0123456789abcdfghijklmnpqrsvwxyz; a table beats the comparisons of
// nixbase32.Is in the inner loop.
var isNix32 = func() (t [256]bool) {
	for _, c := range []byte("0123456789abcdfghijklmnpqrsvwxyz") {
		t[c] = true
	}
	return t
}()

// Set is an immutable set of candidate store paths, indexed by hash part.
type Set struct {
	paths []string // sorted, unique
	// keys and vals form an open-addressing hash table keyed by the first
	// 8 bytes of a hash part (random enough to need no further hashing);
	// a slot holds that key and the index of its entry in hashes, and the
	// full hash part is compared on a key match. A Go map
	// with string keys works too but costs several times more per
	// window, and long nix32 runs (base32 blobs, hash lists) do one
	// lookup per byte.
	keys   []uint64
	vals   []int32
	shift  uint
	hashes []entry // one per distinct hash part
	// filter is a one-hash Bloom filter over the same keys, at least 32
	// bits per candidate, so that inside long nix32 runs most windows are
	// rejected by one bit test in a small, cache-resident array instead
	// of a probe sequence in the larger table.
	filter      []uint64
	filterShift uint
}

// entry is a distinct hash part and the candidate paths that have it;
// distinct valid store paths never share a hash part, but nothing stops
// a caller from passing such paths, and then all of them are referenced.
type entry struct {
	hash  string
	paths []int32
}

// NewSet builds a candidate set from absolute store paths (in any store
// dir; only the base name's hash part matters).
func NewSet(paths []string) (*Set, error) {
	s := &Set{paths: slices.Clone(paths)}
	slices.Sort(s.paths)
	s.paths = slices.Compact(s.paths)

	byHash := make(map[string]int32, len(s.paths))
	for i, p := range s.paths {
		base := path.Base(p)
		if len(base) < hashLen+2 || base[hashLen] != '-' {
			return nil, fmt.Errorf("refscan: candidate %q: not a store path", p)
		}
		h := base[:hashLen]
		if err := storepath.CheckHash(h); err != nil {
			return nil, fmt.Errorf("refscan: candidate %q: %w", p, err)
		}
		e, ok := byHash[h]
		if !ok {
			e = int32(len(s.hashes))
			byHash[h] = e
			s.hashes = append(s.hashes, entry{hash: h})
		}
		s.hashes[e].paths = append(s.hashes[e].paths, int32(i))
	}

	// Size the table to at most half full so that probe chains stay short.
	size := 16
	for size < 2*len(s.hashes) {
		size *= 2
	}
	s.shift = uint(64 - bits.TrailingZeros(uint(size)))
	s.keys = make([]uint64, size)
	s.vals = make([]int32, size)
	fbits := 1 << 12
	for fbits < 32*len(s.hashes) {
		fbits *= 2
	}
	s.filter = make([]uint64, fbits/64)
	s.filterShift = uint(64 - bits.TrailingZeros(uint(fbits)))
	for i, e := range s.hashes {
		k := binary.LittleEndian.Uint64([]byte(e.hash[:8]))
		f := s.fslot(k)
		s.filter[f/64] |= 1 << (f % 64)
		slot := s.slot(k)
		for s.keys[slot] != 0 {
			slot = (slot + 1) & (len(s.keys) - 1)
		}
		s.keys[slot] = k
		s.vals[slot] = int32(i)
	}
	return s, nil
}

// slot is the home slot of key k (Fibonacci hashing). A key is never 0:
// nix32 characters are non-zero bytes, so 0 marks an empty slot.
func (s *Set) slot(k uint64) int {
	return int((k * 0x9E3779B97F4A7C15) >> s.shift)
}

// fslot is k's bit in the filter; a different multiplier from slot's keeps
// the two independent.
func (s *Set) fslot(k uint64) uint {
	return uint((k * 0xC2B2AE3D27D4EB4F) >> s.filterShift)
}

// Len returns the number of candidates.
func (s *Set) Len() int { return len(s.paths) }

// lookup returns the entry whose hash part is w (32 nix32 bytes), or -1.
// Callers test the filter first.
func (s *Set) lookup(w []byte) int32 {
	k := binary.LittleEndian.Uint64(w)
	for slot := s.slot(k); s.keys[slot] != 0; slot = (slot + 1) & (len(s.keys) - 1) {
		if s.keys[slot] == k {
			e := s.vals[slot]
			if s.hashes[e].hash == string(w) {
				return e
			}
		}
	}
	return -1
}

// Scanner is an io.Writer that records which candidates of its Set occur
// in what is written to it. It is not safe for concurrent use; use one
// Scanner per stream.
type Scanner struct {
	set *Set
	// tail holds the trailing nix32 run of the stream so far, at most 31
	// bytes: only a run of nix32 bytes can be part of a hash that straddles
	// the next Write, and 31 bytes are enough to complete any window.
	tail    [hashLen - 1]byte
	tailLen int
	scratch [2*hashLen - 2]byte
	found   map[int32]struct{} // entry indices seen
}

// NewScanner returns a Scanner for a new stream.
func (s *Set) NewScanner() *Scanner {
	return &Scanner{set: s, found: make(map[int32]struct{})}
}

// Write scans p; it never fails.
func (sc *Scanner) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	// Windows straddling the previous writes and p: they start in the
	// tail and end in p's leading nix32 run, so the concatenation of the
	// two (each at most 31 bytes) contains them all.
	if sc.tailLen > 0 {
		lead := 0
		for lead < len(p) && lead < hashLen-1 && isNix32[p[lead]] {
			lead++
		}
		if lead > 0 && sc.tailLen+lead >= hashLen {
			n := copy(sc.scratch[:], sc.tail[:sc.tailLen])
			n += copy(sc.scratch[n:], p[:lead])
			sc.search(sc.scratch[:n])
		}
	}
	sc.search(p)
	sc.updateTail(p)
	return len(p), nil
}

// updateTail makes tail the trailing nix32 run (capped at 31 bytes) of the
// stream ending with p.
func (sc *Scanner) updateTail(p []byte) {
	run := 0
	for run < len(p) && run < hashLen-1 && isNix32[p[len(p)-1-run]] {
		run++
	}
	if run == len(p) && run < hashLen-1 {
		// p is all nix32 and short: the run continues the old tail.
		keep := min(sc.tailLen, hashLen-1-run)
		copy(sc.tail[:], sc.tail[sc.tailLen-keep:sc.tailLen])
		copy(sc.tail[keep:], p)
		sc.tailLen = keep + run
		return
	}
	copy(sc.tail[:], p[len(p)-run:])
	sc.tailLen = run
}

// search records every candidate whose hash part occurs in b.
//
// It tests a window b[i:i+32] from its last byte backwards, as Nix does:
// a non-nix32 byte at i+j rules out every window containing it, so the
// scan resumes at i+j+1. On binary data this skips ahead up to 32 bytes per
// probe. Once a full window of nix32 bytes is found, sliding it by one
// only needs the one new byte to be checked.
func (sc *Scanner) search(b []byte) {
	set := sc.set
	n := len(b)
	i := 0
	for i+hashLen <= n {
		j := hashLen - 1
		for j >= 0 && isNix32[b[i+j]] {
			j--
		}
		if j >= 0 {
			i += j + 1
			continue
		}
		// b[i:i+32] is all nix32: slide along the run. The filter test is
		// inlined because this loop runs once per byte of a long run.
		for {
			w := b[i : i+hashLen]
			f := set.fslot(binary.LittleEndian.Uint64(w))
			if set.filter[f/64]&(1<<(f%64)) != 0 {
				if e := set.lookup(w); e >= 0 {
					sc.found[e] = struct{}{}
				}
			}
			next := i + hashLen
			if next >= n {
				return
			}
			if !isNix32[b[next]] {
				i = next + 1
				break
			}
			i++
		}
	}
}

// Found returns the candidate paths seen so far, sorted.
func (sc *Scanner) Found() []string {
	var out []string
	for e := range sc.found {
		for _, i := range sc.set.hashes[e].paths {
			out = append(out, sc.set.paths[i])
		}
	}
	slices.Sort(out)
	return out
}

// Reset forgets the stream so the Scanner can scan another one.
func (sc *Scanner) Reset() {
	sc.tailLen = 0
	clear(sc.found)
}
