package registration_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/nixlive/nixlive/internal/boottest/nixtest"
	"github.com/nixlive/nixlive/internal/nix/registration"
	"github.com/nixlive/nixlive/internal/nix/storepath"
)

// numberCases are spellings of the NAR size and the reference count, with
// what Nix 2.8's nix-store --load-db makes of them (string2Int, i.e.
// boost::lexical_cast: an optional "+", digits, nothing else; the count
// is a signed int, the size an unsigned 64-bit one that refuses "-").
var numberCases = []struct {
	size, count string
	ok          bool
	wantSize    uint64
}{
	{"10", "0", true, 10},
	{"+10", "0", true, 10},
	{"010", "+0", true, 10},
	{"+0", "0", true, 0},
	{"18446744073709551615", "0", true, 18446744073709551615},
	{"18446744073709551616", "0", false, 0},
	{"+", "0", false, 0},
	{"-10", "0", false, 0},
	{"-0", "0", false, 0},
	{" 10", "0", false, 0},
	{"10 ", "0", false, 0},
	{"1_0", "0", false, 0},
	{"0x10", "0", false, 0},
	{"++1", "0", false, 0},
	{"10", "+1", true, 10},
	{"10", "01", true, 10},
	{"10", "-1", false, 0},
	{"10", "2147483648", false, 0},
}

func numberInput(size, count string) string {
	p := storepath.DefaultStoreDir + "/" + strings.Repeat("a", storepath.HashLen) + "-x"
	in := p + "\nsha256:" + strings.Repeat("0", 52) + "\n" + size + "\n\n" + count + "\n"
	if count != "0" && count != "+0" {
		in += p + "\n"
	}
	return in
}

// TestNumbersAsNix: the NAR size and reference count lines are read as
// Nix 2.8 reads them: a leading "+" is taken, anything else but digits is
// refused.
func TestNumbersAsNix(t *testing.T) {
	for _, tc := range numberCases {
		t.Run(fmt.Sprintf("size=%q,count=%q", tc.size, tc.count), func(t *testing.T) {
			recs, err := registration.Parse(strings.NewReader(numberInput(tc.size, tc.count)), storepath.DefaultStoreDir)
			if !tc.ok {
				assert.Error(t, err)
				return
			}
			if assert.NoError(t, err) && assert.Len(t, recs, 1) {
				assert.Equal(t, tc.wantSize, recs[0].NarSize)
			}
		})
	}
}

// TestNumbersNixAgrees checks numberCases against the real nix-store
// --load-db (and --dump-db for the size it recorded).
func TestNumbersNixAgrees(t *testing.T) {
	nixtest.HaveNix(t)
	for _, tc := range numberCases {
		t.Run(fmt.Sprintf("size=%q,count=%q", tc.size, tc.count), func(t *testing.T) {
			store := nixtest.NewStore(t)
			_, stderr, err := nixtest.Exec(t, store, []byte(numberInput(tc.size, tc.count)), "nix-store", "--load-db")
			if !tc.ok {
				assert.Error(t, err, "nix-store --load-db accepted it")
				return
			}
			if assert.NoError(t, err, "nix-store --load-db: %s", stderr) {
				dump := nixtest.Run(t, store, "--dump-db")
				assert.Contains(t, dump, fmt.Sprintf("\n%d\n", tc.wantSize))
			}
		})
	}
}
