package stage1

import (
	"errors"
	"path"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/live"
)

var (
	imgA = live.ImageIdentity{SquashfsSHA256: strings.Repeat("a", 64), VolumeID: "nixos-25.05-x86_64"}
	imgB = live.ImageIdentity{SquashfsSHA256: strings.Repeat("b", 64), VolumeID: "nixos-25.11-x86_64"}
)

func cmdline(t *testing.T, s string) *live.Cmdline {
	t.Helper()
	c, err := live.ParseCmdline(s)
	require.NoError(t, err, s)
	return c
}

var stick = PersistProbe{Device: "/dev/sdb2", FSType: "ext4"}

// TestPersistPlan: the decision as data, for every case of the stick and
// the image.
func TestPersistPlan(t *testing.T) {
	base := Plan("/dev/sdb1", "iso9660", false, true)
	for _, tc := range []struct {
		name  string
		line  string
		probe PersistProbe
		fs    *PersistFS
		fsErr error
		media []byte
		// want
		root, layer bool
		setAside    string
		writeID     []byte
		rebuild     bool
		msg         []string // every one in the message; nil: no message
	}{
		{name: "off", line: "", probe: stick, fs: &PersistFS{}, media: imgA.Marshal(), rebuild: true},
		{name: "reset without persistence", line: "persistence.reset", probe: stick, media: imgA.Marshal(), rebuild: true,
			msg: []string{"persistence.reset ignored"}},
		{name: "first boot", line: "persistence", probe: stick, fs: &PersistFS{}, media: imgA.Marshal(),
			root: true, layer: true, writeID: imgA.Marshal(), rebuild: true,
			msg: []string{"from now on", "/dev/sdb2", "aaaaaaaaaaaa (nixos-25.05-x86_64)"}},
		{name: "same image", line: "persistence", probe: stick, fs: &PersistFS{ImageID: imgA.Marshal(), Layer: true}, media: imgA.Marshal(),
			root: true, layer: true},
		{name: "same image, other volume ID", line: "persistence", probe: stick,
			fs:    &PersistFS{ImageID: live.ImageIdentity{SquashfsSHA256: imgA.SquashfsSHA256, VolumeID: "renamed"}.Marshal(), Layer: true},
			media: imgA.Marshal(), root: true, layer: true},
		{name: "another image", line: "persistence", probe: stick, fs: &PersistFS{ImageID: imgA.Marshal(), Layer: true}, media: imgB.Marshal(),
			root: true, layer: true, setAside: "nixlive/old/1-nixos-25.05-x86_64-aaaaaaaaaaaa", writeID: imgB.Marshal(), rebuild: true,
			msg: []string{"this is image bbbbbbbbbbbb (nixos-25.11-x86_64)", "for image aaaaaaaaaaaa (nixos-25.05-x86_64)",
				"set aside as /nix/.persistence/nixlive/old/1-nixos-25.05-x86_64-aaaaaaaaaaaa", "kept", "/ is kept", "database is rebuilt"}},
		{name: "another image, name clash in old/", line: "persistence", probe: stick,
			fs: &PersistFS{ImageID: imgA.Marshal(), Layer: true,
				Old: []string{"1-nixos-25.05-x86_64-aaaaaaaaaaaa", "3-unknown", "notes.txt", "99999999999999999999-x", "4"}},
			media: imgB.Marshal(), root: true, layer: true, setAside: "nixlive/old/5-nixos-25.05-x86_64-aaaaaaaaaaaa",
			writeID: imgB.Marshal(), rebuild: true, msg: []string{"old/5-nixos-25.05-x86_64-aaaaaaaaaaaa"}},
		{name: "a layer of no known image", line: "persistence", probe: stick, fs: &PersistFS{Layer: true}, media: imgA.Marshal(),
			root: true, layer: true, setAside: "nixlive/old/1-unknown", writeID: imgA.Marshal(), rebuild: true,
			msg: []string{"of no known image", "old/1-unknown"}},
		{name: "a damaged identity beside the layer", line: "persistence", probe: stick, fs: &PersistFS{ImageID: []byte("{"), Layer: true},
			media: imgA.Marshal(), root: true, layer: true, setAside: "nixlive/old/1-unknown", writeID: imgA.Marshal(), rebuild: true,
			msg: []string{"of no known image"}},
		{name: "reset", line: "persistence persistence.reset", probe: stick, fs: &PersistFS{ImageID: imgA.Marshal(), Layer: true, Old: []string{"1-unknown"}},
			media: imgA.Marshal(), root: true, layer: true, setAside: "nixlive/old/2-nixos-25.05-x86_64-aaaaaaaaaaaa", writeID: imgA.Marshal(), rebuild: true,
			msg: []string{"persistence.reset", "set aside as /nix/.persistence/nixlive/old/2-", "fresh", "/ is kept"}},
		{name: "reset, nothing there", line: "persistence persistence.reset", probe: stick, fs: &PersistFS{}, media: imgA.Marshal(),
			root: true, layer: true, writeID: imgA.Marshal(), rebuild: true, msg: []string{"none to set aside"}},
		{name: "missing device", line: "persistence", probe: PersistProbe{}, media: imgA.Marshal(), rebuild: true,
			msg: []string{"no file system LABEL=nixlive-rw found", "booting without persistence", "mkfs.ext4 -L nixlive-rw"}},
		{name: "missing device named", line: "persistence=UUID=1234-5678", probe: PersistProbe{}, media: imgA.Marshal(), rebuild: true,
			msg: []string{"no file system UUID=1234-5678 found", "booting without persistence"}},
		{name: "needs repair", line: "persistence", probe: PersistProbe{Device: "/dev/sdb2", FSType: "ext4", NeedsRepair: "the file system has errors"},
			fs: &PersistFS{ImageID: imgA.Marshal(), Layer: true}, media: imgA.Marshal(), rebuild: true,
			msg: []string{"/dev/sdb2 (LABEL=nixlive-rw) needs repair (the file system has errors)", "not mounted read-write", "booting without persistence", "fsck -f /dev/sdb2"}},
		{name: "FAT", line: "persistence=/dev/sdc1", probe: PersistProbe{Device: "/dev/sdc1", FSType: "vfat"}, media: imgA.Marshal(), rebuild: true,
			msg: []string{"/dev/sdc1 (/dev/sdc1) holds vfat", "booting without persistence"}},
		{name: "mount failed", line: "persistence", probe: stick, fsErr: errors.New("mount: invalid argument"), media: imgA.Marshal(), rebuild: true,
			msg: []string{"mount: invalid argument", "booting without persistence"}},
		{name: "medium without identity", line: "persistence", probe: stick, fs: &PersistFS{ImageID: imgA.Marshal(), Layer: true},
			root: true, rebuild: true, msg: []string{"/ is kept on /dev/sdb2", "no image identity", "in RAM this boot", "left as it is"}},
		{name: "medium with a bad identity", line: "persistence", probe: stick, fs: &PersistFS{}, media: []byte("x"),
			root: true, rebuild: true, msg: []string{"unreadable nixlive-image-id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := PersistPlan(base, PersistInput{Cmd: cmdline(t, tc.line), Probe: tc.probe, FS: tc.fs, FSErr: tc.fsErr, Medium: tc.media})
			assert.Equal(t, tc.root, d.Root, "root")
			assert.Equal(t, tc.root, d.Mount != nil, "mount")
			assert.Equal(t, tc.layer, d.StoreLayer, "store layer")
			assert.Equal(t, tc.setAside, d.SetAside, "set aside")
			assert.Equal(t, string(tc.writeID), string(d.WriteID), "identity written")
			assert.Equal(t, tc.rebuild, d.RebuildDB, "rebuild the database")
			if tc.msg == nil {
				assert.Empty(t, d.Message)
			}
			for _, s := range tc.msg {
				assert.Contains(t, d.Message, s)
			}
			if d.SetAside != "" {
				assert.True(t, strings.HasPrefix(d.SetAside, live.PersistOld+"/"), d.SetAside)
				assert.NotContains(t, tc.fs.Old, path.Base(d.SetAside))
			}
			if !d.Root {
				assert.Equal(t, base, d.Plan, "without persistence, the plan is Plan's")
			}
		})
	}
}

