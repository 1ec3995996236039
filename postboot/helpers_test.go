package postboot_test

import (
	"os"
	"os/exec"
	"runtime"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/nixlive/nixlive/internal/boottest/clitest"
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

// postbootCmd is cmd/postboot as the live CD gets it (static, no cgo).
var postbootCmd = &clitest.Command{Pkg: "github.com/nixlive/nixlive/cmd/postboot", Static: true}

func binary(t testing.TB) string { return postbootCmd.Path(t) }

func TestMain(m *testing.M) {
	code := m.Run()
	postbootCmd.Cleanup()
	os.Exit(code)
}

// runBinary runs the postboot binary and returns its exit status and
// stderr.
func runBinary(t testing.TB, args ...string) (int, string) {
	t.Helper()
	r := postbootCmd.Run(t, clitest.Options{}, args...)
	return r.Code, r.Stderr
}

// haveGo tells whether building the binary is possible.
func haveGo() bool {
	_, err := exec.LookPath("go")
	return err == nil && runtime.GOOS == "linux"
}
