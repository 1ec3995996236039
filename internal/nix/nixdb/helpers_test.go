package nixdb_test

import "github.com/nixlive/nixlive/internal/boottest/fixture"

var (
	fakePath     = fixture.FakePath
	synthRecords = fixture.Synthetic
)
