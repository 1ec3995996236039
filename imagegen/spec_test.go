package imagegen_test

import (
	"encoding/json"
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
	assert.Equal(t, imagegen.BootSpec{BIOS: true, EFI: true, USB: true, Timeout: 10, Label: imagegen.DefaultLabel,
		EFILoader: imagegen.EFILoaderShim, EFIFiles: imagegen.DefaultEFIFiles, BIOSFiles: imagegen.DefaultBIOSFiles}, s.Boot,
		"the EFI path is Debian's signed shim and GRUB, the BIOS path Debian's isolinux")
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
		assert.Equal(t, imagegen.BootSpec{BIOS: true, EFI: false, USB: true, Timeout: -1, Label: imagegen.DefaultLabel, SerialConsole: true,
			EFILoader: imagegen.EFILoaderShim, EFIFiles: imagegen.DefaultEFIFiles, BIOSFiles: imagegen.DefaultBIOSFiles}, s.Boot)
	})
	t.Run("BIOSFilesPartial", func(t *testing.T) {
		s, err := parseSpecText(t, minimalSpec(`"boot": {"biosFiles": {"syslinuxModules": "/nix/store/x-syslinux/share/syslinux"}, "efiFiles": {"grubModules": "/nix/store/x-grub/lib/grub/x86_64-efi"}}`))
		require.NoError(t, err)
		assert.Equal(t, imagegen.BIOSFiles{Isolinux: imagegen.IsolinuxDir, SyslinuxModules: "/nix/store/x-syslinux/share/syslinux"}, s.Boot.BIOSFiles, "isolinux keeps Debian's path")
		want := imagegen.DefaultEFIFiles
		want.GrubModules = "/nix/store/x-grub/lib/grub/x86_64-efi"
		assert.Equal(t, want, s.Boot.EFIFiles)
	})
	for _, tc := range []struct{ boot, field string }{
		{`{"biosFiles": {"isolinux": "share/syslinux"}}`, "boot.biosFiles.isolinux"},
		{`{"biosFiles": {"syslinuxModules": "x"}}`, "boot.biosFiles.syslinuxModules"},
		{`{"efiFiles": {"grubModules": "lib/grub"}}`, "boot.efiFiles.grubModules"},
	} {
		t.Run("Relative-"+tc.field, func(t *testing.T) {
			_, err := parseSpecText(t, minimalSpec(`"boot": `+tc.boot))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.field)
			assert.Contains(t, err.Error(), "want an absolute directory path")
		})
	}
	t.Run("EFIFilesPartial", func(t *testing.T) {
		s, err := parseSpecText(t, minimalSpec(`"boot": {"efiFiles": {"grub": "/nix/store/x-grub/gcdx64.efi"}}`))
		require.NoError(t, err)
		want := imagegen.DefaultEFIFiles
		want.Grub = "/nix/store/x-grub/gcdx64.efi"
		assert.Equal(t, want, s.Boot.EFIFiles, "the others keep Debian's paths")
	})
	t.Run("SecureBootImpliesSystemdBoot", func(t *testing.T) {
		s, err := parseSpecText(t, minimalSpec(`"boot": {"secureBoot": {"key": "/k", "certificate": "/c"}}`))
		require.NoError(t, err)
		assert.Equal(t, imagegen.EFILoaderSystemdBoot, s.Boot.EFILoader)
		assert.Equal(t, &imagegen.SecureBootKey{Key: "/k", Certificate: "/c"}, s.Boot.SecureBoot)
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
		"boot": map[string]any{"bios": true, "efi": true, "usb": false, "timeout": 3, "label": "L", "serialConsole": true,
			"efiLoader": "systemd-boot", "secureBoot": map[string]any{"key": "/k", "certificate": "/c"},
			"efiFiles":  map[string]any{"shim": "/1", "mokManager": "/2", "grub": "/3", "systemdBoot": "/4", "grubModules": "/5"},
			"biosFiles": map[string]any{"isolinux": "/6", "syslinuxModules": "/7"}},
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
	assert.Equal(t, imagegen.BootSpec{BIOS: true, EFI: true, USB: false, Timeout: 3, Label: "L", SerialConsole: true,
		EFILoader: "systemd-boot", SecureBoot: &imagegen.SecureBootKey{Key: "/k", Certificate: "/c"},
		EFIFiles:  imagegen.EFIFiles{Shim: "/1", MokManager: "/2", Grub: "/3", SystemdBoot: "/4", GrubModules: "/5"},
		BIOSFiles: imagegen.BIOSFiles{Isolinux: "/6", SyslinuxModules: "/7"}}, s.Boot)
}
