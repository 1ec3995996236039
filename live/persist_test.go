package live

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseCmdlinePersistence(t *testing.T) {
	def := Root{Label: PersistLabel}
	for _, tc := range []struct {
		line   string
		on     bool
		dev    Root
		reset  bool
		errHas string
	}{
		{"", false, Root{}, false, ""},
		{"persistence", true, def, false, ""},
		{"persistence=", true, def, false, ""},
		{"persistence=1", true, def, false, ""},
		{"persistence=yes", true, def, false, ""},
		{"persistence=0", false, Root{}, false, ""},
		{"persistence=off", false, Root{}, false, ""},
		{"persistence=LABEL=my-stick", true, Root{Label: "my-stick"}, false, ""},
		{`persistence="LABEL=my stick"`, true, Root{Label: "my stick"}, false, ""},
		{"persistence=UUID=0a1b-2c3d", true, Root{UUID: "0a1b-2c3d"}, false, ""},
		{"persistence=/dev/sdb2", true, Root{Device: "/dev/sdb2"}, false, ""},
		{`persistence=/dev/disk/by-label/a\x20b`, true, Root{Label: "a b"}, false, ""},
		{"persistence=LABEL=x persistence=0", false, Root{}, false, ""},
		{"persistence=0 persistence", true, def, false, ""},
		{"persistence persistence.reset", true, def, true, ""},
		{"persistence.reset", false, Root{}, true, ""}, // stage 1 says it is ignored
		{"persistence persistence.reset=0", true, def, false, ""},
		{"persistence=LABEL=", false, Root{}, false, `persistence="LABEL="`},
		{"persistence=sdb1", false, Root{}, false, `persistence="sdb1"`},
		{"persistence=/dev/", false, Root{}, false, `persistence="/dev/"`},
		{"persistence persistence=bogus", false, Root{}, false, `persistence="bogus"`},
	} {
		c, err := ParseCmdline(tc.line)
		if tc.errHas != "" {
			require.Error(t, err, tc.line)
			assert.Contains(t, err.Error(), tc.errHas, tc.line)
		} else {
			require.NoError(t, err, tc.line)
		}
		assert.Equal(t, tc.on, c.Persistence, tc.line)
		assert.Equal(t, tc.dev, c.PersistDev, tc.line)
		assert.Equal(t, tc.reset, c.PersistReset, tc.line)
	}
	// Not a boot.* parameter: nothing to warn about.
	c, err := ParseCmdline("persistence persistence.reset root=LABEL=x")
	require.NoError(t, err)
	assert.Empty(t, c.UnknownBootParams())
	assert.Equal(t, Root{Label: "x"}, c.Root, "root= and persistence= are apart")
}

func TestImageIdentity(t *testing.T) {
	id := ImageIdentity{SquashfsSHA256: strings.Repeat("0123456789abcdef", 4), VolumeID: "nixos-25.05-x86_64"}
	b := id.Marshal()
	assert.Equal(t, `{"squashfsSHA256":"`+id.SquashfsSHA256+`","volumeID":"nixos-25.05-x86_64"}`+"\n", string(b))
	got, err := ParseImageIdentity(b)
	require.NoError(t, err)
	assert.Equal(t, id, got)
	assert.Equal(t, "0123456789ab", id.Short())
	assert.Equal(t, "0123456789ab (nixos-25.05-x86_64)", id.String())
	assert.True(t, id.Same(ImageIdentity{SquashfsSHA256: id.SquashfsSHA256}), "the volume ID is for people")
	assert.False(t, id.Same(ImageIdentity{SquashfsSHA256: strings.Repeat("f", 64), VolumeID: id.VolumeID}))

	// A later imagegen may add fields.
	got, err = ParseImageIdentity([]byte(`{"volumeID":"v","squashfsSHA256":"` + id.SquashfsSHA256 + `","format":2}`))
	require.NoError(t, err)
	assert.Equal(t, ImageIdentity{SquashfsSHA256: id.SquashfsSHA256, VolumeID: "v"}, got)

	for _, bad := range []string{"", "{", "null", `{"volumeID":"v"}`, `{"squashfsSHA256":"abc"}`,
		`{"squashfsSHA256":"` + strings.Repeat("A", 64) + `"}`, `{"squashfsSHA256":"` + strings.Repeat("g", 64) + `"}`} {
		_, err := ParseImageIdentity([]byte(bad))
		assert.Error(t, err, bad)
	}
}

// The layout on the persistence file system stays below one directory,
// and the paths stage 1 puts together are absolute where they must be.
func TestPersistLayout(t *testing.T) {
	for _, p := range []string{PersistRoot, PersistStore, PersistOld} {
		assert.True(t, strings.HasPrefix(p, PersistTop+"/"), p)
	}
	for _, p := range []string{PersistStage, PersistDir, NixDB} {
		assert.True(t, strings.HasPrefix(p, "/"), p)
	}
	assert.NotEqual(t, ImageIDFile, StoreImage)
}
