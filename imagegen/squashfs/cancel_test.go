package squashfs

import (
	"context"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// countingFile is a File that counts the bytes written to it.
type countingFile struct {
	*os.File
	written chan int
}

func (c *countingFile) WriteAt(p []byte, off int64) (int, error) {
	select {
	case c.written <- len(p):
	default:
	}
	return c.File.WriteAt(p, off)
}

// TestCancel cancels the Writer's context while a slow compression is
// under way: Write returns the context's error within a block or two,
// Close returns it too, nothing is written after Close, and the workers
// are gone.
func TestCancel(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cf := &countingFile{File: f, written: make(chan int, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	goroutines := runtime.NumGoroutine()
	w, err := NewWriter(cf, Options{Compression: Compression{Algorithm: "xz"}, BlockSize: 1 << 20, Workers: 2, Context: ctx})
	if err != nil {
		t.Fatal(err)
	}
	const size = 256 << 20 // far more than is written before the cancel
	if err := w.WriteHeader(&Header{Name: "big", Mode: 0o644, Size: size}); err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 1<<20)
	rng := rand.New(rand.NewSource(1))
	var cancelled time.Time
	var written int64
	for written < size {
		for i := 0; i < len(block); i += 64 { // compressible, but not at once
			block[i] = byte(rng.Intn(16))
		}
		if written == 8<<20 {
			cancel()
			cancelled = time.Now()
		}
		n, err := w.Write(block)
		written += int64(n)
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Write: %v, want context.Canceled", err)
			}
			break
		}
	}
	if cancelled.IsZero() || written > 12<<20 {
		t.Fatalf("%d bytes taken in after the cancel at 8 MiB", written-8<<20)
	}
	if err := w.Close(); !errors.Is(err, context.Canceled) {
		t.Errorf("Close: %v, want context.Canceled", err)
	}
	if took := time.Since(cancelled); took > 5*time.Second {
		t.Errorf("took %v to stop after the cancel", took)
	}
	for len(cf.written) > 0 {
		<-cf.written
	}
	time.Sleep(50 * time.Millisecond)
	select {
	case n := <-cf.written:
		t.Errorf("%d bytes written after Close", n)
	default:
	}
	for i := 0; runtime.NumGoroutine() > goroutines && i < 100; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		t.Errorf("%d goroutines after Close, %d before NewWriter", n, goroutines)
	}
}
