package main

import (
	"bytes"
	"fmt"
	"log"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"
)

func timed(name string, args ...string) time.Duration {
	wall, _ := timedCPU(nil, nil, name, args...)
	return wall
}

// timedCPU runs a command and returns its wall time and CPU time (user +
// system).
func timedCPU(stdin *os.File, env []string, name string, args ...string) (wall, cpu time.Duration) {
	wall, cpu, _ = timedOutput(stdin, env, name, args...)
	return wall, cpu
}

// timedOutput is timedCPU that also returns what the command printed.
func timedOutput(stdin *os.File, env []string, name string, args ...string) (wall, cpu time.Duration, out []byte) {
	cmd := exec.Command(name, args...)
	cmd.Stdin = stdin
	cmd.Env = append(os.Environ(), env...)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	start := time.Now()
	if err := cmd.Run(); err != nil {
		log.Fatalf("bench: %s %s: %v\n%s", name, strings.Join(args, " "), err, b.Bytes())
	}
	return time.Since(start), cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), b.Bytes()
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func pairs(a, b []time.Duration) string {
	var s []string
	for i := range a {
		s = append(s, fmt.Sprintf("%.1f / %.1f s", a[i].Seconds(), b[i].Seconds()))
	}
	return strings.Join(s, ", ")
}

func run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		log.Fatalf("bench: %s %s: %v", name, strings.Join(args, " "), err)
	}
}

func firstLine(name string, args ...string) string {
	b, _ := exec.Command(name, args...).CombinedOutput()
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(line)
}

func size(p string) int64 {
	fi, err := os.Stat(p)
	must(err)
	return fi.Size()
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func must(err error) {
	if err != nil {
		log.Fatal("bench: ", err)
	}
}
