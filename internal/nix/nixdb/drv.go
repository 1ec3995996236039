package nixdb

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/nix-community/go-nix/pkg/derivation"

	"github.com/nixlive/nixlive/internal/nix/nixroot"
)

// drvOutput is a row of DerivationOutputs.
type drvOutput struct {
	drv        int64
	name, path string
}

// derivationOutputs reads the .drv files among entries from the store, as
// Nix reads them, and returns their outputs whose paths are known (not
// floating content-addressed ones), by entry and output name.
func derivationOutputs(r nixroot.Root, entries []*entry) ([]drvOutput, error) {
	var out []drvOutput
	for _, e := range entries {
		if !strings.HasSuffix(e.Path, ".drv") {
			continue
		}
		storeHost, err := r.Host(StoreDir)
		if err != nil {
			return nil, err
		}
		b, err := os.ReadFile(path.Join(storeHost, path.Base(e.Path)))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: derivation %s: its file is not in the store (Nix reads it to register its outputs)", e.where(), e.Path)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: derivation %s: %w", e.where(), e.Path, err)
		}
		drv, err := derivation.ReadDerivation(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%s: derivation %s: %w", e.where(), e.Path, err)
		}
		names := make([]string, 0, len(drv.Outputs))
		for name := range drv.Outputs {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if p := drv.Outputs[name].Path; p != "" {
				out = append(out, drvOutput{e.id, name, p})
			}
		}
	}
	return out, nil
}
