package squashfs

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestModTimeRange: squashfs records unsigned 32-bit seconds; an image
// date outside 1970..2106 is refused, not clamped.
func TestModTimeRange(t *testing.T) {
	for _, tc := range []struct {
		at time.Time
		ok bool
	}{
		{time.Unix(0, 0), true},
		{time.Unix(1<<32-1, 0), true},
		{time.Unix(1<<32, 0), false},
		{time.Unix(-1, 0), false},
		{time.Unix(253402300800, 0), false},
	} {
		f, err := os.Create(filepath.Join(t.TempDir(), "img"))
		require.NoError(t, err)
		w, err := NewWriter(f, Options{ModTime: tc.at, Compression: Compression{Algorithm: "none"}})
		if tc.ok {
			if assert.NoError(t, err, "ModTime %v", tc.at.Unix()) {
				assert.NoError(t, w.Close())
			}
		} else if assert.Error(t, err, "ModTime %v", tc.at.Unix()) {
			assert.Contains(t, err.Error(), "1970-01-01T00:00:00Z to 2106-02-07T06:28:15Z")
		}
		f.Close()
	}
}
