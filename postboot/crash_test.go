package postboot_test

import (
	"bytes"
	"database/sql"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/nixtest"
	"github.com/nixlive/nixlive/internal/nix/nixdb"
	"github.com/nixlive/nixlive/internal/nix/registration"
)

// TestKill runs the postboot binary on a large registration and kills it
// (SIGKILL) at random moments: the store must be left either as it was or
// as a complete run leaves it (SQLite's integrity check passes, Nix reads
// the database and sees all the old paths and either none or all of the
// new ones, the profile is either absent or complete), and a rerun must
// complete the job.
func TestKill(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: -short")
	}
	if !haveGo() {
		t.Skip("needs the go command to build the binary")
	}
	bin := binary(t)
	_, nixErr := exec.LookPath("nix-store")
	haveNix := nixErr == nil
	if !haveNix {
		t.Log("Nix not installed: checking with SQLite only")
	}

	old := synthRecords(200, 21)
	all := append(synthRecords(20000, 22), old...)
	dir := t.TempDir()
	regFile := filepath.Join(dir, "registration")
	require.NoError(t, os.WriteFile(regFile, registration.Marshal(all), 0o644))
	system := all[123].Path

	// The two starting points: nothing yet (first boot), and a database
	// with the old paths (a persistent system booting a new image).
	fresh := filepath.Join(dir, "fresh")
	require.NoError(t, os.MkdirAll(fresh, 0o755))
	withOld := filepath.Join(dir, "old")
	_, err := (&nixdb.Store{Root: withOld}).LoadDB(bytes.NewReader(registration.Marshal(old)))
	require.NoError(t, err)
	for _, root := range []string{fresh, withOld} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, "run"), 0o755))
		require.NoError(t, os.Symlink(system, filepath.Join(root, "run/current-system")))
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	for _, c := range []struct {
		name  string
		start string
		old   int
		args  []string
	}{
		{"load-db on a fresh root", fresh, 0, []string{"load-db"}},
		{"load-db over a database", withOld, len(old), []string{"load-db"}},
		{"all steps on a fresh root", fresh, 0, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"--registration", regFile}, c.args...)
			// How long an uninterrupted run takes.
			root := filepath.Join(t.TempDir(), "root")
			nixtest.CopyStorePaths(t, c.start, root, []string{"/"})
			begin := time.Now()
			code, stderr := runBinary(t, append([]string{"--root", root}, args...)...)
			require.Equal(t, 0, code, stderr)
			full := time.Since(begin)
			t.Logf("an uninterrupted run takes %v", full.Round(time.Millisecond))

			outcomes := map[string]int{}
			for i := 0; i < 5; i++ {
				root := filepath.Join(t.TempDir(), "root")
				nixtest.CopyStorePaths(t, c.start, root, []string{"/"})
				cmd := exec.Command(bin, append([]string{"--root", root}, args...)...)
				require.NoError(t, cmd.Start())
				after := time.Duration(rng.Int64N(int64(full)))
				time.Sleep(after)
				cmd.Process.Signal(syscall.SIGKILL)
				cmd.Wait()
				n := checkAfterKill(t, root, c.old, len(all), system, haveNix)
				state := "old"
				if n == len(all) {
					state = "new"
				}
				outcomes[state]++
				t.Logf("killed after %v: %s state (%d paths)", after.Round(time.Millisecond), state, n)

				// A rerun completes it.
				code, stderr := runBinary(t, append([]string{"--root", root}, args...)...)
				require.Equal(t, 0, code, stderr)
				require.Equal(t, len(all), checkAfterKill(t, root, c.old, len(all), system, false))
			}
			t.Logf("outcomes: %v", outcomes)
		})
	}
}

