package initrd_test

import (
	"os"
	"testing"

	"github.com/nixlive/nixlive/internal/boottest/clitest"
)

// imagegenCmd is the imagegen binary: TestInitrd runs "imagegen initrd" as
// a process (working directory, TMPDIR, GOMAXPROCS).
var imagegenCmd = &clitest.Command{Pkg: "github.com/nixlive/nixlive/cmd/imagegen"}

func TestMain(m *testing.M) {
	code := m.Run()
	imagegenCmd.Cleanup()
	os.Exit(code)
}

func imagegenBinary(t *testing.T) string { return imagegenCmd.Path(t) }

type cliOpts struct{}

type cliResult struct {
	code           int
	stdout, stderr string
}

// runCLI runs the imagegen binary with args (see clitest.Command.Run).
func runCLI(t *testing.T, _ cliOpts, args ...string) cliResult {
	t.Helper()
	r := imagegenCmd.Run(t, clitest.Options{}, args...)
	return cliResult{code: r.Code, stdout: r.Stdout, stderr: r.Stderr}
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
