package nixdb_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/nixlive/nixlive/internal/nix/nixdb"
	"github.com/nixlive/nixlive/internal/nix/registration"
)

var benchSizes = []int{2000, 20000}

// BenchmarkLoadDB loads a synthetic registration of n paths (a third of
// them self-referring, up to four references each) into a fresh root, as
// at boot: parsing, creating the database, one transaction, closing
// (which checkpoints the WAL into db.sqlite).
func BenchmarkLoadDB(b *testing.B) {
	for _, n := range benchSizes {
		reg := registration.Marshal(synthRecords(n, 1))
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(len(reg)))
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				root := b.TempDir()
				b.StartTimer()
				if _, err := (&nixdb.Store{Root: root}).LoadDB(bytes.NewReader(reg)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLoadDBAgain loads the registration into a root that has it
// already (the second boot of a persistent live system).
func BenchmarkLoadDBAgain(b *testing.B) {
	for _, n := range benchSizes {
		reg := registration.Marshal(synthRecords(n, 1))
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			root := b.TempDir()
			if _, err := (&nixdb.Store{Root: root}).LoadDB(bytes.NewReader(reg)); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := (&nixdb.Store{Root: root}).LoadDB(bytes.NewReader(reg)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
