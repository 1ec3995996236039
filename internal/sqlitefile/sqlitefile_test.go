package sqlitefile_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/nixlive/nixlive/internal/sqlitefile"
)

// TestWriteTableAndIndex writes a table of n rows and an index on its
// text column, without anything Nix-specific, and has SQLite check the
// file (integrity_check walks every page and index entry) and read it
// back. The sizes give b-trees of one page, two levels and three levels.
func TestWriteTableAndIndex(t *testing.T) {
	for _, n := range []int{0, 3, 500, 30000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var rows, keys sqlitefile.Cells
			for i := 1; i <= n; i++ {
				require.NoError(t, rows.AddRow(int64(i), sqlitefile.Int(int64(i*i)), sqlitefile.Text(fmt.Sprintf("v%08d", i))))
				// Sorted by text, as the values are zero-padded.
				require.NoError(t, keys.AddKey(sqlitefile.Text(fmt.Sprintf("v%08d", i)), sqlitefile.Int(int64(i))))
			}
			f := &sqlitefile.File{SchemaCookie: 2}
			f.Reserve(3)
			require.NoError(t, f.WriteTable(2, &rows))
			require.NoError(t, f.WriteIndex(3, &keys))
			require.NoError(t, f.WriteSchema([]sqlitefile.Object{
				{Type: "table", Name: "t", Table: "t", Root: 2, SQL: "CREATE TABLE t (a integer, b text)"},
				{Type: "index", Name: "tb", Table: "t", Root: 3, SQL: sqlitefile.NormalizeSQL("create index if not exists tb on t(b)")},
			}))
			file := filepath.Join(t.TempDir(), "db.sqlite")
			out, err := os.Create(file)
			require.NoError(t, err)
			_, err = f.WriteTo(out)
			require.NoError(t, err)
			require.NoError(t, out.Close())

			db, err := sql.Open("sqlite", file)
			require.NoError(t, err)
			defer db.Close()
			var check, mode, sqlText string
			require.NoError(t, db.QueryRow("pragma integrity_check").Scan(&check))
			require.Equal(t, "ok", check)
			require.NoError(t, db.QueryRow("pragma journal_mode").Scan(&mode))
			require.Equal(t, "wal", mode)
			require.NoError(t, db.QueryRow("select sql from sqlite_master where name = 'tb'").Scan(&sqlText))
			require.Equal(t, "CREATE INDEX tb on t(b)", sqlText)
			var count, sum int64
			require.NoError(t, db.QueryRow("select count(*), ifnull(sum(a), 0) from t indexed by tb where b >= 'v'").Scan(&count, &sum))
			require.Equal(t, int64(n), count)
			require.Equal(t, int64(n)*int64(n+1)*int64(2*n+1)/6, sum)
		})
	}
}
