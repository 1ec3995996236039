package registration_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/nix-community/go-nix/pkg/nixbase32"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/nixtest"
	"github.com/nixlive/nixlive/internal/nix/registration"
)

const (
	pA = "/nix/store/067cwalyjsg3hjkj2lc8wfzr438f45p4-d"
	pB = "/nix/store/l9sv62jdygp1s996iglij71wl7s9fnrx-b"
	pF = "/nix/store/xp0dpr9yz5h0fk5c5lpj7zzqjbdh3w8c-f"
	// NAR hash of a file containing "hello\n"
	helloB32 = "04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw"
	helloB16 = "1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13"
)

func hash(b32 string) (h [32]byte) {
	if _, err := nixbase32.Decode(h[:], []byte(b32)); err != nil {
		panic(err)
	}
	return h
}

func sample() []registration.Record {
	return []registration.Record{
		{Path: pF, NarHash: hash(helloB32), NarSize: 120},
		{Path: pB, NarHash: hash(helloB32), NarSize: 168, References: []string{pF, pB}},
		{Path: pA, NarHash: hash(helloB32), NarSize: 480, Deriver: "/nix/store/00000000000000000000000000000000-a.drv"},
	}
}

const sampleText = pA + "\n" +
	"sha256:" + helloB32 + "\n" +
	"480\n" +
	"/nix/store/00000000000000000000000000000000-a.drv\n" +
	"0\n" +
	pB + "\n" +
	"sha256:" + helloB32 + "\n" +
	"168\n" +
	"\n" +
	"2\n" +
	pB + "\n" +
	pF + "\n" +
	pF + "\n" +
	"sha256:" + helloB32 + "\n" +
	"120\n" +
	"\n" +
	"0\n"

func TestWrite(t *testing.T) {
	in := sample()
	var b bytes.Buffer
	require.NoError(t, registration.Write(&b, in))
	require.Equal(t, sampleText, b.String())
	// The caller's slices are not reordered.
	require.Equal(t, pF, in[0].Path)
	require.Equal(t, []string{pF, pB}, in[1].References)
	require.Empty(t, registration.Marshal(nil))
}

func TestParseRoundTrip(t *testing.T) {
	recs, err := registration.Parse(strings.NewReader(sampleText), "")
	require.NoError(t, err)
	require.Len(t, recs, 3)
	require.Equal(t, pA, recs[0].Path)
	require.Equal(t, []string{pB, pF}, recs[1].References)
	require.Nil(t, recs[2].References)
	require.Equal(t, sampleText, string(registration.Marshal(recs)))

	recs, err = registration.Parse(strings.NewReader(""), "")
	require.NoError(t, err)
	require.Empty(t, recs)
}

func TestParseHashSpellings(t *testing.T) {
	for _, h := range []string{"sha256:" + helloB32, "sha256:" + helloB16, helloB16, strings.ToUpper(helloB16)} {
		recs, err := registration.Parse(strings.NewReader(pF+"\n"+h+"\n120\n\n0\n"), "")
		require.NoError(t, err, h)
		require.Equal(t, hash(helloB32), recs[0].NarHash, h)
	}
}

func TestParseErrors(t *testing.T) {
	rec := func(path, h, size, deriver, count string, refs ...string) string {
		s := path + "\n" + h + "\n" + size + "\n" + deriver + "\n" + count + "\n"
		for _, r := range refs {
			s += r + "\n"
		}
		return s
	}
	good := rec(pF, "sha256:"+helloB32, "120", "", "0")
	for _, tc := range []struct{ name, in, msg string }{
		{"count", good + rec(pB, "sha256:"+helloB32, "1", "", "x"), `registration: line 10: reference count "x": not a number`},
		{"negative count", rec(pB, "sha256:"+helloB32, "1", "", "-1"), `line 5: reference count "-1": not a number`},
		{"size", rec(pB, "sha256:"+helloB32, "12a", "", "0"), `line 3: NAR size "12a": not a number`},
		// Nix takes "+1" (TestNumbersAsNix); a lone "+" it does not.
		{"plus size", rec(pB, "sha256:"+helloB32, "+", "", "0"), `line 3: NAR size "+": not a number`},
		{"empty size", rec(pB, "sha256:"+helloB32, "", "", "0"), `line 3: NAR size "": empty`},
		{"huge size", rec(pB, "sha256:"+helloB32, "99999999999999999999", "", "0"), `line 3: NAR size "99999999999999999999": out of range`},
		{"bad path", rec("/nix/store/foo", "sha256:"+helloB32, "1", "", "0"), `line 1: storepath: "/nix/store/foo"`},
		{"other store", rec(pF, "sha256:"+helloB32, "1", "", "0"), `not in the store /gnu/store`},
		{"bad ref", rec(pB, "sha256:"+helloB32, "1", "", "1", "/nix/store/x"), `line 6: reference: storepath: "/nix/store/x"`},
		{"bad deriver", rec(pB, "sha256:"+helloB32, "1", "foo.drv", "0"), `line 4: deriver: storepath: "foo.drv"`},
		{"md5", rec(pB, "md5:"+helloB16[:32], "1", "", "0"), `line 2: NAR hash "md5:`},
		{"bare nix32", rec(pB, helloB32, "1", "", "0"), `line 2: NAR hash "` + helloB32 + `": want "sha256:"`},
		{"short hash", rec(pB, "sha256:abc", "1", "", "0"), `have 3`},
		{"bad nix32", rec(pB, "sha256:e"+helloB32[1:], "1", "", "0"), `bad nix32`},
		{"bad hex", rec(pB, "sha256:g"+helloB16[1:], "1", "", "0"), `bad base16`},
		{"empty hash", rec(pB, "", "1", "", "0"), `line 2: NAR hash ""`},
		{"missing newline", strings.TrimSuffix(good, "\n"), `line 5: missing final newline`},
		{"missing newline after ref", strings.TrimSuffix(rec(pB, "sha256:"+helloB32, "1", "", "1", pF), "\n"), `line 6: missing final newline`},
		{"extra blank line", good + "\n", `line 6: empty line`},
		{"truncated", good + pB + "\nsha256:" + helloB32 + "\n", `line 8: truncated record: missing the NAR size`},
		{"truncated refs", rec(pB, "sha256:"+helloB32, "1", "", "2", pF), `line 7: truncated record: missing reference 2 of 2`},
		{"crlf", strings.ReplaceAll(good, "\n", "\r\n"), `line 1: storepath:`},
		{"long line", strings.Repeat("x", 70000) + "\n", `line 1: longer than`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storeDir := ""
			if tc.name == "other store" {
				storeDir = "/gnu/store"
			}
			_, err := registration.Parse(strings.NewReader(tc.in), storeDir)
			require.ErrorContains(t, err, tc.msg)
		})
	}
}

