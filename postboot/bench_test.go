package postboot_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nixlive/nixlive/internal/boottest/nixtest"
	"github.com/nixlive/nixlive/internal/nix/registration"
)

var benchSizes = []int{2000, 20000}

// BenchmarkNixLoadDB is the reference: `nix-store --store DIR --load-db`
// on the same input into a fresh root, process start included.
func BenchmarkNixLoadDB(b *testing.B) {
	nixtest.HaveNix(b)
	benchProcess(b, func(root, file string) (*exec.Cmd, error) {
		in, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		cmd := exec.Command("nix-store", "--store", root, "--option", "build-users-group", "", "--load-db")
		cmd.Env = append(os.Environ(), "HOME="+root, "NIX_CONFIG=", "NIX_USER_CONF_FILES=")
		cmd.Stdin = in // closed with the process
		return cmd, nil
	})
}

// BenchmarkBinaryLoadDB runs the static postboot binary, process start
// included, for a fair comparison with BenchmarkNixLoadDB. (make bench
// compares the two in one run.)
func BenchmarkBinaryLoadDB(b *testing.B) {
	if !haveGo() {
		b.Skip("needs the go command to build the binary")
	}
	bin := binary(b)
	benchProcess(b, func(root, file string) (*exec.Cmd, error) {
		return exec.Command(bin, "--root", root, "--registration", file, "load-db"), nil
	})
}

// benchProcess times the command that loads a registration file into a
// fresh root, for each benchmark size. Besides the wall time it reports
// the CPU time (user + system) of the process, which a busy machine
// disturbs less.
func benchProcess(b *testing.B, command func(root, file string) (*exec.Cmd, error)) {
	for _, n := range benchSizes {
		file := filepath.Join(b.TempDir(), "reg")
		if err := os.WriteFile(file, registration.Marshal(synthRecords(n, 1)), 0o644); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var cpu time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				cmd, err := command(b.TempDir(), file)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				out, err := cmd.CombinedOutput()
				b.StopTimer()
				if f, ok := cmd.Stdin.(*os.File); ok {
					f.Close()
				}
				if err != nil {
					b.Fatalf("%v\n%s", err, out)
				}
				cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
				b.StartTimer()
			}
			b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
}
