package livetest

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// What checkstage2 prints, one line each.
const (
	CheckPrefix    = "NIXLIVE-CHECK "
	TimelinePrefix = "NIXLIVE-TIMELINE "
	ResultPrefix   = "NIXLIVE-STAGE2-RESULT "
	// KernelLogPrefix starts the kernel's messages about Secure Boot and
	// lockdown, copied from its log.
	KernelLogPrefix = "NIXLIVE-KLOG "
)

// Check is one NIXLIVE-CHECK line.
type Check struct {
	OK     bool
	Name   string
	Detail string
}

// Step is one NIXLIVE-TIMELINE line: a step of stage 1's timeline and its
// time since the kernel started.
type Step struct {
	Name string
	At   time.Duration
}

// Report is what checkstage2 printed on a console.
type Report struct {
	Checks   []Check
	Timeline []Step
	Result   string // "PASS", "FAIL", or "" when it printed none
	// KernelLog holds the kernel's messages about Secure Boot and lockdown.
	KernelLog []string
}

// Parse reads checkstage2's lines from a console transcript (other lines
// are ignored). Malformed lines of its own are errors.
func Parse(console string) (Report, error) {
	var r Report
	for _, line := range strings.Split(console, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, CheckPrefix):
			verdict, rest, _ := strings.Cut(strings.TrimPrefix(line, CheckPrefix), " ")
			name, detail, _ := strings.Cut(rest, " ")
			if verdict != "ok" && verdict != "FAIL" || name == "" {
				return r, fmt.Errorf("malformed check line %q", line)
			}
			r.Checks = append(r.Checks, Check{OK: verdict == "ok", Name: name, Detail: detail})
		case strings.HasPrefix(line, TimelinePrefix):
			rest := strings.TrimPrefix(line, TimelinePrefix)
			i := strings.LastIndexByte(rest, ' ')
			if i <= 0 {
				return r, fmt.Errorf("malformed timeline line %q", line)
			}
			sec, err := strconv.ParseFloat(rest[i+1:], 64)
			if err != nil {
				return r, fmt.Errorf("malformed timeline line %q: %v", line, err)
			}
			r.Timeline = append(r.Timeline, Step{Name: rest[:i], At: time.Duration(sec * float64(time.Second))})
		case strings.HasPrefix(line, KernelLogPrefix):
			r.KernelLog = append(r.KernelLog, strings.TrimPrefix(line, KernelLogPrefix))
		case strings.HasPrefix(line, ResultPrefix):
			if r.Result != "" {
				return r, fmt.Errorf("a second result line %q", line)
			}
			r.Result = strings.TrimSpace(strings.TrimPrefix(line, ResultPrefix))
		}
	}
	return r, nil
}

// StepNames returns the timeline's step names in order.
func (r Report) StepNames() []string {
	var names []string
	for _, s := range r.Timeline {
		names = append(names, s.Name)
	}
	return names
}

// Step returns the first step called name.
func (r Report) Step(name string) (Step, bool) {
	for _, s := range r.Timeline {
		if s.Name == name {
			return s, true
		}
	}
	return Step{}, false
}

// Stage1 is the time from stage 1's start to its switch_root.
func (r Report) Stage1() time.Duration {
	a, ok1 := r.Step("start")
	b, ok2 := r.Step("switch_root")
	if !ok1 || !ok2 {
		return 0
	}
	return b.At - a.At
}

// MatchSteps checks that got is want in order, where a wanted name ending
// in "?" may be absent (once at most). It returns nil or an error that
// shows both lists.
func MatchSteps(got, want []string) error {
	i := 0
	for _, w := range want {
		name, optional := strings.CutSuffix(w, "?")
		if i < len(got) && got[i] == name {
			i++
			continue
		}
		if !optional {
			return fmt.Errorf("step %d: want %q, got %s\ngot:  %q\nwant: %q", i, name, at(got, i), got, want)
		}
	}
	if i != len(got) {
		return fmt.Errorf("unexpected steps after %q: %q\ngot:  %q\nwant: %q", want[len(want)-1], got[i:], got, want)
	}
	return nil
}

func at(s []string, i int) string {
	if i < len(s) {
		return strconv.Quote(s[i])
	}
	return "the end of the timeline"
}

// stage1LogRE matches stage 1's console log lines: "[   1.234567] stage1: msg ...".
var stage1LogRE = regexp.MustCompile(`\[\s*(\d+\.\d+)\] stage1: (?:WARN: |ERROR: )?(.*)$`)

// Stage1Log finds the first stage 1 log line whose message starts with msg
// (such as "failed" or "modules") and returns its uptime stamp and the
// whole message.
func Stage1Log(console, msg string) (time.Duration, string, bool) {
	for _, line := range strings.Split(console, "\n") {
		m := stage1LogRE.FindStringSubmatch(strings.TrimRight(line, "\r"))
		if m == nil || !strings.HasPrefix(m[2], msg) {
			continue
		}
		if rest := m[2][len(msg):]; rest != "" && rest[0] != ' ' {
			continue
		}
		sec, _ := strconv.ParseFloat(m[1], 64)
		return time.Duration(sec * float64(time.Second)), m[2], true
	}
	return 0, "", false
}
