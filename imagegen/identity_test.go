package imagegen

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/imagegen/iso9660"
	"github.com/nixlive/nixlive/internal/nix/storepath"
	"github.com/nixlive/nixlive/live"
)

const (
	idSystem  = "/nix/store/77777777777777777777777777777777-nixos-system"
	idKernel  = "/nix/store/55555555555555555555555555555555-linux"
	idInitrd  = "/nix/store/33333333333333333333333333333333-initrd"
	idPackage = "/nix/store/11111111111111111111111111111111-hello"
)

// identityStore makes a store root with a system, a kernel, an initrd and
// one package whose file holds hello.
func identityStore(t *testing.T, hello string) storepath.Root {
	t.Helper()
	dir := t.TempDir()
	for p, content := range map[string]string{
		idSystem + "/init":      "#!/bin/sh\n",
		idKernel + "/bzImage":   "kernel",
		idInitrd + "/initrd":    "initrd",
		idPackage + "/bin/text": hello,
	} {
		h := filepath.Join(dir, p)
		require.NoError(t, os.MkdirAll(filepath.Dir(h), 0o755))
		require.NoError(t, os.WriteFile(h, []byte(content), 0o755))
	}
	return storepath.Root{Dir: dir}
}

// buildIdentityISO builds an ISO of the store (no boot loaders, so that
// the test needs nothing from the host) and returns its bytes.
func buildIdentityISO(t *testing.T, store storepath.Root, prebuilt string, extra string) (*ISOResult, []byte, error) {
	t.Helper()
	s := `{"system": "` + idSystem + `", "kernel": "` + idKernel + `/bzImage", "initrd": "` + idInitrd + `/initrd",
		"storeContents": ["` + idPackage + `"], "volumeID": "nixlive-test", "squashfsCompression": "gzip -Xcompression-level 1"` + extra + `}`
	spec, err := ParseSpec(strings.NewReader(s), "test.json")
	require.NoError(t, err)
	spec.Boot.BIOS, spec.Boot.EFI, spec.Boot.USB = false, false, false
	out := filepath.Join(t.TempDir(), "out.iso")
	res, err := (&ISO{Spec: spec, Store: store, Output: out, Squashfs: prebuilt}).Build(context.Background())
	if err != nil {
		return nil, nil, err
	}
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	return res, b, nil
}

// isoFile reads a file of the ISO's Rock Ridge hierarchy.
func isoFile(t *testing.T, iso []byte, name string) []byte {
	t.Helper()
	im, err := iso9660.Open(bytes.NewReader(iso))
	require.NoError(t, err)
	var got []byte
	require.NoError(t, im.Walk(func(e iso9660.Entry) error {
		if strings.TrimPrefix(e.Path, "/") == name {
			require.Equal(t, 1, e.Extents)
			off := int64(e.LBA) * 2048
			got = iso[off : off+e.Size]
		}
		return nil
	}))
	require.NotNil(t, got, "%s is not on the ISO", name)
	return got
}

// TestImageIdentity: the ISO carries the identity of its store image: the
// SHA-256 of nix-store.squashfs as on the ISO, and the volume ID. The same
// inputs give the same identity and the same ISO; other store contents
// another identity; a prebuilt store image the identity of its bytes.
func TestImageIdentity(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "315532800")
	store := identityStore(t, "hello\n")
	res, iso, err := buildIdentityISO(t, store, "", "")
	require.NoError(t, err)

	sq := isoFile(t, iso, live.StoreImage)
	sum := sha256.Sum256(sq)
	want := live.ImageIdentity{SquashfsSHA256: hex.EncodeToString(sum[:]), VolumeID: "nixlive-test"}
	assert.Equal(t, want, res.Identity)
	id, err := live.ParseImageIdentity(isoFile(t, iso, live.ImageIDFile))
	require.NoError(t, err)
	assert.Equal(t, want, id)

	// Reproducible.
	res2, iso2, err := buildIdentityISO(t, store, "", "")
	require.NoError(t, err)
	assert.Equal(t, res.Identity, res2.Identity)
	assert.True(t, bytes.Equal(iso, iso2), "the same inputs give the same ISO bytes")

	// Other store contents: another identity.
	res3, iso3, err := buildIdentityISO(t, identityStore(t, "hello, world\n"), "", "")
	require.NoError(t, err)
	assert.NotEqual(t, res.Identity.SquashfsSHA256, res3.Identity.SquashfsSHA256)
	id3, err := live.ParseImageIdentity(isoFile(t, iso3, live.ImageIDFile))
	require.NoError(t, err)
	assert.Equal(t, res3.Identity, id3)

	// A prebuilt store image (--squashfs): the identity of its bytes.
	pre := filepath.Join(t.TempDir(), live.StoreImage)
	require.NoError(t, os.WriteFile(pre, sq, 0o644))
	res4, iso4, err := buildIdentityISO(t, store, pre, "")
	require.NoError(t, err)
	assert.Equal(t, want, res4.Identity)
	assert.Equal(t, want.Marshal(), isoFile(t, iso4, live.ImageIDFile))
}

// TestImageIdentityTaken: the identity's place on the ISO is the layout's;
// a contents entry there is refused before anything is written.
func TestImageIdentityTaken(t *testing.T) {
	store := identityStore(t, "hello\n")
	src := filepath.Join(t.TempDir(), "x")
	require.NoError(t, os.WriteFile(src, []byte("x"), 0o644))
	_, _, err := buildIdentityISO(t, store, "", `, "contents": [{"source": "`+src+`", "target": "/`+live.ImageIDFile+`"}]`)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "taken by the bootloader or the live system layout")
}

func TestHashImageShort(t *testing.T) {
	_, err := hashImage(context.Background(), bytes.NewReader([]byte("abc")), 4)
	assert.Error(t, err, "fewer bytes than the image's size")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = hashImage(ctx, bytes.NewReader([]byte("abc")), 3)
	assert.ErrorIs(t, err, context.Canceled)
	got, err := hashImage(context.Background(), bytes.NewReader([]byte("abcd")), 3)
	require.NoError(t, err)
	sum := sha256.Sum256([]byte("abc"))
	assert.Equal(t, hex.EncodeToString(sum[:]), got)
}
