package squashfs

// The data of regular files: full blocks, duplicate detection while a
// file is written, sparse blocks and the fragments that hold file tails.

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
)

func (w *Writer) writable() (*fileState, error) {
	if err := w.failed(); err != nil {
		return nil, err
	}
	if w.cur == nil {
		return nil, errors.New("squashfs: Write without a regular file's header")
	}
	return w.cur, nil
}

// took accounts for k bytes appended to s.buf and hands on a full block.
func (w *Writer) took(s *fileState, k int) error {
	s.written += int64(k)
	w.taken += int64(k)
	if len(s.buf) == w.bs {
		w.fullBlock(s)
		s.buf = nil
		if w.opts.Progress != nil {
			w.opts.Progress(w.taken)
		}
	}
	return w.failed()
}

var zeroBlock = make([]byte, 1<<20)
var zeroHash = sha256.Sum256(nil) // stands for every all-zero full block

func isZero(b []byte) bool { return bytes.Equal(b, zeroBlock[:len(b)]) }

// fullBlock decides what happens to block s.block of the current file:
// nothing yet while it may be a duplicate, nothing ever if it is all zeros,
// else compression.
func (w *Writer) fullBlock(s *fileState) {
	blk, i := s.buf, s.block
	s.block++
	zero := isZero(blk)
	h := zeroHash
	if !zero {
		h = sha256.Sum256(blk)
	}
	if !w.opts.NoDuplicates {
		s.fd.hashes = append(s.fd.hashes, h)
		if i == 0 {
			if c := w.big[dedupKey{s.fd.size, h}]; len(c) > 0 {
				s.cands, s.tentative = append([]*fileData(nil), c...), true
			}
		}
	}
	if s.tentative {
		keep := s.cands[:0:0]
		for _, c := range s.cands {
			if c.hashes[i] == h {
				keep = append(keep, c)
			}
		}
		if len(keep) > 0 {
			s.cands = keep
			w.srcPool.Put(blk[:0])
			return
		}
		// Blocks 0..i-1 equal those of the earlier file: copy them.
		w.copyBlocks(s, s.cands[0], i)
	}
	if zero {
		w.srcPool.Put(blk[:0]) // sizes[i] stays 0: a sparse block
		w.stats.Sparse += int64(len(blk))
		return
	}
	w.start(s)
	w.send(&job{kind: jobData, fd: s.fd, idx: i, src: blk, done: make(chan struct{})})
}

func (w *Writer) copyBlocks(s *fileState, from *fileData, n int) {
	s.tentative, s.cands = false, nil
	if n == 0 {
		return
	}
	w.start(s)
	w.send(&job{kind: jobCopy, fd: s.fd, from: from, n: n, done: closedChan})
	w.stats.Duplicate += int64(n) * int64(w.bs)
}

// start marks where the current file's data begins, once.
func (w *Writer) start(s *fileState) {
	if !s.started {
		s.started = true
		w.send(&job{kind: jobStart, fd: s.fd, done: closedChan})
	}
}

func (w *Writer) send(j *job) {
	w.order <- j
	if j.kind == jobData || j.kind == jobFrag {
		w.work <- j
	}
}

// finishFile ends the current regular file: its tail goes to a fragment or a
// short last block, or the whole file turns out to be a duplicate.
func (w *Writer) finishFile() error {
	s := w.cur
	if s == nil {
		return nil
	}
	w.cur = nil
	fd := s.fd
	if w.opts.Progress != nil {
		w.opts.Progress(w.taken)
	}
	if s.written != fd.size {
		return fmt.Errorf("squashfs: %s: %d of %d bytes written", displayName(s.path), s.written, fd.size)
	}
	tail := s.buf
	defer func() {
		if tail != nil {
			w.srcPool.Put(tail[:0])
		}
	}()
	dedup := !w.opts.NoDuplicates
	if s.block == 0 { // smaller than a block: all of it is the tail
		if fd.size == 0 {
			return nil
		}
		if dedup {
			key := dedupKey{fd.size, sha256.Sum256(tail)}
			if d := w.small[key]; d != nil {
				fd.dupOf = d
				w.stats.Duplicate += fd.size
				return nil
			}
			w.small[key] = fd
		}
		w.addFragment(fd, tail)
		return nil
	}
	if dedup {
		fd.tailHash = sha256.Sum256(tail)
	}
	if s.tentative {
		for _, c := range s.cands {
			if c.tailHash == fd.tailHash {
				fd.dupOf = c
				w.stats.Duplicate += fd.size
				return nil
			}
		}
		w.copyBlocks(s, s.cands[0], s.block)
	}
	if len(tail) > 0 {
		if w.opts.AlwaysUseFragments {
			w.addFragment(fd, tail)
		} else {
			w.start(s)
			w.send(&job{kind: jobData, fd: fd, idx: s.block, src: tail, done: make(chan struct{})})
			tail = nil // the sink returns it to the pool
		}
	}
	w.start(s) // all blocks sparse: the file still needs a start
	if dedup {
		key := dedupKey{fd.size, fd.hashes[0]}
		w.big[key] = append(w.big[key], fd)
	}
	return nil
}

func (w *Writer) addFragment(fd *fileData, data []byte) {
	if len(w.frag)+len(data) > w.bs {
		w.flushFragment()
	}
	if w.frag == nil {
		w.frag = w.srcPool.Get().([]byte)[:0]
	}
	fd.frag, fd.fragOff = w.fragCount, uint32(len(w.frag))
	w.frag = append(w.frag, data...)
}

func (w *Writer) flushFragment() {
	if len(w.frag) == 0 {
		return
	}
	w.send(&job{kind: jobFrag, fragIdx: w.fragCount, src: w.frag, done: make(chan struct{})})
	w.fragCount++
	w.frag = nil
}
