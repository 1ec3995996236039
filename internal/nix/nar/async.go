package nar

import (
	"crypto/sha256"
	"hash"
)

// AsyncSum is an io.Writer that computes the SHA-256 and length of what is
// written to it (a NAR hash and size, fed by Walk) on a goroutine of its
// own: the writer only copies its bytes, so that the hash runs beside a
// producer that is busy anyway (a store image's adding goroutine) rather
// than after it. Sum ends one stream and starts the next; Close stops the
// goroutine.
type AsyncSum struct {
	chunks chan []byte // nil asks for the sum
	free   chan []byte
	sums   chan sumResult
}

type sumResult struct {
	hash [32]byte
	size uint64
}

const (
	asyncChunk  = 1 << 20
	asyncChunks = 4
)

// NewAsyncSum starts an AsyncSum.
func NewAsyncSum() *AsyncSum {
	a := &AsyncSum{
		chunks: make(chan []byte, asyncChunks),
		free:   make(chan []byte, asyncChunks),
		sums:   make(chan sumResult),
	}
	for range asyncChunks {
		a.free <- make([]byte, 0, asyncChunk)
	}
	go a.loop(sha256.New())
	return a
}

func (a *AsyncSum) loop(h hash.Hash) {
	var n uint64
	for b := range a.chunks {
		if b == nil {
			var r sumResult
			h.Sum(r.hash[:0])
			r.size = n
			a.sums <- r
			h.Reset()
			n = 0
			continue
		}
		h.Write(b)
		n += uint64(len(b))
		a.free <- b[:0]
	}
}

// Write copies p for the hashing goroutine. It never fails.
func (a *AsyncSum) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		b := <-a.free
		k := min(len(p), cap(b))
		a.chunks <- append(b, p[:k]...)
		p = p[k:]
	}
	return total, nil
}

// Sum returns the hash and length of what was written since the last Sum.
func (a *AsyncSum) Sum() (narHash [32]byte, narSize uint64) {
	a.chunks <- nil
	r := <-a.sums
	return r.hash, r.size
}

// Close stops the goroutine; the AsyncSum cannot be used after.
func (a *AsyncSum) Close() { close(a.chunks) }
