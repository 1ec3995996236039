package stage1

import (
	"encoding/binary"
	"testing"
)

func TestExtNeedsRepair(t *testing.T) {
	sb := func(state uint16, errs uint32, journal bool) []byte {
		b := make([]byte, extSuperReadLen)
		binary.LittleEndian.PutUint16(b[extMagicOff:], extMagic)
		binary.LittleEndian.PutUint16(b[extStateOff:], state)
		binary.LittleEndian.PutUint32(b[extErrCountOff:], errs)
		if journal {
			binary.LittleEndian.PutUint32(b[extCompatOff:], extHasJournal)
		}
		return b
	}
	for _, tc := range []struct {
		name   string
		sb     []byte
		repair bool
	}{
		{"clean", sb(extValidFS, 0, true), false},
		{"not unmounted, journal", sb(0, 0, true), false},
		{"not unmounted, no journal", sb(0, 0, false), true},
		{"errors bit", sb(extValidFS|extErrorFS, 0, true), true},
		{"error count", sb(extValidFS, 3, true), true},
		{"not ext", make([]byte, extSuperReadLen), false},
		{"short", []byte{1, 2}, false},
	} {
		if got := extNeedsRepair(tc.sb); (got != "") != tc.repair {
			t.Errorf("%s: %q, want repair=%v", tc.name, got, tc.repair)
		}
	}
}
