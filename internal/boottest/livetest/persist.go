package livetest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/nixlive/nixlive/internal/copyfile"
)

// PersistedDisk copies the test ISO to a disk image in a new temporary
// directory of t and runs "imagegen persist" on it with args (such as
// --size 64M): the ISO and a nixlive-rw ext4 partition after it. It
// returns the image and where the partition lies in it, in bytes.
func (e *Env) PersistedDisk(t testing.TB, args ...string) (img string, off, size int64) {
	t.Helper()
	iso := e.Path(t, ISO)
	img = filepath.Join(t.TempDir(), "persisted.img")
	if err := copyfile.Copy(iso, img, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.imagegen(append([]string{"persist", img}, args...)...); err != nil {
		t.Fatal(err)
	}
	off, size, err := LastPartition(img)
	if err != nil {
		t.Fatal(err)
	}
	return img, off, size
}

// LastPartition is where the last partition of a disk image lies, in
// bytes, as sfdisk lists it.
func LastPartition(img string) (off, size int64, err error) {
	out, err := exec.Command("sfdisk", "--json", img).Output()
	if err != nil {
		return 0, 0, fmt.Errorf("sfdisk --json %s: %w", img, err)
	}
	var pt struct {
		PartitionTable struct {
			SectorSize int64
			Partitions []struct{ Start, Size int64 }
		}
	}
	if err := json.Unmarshal(out, &pt); err != nil {
		return 0, 0, fmt.Errorf("sfdisk --json %s: %w", img, err)
	}
	ps := pt.PartitionTable.Partitions
	if len(ps) == 0 {
		return 0, 0, fmt.Errorf("%s: no partitions", img)
	}
	ss := pt.PartitionTable.SectorSize
	if ss == 0 {
		ss = 512
	}
	last := ps[0]
	for _, p := range ps {
		if p.Start > last.Start {
			last = p
		}
	}
	return last.Start * ss, last.Size * ss, nil
}

// ExtractRange copies size bytes at off of file to dst.
func ExtractRange(file string, off, size int64, dst string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, size)
	if _, err := f.ReadAt(buf, off); err != nil {
		return err
	}
	return os.WriteFile(dst, buf, 0o644)
}
