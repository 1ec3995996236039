package closure

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nixlive/nixlive/internal/nix/registration"
	"github.com/nixlive/nixlive/internal/nix/storepath"
)

// FromClosureInfo reads a closureInfo output directory: `store-paths`
// (one store path per line) and `registration`. The two must describe the
// same set of paths, with no duplicates, and every reference must be in
// it; errors name the file and line. storeDir "" means the default.
//
// Only the files are read, not the store: the NAR hashes are taken on
// trust, as nix-store --load-db does.
func FromClosureInfo(dir, storeDir string) (*Closure, error) {
	if storeDir == "" {
		storeDir = storepath.DefaultStoreDir
	}
	spFile := filepath.Join(dir, "store-paths")
	regFile := filepath.Join(dir, "registration")

	order, listed, err := readStorePaths(spFile, storeDir)
	if err != nil {
		return nil, err
	}

	f, err := os.Open(regFile)
	if err != nil {
		return nil, fmt.Errorf("closure: %w", err)
	}
	defer f.Close()
	recs, err := registration.Parse(bufio.NewReaderSize(f, 1<<16), storeDir)
	if err != nil {
		return nil, fmt.Errorf("closure: %s: %w", regFile, err)
	}

	// Records carry no line numbers; recompute where each starts (a
	// record is 5 lines plus one per reference) to point at it.
	line := make([]int, len(recs))
	next := 1
	for i, r := range recs {
		line[i] = next
		next += 5 + len(r.References)
	}

	registered := make(map[string]int, len(recs))
	for i, r := range recs {
		if j, dup := registered[r.Path]; dup {
			return nil, fmt.Errorf("closure: %s: line %d: %s is registered again (first at line %d)", regFile, line[i], r.Path, line[j])
		}
		registered[r.Path] = i
		if _, ok := listed[r.Path]; !ok {
			return nil, fmt.Errorf("closure: %s: line %d: %s is not listed in %s", regFile, line[i], r.Path, spFile)
		}
	}
	for i, p := range order {
		if _, ok := registered[p]; !ok {
			return nil, fmt.Errorf("closure: %s: line %d: %s is not registered in %s", spFile, i+1, p, regFile)
		}
	}
	for i, r := range recs {
		for k, ref := range r.References {
			if _, ok := registered[ref]; !ok {
				return nil, fmt.Errorf("closure: %s: line %d: reference %s of %s is not in the closure", regFile, line[i]+5+k, ref, r.Path)
			}
		}
	}
	return fromRecords(storeDir, recs), nil
}

// readStorePaths reads a store-paths file into its lines and a map from
// path to line number. A missing final newline is tolerated (it is harmless here, unlike
// in a registration); empty lines and duplicates are not.
func readStorePaths(file, storeDir string) ([]string, map[string]int, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, fmt.Errorf("closure: %w", err)
	}
	var order []string
	lineOf := make(map[string]int)
	data = bytes.TrimSuffix(data, []byte("\n"))
	if len(data) == 0 {
		return nil, lineOf, nil
	}
	for i, l := range bytes.Split(data, []byte("\n")) {
		p := string(l)
		if _, err := storepath.Parse(storeDir, p); err != nil {
			return nil, nil, fmt.Errorf("closure: %s: line %d: %w", file, i+1, err)
		}
		if j, dup := lineOf[p]; dup {
			return nil, nil, fmt.Errorf("closure: %s: line %d: %s is listed again (first at line %d)", file, i+1, p, j)
		}
		lineOf[p] = i + 1
		order = append(order, p)
	}
	return order, lineOf, nil
}
