package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nix-community/go-nix/pkg/nixbase32"

	"github.com/nixlive/nixlive/internal/boottest/nixtest"
	"github.com/nixlive/nixlive/internal/gobuild"
	"github.com/nixlive/nixlive/internal/nix/registration"
)

// handAttrs is structured attributes as Nix writes them for a derivation
// with exportReferencesGraph.closure: paths in Nix's (sorted) order, the
// first referring to itself and the second.
var handAttrs = `{
  "closure": [
    {"closureSize": 300, "narHash": "sha256:0` + strings.Repeat("1", 51) + `", "narSize": 200,
     "path": "` + fakePath('a', "one") + `",
     "references": ["` + fakePath('a', "one") + `", "` + fakePath('b', "two") + `"]},
    {"closureSize": 100, "narHash": "sha256:0` + strings.Repeat("2", 51) + `", "narSize": 100,
     "path": "` + fakePath('b', "two") + `", "references": []}
  ],
  "outputs": {"out": "/nix/store/` + strings.Repeat("c", 32) + `-closure-info"},
  "name": "closure-info"
}`

var handWant = map[string]string{
	"registration": fakePath('a', "one") + "\nsha256:0" + strings.Repeat("1", 51) + "\n200\n\n2\n" +
		fakePath('a', "one") + "\n" + fakePath('b', "two") + "\n" +
		fakePath('b', "two") + "\nsha256:0" + strings.Repeat("2", 51) + "\n100\n\n0\n",
	"store-paths":    fakePath('a', "one") + "\n" + fakePath('b', "two") + "\n",
	"total-nar-size": "300\n",
}

