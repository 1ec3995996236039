package imagegen_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/imagegen"
	"github.com/nixlive/nixlive/imagegen/squashfs"
)

const (
	specSystem = "/nix/store/77777777777777777777777777777777-nixos-system"
	specKernel = "/nix/store/55555555555555555555555555555555-linux/bzImage"
	specInitrd = "/nix/store/33333333333333333333333333333333-initrd/initrd"
)

// minimalSpec is the least a spec must say, plus extra fields (JSON text
// without braces, or "").
func minimalSpec(extra string) string {
	s := `{"system": "` + specSystem + `", "kernel": "` + specKernel + `", "initrd": "` + specInitrd + `"`
	if extra != "" {
		s += ", " + extra
	}
	return s + "}"
}

func parseSpecText(t *testing.T, text string) (*imagegen.Spec, error) {
	t.Helper()
	return imagegen.ParseSpec(strings.NewReader(text), "test.json")
}

// TestParseSpecDefaults checks what a spec that leaves fields out means:
// NixOS's defaults (BIOS, EFI and USB, a 10 s menu, zstd level 19 for the
// store image, no whole-ISO compression) and SOURCE_DATE_EPOCH left to
// the environment.
func TestParseSpecDefaults(t *testing.T) {
	s, err := parseSpecText(t, minimalSpec(""))
	require.NoError(t, err)
	assert.Equal(t, imagegen.DefaultIsoName, s.IsoName)
	assert.Equal(t, imagegen.DefaultVolumeID, s.VolumeID)
	assert.Equal(t, imagegen.BootSpec{BIOS: true, EFI: true, USB: true, Timeout: 10, Label: imagegen.DefaultLabel}, s.Boot)
	assert.Empty(t, s.CompressImage)
	assert.Equal(t, squashfs.Compression{Algorithm: "zstd", Level: 19}, s.SquashfsCompression)
	assert.Nil(t, s.SourceDateEpoch)
	assert.Empty(t, s.Contents)
	assert.Empty(t, s.StoreContents)
	assert.Empty(t, s.KernelParams)
	assert.Equal(t, specSystem, s.System)
	assert.Equal(t, specKernel, s.Kernel)
	assert.Equal(t, specInitrd, s.Initrd)
}

// TestParseSpecValues checks fields given explicitly: a partial boot
// object keeps the other defaults, compressImage false/null/"zstd"/
// "bzip2", squashfsCompression as mksquashfs options or an object, an
// explicit sourceDateEpoch of 0, a volume ID of exactly 32 bytes kept
// byte for byte (lower case), and contents targets cleaned to paths
// relative to the ISO root.
func TestParseSpecValues(t *testing.T) {
	t.Run("PartialBoot", func(t *testing.T) {
		s, err := parseSpecText(t, minimalSpec(`"boot": {"efi": false, "timeout": -1, "serialConsole": true}`))
		require.NoError(t, err)
		assert.Equal(t, imagegen.BootSpec{BIOS: true, EFI: false, USB: true, Timeout: -1, Label: imagegen.DefaultLabel, SerialConsole: true}, s.Boot)
	})
	for _, tc := range []struct{ json, want string }{
		{`false`, ""}, {`null`, ""}, {`"zstd"`, "zstd"}, {`"bzip2"`, "bzip2"},
	} {
		t.Run("CompressImage-"+tc.json, func(t *testing.T) {
			s, err := parseSpecText(t, minimalSpec(`"compressImage": `+tc.json))
			require.NoError(t, err)
			assert.Equal(t, tc.want, s.CompressImage)
		})
	}
	for _, tc := range []struct {
		json string
		want squashfs.Compression
	}{
		{`"zstd -Xcompression-level 6"`, squashfs.Compression{Algorithm: "zstd", Level: 6}},
		{`"gzip"`, squashfs.Compression{Algorithm: "gzip", Level: squashfs.DefaultGzipLevel}},
		{`{"algorithm": "zstd", "level": 3}`, squashfs.Compression{Algorithm: "zstd", Level: 3}},
	} {
		t.Run("SquashfsCompression-"+tc.json, func(t *testing.T) {
			s, err := parseSpecText(t, minimalSpec(`"squashfsCompression": `+tc.json))
			require.NoError(t, err)
			assert.Equal(t, tc.want, s.SquashfsCompression)
		})
	}
	t.Run("EpochZero", func(t *testing.T) {
		s, err := parseSpecText(t, minimalSpec(`"sourceDateEpoch": 0`))
		require.NoError(t, err)
		require.NotNil(t, s.SourceDateEpoch)
		assert.Zero(t, *s.SourceDateEpoch)
	})
	t.Run("VolumeID32", func(t *testing.T) {
		id := "nixos-minimal-25.05-x86_64-abcde"
		require.Len(t, id, 32)
		s, err := parseSpecText(t, minimalSpec(`"volumeID": "`+id+`"`))
		require.NoError(t, err)
		assert.Equal(t, id, s.VolumeID)
	})
	t.Run("Targets", func(t *testing.T) {
		s, err := parseSpecText(t, minimalSpec(`"contents": [
			{"source": "/a", "target": "/EFI/boot//x.efi"},
			{"source": "/b", "target": "docs/./readme"},
			{"source": "/c", "target": "top/"}]`))
		require.NoError(t, err)
		var got []string
		for _, c := range s.Contents {
			got = append(got, c.Target)
		}
		assert.Equal(t, []string{"EFI/boot/x.efi", "docs/readme", "top"}, got)
	})
}

