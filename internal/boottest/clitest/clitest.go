// Package clitest runs one of nixlive's commands as a real process in tests
// (exit codes, signals, working directory, another user): it builds the
// command once per test binary and runs it with a time limit.
package clitest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nixlive/nixlive/internal/gobuild"
)

// Command is a main package of the module, built on first use.
type Command struct {
	Pkg    string // import path of the main package
	Static bool   // build as the live CD gets it (gobuild.Static)

	once      sync.Once
	dir, path string
	err       error
}

// Path builds the command (once) into a directory every user may read,
// and returns the binary's path. A test without a go command skips.
func (c *Command) Path(t testing.TB) string {
	t.Helper()
	c.once.Do(c.build)
	if c.err != nil {
		if _, err := exec.LookPath("go"); err != nil {
			t.Skipf("no go command to build %s with", c.Pkg)
		}
		t.Fatalf("building %s: %v", c.Pkg, c.err)
	}
	return c.path
}

func (c *Command) build() {
	if c.dir, c.err = os.MkdirTemp("", path.Base(c.Pkg)+"-cli-"); c.err != nil {
		return
	}
	if c.err = os.Chmod(c.dir, 0o755); c.err != nil {
		return
	}
	c.path = c.dir + "/" + path.Base(c.Pkg)
	if c.Static {
		c.err = gobuild.Static(context.Background(), c.path, c.Pkg)
	} else {
		c.err = gobuild.Host(context.Background(), c.path, c.Pkg)
	}
}

// Cleanup removes the binary; call it from TestMain after m.Run.
func (c *Command) Cleanup() {
	if c.dir != "" {
		os.RemoveAll(c.dir)
	}
}

// Options say how Run runs the command.
type Options struct {
	Dir    string   // working directory ("": the test's)
	Env    []string // added to the environment, which loses SOURCE_DATE_EPOCH and GOMAXPROCS first
	Nobody bool     // run as uid/gid 65534 with setpriv
}

// Result is how a run ended.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Run runs the command with args and returns its exit code and output. A
// run that takes over a minute (say, reading a fifo) fails the test.
func (c *Command) Run(t testing.TB, o Options, args ...string) Result {
	t.Helper()
	bin := c.Path(t)
	name, argv := bin, args
	if o.Nobody {
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			t.Skip("setpriv not found (util-linux): cannot run the command as another user")
		}
		name = setpriv
		argv = append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", bin}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, argv...)
	cmd.Dir = o.Dir
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "SOURCE_DATE_EPOCH" && k != "GOMAXPROCS" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, o.Env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: still running after a minute, killed\nstderr: %s", path.Base(c.Pkg), strings.Join(args, " "), stderr.String())
	}
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.Code = exit.ExitCode()
	default:
		t.Fatalf("running %s: %v", name, err)
	}
	return res
}
