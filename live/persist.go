package live

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Persistence: with "persistence" on the kernel command line, stage 1 keeps
// / and the store's writable layer on a file system of the boot disk (or
// any disk) instead of in RAM. The store layer and the Nix database belong
// to one image: booting another image on the same disk keeps / but sets
// the store layer aside (see stage1.PersistPlan).
//
// On the persistence file system:
//
//	nixlive/root/                  /  (bound on NewRoot)
//	nixlive/rw-store/              the store layer (bound on RWStore)
//	nixlive/rw-store/store/        the overlay's upper directory
//	nixlive/rw-store/work/         the overlay's work directory
//	nixlive/rw-store/db/           the Nix database (bound on NixDB)
//	nixlive/rw-store/image-id      the ImageIdentity the layer belongs to
//	nixlive/old/<n>-<image>/       store layers set aside, kept, never deleted
const (
	// PersistLabel is the file system label stage 1 looks for when
	// "persistence" names no device.
	PersistLabel = "nixlive-rw"
	// PersistStage is where stage 1 mounts the persistence file system
	// first, in the initramfs, before the new root exists (it is / of the
	// new root that is on it).
	PersistStage = "/nixlive-rw"
	// PersistDir is where it is then moved in the new root: where the live
	// system sees it, and the set-aside layers below it.
	PersistDir = "/nix/.persistence"

	// PersistTop is the one directory nixlive uses on the file system;
	// the rest of it is the user's.
	PersistTop = "nixlive"
	// PersistRoot holds /, relative to the file system's root.
	PersistRoot = PersistTop + "/root"
	// PersistStore is the store layer, bound on RWStore.
	PersistStore = PersistTop + "/rw-store"
	// PersistOld holds the store layers set aside.
	PersistOld = PersistTop + "/old"

	// RWUpper, RWWork and RWDB are the store layer's directories, below
	// RWStore: the overlay's upper and work directories, and the Nix
	// database (bound on NixDB with persistence, so that it goes with
	// its store layer). RWImageID names the file there that says which
	// image the layer belongs to.
	RWUpper   = "store"
	RWWork    = "work"
	RWDB      = "db"
	RWImageID = "image-id"

	// NixDB is the Nix database's directory.
	NixDB = "/nix/var/nix/db"

	// ImageIDFile is the image identity at the root of the medium, beside
	// StoreImage: ImageIdentity's JSON.
	ImageIDFile = "nixlive-image-id"
)

// ImageIdentity says which image a medium carries: the SHA-256 of its
// store image (nix-store.squashfs) as written, which is what identifies it,
// and the ISO's volume ID, for people.
type ImageIdentity struct {
	SquashfsSHA256 string `json:"squashfsSHA256"`
	VolumeID       string `json:"volumeID"`
}

// Marshal gives the identity file's content: one line of JSON.
func (id ImageIdentity) Marshal() []byte {
	b, _ := json.Marshal(id) // two strings: cannot fail
	return append(b, '\n')
}

// Short is the start of the hash, enough to tell images apart on a console.
func (id ImageIdentity) Short() string {
	return id.SquashfsSHA256[:min(12, len(id.SquashfsSHA256))]
}

// Same says whether two identities name the same store image.
func (id ImageIdentity) Same(o ImageIdentity) bool {
	return id.SquashfsSHA256 == o.SquashfsSHA256
}

func (id ImageIdentity) String() string {
	if id.VolumeID == "" {
		return id.Short()
	}
	return fmt.Sprintf("%s (%s)", id.Short(), id.VolumeID)
}

// ParseImageIdentity reads an identity file. Unknown fields are ignored
// (a later imagegen may add some); the hash must be 64 lower-case hex
// digits.
func ParseImageIdentity(b []byte) (ImageIdentity, error) {
	var id ImageIdentity
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&id); err != nil {
		return ImageIdentity{}, fmt.Errorf("image identity: %w", err)
	}
	if !isSHA256Hex(id.SquashfsSHA256) {
		return ImageIdentity{}, errors.New("image identity: squashfsSHA256 is not 64 lower-case hex digits")
	}
	return id, nil
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
