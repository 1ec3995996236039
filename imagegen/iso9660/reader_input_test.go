package iso9660

import "testing"

// TestRockRidgeShortEntries: system use entries shorter than their kind
// needs (an SL of 4 bytes has no flags byte) are skipped, not read past.
func TestRockRidgeShortEntries(t *testing.T) {
	im := &Image{}
	for _, s := range [][]byte{
		[]byte("SL\x04\x01"),
		[]byte("NM\x04\x01"),
		[]byte("PX\x04\x01"),
		[]byte("CE\x04\x01"),
		[]byte("SL\x05\x01\x00"),
	} {
		im.rockRidge(s)
	}
}
