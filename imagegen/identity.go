package imagegen

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/nixlive/nixlive/imagegen/iso9660"
	"github.com/nixlive/nixlive/live"
)

// addIdentity puts the image identity (live.ImageIDFile) on the ISO,
// after the store image: the SHA-256 of the store image as written, read
// back (its writer writes out of order: the superblock last), and the
// volume ID. Stage 1 keys the persistent store layer to it. A prebuilt
// store image is hashed from its file.
func (b *ISO) addIdentity(ctx context.Context, w *iso9660.Writer, p *isoPlan, res *ISOResult) error {
	r, size := p.storeImage, res.Squashfs
	if b.Squashfs != "" {
		f, err := os.Open(b.Squashfs)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	sum, err := hashImage(ctx, r, size)
	if err != nil {
		return fmt.Errorf("%s: image identity: %w", live.StoreImage, err)
	}
	res.Identity = live.ImageIdentity{SquashfsSHA256: sum, VolumeID: b.Spec.VolumeID}
	return addInput(w, input{target: live.ImageIDFile, data: res.Identity.Marshal()}, p.epoch)
}

// hashImage is the SHA-256 of r's first size bytes, in hex; it stops when
// ctx is done.
func hashImage(ctx context.Context, r io.ReaderAt, size int64) (string, error) {
	h := sha256.New()
	buf := make([]byte, 4<<20)
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, err := r.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		h.Write(buf[:n])
		off += int64(n)
		if err != nil && (err != io.EOF || off < size) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