// TestPersistMounts: with persistence, / is a bind of the root directory
// on the persistence file system, which then moves into the new root; the
// store layer is a bind of its directory (or Plan's tmpfs when it is not
// kept there) and the database a bind of the layer's; the rest is Plan's.
func TestPersistMounts(t *testing.T) {
	base := Plan("/dev/sr0", "iso9660", false, false)
	d := PersistPlan(base, PersistInput{Cmd: cmdline(t, "persistence"), Probe: stick, FS: &PersistFS{}, Medium: imgA.Marshal()})
	assert.Equal(t, &Mount{Source: "/dev/sdb2", Target: live.PersistStage, FSType: "ext4"}, d.Mount)
	assert.Equal(t, MountPlan{
		{Source: "/nixlive-rw/nixlive/root", Target: "/", FSType: BindMount},
		{Source: "/nixlive-rw", Target: "/nix/.persistence", FSType: MoveMount},
		base[1], // the medium
		base[2], // the store image
		{Source: "/nix/.persistence/nixlive/rw-store", Target: live.RWStore, FSType: BindMount},
		base[4], // the overlay, upper and work below live.RWStore as without persistence
		{Source: live.RWStore + "/db", Target: "/nix/var/nix/db", FSType: BindMount},
	}, d.Plan)
	assert.Contains(t, d.Plan.String(), "/nix/var/nix/db")

	// The store layer in RAM: Plan's tmpfs, the database on it too.
	d = PersistPlan(base, PersistInput{Cmd: cmdline(t, "persistence"), Probe: stick, FS: &PersistFS{}})
	require.True(t, d.Root)
	assert.Equal(t, base[3], d.Plan[4])
	assert.Equal(t, "tmpfs", d.Plan[4].FSType)
	assert.Equal(t, live.NixDB, d.Plan[len(d.Plan)-1].Target)
	for _, m := range d.Plan {
		assert.False(t, m.Target == "/" && m.FSType == "tmpfs", "no tmpfs at / with persistence")
	}
}

// TestSetAsideName: names sort by age and never take an existing one.
func TestSetAsideName(t *testing.T) {
	odd := live.ImageIdentity{SquashfsSHA256: imgA.SquashfsSHA256, VolumeID: "../my disk/x"}
	assert.Equal(t, "nixlive/old/1-_my_disk_x-aaaaaaaaaaaa", setAsideName(nil, &odd))
	assert.Equal(t, "nixlive/old/1-aaaaaaaaaaaa", setAsideName(nil, &live.ImageIdentity{SquashfsSHA256: imgA.SquashfsSHA256}))
	assert.Equal(t, "nixlive/old/3-unknown", setAsideName([]string{"2-unknown", "1-x", "-1-unknown", "x-2"}, nil))
	assert.Equal(t, "nixlive/old/11-unknown", setAsideName([]string{"9-unknown", "10"}, nil), `"10" alone counts`)
	assert.Equal(t, "nixlive/old/1-unknown", setAsideName([]string{"unknown", "0-unknown"}, nil))
}
