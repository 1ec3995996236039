package stage1

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// consoleHandler writes slog records as kernel-log-like lines:
// "[    1.234567] stage1: message key=value", stamped with the time since
// boot so they read in step with the kernel's own messages.
type consoleHandler struct {
	mu    *sync.Mutex
	w     io.Writer
	now   func() time.Duration
	attrs []slog.Attr
}

func newConsoleHandler(w io.Writer, now func() time.Duration) *consoleHandler {
	return &consoleHandler{mu: &sync.Mutex{}, w: w, now: now}
}

func (h *consoleHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *consoleHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "[%12.6f] stage1: ", h.now().Seconds())
	if r.Level >= slog.LevelWarn {
		b.WriteString(r.Level.String() + ": ")
	}
	b.WriteString(r.Message)
	write := func(a slog.Attr) bool {
		v := a.Value.String()
		if strings.ContainsAny(v, " \t\"") {
			v = fmt.Sprintf("%q", v)
		}
		fmt.Fprintf(&b, " %s=%s", a.Key, v)
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(write)
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *consoleHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr{}, h.attrs...), as...)
	return &c
}

func (h *consoleHandler) WithGroup(string) slog.Handler { return h }

// asyncWriter writes to a slow console (a serial port at 115200 baud takes
// about 9 ms a line) from its own goroutine, so that logging does not
// stretch the steps it reports. Flush waits until everything is out.
type asyncWriter struct {
	ch chan []byte
	w  io.Writer
}

func newAsyncWriter(w io.Writer) *asyncWriter {
	a := &asyncWriter{ch: make(chan []byte, 1024), w: w}
	go func() {
		for b := range a.ch {
			if b == nil {
				continue
			}
			a.w.Write(b)
		}
	}()
	return a
}

func (a *asyncWriter) Write(p []byte) (int, error) {
	a.ch <- append([]byte(nil), p...)
	return len(p), nil
}

// Flush returns once every earlier Write has reached the console.
func (a *asyncWriter) Flush() {
	done := make(chan struct{})
	a.ch <- nil // a no-op that keeps the order
	go func() {
		for len(a.ch) > 0 {
			time.Sleep(time.Millisecond)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	time.Sleep(20 * time.Millisecond) // the last line may still be in the writer
}
