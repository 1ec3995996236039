// Package progress shows how far long work has got on a terminal, and stays
// silent when the output is not one (CI logs, pipes).
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/nixlive/nixlive/internal/bytesize"
)

// Meter prints a one-line, self-overwriting status at most every interval.
type Meter struct {
	mu    sync.Mutex
	w     io.Writer
	label string
	total int64
	start time.Time
	last  time.Time
	shown bool
}

// New returns a Meter writing to w when w is a terminal, or nil (on which
// every method is a no-op) when it is not. total may be 0 when unknown.
func New(w *os.File, label string, total int64) *Meter {
	if w == nil || !term.IsTerminal(int(w.Fd())) {
		return nil
	}
	now := time.Now()
	return &Meter{w: w, label: label, total: total, start: now}
}

// Set reports that done bytes are done.
func (m *Meter) Set(done int64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if now.Sub(m.last) < 200*time.Millisecond {
		return
	}
	m.last = now
	m.shown = true
	rate := float64(done) / now.Sub(m.start).Seconds() / (1 << 20)
	if m.total > 0 {
		fmt.Fprintf(m.w, "\r%s: %d%% (%s of %s, %.0f MiB/s)\x1b[K", m.label, done*100/m.total, bytesize.Format(done), bytesize.Format(m.total), rate)
	} else {
		fmt.Fprintf(m.w, "\r%s: %s (%.0f MiB/s)\x1b[K", m.label, bytesize.Format(done), rate)
	}
}

// Done clears the status line.
func (m *Meter) Done() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shown {
		fmt.Fprintf(m.w, "\r\x1b[K")
	}
}
