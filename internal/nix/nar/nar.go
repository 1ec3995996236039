// Package nar computes the NAR hash and size of a host path: the SHA-256
// and length of its Nix Archive serialisation, as recorded for every path
// in a Nix database (narHash, narSize).
//
// The serialisation is Walk's, which lets a caller copy each file from the
// very bytes that are hashed (a store image checks its content against
// the registration that way); the tests hold it to go-nix's nar.DumpPath.
// The stream goes into a hash, a byte counter and, optionally, another
// writer (a reference scanner), so that each file is read once and never
// held in memory as a whole.
package nar

import (
	"crypto/sha256"
	"io"
)

// bufSize batches the NAR writer's many small writes (each string in a NAR
// is a separate length, bytes and padding write) before they reach the
// hash and the scanner, whose per-call costs would otherwise dominate on
// trees of small files. Large file contents pass through mostly unbuffered.
const bufSize = 64 << 10

// Hash returns the SHA-256 and the size in bytes of the NAR serialisation
// of hostPath (a regular file, symlink or directory tree).
func Hash(hostPath string) (narHash [32]byte, narSize uint64, err error) {
	return InfoVisit(hostPath, nil, nil)
}

// InfoVisit is Hash that also copies the NAR stream to also (if not nil) in
// the same pass, so that a reference scanner sees exactly the bytes that
// were hashed, and calls visit (if not nil) on every entry, as Walk does.
// An error from also or visit aborts the dump.
func InfoVisit(hostPath string, also io.Writer, visit func(*Entry) error) (narHash [32]byte, narSize uint64, err error) {
	h := sha256.New()
	var c counter
	var w io.Writer
	if also != nil {
		w = io.MultiWriter(h, &c, also)
	} else {
		w = io.MultiWriter(h, &c)
	}
	if err := Walk(w, hostPath, visit); err != nil {
		// The error names the file that could not be read.
		return narHash, 0, err
	}
	copy(narHash[:], h.Sum(nil))
	return narHash, c.n, nil
}

type counter struct{ n uint64 }

func (c *counter) Write(p []byte) (int, error) {
	c.n += uint64(len(p))
	return len(p), nil
}
