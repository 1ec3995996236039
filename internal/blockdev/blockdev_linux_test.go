package blockdev

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestFamily reads a made-up sysfs: a disk with two partitions (one held
// by dm-0) and a file that is not a partition.
func TestFamily(t *testing.T) {
	sys := t.TempDir()
	disk := filepath.Join(sys, "devices/virtual/block/loop3")
	for _, d := range []string{"holders", "queue", "loop3p1/holders", "loop3p2/holders"} {
		if err := os.MkdirAll(filepath.Join(disk, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"dev": "7:3\n", "size": "16384\n",
		"loop3p1/dev": "259:0\n", "loop3p1/partition": "1\n",
		"loop3p2/dev": "259:1\n", "loop3p2/partition": "2\n",
		"loop3p1/holders/dm-0": "",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(disk, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(sys, "dev/block"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../devices/virtual/block/loop3", filepath.Join(sys, "dev/block/7:3")); err != nil {
		t.Fatal(err)
	}
	fam, holders, err := family(sys, Dev{Name: "my-stick", Major: 7, Minor: 3})
	if err != nil {
		t.Fatal(err)
	}
	want := []Dev{{"loop3", 7, 3}, {"loop3p1", 259, 0}, {"loop3p2", 259, 1}}
	if !reflect.DeepEqual(fam, want) {
		t.Errorf("family = %v, want %v", fam, want)
	}
	if !reflect.DeepEqual(holders["loop3p1"], []string{"dm-0"}) || len(holders["loop3"]) != 0 {
		t.Errorf("holders = %v", holders)
	}
	if _, _, err := family(sys, Dev{Major: 8, Minor: 0}); err == nil {
		t.Error("a device sysfs does not know: no error")
	}
}

// TestCheckUnusedNotBlock: a regular file or a character device is not a
// block device, and the error says so.
func TestCheckUnusedNotBlock(t *testing.T) {
	for _, p := range []string{"/dev/null", os.Args[0]} {
		if err := CheckUnused(p); err == nil {
			t.Errorf("CheckUnused(%s): no error", p)
		}
		if IsBlock(p) {
			t.Errorf("IsBlock(%s) = true", p)
		}
	}
}