func TestDedup(t *testing.T) {
	r1 := registration.Record{Path: pF, NarSize: 1}
	r2 := registration.Record{Path: pB, NarSize: 2}
	r3 := registration.Record{Path: pF, NarSize: 3}
	require.Equal(t, []registration.Record{r3, r2}, registration.Dedup([]registration.Record{r1, r2, r3}))
	require.Empty(t, registration.Dedup(nil))
}

// TestNixAcceptsAndRejects loads our output with nix-store --load-db, and
// checks that the two end-of-file mistakes Parse rejects are also fatal to
// Nix, so that Parse is not stricter than needed there.
func TestNixAcceptsAndRejects(t *testing.T) {
	nixtest.HaveNix(t)
	// load-db does not read the files, but --verify would; register a
	// chain of three paths whose contents we do not create.
	recs := []registration.Record{
		{Path: pF, NarHash: hash(helloB32), NarSize: 120},
		{Path: pB, NarHash: hash(helloB32), NarSize: 168, References: []string{pF, pB}},
		{Path: pA, NarHash: hash(helloB32), NarSize: 480, References: []string{pB}},
	}
	text := registration.Marshal(recs)

	store := nixtest.NewStore(t)
	nixtest.RunInput(t, store, text, "--load-db")
	// dump-db prints the same format with bare base16 hashes.
	dump := nixtest.Run(t, store, "--dump-db", pA, pB, pF)
	got, err := registration.Parse(strings.NewReader(dump), "")
	require.NoError(t, err)
	require.Equal(t, recs[2], got[0])
	require.Equal(t, string(text), string(registration.Marshal(got)))
	require.Contains(t, dump, helloB16)

	for name, bad := range map[string][]byte{
		"missing input":            bytes.TrimSuffix(text, []byte("\n")),
		"hash '' has wrong length": append(bytes.Clone(text), '\n'),
	} {
		_, _, err := nixtest.Exec(t, nixtest.NewStore(t), bad, "nix-store", "--load-db")
		require.ErrorContains(t, err, name)
		_, perr := registration.Parse(bytes.NewReader(bad), "")
		require.Error(t, perr)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(sampleText))
	f.Add([]byte(""))
	f.Add([]byte(pF + "\n" + helloB16 + "\n120\n\n1\n" + pF + "\n"))
	f.Add([]byte(pF + "\nsha256:" + helloB16 + "\n0\n" + pA + "\n0\n"))
	f.Add([]byte(pF + "\nsha256:" + helloB32 + "\n120\n\n0"))
	f.Add([]byte(pF + "\nsha256:" + helloB32 + "\n120\n\n0\n\n"))
	f.Add([]byte(pF + "\nsha256:" + helloB32 + "\n120\n\n99999\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		recs, err := registration.Parse(bytes.NewReader(in), "")
		if err != nil {
			require.True(t, strings.HasPrefix(err.Error(), "registration: "), err.Error())
			return
		}
		out := registration.Marshal(recs)
		again, err := registration.Parse(bytes.NewReader(out), "")
		require.NoError(t, err, "re-parsing our own output:\n%s", out)
		// Write sorts records and references; compare in that order.
		require.Equal(t, normalise(recs), again)
		require.Equal(t, out, registration.Marshal(again))
	})
}

// normalise sorts like Write does (records stably by path, references)
// and maps empty reference lists to nil as Parse returns them.
func normalise(recs []registration.Record) []registration.Record {
	out := slices.Clone(recs)
	slices.SortStableFunc(out, func(a, b registration.Record) int { return strings.Compare(a.Path, b.Path) })
	for i := range out {
		if len(out[i].References) == 0 {
			out[i].References = nil
			continue
		}
		out[i].References = slices.Sorted(slices.Values(out[i].References))
	}
	return out
}
