package live

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// Step is one event of the boot.
type Step struct {
	Name string `json:"name"`
	// At is the time since the kernel started (CLOCK_MONOTONIC), the clock
	// of the kernel's own log, so the two can be read side by side.
	At     Duration `json:"at"`
	Detail string   `json:"detail,omitempty"`
}

// Duration marshals as seconds with microseconds, like the kernel log.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf("%.6f", time.Duration(d).Seconds())), nil
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s float64
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*d = Duration(s * float64(time.Second))
	return nil
}

// Timeline records steps as they happen.
type Timeline struct {
	mu     sync.Mutex
	now    func() time.Duration
	Stage  string `json:"stage"`
	Kernel string `json:"kernel,omitempty"`
	Steps  []Step `json:"steps"`
}

// NewTimeline starts a timeline reading the clock now.
func NewTimeline(stage string, now func() time.Duration) *Timeline {
	return &Timeline{Stage: stage, now: now}
}

// Mark records that step name happened now, and returns the step.
func (t *Timeline) Mark(name, detail string) Step {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Step{Name: name, At: Duration(t.now()), Detail: detail}
	t.Steps = append(t.Steps, s)
	return s
}

// WriteJSON writes the timeline, indented for people.
func (t *Timeline) WriteJSON(w io.Writer) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(t)
}

// ReadTimeline parses a timeline written by WriteJSON.
func ReadTimeline(r io.Reader) (*Timeline, error) {
	var t Timeline
	if err := json.NewDecoder(r).Decode(&t); err != nil {
		return nil, fmt.Errorf("timeline: %w", err)
	}
	return &t, nil
}
