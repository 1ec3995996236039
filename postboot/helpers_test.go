package postboot_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/nixlive/nixlive/internal/boottest/fixture"
	"github.com/nixlive/nixlive/internal/boottest/storetest"
)

var (
	fakePath     = fixture.FakePath
	synthRecords = fixture.Synthetic
	dbFiles      = storetest.DBFiles
	openSQL      = storetest.OpenSQL
	queryRows    = storetest.QueryRows
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// binary builds cmd/postboot as the live CD gets it (static, no cgo) once
// per test run and returns its path.
func binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "postboot-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "postboot")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/nixlive/nixlive/cmd/postboot")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build ./cmd/postboot: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		if _, err := exec.LookPath("go"); err != nil {
			t.Skip("no go command to build the postboot binary with")
		}
		t.Fatal(binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// runBinary runs the postboot binary and returns its exit status and
// stderr.
func runBinary(t testing.TB, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), stderr.String()
		}
		t.Fatal(err)
	}
	return 0, stderr.String()
}

// haveGo tells whether building the binary is possible.
func haveGo() bool {
	_, err := exec.LookPath("go")
	return err == nil && runtime.GOOS == "linux"
}