func assertClosureInfo(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	for name, w := range want {
		if got := string(readFile(t, filepath.Join(dir, name))); got != w {
			t.Errorf("%s:\n%q\nwant\n%q", name, got, w)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != len(want) {
		t.Errorf("%s holds %d entries, want %d", dir, len(ents), len(want))
	}
}

// TestClosureInfoHandWritten: the files are closure-info.nix's, byte for
// byte; the attributes are found where a Nix build has them.
func TestClosureInfoHandWritten(t *testing.T) {
	t.Run("flags", func(t *testing.T) {
		dir := t.TempDir()
		attrs := filepath.Join(dir, "attrs.json")
		mustWrite(t, attrs, []byte(handAttrs), 0o644)
		out := filepath.Join(dir, "new", "out")
		mustMain(t, "closure-info", "-o", out, "--attrs", attrs)
		assertClosureInfo(t, out, handWant)
	})
	t.Run("other key", func(t *testing.T) {
		dir := t.TempDir()
		attrs := filepath.Join(dir, "attrs.json")
		mustWrite(t, attrs, []byte(strings.Replace(handAttrs, `"closure"`, `"graph"`, 1)), 0o644)
		mustMain(t, "closure-info", "-o", filepath.Join(dir, "out"), "--attrs", attrs, "--name", "graph")
		assertClosureInfo(t, filepath.Join(dir, "out"), handWant)
	})
	t.Run("SRI hash", func(t *testing.T) {
		dir := t.TempDir()
		attrs := filepath.Join(dir, "attrs.json")
		// The same 32 bytes as "sha256:0111…1" (nix32), as SRI.
		var h [32]byte
		if _, err := nixbase32.Decode(h[:], []byte("0"+strings.Repeat("1", 51))); err != nil {
			t.Fatal(err)
		}
		sri := strings.Replace(handAttrs, "sha256:0"+strings.Repeat("1", 51), "sha256-"+base64.StdEncoding.EncodeToString(h[:]), 1)
		mustWrite(t, attrs, []byte(sri), 0o644)
		mustMain(t, "closure-info", "-o", filepath.Join(dir, "out"), "--attrs", attrs)
		assertClosureInfo(t, filepath.Join(dir, "out"), handWant)
	})
	t.Run("empty closure", func(t *testing.T) {
		dir := t.TempDir()
		attrs := filepath.Join(dir, "attrs.json")
		mustWrite(t, attrs, []byte(`{"closure": []}`), 0o644)
		mustMain(t, "closure-info", "-o", filepath.Join(dir, "out"), "--attrs", attrs)
		// closure-info.nix's empty case: echo 0, touch the others.
		assertClosureInfo(t, filepath.Join(dir, "out"), map[string]string{"registration": "", "store-paths": "", "total-nar-size": "0\n"})
	})
	// In a Nix 2.8 sandbox $NIX_ATTRS_JSON_FILE names a host path that is
	// not there (NixOS/nix#6736): ./.attrs.json is used, $out is the output.
	t.Run("build directory", func(t *testing.T) {
		build := t.TempDir()
		mustWrite(t, filepath.Join(build, ".attrs.json"), []byte(handAttrs), 0o644)
		out := filepath.Join(t.TempDir(), "out")
		r := runCLI(t, cliOpts{dir: build, env: []string{"out=" + out, "NIX_ATTRS_JSON_FILE=/build/nonexistent/.attrs.json"}}, "closure-info")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		assertClosureInfo(t, out, handWant)
	})
	// With __structuredAttrs, Nix 2.8 sets no $out: outputs.out is used.
	t.Run("outputs.out", func(t *testing.T) {
		build := t.TempDir()
		out := filepath.Join(t.TempDir(), "out")
		attrs := strings.Replace(handAttrs, "/nix/store/"+strings.Repeat("c", 32)+"-closure-info", out, 1)
		mustWrite(t, filepath.Join(build, ".attrs.json"), []byte(attrs), 0o644)
		r := runCLI(t, cliOpts{dir: build}, "closure-info")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		assertClosureInfo(t, out, handWant)
	})
	t.Run("NIX_ATTRS_JSON_FILE", func(t *testing.T) {
		build := t.TempDir()
		mustWrite(t, filepath.Join(build, ".attrs.json"), []byte(`{"closure": "wrong file"}`), 0o644)
		attrs := filepath.Join(t.TempDir(), "a.json")
		mustWrite(t, attrs, []byte(handAttrs), 0o644)
		out := filepath.Join(t.TempDir(), "out")
		r := runCLI(t, cliOpts{dir: build, env: []string{"out=" + out, "NIX_ATTRS_JSON_FILE=" + attrs}}, "closure-info")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		assertClosureInfo(t, out, handWant)
	})
}

// TestClosureInfoErrors: bad attributes are refused, naming the file and
// the field, and nothing is written.
func TestClosureInfoErrors(t *testing.T) {
	good := fakePath('a', "one")
	hash := `"sha256:0` + strings.Repeat("1", 51) + `"`
	entry := func(path, narHash, narSize, refs string) string {
		return `{"closure": [{"path": ` + path + `, "narHash": ` + narHash + `, "narSize": ` + narSize + `, "references": ` + refs + `}]}`
	}
	cases := []struct{ name, attrs, want string }{
		{"not JSON", `{"closure": [`, "not a JSON object"},
		{"no key", `{"graph": []}`, `no "closure"`},
		{"not a list", `{"closure": {}}`, "closure: want a list"},
		{"entry not an object", `{"closure": [3]}`, "closure[0]: want {path, narHash, narSize, references}"},
		{"reference type", entry(`"`+good+`"`, hash, `1`, `[3]`), "closure[0].references: a JSON number, want string"},
		{"path type", entry(`3`, hash, `1`, `[]`), "closure[0].path: a JSON number, want string"},
		{"no path", `{"closure": [{"narHash": ` + hash + `, "narSize": 1, "references": []}]}`, "closure[0].path: missing"},
		{"no narHash", `{"closure": [{"path": "` + good + `", "narSize": 1, "references": []}]}`, "closure[0].narHash: missing"},
		{"no narSize", `{"closure": [{"path": "` + good + `", "narHash": ` + hash + `, "references": []}]}`, "closure[0].narSize: missing"},
		{"no references", `{"closure": [{"path": "` + good + `", "narHash": ` + hash + `, "narSize": 1}]}`, "closure[0].references: missing"},
		{"bad path", entry(`"/tmp/x"`, hash, `1`, `[]`), "closure[0].path: storepath: \"/tmp/x\": not in the store"},
		{"bad hash", entry(`"`+good+`"`, `"md5:abc"`, `1`, `[]`), `closure[0].narHash: "md5:abc"`},
		{"bad SRI", entry(`"`+good+`"`, `"sha256-AAAA"`, `1`, `[]`), `closure[0].narHash: "sha256-AAAA": not an SRI SHA-256`},
		{"hash newline", entry(`"`+good+`"`, `"sha256:a\nb"`, `1`, `[]`), `closure[0].narHash: "sha256:a\nb": contains a newline`},
		{"negative size", entry(`"`+good+`"`, hash, `-1`, `[]`), "closure[0].narSize: -1 is not a byte count"},
		{"fraction size", entry(`"`+good+`"`, hash, `1.5`, `[]`), "closure[0].narSize: 1.5 is not a byte count"},
		{"huge size", entry(`"`+good+`"`, hash, `18446744073709551616`, `[]`), "closure[0].narSize: 18446744073709551616 is not a byte count"},
		{"bad reference", entry(`"`+good+`"`, hash, `1`, `["`+good+`/bin"]`), "closure[0].references[0]: storepath:"},
		{"overflow", `{"closure": [` + strings.TrimSuffix(strings.TrimPrefix(entry(`"`+good+`"`, hash, `18446744073709551615`, `[]`), `{"closure": [`), `]}`) + `,` +
			strings.TrimSuffix(strings.TrimPrefix(entry(`"`+fakePath('b', "two")+`"`, hash, `1`, `[]`), `{"closure": [`), `]}`) + `]}`, "closure[1].narSize: the sum"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			attrs := filepath.Join(dir, "attrs.json")
			mustWrite(t, attrs, []byte(tc.attrs), 0o644)
			out := filepath.Join(dir, "out")
			code, _, stderr := runMain(t, "closure-info", "-o", out, "--attrs", attrs)
			if code != 1 || !strings.Contains(stderr, "closure-info: "+attrs+": ") || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr, tc.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s was created", out)
			}
		})
	}
	t.Run("no out", func(t *testing.T) {
		dir := t.TempDir()
		mustWrite(t, filepath.Join(dir, "x.json"), []byte(`{"closure": []}`), 0o644)
		r := runCLI(t, cliOpts{dir: dir}, "closure-info", "--attrs", "x.json")
		if r.code != 1 || !strings.Contains(r.stderr, "no -o, no $out and no outputs.out in x.json") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("no attrs", func(t *testing.T) {
		r := runCLI(t, cliOpts{dir: t.TempDir()}, "closure-info", "-o", "out")
		if r.code != 1 || !strings.Contains(r.stderr, ".attrs.json: no such file") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

// realAttrs builds, with the real Nix in a chroot store, a derivation with
// __structuredAttrs and exportReferencesGraph.closure = roots, whose
// builder (a static Go program, as the sandbox has no shell) copies the
// .attrs.json Nix gave it to $out; it returns that file's path on the host.
func realAttrs(t *testing.T, storeRoot string, roots []string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "attrscopy")
	if err := gobuild.Static(context.Background(), bin, "./testdata/attrscopy"); err != nil {
		t.Fatal(err)
	}
	builder := nixtest.Add(t, storeRoot, bin)
	var rs []string
	for _, r := range roots {
		rs = append(rs, "(builtins.storePath "+nixtest.NixString(r)+")")
	}
	expr := `derivation {
  name = "attrs";
  system = builtins.currentSystem;
  builder = builtins.storePath ` + nixtest.NixString(builder) + `;
  __structuredAttrs = true;
  exportReferencesGraph.closure = [ ` + strings.Join(rs, " ") + ` ];
}`
	out := nixtest.Build(t, storeRoot, expr)
	if len(out) != 1 {
		t.Fatalf("nix-build: outputs %q, want one", out)
	}
	return filepath.Join(storeRoot, out[0])
}

// TestClosureInfoRealNix: on the .attrs.json a real Nix 2.8 build gets,
// store-paths is nix-store --query --requisites of the roots and the
// registration holds nix-store --dump-db's records of those paths (less
// the deriver, which closureInfo leaves empty), sorted as closureInfo's
// are; with jq installed, every file is byte for byte what
// closure-info.nix's jq commands write.
func TestClosureInfoRealNix(t *testing.T) {
	f := newNixFixture(t)
	attrs := realAttrs(t, f.root, f.roots)
	out := filepath.Join(t.TempDir(), "closure-info")
	mustMain(t, "closure-info", "-o", out, "--attrs", attrs)

	paths := nixtest.Lines(string(readFile(t, filepath.Join(out, "store-paths"))))
	if !slices.Equal(paths, f.closure) {
		t.Errorf("store-paths:\n%s\nwant (nix-store -q --requisites, sorted)\n%s", strings.Join(paths, "\n"), strings.Join(f.closure, "\n"))
	}
	reg := readFile(t, filepath.Join(out, "registration"))
	got := parseRegistration(t, reg)
	dump := parseRegistration(t, []byte(nixtest.Run(t, f.root, append([]string{"--dump-db"}, f.closure...)...)))
	var total uint64
	for i := range dump {
		dump[i].Deriver = ""
		slices.Sort(dump[i].References)
		total += dump[i].NarSize
	}
	if !equalRecords(got, dump) {
		t.Errorf("registration:\n%s\nwant (nix-store --dump-db)\n%s", reg, registration.Marshal(dump))
	}
	// Nix lists the closure sorted and each path's references sorted, so
	// the file is also the one registration.Write makes.
	if w := registration.Marshal(dump); !bytes.Equal(reg, w) {
		t.Errorf("registration is not sorted as closureInfo's:\n%s\nwant\n%s", reg, w)
	}
	if got := string(readFile(t, filepath.Join(out, "total-nar-size"))); got != strconv.FormatUint(total, 10)+"\n" {
		t.Errorf("total-nar-size %q, want %d", got, total)
	}
	compareWithJQ(t, attrs, out)
}

// equalRecords compares registrations as sets of records.
func equalRecords(a, b []registration.Record) bool {
	key := func(rs []registration.Record) []string {
		var out []string
		for _, r := range rs {
			refs := slices.Clone(r.References)
			slices.Sort(refs)
			out = append(out, string(registration.Marshal([]registration.Record{{Path: r.Path, NarHash: r.NarHash, NarSize: r.NarSize, Deriver: r.Deriver, References: refs}})))
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(key(a), key(b))
}

// compareWithJQ runs closure-info.nix's own jq commands on attrs, if jq is
// installed, and compares their output with ours in dir.
func compareWithJQ(t *testing.T, attrs, dir string) {
	t.Helper()
	if _, err := exec.LookPath("jq"); err != nil {
		t.Log("jq not installed: not compared with closure-info.nix's jq commands")
		return
	}
	jq := func(prog string) string {
		cmd := exec.Command("jq", "-r", prog, attrs)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("jq %s: %v", prog, err)
		}
		return string(out)
	}
	reg := jq(`.closure | map([.path, .narHash, .narSize, "", (.references | length)] + .references) | add | map("\(.)\n") | add`)
	reg = strings.TrimSuffix(reg, "\n") // | head -n -1
	want := map[string]string{
		"registration":   reg,
		"store-paths":    jq(`.closure[].path`),
		"total-nar-size": jq(`.closure | map(.narSize) | add`),
	}
	assertClosureInfo(t, dir, want)
}

// TestClosureInfoNixBuilder: the static imagegen is the builder of a real
// Nix 2.8 derivation, as closure-info.nix's drop-in has it, in a sandbox
// with nothing but store paths: with no flags it finds ./.attrs.json
// (Nix's $NIX_ATTRS_JSON_FILE names a path the sandbox lacks) and the
// output (no $out with structured attributes), and writes what it writes
// outside Nix from the same attributes.
func TestClosureInfoNixBuilder(t *testing.T) {
	f := newNixFixture(t)
	bin := filepath.Join(t.TempDir(), "imagegen")
	if err := gobuild.StaticCgo(context.Background(), bin, "github.com/nixlive/nixlive/cmd/imagegen"); err != nil {
		t.Fatal(err)
	}
	builder := nixtest.Add(t, f.root, bin)
	var rs []string
	for _, r := range f.roots {
		rs = append(rs, "(builtins.storePath "+nixtest.NixString(r)+")")
	}
	expr := `derivation {
  name = "closure-info";
  system = builtins.currentSystem;
  builder = builtins.storePath ` + nixtest.NixString(builder) + `;
  args = [ "closure-info" ];
  __structuredAttrs = true;
  exportReferencesGraph.closure = [ ` + strings.Join(rs, " ") + ` ];
}`
	out := nixtest.MustBuildPure(t, f.root, "--expr", expr)
	if len(out) != 1 {
		t.Fatalf("nix-build: outputs %q, want one", out)
	}
	want := filepath.Join(t.TempDir(), "want")
	mustMain(t, "closure-info", "-o", want, "--attrs", realAttrs(t, f.root, f.roots))
	wantFiles := map[string]string{}
	for _, name := range []string{"registration", "store-paths", "total-nar-size"} {
		wantFiles[name] = string(readFile(t, filepath.Join(want, name)))
	}
	assertClosureInfo(t, filepath.Join(f.root, out[0]), wantFiles)
	if paths := nixtest.Lines(wantFiles["store-paths"]); !slices.Equal(paths, f.closure) {
		t.Errorf("store-paths %q, want %q", paths, f.closure)
	}
}