// TestParseSpecErrors feeds bad specs to ParseSpec: each is refused with
// a message naming the spec file and the field (or the line) at fault.
func TestParseSpecErrors(t *testing.T) {
	long := strings.Repeat("n", 33)
	for _, tc := range []struct {
		name, json string
		want       []string
	}{
		{"Syntax", "{\n  \"system\": \"" + specSystem + "\",\n  \"kernel\": ,\n}", []string{"line 3"}},
		{"SyntaxEOF", "{\n  \"system\": \"x\"\n", []string{"test.json"}},
		{"NotAnObject", `["a"]`, []string{"want a JSON object, not JSON array"}},
		{"Trailing", minimalSpec("") + ` {}`, []string{"trailing data"}},
		{"UnknownField", minimalSpec(`"volumeId": "x"`), []string{`unknown field "volumeId"`}},
		{"UnknownBootField", minimalSpec(`"boot": {"timeOut": 1}`), []string{`unknown field "boot.timeOut"`, `"timeout"`}},
		{"UnknownContentsField", minimalSpec(`"contents": [{"source": "/a", "Target": "b"}]`), []string{`unknown field "contents.Target"`}},
		{"TrulyUnknownField", minimalSpec(`"volumeLabel": "x"`), []string{`unknown field "volumeLabel"`}},
		{"WrongTypeParams", minimalSpec(`"kernelParams": "quiet"`), []string{"kernelParams", "line 1"}},
		{"WrongTypeVolumeID", minimalSpec(`"volumeID": 12`), []string{": volumeID: want string, not JSON number"}},
		{"WrongTypeLine", "{\n  \"system\": \"" + specSystem + "\",\n  \"kernel\": \"/k\",\n  \"kernelParams\": [\"a\", 2]\n}", []string{"kernelParams", "line 4"}},
		{"WrongTypeTimeout", minimalSpec(`"boot": {"timeout": "1"}`), []string{"boot.timeout"}},
		{"WrongTypeTarget", minimalSpec(`"contents": [{"source": "/a", "target": 1}]`), []string{"contents", "target"}},
		{"WrongTypeEpoch", minimalSpec(`"sourceDateEpoch": "1"`), []string{"sourceDateEpoch"}},
		{"NoKernel", `{"system": "` + specSystem + `", "initrd": "` + specInitrd + `"}`, []string{"kernel", "required"}},
		{"NoInitrd", `{"system": "` + specSystem + `", "kernel": "` + specKernel + `"}`, []string{"initrd", "required"}},
		{"NoSystem", `{"kernel": "` + specKernel + `", "initrd": "` + specInitrd + `"}`, []string{"system", "required"}},
		{"VolumeIDTooLong", minimalSpec(`"volumeID": "` + long + `"`), []string{"volumeID", long, "33"}},
		{"IsoNamePath", minimalSpec(`"isoName": "../x.iso"`), []string{"isoName"}},
		{"NoFirmware", minimalSpec(`"boot": {"bios": false, "efi": false}`), []string{"boot", "bios", "efi"}},
		{"TimeoutTooLow", minimalSpec(`"boot": {"timeout": -2}`), []string{"boot.timeout", "-2"}},
		{"LabelQuote", minimalSpec(`"boot": {"label": "a \"b\""}`), []string{"boot.label"}},
		{"DuplicateTarget", minimalSpec(`"contents": [{"source": "/a", "target": "x/y"}, {"source": "/b", "target": "/x//y"}]`), []string{"contents[1].target", "contents[0]"}},
		{"TargetEscapes", minimalSpec(`"contents": [{"source": "/a", "target": "../x"}]`), []string{"contents[0].target", "../x"}},
		{"TargetEscapesDeep", minimalSpec(`"contents": [{"source": "/a", "target": "a/../../x"}]`), []string{"contents[0].target"}},
		{"TargetRoot", minimalSpec(`"contents": [{"source": "/a", "target": "/"}]`), []string{"contents[0].target", "root"}},
		{"TargetEmpty", minimalSpec(`"contents": [{"source": "/a"}]`), []string{"contents[0].target", "required"}},
		{"SourceEmpty", minimalSpec(`"contents": [{"target": "a"}]`), []string{"contents[0].source", "required"}},
		{"ParamSpace", minimalSpec(`"kernelParams": ["quiet", "a b"]`), []string{"kernelParams[1]"}},
		{"ParamEmpty", minimalSpec(`"kernelParams": [""]`), []string{"kernelParams[0]"}},
		{"CompressLzma", minimalSpec(`"compressImage": "lzma"`), []string{"compressImage", "lzma"}},
		{"CompressTrue", minimalSpec(`"compressImage": true`), []string{"compressImage"}},
		{"SquashfsBrotli", minimalSpec(`"squashfsCompression": "brotli"`), []string{"squashfsCompression", "brotli"}},
		{"SquashfsLevel", minimalSpec(`"squashfsCompression": "zstd -Xcompression-level high"`), []string{"squashfsCompression", "high"}},
		{"SquashfsObjectField", minimalSpec(`"squashfsCompression": {"algo": "xz"}`), []string{"squashfsCompression", "algo"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := parseSpecText(t, tc.json)
			require.Error(t, err, "spec accepted: %+v", s)
			assert.Contains(t, err.Error(), "test.json", "error names the spec file")
			assert.NotContains(t, err.Error(), "plain", "error shows Go internals")
			assert.NotContains(t, err.Error(), "struct {", "error shows Go internals")
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			t.Log(err)
		})
	}
}

