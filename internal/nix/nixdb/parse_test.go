package nixdb

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/nix/registration"
)

func quickSeeds() [][]byte {
	p := func(c byte, name string) string { return "/nix/store/" + strings.Repeat(string(c), 32) + "-" + name }
	h := "sha256:" + strings.Repeat("1", 52)
	good := fmt.Sprintf("%s\n%s\n120\n\n2\n%s\n%s\n%s\n%s\n0\n%s\n0\n", p('a', "x"), h, p('a', "x"), p('b', "y"), p('b', "y"), h, p('c', "d.drv"))
	return [][]byte{
		[]byte(good),
		[]byte(strings.TrimSuffix(good, "\n")),
		[]byte(good + "\n"),
		[]byte(strings.Replace(good, h, "sha256:"+strings.Repeat("z", 52), 1)), // top bits set
		[]byte(strings.Replace(good, h, "sha256:"+strings.Repeat("0", 51)+"1", 1)),
		[]byte(strings.Replace(good, h, "sha256:1"+strings.Repeat("0", 51), 1)),
		[]byte(strings.Replace(good, h, strings.Repeat("ab", 32), 1)), // base16: Parse only
		[]byte(strings.Replace(good, "120", "0120", 1)),
		[]byte(strings.Replace(good, "120", "+120", 1)),
		[]byte(strings.Replace(good, "\n2\n", "\n99999999999999999999\n", 1)),
		[]byte(strings.Replace(good, "-x\n", "-.x\n", 1)),
		[]byte(strings.Replace(good, "-x\n", "-x\r\n", 1)),
		[]byte(strings.Replace(good, "\n\n2", "\n"+p('f', "drv")+"\n2", 1)),
		{},
		[]byte("\n"),
	}
}

// FuzzQuickParse checks that whatever quickParse accepts, registration.Parse
// accepts too, with the same records: the fast path never changes a
// result, it only gets there sooner.
func FuzzQuickParse(f *testing.F) {
	for _, s := range quickSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		quick, ok := quickParse(data)
		if !ok {
			return
		}
		want, err := registration.Parse(bytes.NewReader(data), StoreDir)
		require.NoError(t, err, "quickParse accepted what Parse refuses")
		require.Equal(t, want, quick)
	})
}

func TestQuickParse(t *testing.T) {
	seeds := quickSeeds()
	recs, ok := quickParse(seeds[0])
	require.True(t, ok)
	require.Len(t, recs, 2)
	for i, s := range seeds[1:] {
		_, ok := quickParse(s)
		want := i+1 == 4 || i+1 == 5 || i+1 == 7 || i+1 == 12 // valid, and quick reads them
		require.Equal(t, want, ok, "seed %d: %q", i+1, s)
	}
	// Real-sized input, with the strings of references shared.
	var reg bytes.Buffer
	for i := 0; i < 3; i++ {
		fmt.Fprintf(&reg, "/nix/store/%032d-p%d\nsha256:%052d\n%d\n\n1\n/nix/store/%032d-p0\n", i, i, i, 100+i, 0)
	}
	got, ok := quickParse(reg.Bytes())
	require.True(t, ok)
	want, err := registration.Parse(bytes.NewReader(reg.Bytes()), "")
	require.NoError(t, err)
	require.Equal(t, want, got)
}