// checkAfterKill checks root's store after a kill and returns how many
// paths are valid: want (old or all).
func checkAfterKill(t *testing.T, root string, old, all int, system string, haveNix bool) int {
	t.Helper()
	n := 0
	file := filepath.Join(root, "nix/var/nix/db/db.sqlite")
	if _, err := os.Stat(file); err == nil {
		// Opened read-write, as the next user of the store would: a
		// journal left behind is rolled back (or the WAL replayed).
		u := url.URL{Scheme: "file", Path: file}
		db, err := sql.Open("sqlite", u.String())
		require.NoError(t, err)
		var check string
		require.NoError(t, db.QueryRow("pragma integrity_check").Scan(&check))
		require.Equal(t, "ok", check)
		var tables int
		require.NoError(t, db.QueryRow("select count(*) from sqlite_master where name = 'ValidPaths'").Scan(&tables))
		if tables > 0 {
			require.NoError(t, db.QueryRow("select count(*) from ValidPaths").Scan(&n))
		}
		db.Close()
	}
	require.Contains(t, []int{old, all}, n, "paths in the database")
	if _, err := os.Stat(filepath.Join(root, "nix")); err == nil && haveNix {
		// Nix on a copy, as it may write (the schema file, say).
		cp := t.TempDir()
		nixtest.CopyStorePaths(t, root, cp, []string{"/nix"})
		recs, err := registration.Parse(strings.NewReader(nixtest.Run(t, cp, "--dump-db")), "")
		require.NoError(t, err)
		require.Len(t, recs, n, "paths Nix sees")
	}
	// The profile is either not there or complete.
	profiles := filepath.Join(root, "nix/var/nix/profiles")
	if target, err := os.Readlink(filepath.Join(profiles, "system")); err == nil {
		require.Equal(t, "system-1-link", target)
		gen, err := os.Readlink(filepath.Join(profiles, "system-1-link"))
		require.NoError(t, err)
		require.Equal(t, system, gen)
		require.Equal(t, all, n, "a profile without its path")
	}
	entries, _ := os.ReadDir(profiles)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "system") {
			require.Contains(t, []string{"system", "system-1-link"}, e.Name())
		}
	}
	return n
}

// TestConcurrentLoads starts several loads of different registrations
// into one fresh root at once, ours and (if installed) Nix's: they all
// succeed, and the database ends up with every path, intact.
func TestConcurrentLoads(t *testing.T) {
	if !haveGo() {
		t.Skip("needs the go command to build the binary")
	}
	bin := binary(t)
	_, nixErr := exec.LookPath("nix-store")
	for round := 0; round < 3; round++ {
		root := t.TempDir()
		dir := t.TempDir()
		var cmds []*exec.Cmd
		var outs []*bytes.Buffer
		total := 0
		for i := 0; i < 4; i++ {
			recs := synthRecords(2000, uint64(100*round+i))
			total += len(recs)
			reg := registration.Marshal(recs)
			var cmd *exec.Cmd
			if i == 3 && nixErr == nil {
				cmd = exec.Command("nix-store", "--store", root, "--option", "build-users-group", "", "--load-db")
				cmd.Env = append(os.Environ(), "HOME="+dir, "NIX_CONFIG=", "NIX_USER_CONF_FILES=")
				cmd.Stdin = bytes.NewReader(reg)
			} else {
				file := filepath.Join(dir, "reg"+string(rune('a'+i)))
				require.NoError(t, os.WriteFile(file, reg, 0o644))
				cmd = exec.Command(bin, "--root", root, "--registration", file, "load-db")
			}
			out := new(bytes.Buffer)
			cmd.Stdout, cmd.Stderr = out, out
			cmds = append(cmds, cmd)
			outs = append(outs, out)
		}
		for _, cmd := range cmds {
			require.NoError(t, cmd.Start())
		}
		for i, cmd := range cmds {
			require.NoError(t, cmd.Wait(), "%s: %s", cmd.Args[0], outs[i])
		}
		require.Equal(t, total, checkAfterKill(t, root, total, total, "", nixErr == nil))
	}
}