// TestBuildBadSpec runs the imagegen binary on specs that are wrong in
// one way each (the JSON, a field's value, a file it names, the layout
// it asks for): the exit code is 1, stderr names the field (or the line,
// or the path), and nothing is written: the output directory, given as
// -o DIR or as -o DIR/FILE, stays empty and so does TMPDIR. The unchanged
// spec builds, so each failure is about its one change.
func TestBuildBadSpec(t *testing.T) {
	t.Parallel()
	haveISOTools(t)
	in := newISOInputs(t, "", "")
	missing := filepath.Join(in.dir, "no-such-file")
	outside := filepath.Join(in.dir, "outside-the-store")
	mustWrite(t, outside, []byte("not a store path\n"), 0o644)
	set := func(key string, v any) func(map[string]any) {
		return func(s map[string]any) { s[key] = v }
	}
	target := func(targets ...string) func(map[string]any) {
		return func(s map[string]any) {
			c := s["contents"].([]map[string]any)
			for i, tg := range targets {
				c[i]["target"] = tg
			}
		}
	}
	for _, tc := range []struct {
		name string
		raw  string // the spec's text, if not in.spec() changed by mod
		mod  func(map[string]any)
		want []string
	}{
		{name: "MalformedJSON", raw: "{\n  \"volumeID\": \"x\",\n  \"kernel\": \"/k\"\n  \"initrd\": \"/i\"\n}", want: []string{"line 4"}},
		{name: "UnknownField", mod: set("volumeId", "x"), want: []string{`unknown field "volumeId"`}},
		{name: "WrongType", mod: set("kernelParams", "quiet"), want: []string{": kernelParams: want []string, not JSON string (line "}},
		{name: "WrongTypeNested", mod: set("boot", map[string]any{"timeout": "1"}), want: []string{"boot.timeout"}},
		{name: "MissingKernel", mod: set("kernel", missing), want: []string{"kernel", missing, "no such file"}},
		{name: "KernelIsDirectory", mod: set("kernel", in.dir), want: []string{"kernel", in.dir, "not a regular file"}},
		{name: "MissingInitrd", mod: set("initrd", missing), want: []string{"initrd", missing}},
		{name: "MissingKernelInStore", mod: set("kernel", in.extra+"/bzImage"), want: []string{"kernel", "bzImage"}},
		{name: "MissingSource", mod: func(s map[string]any) { s["contents"].([]map[string]any)[2]["source"] = missing }, want: []string{"contents[2].source", missing}},
		{name: "VolumeIDTooLong", mod: set("volumeID", testVolumeID+"-abcdef"), want: []string{"volumeID", "33"}},
		{name: "DuplicateTarget", mod: target("docs/same", "/docs/same"), want: []string{"contents[1].target", "contents[0]"}},
		{name: "TargetEscapes", mod: target("../x"), want: []string{"contents[0].target", "../x"}},
		{name: "TargetSquashfs", mod: target("nix-store.squashfs"), want: []string{"contents[0].target", "nix-store.squashfs"}},
		{name: "TargetIsolinuxCfg", mod: target("isolinux/isolinux.cfg"), want: []string{"contents[0].target", "isolinux/isolinux.cfg"}},
		{name: "TargetGrubCfg", mod: target("docs/a", "EFI/BOOT/grub.cfg"), want: []string{"contents[1].target", "EFI/BOOT/grub.cfg"}},
		{name: "TargetKernel", mod: target("boot/bzImage"), want: []string{"contents[0].target", "boot/bzImage"}},
		{name: "TargetEFIImage", mod: target("boot/efi.img"), want: []string{"contents[0].target", "boot/efi.img"}},
		{name: "TargetCatalog", mod: target(".boot.cat"), want: []string{"contents[0].target", ".boot.cat"}},
		{name: "TargetSystemLink", mod: target("system"), want: []string{"contents[0].target", "system"}},
		// A file where the layout needs a directory, or the other way.
		{name: "TargetIsLayoutDir", mod: target("isolinux"), want: []string{"contents[0].target", "isolinux"}},
		{name: "TargetIsBootDir", mod: target("boot"), want: []string{"contents[0].target", "boot"}},
		{name: "TargetUnderSymlink", mod: target("system/extra"), want: []string{"contents[0].target", "system/extra"}},
		{name: "TargetUnderLoader", mod: target("EFI/BOOT/BOOTX64.EFI/x"), want: []string{"contents[0].target", "EFI/BOOT/BOOTX64.EFI"}},
		{name: "TargetInNixStore", mod: target("nix/store/file"), want: []string{"contents[0].target", "nix/store/file"}},
		{name: "TargetUnderOwnFile", mod: target("docs/x", "docs/x/y"), want: []string{"contents[1].target", "docs/x"}},
		{name: "TargetOverOwnDir", mod: target("docs/x/y", "docs/x"), want: []string{"contents[1].target", "docs/x"}},
		{name: "StoreContentsNotInStore", mod: set("storeContents", []string{outside}), want: []string{"storeContents[0]", outside, "not in the store"}},
		{name: "StoreContentsMissing", mod: set("storeContents", []string{fakePath('2', "missing")}), want: []string{fakePath('2', "missing")}},
		{name: "SystemNotInStore", mod: set("system", outside), want: []string{"system", outside}},
		{name: "CompressLzma", mod: set("compressImage", "lzma"), want: []string{"compressImage", "lzma"}},
		{name: "SquashfsCompression", mod: set("squashfsCompression", "brotli"), want: []string{"squashfsCompression", "brotli"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var specFile string
			if tc.raw != "" {
				specFile = filepath.Join(t.TempDir(), "spec.json")
				mustWrite(t, specFile, []byte(tc.raw), 0o644)
			} else {
				spec := in.spec()
				tc.mod(spec)
				specFile = writeISOSpec(t, spec)
			}
			for _, asDir := range []bool{true, false} {
				out := t.TempDir()
				o := out
				if !asDir {
					o = filepath.Join(out, "nixos.iso")
				}
				tmp := t.TempDir()
				res := runCLI(t, cliOpts{env: []string{"TMPDIR=" + tmp}}, "build", specFile, "-o", o, "--store-root", in.storeRoot)
				if res.code != 1 {
					t.Errorf("-o %s: exit code %d, want 1\nstdout: %s\nstderr: %s", o, res.code, res.stdout, res.stderr)
				}
				for _, w := range tc.want {
					assert.Contains(t, res.stderr, w, "stderr names %q", w)
				}
				assert.NotContains(t, res.stdout, "store paths", "stdout reports success")
				assert.Equal(t, 1, strings.Count(strings.TrimSpace(res.stderr), "\n")+1, "one line of error:\n%s", res.stderr)
				assertEmptyDir(t, out)
				assertEmptyDir(t, tmp)
				if asDir {
					t.Logf("stderr: %s", res.stderr)
				}
			}
		})
	}

	t.Run("Control", func(t *testing.T) {
		out := t.TempDir()
		in.buildISO(t, in.spec(), out, isoBuildOpts{})
		entries, err := os.ReadDir(out)
		require.NoError(t, err)
		if assert.Len(t, entries, 1) {
			assert.Equal(t, "nixos-test.iso", entries[0].Name())
		}
	})
}

