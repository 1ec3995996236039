package initrd_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The imagegen binary, built once on first use: TestInitrd runs
// "imagegen initrd" as a process (working directory, TMPDIR, GOMAXPROCS).
var cli struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cli.dir != "" {
		os.RemoveAll(cli.dir)
	}
	os.Exit(code)
}

// imagegenBinary builds cmd/imagegen into a temporary directory.
func imagegenBinary(t *testing.T) string {
	t.Helper()
	cli.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			cli.err = err
			return
		}
		if cli.dir, err = os.MkdirTemp("", "imagegen-cli-"); err != nil {
			cli.err = err
			return
		}
		cli.path = filepath.Join(cli.dir, "imagegen")
		out, err := exec.Command(goTool, "build", "-o", cli.path, "github.com/nixlive/nixlive/cmd/imagegen").CombinedOutput()
		if err != nil {
			cli.err = errors.New(err.Error() + "\n" + string(out))
		}
	})
	if cli.err != nil {
		t.Fatalf("building cmd/imagegen: %v", cli.err)
	}
	return cli.path
}

type cliOpts struct{}

type cliResult struct {
	code           int
	stdout, stderr string
}

// runCLI runs the imagegen binary with args and returns its exit code and
// output. A run that takes over a minute fails the test.
func runCLI(t *testing.T, _ cliOpts, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, imagegenBinary(t), args...)
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "SOURCE_DATE_EPOCH" && k != "GOMAXPROCS" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("imagegen %s: still running after a minute, killed\nstderr: %s", strings.Join(args, " "), stderr.String())
	}
	res := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	default:
		t.Fatalf("running imagegen: %v", err)
	}
	return res
}

func mustWrite(t *testing.T, name string, data []byte, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(name, data, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(name, perm); err != nil { // whatever the umask
		t.Fatal(err)
	}
}
