package postboot_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/nixtest"
	"github.com/nixlive/nixlive/internal/nix/nixdb"
	"github.com/nixlive/nixlive/internal/nix/registration"
)

// badCases are registrations load-db must refuse, with the line the
// error must name. They are built from three good records:
//
//	line 1  A, 6 lines: ref A            (self)
//	line 7  B, 6 lines: ref A
//	line 13 C, 7 lines: refs A, B        (lines 18, 19)
func badCases() (good []byte, cases []badCase) {
	a, b, c := fakePath("bad-a"), fakePath("bad-b"), fakePath("bad-c")
	h := "sha256:" + strings.Repeat("1", 52)
	rec := func(p string, refs ...string) string {
		return fmt.Sprintf("%s\n%s\n100\n\n%d\n%s", p, h, len(refs), strings.Join(append(refs, ""), "\n"))
	}
	ra, rb, rc := rec(a, a), rec(b, a), rec(c, a, b)
	good = []byte(ra + rb + rc)
	unknown := fakePath("bad-unknown")
	cases = []badCase{
		{"truncated record", ra + rb + fmt.Sprintf("%s\n%s\n100\n\n2\n%s\n", c, h, a), 19, "truncated"},
		{"truncated in a record", ra + rb + c + "\n" + h + "\n", 15, "truncated"},
		{"bad hash", ra + strings.Replace(rb, h, "sha256:"+strings.Repeat("e", 52), 1), 8, "nix32"},
		{"short hash", ra + strings.Replace(rb, h, "sha256:1111", 1), 8, "hash"},
		{"bad size", ra + strings.Replace(rb, "\n100\n", "\n1x0\n", 1), 9, "size"},
		{"bad deriver", ra + strings.Replace(rb, "\n100\n\n", "\n100\nnot-a-path\n", 1), 10, "deriver"},
		{"bad count", ra + strings.Replace(rb, "\n\n1\n", "\n\none\n", 1), 11, "count"},
		{"unknown reference", ra + rb + rec(c, a, unknown), 19, unknown},
		{"path outside the store", ra + rb + rec("/usr/store/"+filepath.Base(c), a), 13, "not in the store"},
		{"reference outside the store", ra + rb + rec(c, a, "/nix/var/nix/x"), 19, "reference"},
		{"no final newline", strings.TrimSuffix(ra+rb+rc, "\n"), 19, "final newline"},
		{"extra blank line", ra + rb + rc + "\n", 20, "empty line"},
		{"blank line between records", ra + "\n" + rb + rc, 7, "empty line"},
		// The cycle is found from the first path in sorted order.
		{"cycle", rec(a, b) + rec(b, a), map[bool]int{true: 12, false: 6}[a < b], "cycle"},
		{"CRLF", strings.ReplaceAll(ra, "\n", "\r\n"), 1, ""},
	}
	return good, cases
}

type badCase struct {
	name, input string
	line        int
	says        string
}

// TestBadRegistrations runs the postboot binary on registrations it must
// refuse, over an existing database and over none: it must fail, name
// the line, and leave the database byte for byte as it was (or absent).
// Nix must refuse them too.
func TestBadRegistrations(t *testing.T) {
	if !haveGo() {
		t.Skip("needs the go command to build the binary")
	}
	good, cases := badCases()
	_, err := registration.Parse(bytes.NewReader(good), "")
	require.NoError(t, err)

	existing := t.TempDir()
	other := registration.Marshal(synthRecords(50, 7))
	_, err = (&nixdb.Store{Root: existing}).LoadDB(bytes.NewReader(other))
	require.NoError(t, err)

	haveNix := true
	for _, tool := range []string{"nix-store", "nix-instantiate", "nix-build", "nix-hash"} {
		if _, err := exec.LookPath(tool); err != nil {
			haveNix = false
		}
	}
	if !haveNix {
		t.Log("Nix not installed: not checking that Nix refuses these too")
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reg := filepath.Join(t.TempDir(), "reg")
			require.NoError(t, os.WriteFile(reg, []byte(c.input), 0o644))

			fresh := t.TempDir()
			for _, root := range []string{existing, fresh} {
				before := dbFiles(t, root)
				code, stderr := runBinary(t, "--root", root, "--registration", reg, "load-db")
				require.Equal(t, 1, code, stderr)
				require.Contains(t, stderr, fmt.Sprintf("line %d:", c.line))
				require.Contains(t, stderr, c.says)
				require.Equal(t, before, dbFiles(t, root), "the database changed")
			}
			_, err := os.Stat(filepath.Join(fresh, "nix"))
			require.True(t, os.IsNotExist(err), "a refused load made %s/nix", fresh)

			if haveNix {
				store := nixtest.NewStore(t)
				_, _, err := nixtest.Exec(t, store, []byte(c.input), "nix-store", "--load-db")
				require.Error(t, err, "Nix accepts it")
			}
		})
	}

	// The good one loads, and loads over the existing database.
	require.NoError(t, os.WriteFile(filepath.Join(t.TempDir(), "x"), good, 0o644))
	_, err = (&nixdb.Store{Root: existing}).LoadDB(bytes.NewReader(good))
	require.NoError(t, err)
	require.Len(t, queryRows(t, openSQL(t, existing), "select path from ValidPaths"), 53)
}

// FuzzLoadDB feeds arbitrary registrations to LoadDB over a small
// database: it either refuses them and leaves the database as it was, or
// registers exactly the paths Parse reads, with their last record's hash
// and size and all their references.
func FuzzLoadDB(f *testing.F) {
	good, cases := badCases()
	f.Add(good)
	for _, c := range cases {
		f.Add([]byte(c.input))
	}
	f.Add(registration.Marshal(synthRecords(5, 3)))
	template := f.TempDir()
	_, err := (&nixdb.Store{Root: template}).LoadDB(bytes.NewReader(registration.Marshal(synthRecords(5, 3))))
	require.NoError(f, err)
	templateFiles := dbFiles(f, template)
	f.Fuzz(func(t *testing.T, input []byte) {
		// Most inputs are refused by the parser, before the database is
		// opened: those run on the template itself, which must not
		// change; the others on a copy.
		root := template
		if _, err := registration.Parse(bytes.NewReader(input), ""); err == nil {
			root = filepath.Join(t.TempDir(), "root")
			nixtest.CopyStorePaths(t, template, root, []string{"/nix"})
		}
		_, err = (&nixdb.Store{Root: root}).LoadDB(bytes.NewReader(input))
		if err != nil {
			require.Equal(t, templateFiles, dbFiles(t, root), "refused (%v), but the database changed", err)
			return
		}
		require.NotEqual(t, template, root, "LoadDB accepted what Parse refuses")
		recs, err := registration.Parse(bytes.NewReader(input), "")
		require.NoError(t, err)
		db := openSQL(t, root)
		for _, r := range registration.Dedup(recs) {
			var hash string
			var size any
			require.NoError(t, db.QueryRow("select hash, narSize from ValidPaths where path = ?", r.Path).Scan(&hash, &size))
			require.Equal(t, fmt.Sprintf("sha256:%x", r.NarHash), hash)
			if r.NarSize == 0 {
				require.Nil(t, size)
			} else {
				require.EqualValues(t, int64(r.NarSize), size)
			}
			refs := queryRows(t, db, "select r.path from Refs join ValidPaths v on v.id = referrer join ValidPaths r on r.id = reference where v.path = '"+r.Path+"'")
			for _, ref := range r.References {
				require.Contains(t, refs, ref)
			}
		}
		require.Equal(t, []string{"ok"}, queryRows(t, db, "pragma integrity_check"))
	})
}
