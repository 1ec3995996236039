package blockdev

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestInUse(t *testing.T) {
	loop3 := []Dev{{"loop3", 7, 3}, {"loop3p1", 259, 0}, {"loop3p2", 259, 1}}
	for _, tc := range []struct {
		name string
		use  Use
		want []string
	}{
		{"Free", Use{Mounts: []Mount{{Point: "/", Source: "/dev/sda1", Dev: Dev{Major: 8, Minor: 1}}}}, nil},
		{"Whole", Use{Mounts: []Mount{{Point: "/mnt", Dev: Dev{Major: 7, Minor: 3}}}}, []string{"/dev/loop3 is mounted on /mnt"}},
		{"Partition", Use{Mounts: []Mount{{Point: "/mnt/a b", Dev: Dev{Major: 259, Minor: 1}}}}, []string{"/dev/loop3p2 is mounted on /mnt/a b"}},
		// btrfs shows an anonymous device number; its source names the partition.
		{"BySource", Use{Mounts: []Mount{{Point: "/data", Source: "/dev/loop3p1", Dev: Dev{Major: 0, Minor: 45}, OnDev: &Dev{"loop3p1", 259, 0}}}}, []string{"/dev/loop3p1 is mounted on /data"}},
		{"Twice", Use{Mounts: []Mount{{Point: "/a", Dev: Dev{Major: 259}}, {Point: "/b", Dev: Dev{Major: 259}}}}, []string{"/dev/loop3p1 is mounted on /a", "/dev/loop3p1 is mounted on /b"}},
		{"Swap", Use{Swaps: []Dev{{"loop3p2", 259, 1}}}, []string{"/dev/loop3p2 is used as swap"}},
		{"Held", Use{Holders: map[string][]string{"loop3p1": {"dm-0"}, "loop3": nil}}, []string{"/dev/loop3p1 is held by dm-0 (device mapper, RAID, LVM or encryption)"}},
		{"OtherSwap", Use{Swaps: []Dev{{"sda2", 8, 2}}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := InUse(loop3, tc.use); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("InUse = %q, want %q", got, tc.want)
			}
		})
	}
	err := error(&InUseError{Path: "/dev/sdb", Why: []string{"/dev/sdb1 is mounted on /media/usb"}})
	for _, w := range []string{"/dev/sdb is in use", "/dev/sdb1 is mounted on /media/usb", "nothing was written"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q lacks %q", err, w)
		}
	}
}

func TestCheckSize(t *testing.T) {
	if err := CheckSize("/dev/sdb", 8<<20, 8<<20); err != nil {
		t.Errorf("an image as large as the device: %v", err)
	}
	err := CheckSize("/dev/sdb", 1<<20, 3<<20+5)
	var tse *TooSmallError
	if !errors.As(err, &tse) {
		t.Fatalf("CheckSize = %v, want a TooSmallError", err)
	}
	for _, w := range []string{"/dev/sdb", "1048576 bytes (1.0 MiB)", "3145733 bytes (3.0 MiB)", "nothing was written"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q lacks %q", err, w)
		}
	}
}

func TestParseSwaps(t *testing.T) {
	text := "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n" +
		"/dev/sda2                               partition\t8388604\t\t0\t\t-2\n" +
		"/swap\\040file                           file\t\t1048572\t\t0\t\t-3\n"
	want := []string{"/dev/sda2", "/swap file"}
	if got := parseSwaps(text); !reflect.DeepEqual(got, want) {
		t.Errorf("parseSwaps = %q, want %q", got, want)
	}
	if got := parseSwaps(""); got != nil {
		t.Errorf("parseSwaps(\"\") = %q", got)
	}
}
