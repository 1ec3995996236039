package squashfs

// The pipeline behind the Writer: jobs go to compressing workers and come
// out, in the order they were made, to the sink that writes the image.

import "fmt"

type jobKind int

const (
	jobData  jobKind = iota // compress src, the block idx of fd
	jobFrag                 // compress src, fragment block fragIdx
	jobCopy                 // copy the first n blocks of from
	jobStart                // fd's data starts here
)

type job struct {
	kind    jobKind
	fd      *fileData
	idx     int
	fragIdx uint32
	src     []byte
	out     []byte // nil: store src uncompressed
	dst     []byte // pooled storage behind out
	from    *fileData
	n       int
	done    chan struct{}
	err     error
}

func (w *Writer) compressLoop() {
	defer w.workersWG.Done()
	enc := w.opts.Compression.newEncoder(w.bs, !w.opts.ExactLevel)
	var compressed int64
	for j := range w.work {
		if w.failed() != nil { // cancelled, or failed: the sink drops it
			close(j.done)
			continue
		}
		dst := w.dstPool.Get().([]byte)
		compressed += int64(len(j.src))
		out, err := enc.compress(dst[:0], j.src)
		j.out, j.dst, j.err = out, dst, err
		close(j.done)
	}
	w.statsMu.Lock()
	defer w.statsMu.Unlock()
	w.stats.Compressed += compressed
	if z, ok := enc.(*zstdEncoder); ok {
		w.stats.TrialKept += z.trialKept
	}
}

// sinkLoop writes finished jobs in the order they were made, so the image
// does not depend on which worker finished first.
func (w *Writer) sinkLoop() {
	defer close(w.sinkDone)
	for j := range w.order {
		<-j.done
		if err := w.sinkJob(j); err != nil {
			w.setErr(err)
		}
		if j.src != nil {
			w.srcPool.Put(j.src[:0])
		}
		if j.dst != nil {
			w.dstPool.Put(j.dst[:0])
		}
	}
	if err := w.sink.flush(); err != nil {
		w.setErr(err)
	}
}

func (w *Writer) sinkJob(j *job) error {
	if w.failed() != nil {
		return nil // keep draining; the first error is what counts
	}
	if j.err != nil {
		return fmt.Errorf("squashfs: compress: %w", j.err)
	}
	switch j.kind {
	case jobStart:
		j.fd.start = uint64(w.sink.offset())
	case jobData, jobFrag:
		data, size := j.out, uint32(len(j.out))
		if data == nil {
			data, size = j.src, uint32(len(j.src))|dataUncompressed
		}
		at := w.sink.offset()
		if err := w.sink.write(data); err != nil {
			return err
		}
		if j.kind == jobData {
			j.fd.sizes[j.idx] = size
		} else {
			w.fragments = append(w.fragments, fragmentEntry{Start: uint64(at), Size: size})
		}
	case jobCopy:
		var n int64
		for _, s := range j.from.sizes[:j.n] {
			n += int64(s &^ dataUncompressed)
		}
		if err := w.sink.copyFrom(int64(j.from.start), n); err != nil {
			return err
		}
		copy(j.fd.sizes, j.from.sizes[:j.n])
	}
	return nil
}

// sink buffers the sequential data writes.
type sink struct {
	f   File
	pos int64 // offset of buf[0]
	buf []byte
}

func (s *sink) offset() int64 { return s.pos + int64(len(s.buf)) }

func (s *sink) write(p []byte) error {
	if len(s.buf)+len(p) > cap(s.buf) {
		if err := s.flush(); err != nil {
			return err
		}
	}
	if len(p) > cap(s.buf) {
		if _, err := s.f.WriteAt(p, s.pos); err != nil {
			return fmt.Errorf("squashfs: write: %w", err)
		}
		s.pos += int64(len(p))
		return nil
	}
	s.buf = append(s.buf, p...)
	return nil
}

func (s *sink) flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	if _, err := s.f.WriteAt(s.buf, s.pos); err != nil {
		return fmt.Errorf("squashfs: write: %w", err)
	}
	s.pos += int64(len(s.buf))
	s.buf = s.buf[:0]
	return nil
}

// copyFrom appends n bytes already written at off.
func (s *sink) copyFrom(off, n int64) error {
	if err := s.flush(); err != nil {
		return err
	}
	chunk := make([]byte, min(n, 1<<20))
	for n > 0 {
		c := chunk[:min(n, int64(len(chunk)))]
		if _, err := s.f.ReadAt(c, off); err != nil {
			return fmt.Errorf("squashfs: read back duplicate blocks: %w", err)
		}
		if err := s.write(c); err != nil {
			return err
		}
		if err := s.flush(); err != nil { // c is reused
			return err
		}
		off += int64(len(c))
		n -= int64(len(c))
	}
	return nil
}
