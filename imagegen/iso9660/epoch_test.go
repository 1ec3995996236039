package iso9660

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestModTimeRange: a directory record's year is one byte from 1900 and
// a volume descriptor's has four digits; a date outside 1900..2155 is
// refused, for the image and for an entry, not clamped or written as a
// damaged descriptor.
func TestModTimeRange(t *testing.T) {
	for _, tc := range []struct {
		at time.Time
		ok bool
	}{
		{time.Unix(0, 0), true},
		{time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{time.Date(2155, 12, 31, 23, 59, 59, 0, time.UTC), true},
		{time.Date(2156, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{time.Date(1899, 12, 31, 23, 59, 59, 0, time.UTC), false},
		{time.Unix(253402300800, 0), false},
	} {
		f, err := os.Create(filepath.Join(t.TempDir(), "iso"))
		require.NoError(t, err)
		_, err = NewWriter(f, Options{VolumeID: "x", ModTime: tc.at})
		if tc.ok {
			assert.NoError(t, err, "ModTime %v", tc.at)
		} else if assert.Error(t, err, "ModTime %v", tc.at) {
			assert.Contains(t, err.Error(), "1900-01-01T00:00:00Z to 2155-12-31T23:59:59Z")
		}
		w, err := NewWriter(f, Options{VolumeID: "x"})
		require.NoError(t, err)
		err = w.WriteHeader(&Header{Name: "d", Mode: os.ModeDir | 0o755, ModTime: tc.at})
		if tc.ok {
			assert.NoError(t, err, "entry ModTime %v", tc.at)
		} else if assert.Error(t, err, "entry ModTime %v", tc.at) {
			assert.Contains(t, err.Error(), "/d: date")
		}
		f.Close()
	}
}
