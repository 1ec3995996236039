package postboot_test

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/nixlive/nixlive/internal/boottest/fixture"
)

var (
	fakePath     = fixture.FakePath
	synthRecords = fixture.Synthetic
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

// dbFiles returns the SHA-256 of every file in root's database
// directory, by name.
func dbFiles(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	dir := filepath.Join(root, "nix/var/nix/db")
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return out
	}
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		h := sha256.Sum256(b)
		out[e.Name()] = hex.EncodeToString(h[:])
	}
	return out
}

// openSQL opens root's database with modernc's SQLite, read-only.
func openSQL(t testing.TB, root string) *sql.DB {
	t.Helper()
	u := url.URL{Scheme: "file", Path: filepath.Join(root, "nix/var/nix/db/db.sqlite"), RawQuery: "mode=ro"}
	db, err := sql.Open("sqlite", u.String())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// queryRows returns the rows of query as strings, one per row, columns
// separated by "|", NULL as "NULL".
func queryRows(t testing.TB, db *sql.DB, query string) []string {
	t.Helper()
	rows, err := db.Query(query)
	require.NoError(t, err)
	defer rows.Close()
	cols, err := rows.Columns()
	require.NoError(t, err)
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		require.NoError(t, rows.Scan(ptrs...))
		var parts []string
		for _, v := range vals {
			switch v := v.(type) {
			case nil:
				parts = append(parts, "NULL")
			case []byte:
				parts = append(parts, string(v))
			default:
				parts = append(parts, fmt.Sprint(v))
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	require.NoError(t, rows.Err())
	return out
}

// treeEntry is one file of a directory tree, for comparing trees.
type treeEntry struct {
	Path   string // relative
	Type   string // dir, file, link
	Perm   fs.FileMode
	Size   int64  // files
	Target string // links
}

// listTree lists dir recursively, sorted.
func listTree(t testing.TB, dir string) []treeEntry {
	t.Helper()
	var out []treeEntry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		e := treeEntry{Path: rel, Perm: fi.Mode().Perm()}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Type = "link"
			e.Perm = 0
			e.Target, err = os.Readlink(p)
			if err != nil {
				return err
			}
		case fi.IsDir():
			e.Type = "dir"
		default:
			e.Type = "file"
			e.Size = fi.Size()
		}
		out = append(out, e)
		return nil
	})
	require.NoError(t, err)
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// haveGo tells whether building the binary is possible.
func haveGo() bool {
	_, err := exec.LookPath("go")
	return err == nil && runtime.GOOS == "linux"
}
