//go:build linux

package stage1

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/nixlive/nixlive/internal/blkid"
)

// The medium is mounted with the type the probe found, so that the ISO's
// files copied onto a FAT or ext stick (UNetbootin style) boot as in NixOS;
// a type stage 1 cannot mount the medium with is refused by name.
func TestMediumFSType(t *testing.T) {
	for _, typ := range []string{"iso9660", "vfat", "ext2", "ext3", "ext4"} {
		got, err := checkMediumFS("/dev/sdb", typ)
		if assert.NoError(t, err, typ) {
			assert.Equal(t, typ, got)
		}
		assert.Equal(t, typ, Plan("/dev/sdb", typ, false, false)[1].FSType, "the plan mounts /iso as %s", typ)
	}
	// FAT is mounted with a character set the initrd has (not the
	// kernel's default, Debian's ascii, a module it lacks).
	assert.Equal(t, "iocharset=iso8859-1", Plan("/dev/sdb", "vfat", false, false)[1].Data)
	for _, typ := range []string{"iso9660", "ext4"} {
		assert.Empty(t, Plan("/dev/sdb", typ, false, false)[1].Data, typ)
	}
	_, err := checkMediumFS("/dev/sdb", "squashfs")
	assert.EqualError(t, err, "stage1: the medium /dev/sdb holds a squashfs file system; the live medium must be one of iso9660, vfat, ext2, ext3, ext4")
	_, err = checkMediumFS("/dev/sdb", "")
	assert.ErrorContains(t, err, "holds no file system stage 1 recognizes")
}

// seenFS takes the medium's type from the scan that found it.
func TestSeenFS(t *testing.T) {
	b := &Boot{seen: []Device{{Name: "sda"}, {Name: "sdb1", FS: blkid.FS{Type: "ext4", Label: "NIXOS"}}}}
	fs, err := b.seenFS("/dev/sdb1")
	assert.NoError(t, err)
	assert.Equal(t, "ext4", fs.Type)
}
