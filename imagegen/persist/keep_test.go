package persist

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKept: FindKept finds nothing on a plain ISO and the partition Add
// made on a persisted one; Fits refuses an ISO reaching into it, saying
// both sizes; Reenter, after the ISO is written again over all but its
// head, puts the partition back in the tables unformatted; a partition
// without ext4 and one running into the backup GPT's sectors are refused.
func TestKept(t *testing.T) {
	haveMkfs(t)
	iso := hybridISO(t, true)
	orig, err := os.ReadFile(iso)
	require.NoError(t, err)
	src, err := os.Open(iso)
	require.NoError(t, err)
	defer src.Close()
	k, err := FindKept(src, iso, int64(len(orig)))
	assert.NoError(t, err)
	assert.Nil(t, k, "a plain ISO")

	img := filepath.Join(t.TempDir(), "disk.img")
	require.NoError(t, os.WriteFile(img, orig, 0o644))
	res, err := Add(context.Background(), Options{Target: img, Size: MinSize})
	require.NoError(t, err)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	k, err = FindKept(f, img, res.NewSize)
	require.NoError(t, err)
	require.NotNil(t, k)
	assert.Equal(t, res.Partition.Start, k.Start)
	assert.Equal(t, res.Partition.Sectors, k.Sectors)
	assert.NoError(t, k.Fits(int64(len(orig))))
	err = k.Fits(k.Offset() + 2048)
	var fe *FitError
	require.True(t, errors.As(err, &fe), "%v", err)
	assert.Contains(t, err.Error(), "the new ISO is "+sizeString(k.Offset()+2048)+", larger than the "+sizeString(k.Offset()))

	_, err = f.WriteAt(orig[HeadBytes:], HeadBytes)
	require.NoError(t, err)
	p, writes, err := k.Reenter(f, src)
	require.NoError(t, err)
	assert.Equal(t, res.Partition, p)
	assert.Len(t, writes, 3, "the backup GPT, the head, the ISO's backup GPT cleared")
	_, err = ReadTables(f, img)
	var has *HasPartitionError
	require.True(t, errors.As(err, &has), "%v", err)
	assert.Equal(t, p, has.Partition)

	_, err = FindKept(f, img, res.NewSize-512)
	assert.ErrorContains(t, err, "runs into the last 33 sectors")
	_, err = f.WriteAt([]byte{0, 0}, k.Offset()+superOff+magicOff)
	require.NoError(t, err)
	_, err = FindKept(f, img, res.NewSize)
	assert.ErrorContains(t, err, "holds no ext4 file system to keep; nothing was written")
}