// TestSpecJSONNames parses a spec that sets every field under its JSON
// name (NixOS's isoImage.* option names, case and all, plus this
// package's additions) and checks that each one lands in its field.
func TestSpecJSONNames(t *testing.T) {
	full := map[string]any{
		"isoName": "a.iso", "volumeID": "V", "compressImage": "zstd",
		"contents":      []map[string]string{{"source": "/s", "target": "t"}},
		"storeContents": []string{specSystem}, "squashfsCompression": "xz",
		"system": specSystem, "kernel": specKernel, "initrd": specInitrd,
		"kernelParams": []string{"quiet"}, "sourceDateEpoch": 5,
		"boot": map[string]any{"bios": true, "efi": true, "usb": false, "timeout": 3, "label": "L", "serialConsole": true},
	}
	data, err := json.Marshal(full)
	require.NoError(t, err)
	s, err := parseSpecText(t, string(data))
	require.NoError(t, err)
	assert.Equal(t, "a.iso", s.IsoName)
	assert.Equal(t, "V", s.VolumeID)
	assert.Equal(t, "zstd", s.CompressImage)
	assert.Equal(t, []imagegen.Content{{Source: "/s", Target: "t"}}, s.Contents)
	assert.Equal(t, []string{specSystem}, s.StoreContents)
	assert.Equal(t, squashfs.Algorithm("xz"), s.SquashfsCompression.Algorithm)
	assert.Equal(t, []string{"quiet"}, s.KernelParams)
	require.NotNil(t, s.SourceDateEpoch)
	assert.Equal(t, int64(5), *s.SourceDateEpoch)
	assert.Equal(t, imagegen.BootSpec{BIOS: true, EFI: true, USB: false, Timeout: 3, Label: "L", SerialConsole: true}, s.Boot)
}
