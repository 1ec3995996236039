// Package nar computes the NAR hash and size of a host path: the SHA-256
// and length of its Nix Archive serialisation, as recorded for every path
// in a Nix database (narHash, narSize).
//
// The serialisation itself is go-nix's nar.DumpPath; this package only
// streams it into a hash, a byte counter and, optionally, another writer
// (a reference scanner), so that each file is read once and never held in
// memory as a whole.
package nar

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"

	gonar "github.com/nix-community/go-nix/pkg/nar"
)

// bufSize batches the NAR writer's many small writes (each string in a NAR
// is a separate length, bytes and padding write) before they reach the
// hash and the scanner, whose per-call costs would otherwise dominate on
// trees of small files. Large file contents pass through mostly unbuffered.
const bufSize = 64 << 10

// Hash returns the SHA-256 and the size in bytes of the NAR serialisation
// of hostPath (a regular file, symlink or directory tree).
func Hash(hostPath string) (narHash [32]byte, narSize uint64, err error) {
	return Info(hostPath, nil)
}

// Info is Hash that also copies the NAR stream to also (if not nil) in the
// same pass, so that a reference scanner sees exactly the bytes that were
// hashed. An error from also aborts the dump.
func Info(hostPath string, also io.Writer) (narHash [32]byte, narSize uint64, err error) {
	h := sha256.New()
	var c counter
	var w io.Writer
	if also != nil {
		w = io.MultiWriter(h, &c, also)
	} else {
		w = io.MultiWriter(h, &c)
	}
	bw := bufio.NewWriterSize(w, bufSize)
	if err := gonar.DumpPath(bw, hostPath); err != nil {
		// go-nix's errors mostly come from os and name the failing file
		// already; the prefix says which store object was being read.
		return narHash, 0, fmt.Errorf("nar: dumping %s: %w", hostPath, err)
	}
	if err := bw.Flush(); err != nil {
		return narHash, 0, fmt.Errorf("nar: dumping %s: %w", hostPath, err)
	}
	copy(narHash[:], h.Sum(nil))
	return narHash, c.n, nil
}

// Dump writes the NAR serialisation of hostPath to w.
func Dump(w io.Writer, hostPath string) error {
	bw := bufio.NewWriterSize(w, bufSize)
	if err := gonar.DumpPath(bw, hostPath); err != nil {
		return fmt.Errorf("nar: dumping %s: %w", hostPath, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("nar: dumping %s: %w", hostPath, err)
	}
	return nil
}

type counter struct{ n uint64 }

func (c *counter) Write(p []byte) (int, error) {
	c.n += uint64(len(p))
	return len(p), nil
}
