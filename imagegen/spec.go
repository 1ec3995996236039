package imagegen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nixlive/nixlive/imagegen/squashfs"
)

// Spec describes a live ISO; its fields carry the names of NixOS's
// isoImage.* options. It is read from JSON by ParseSpec.
type Spec struct {
	IsoName  string `json:"isoName"`
	VolumeID string `json:"volumeID"`
	// CompressImage is "" (no), "zstd" or "bzip2": the finished ISO is
	// compressed to .iso.zst or .iso.bz2. JSON false means "".
	CompressImage string    `json:"-"`
	Contents      []Content `json:"contents"`
	StoreContents []string  `json:"storeContents"`
	// SquashfsCompression is parsed from a string such as
	// "zstd -Xcompression-level 19" or an object {algorithm, level}.
	SquashfsCompression squashfs.Compression `json:"-"`
	System              string               `json:"system"`
	Kernel              string               `json:"kernel"`
	Initrd              string               `json:"initrd"`
	KernelParams        []string             `json:"kernelParams"`
	Boot                BootSpec             `json:"boot"`
	// SourceDateEpoch overrides $SOURCE_DATE_EPOCH when set.
	SourceDateEpoch *int64 `json:"sourceDateEpoch"`
}

// Content is a file copied to a fixed place on the ISO.
type Content struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

// BootSpec selects the boot paths and the menus.
type BootSpec struct {
	BIOS          bool   `json:"bios"`
	EFI           bool   `json:"efi"`
	USB           bool   `json:"usb"`
	Timeout       int    `json:"timeout"` // seconds; -1 waits for a choice
	Label         string `json:"label"`
	SerialConsole bool   `json:"serialConsole"`
	// EFILoader is the chain the EFI entry boots (EFILoaderShim unless
	// SecureBoot asks for EFILoaderSystemdBoot).
	EFILoader string   `json:"efiLoader"`
	EFIFiles  EFIFiles `json:"efiFiles"`
	// BIOSFiles are the isolinux and syslinux directories.
	BIOSFiles BIOSFiles `json:"biosFiles"`
	// SecureBoot, when set, signs the loader and the kernel with the
	// user's own key.
	SecureBoot *SecureBootKey `json:"secureBoot"`
}

// Defaults of the fields a spec may leave out.
const (
	DefaultIsoName  = "cd.iso"
	DefaultVolumeID = "NIXOS_BOOT_CD"
	DefaultLabel    = "NixOS Live"
)

// ParseSpec reads a spec strictly: unknown fields, wrong types and bad
// values are errors naming the field.
func ParseSpec(r io.Reader, name string) (*Spec, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("spec %s: %w", name, err)
	}
	type plain Spec // without the custom fields' handling
	raw := struct {
		plain
		CompressImage       json.RawMessage `json:"compressImage"`
		SquashfsCompression json.RawMessage `json:"squashfsCompression"`
		Boot                *struct {
			BIOS          *bool          `json:"bios"`
			EFI           *bool          `json:"efi"`
			USB           *bool          `json:"usb"`
			Timeout       *int           `json:"timeout"`
			Label         *string        `json:"label"`
			SerialConsole *bool          `json:"serialConsole"`
			EFILoader     *string        `json:"efiLoader"`
			EFIFiles      *EFIFiles      `json:"efiFiles"`
			BIOSFiles     *BIOSFiles     `json:"biosFiles"`
			SecureBoot    *SecureBootKey `json:"secureBoot"`
		} `json:"boot"`
	}{}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		switch {
		case errors.Is(err, io.EOF):
			return nil, fmt.Errorf("spec %s: line %d: empty file, want a JSON object", name, lineOf(data, int64(len(data))))
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, fmt.Errorf("spec %s: line %d: the file ends inside the JSON object (cut short?)", name, lineOf(data, int64(len(data))))
		}
		return nil, fmt.Errorf("spec %s: %s", name, jsonError(data, err))
	}
	if err := exactNames(data); err != nil {
		return nil, fmt.Errorf("spec %s: %w", name, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("spec %s: trailing data after the JSON object", name)
	}
	s := Spec(raw.plain)
	s.Boot = BootSpec{BIOS: true, EFI: true, USB: true, Timeout: 10, Label: DefaultLabel}
	if b := raw.Boot; b != nil {
		setIf(&s.Boot.BIOS, b.BIOS)
		setIf(&s.Boot.EFI, b.EFI)
		setIf(&s.Boot.USB, b.USB)
		setIf(&s.Boot.Timeout, b.Timeout)
		setIf(&s.Boot.Label, b.Label)
		setIf(&s.Boot.SerialConsole, b.SerialConsole)
		setIf(&s.Boot.EFILoader, b.EFILoader)
		setIf(&s.Boot.EFIFiles, b.EFIFiles)
		setIf(&s.Boot.BIOSFiles, b.BIOSFiles)
		s.Boot.SecureBoot = b.SecureBoot
	}

	if s.IsoName == "" {
		s.IsoName = DefaultIsoName
	}
	if s.VolumeID == "" {
		s.VolumeID = DefaultVolumeID
	}
	if s.CompressImage, err = parseCompressImage(raw.CompressImage); err != nil {
		return nil, fmt.Errorf("spec %s: compressImage: %w", name, err)
	}
	if s.SquashfsCompression, err = parseSquashfsCompression(raw.SquashfsCompression); err != nil {
		return nil, fmt.Errorf("spec %s: squashfsCompression: %w", name, err)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("spec %s: %w", name, err)
	}
	return &s, nil
}

// specNames are the spec's JSON names, by where they occur.
var specNames = map[string][]string{
	"": {"isoName", "volumeID", "compressImage", "contents", "storeContents", "squashfsCompression",
		"system", "kernel", "initrd", "kernelParams", "boot", "sourceDateEpoch"},
	"boot":                {"bios", "efi", "usb", "timeout", "label", "serialConsole", "efiLoader", "efiFiles", "biosFiles", "secureBoot"},
	"boot.efiFiles":       {"shim", "mokManager", "grub", "systemdBoot", "grubModules"},
	"boot.biosFiles":      {"isolinux", "syslinuxModules"},
	"boot.secureBoot":     {"key", "certificate"},
	"contents[]":          {"source", "target"},
	"squashfsCompression": {"algorithm", "level"},
}

// exactNames refuses names that encoding/json matched to a field only by
// ignoring case ("volumeId" for "volumeID"): the names are NixOS's option
// names, case and all.
func exactNames(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil // the decoder has judged the syntax
	}
	return exactNamesIn(v, "")
}

func exactNamesIn(v any, at string) error {
	switch v := v.(type) {
	case map[string]any:
		known, ok := specNames[at]
		if !ok {
			return nil
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			field := strings.TrimPrefix(strings.TrimSuffix(at, "[]")+"."+k, ".")
			if !slices.Contains(known, k) {
				for _, n := range known {
					if strings.EqualFold(k, n) {
						return fmt.Errorf("unknown field %q (the name is %q)", field, n)
					}
				}
				continue
			}
			if err := exactNamesIn(v[k], strings.TrimPrefix(at+"."+k, ".")); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range v {
			if err := exactNamesIn(e, at+"[]"); err != nil {
				return err
			}
		}
	}
	return nil
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// jsonError turns a decoding error into one that names the field or the
// line.
func jsonError(data []byte, err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		// The field path starts with the embedded type's name.
		field := strings.TrimPrefix(strings.TrimPrefix(te.Field, "plain"), ".")
		if field == "" {
			return fmt.Sprintf("want a JSON object, not JSON %s (line %d)", te.Value, lineOf(data, te.Offset))
		}
		return fmt.Sprintf("%s: want %s, not JSON %s (line %d)", field, te.Type, te.Value, lineOf(data, te.Offset))
	case errors.As(err, &se):
		return fmt.Sprintf("line %d: %v", lineOf(data, se.Offset), err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return err.Error()
}

func lineOf(data []byte, off int64) int {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	return bytes.Count(data[:off], []byte("\n")) + 1
}

func parseCompressImage(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "false" || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("want false, \"zstd\" or \"bzip2\", not %s", raw)
	}
	switch s {
	case "zstd", "bzip2":
		return s, nil
	}
	return "", fmt.Errorf("want false, \"zstd\" or \"bzip2\", not %q", s)
}

func parseSquashfsCompression(raw json.RawMessage) (squashfs.Compression, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return squashfs.ParseCompression("zstd -Xcompression-level 19")
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return squashfs.ParseCompression(s)
	}
	var o struct {
		Algorithm string `json:"algorithm"`
		Level     int    `json:"level"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return squashfs.Compression{}, fmt.Errorf("want a string such as \"zstd -Xcompression-level 19\" or {\"algorithm\", \"level\"}: %v", err)
	}
	return squashfs.ParseCompression(fmt.Sprintf("%s:%d", o.Algorithm, o.Level))
}

// Validate checks what can be checked without the file system.
func (s *Spec) Validate() error {
	if err := checkVolumeID(s.VolumeID); err != nil {
		return err
	}
	if strings.ContainsAny(s.IsoName, "/\x00") {
		return fmt.Errorf("isoName %q: want a file name, not a path", s.IsoName)
	}
	if s.IsoName == "." || s.IsoName == ".." {
		return fmt.Errorf("isoName %q: want a file name, not a directory", s.IsoName)
	}
	if e := s.SourceDateEpoch; e != nil {
		if err := CheckEpoch(*e); err != nil {
			return fmt.Errorf("sourceDateEpoch %d: %w", *e, err)
		}
	}
	if s.Kernel == "" {
		return errors.New("kernel: required")
	}
	if s.Initrd == "" {
		return errors.New("initrd: required")
	}
	if s.System == "" {
		return errors.New("system: required (its init is stage 2)")
	}
	if !s.Boot.BIOS && !s.Boot.EFI {
		return errors.New("boot: neither bios nor efi is enabled")
	}
	if s.Boot.Timeout < -1 {
		return fmt.Errorf("boot.timeout %d: want -1 (wait) or more", s.Boot.Timeout)
	}
	if strings.ContainsAny(s.Boot.Label, "\n\"") {
		return fmt.Errorf("boot.label %q: no newlines or double quotes", s.Boot.Label)
	}
	if err := s.Boot.checkBootFiles(); err != nil {
		return err
	}
	if err := s.Boot.checkEFI(); err != nil {
		return err
	}
	seen := map[string]int{}
	for i, c := range s.Contents {
		if c.Source == "" {
			return fmt.Errorf("contents[%d].source: required", i)
		}
		t, err := isoTarget(c.Target)
		if err != nil {
			return fmt.Errorf("contents[%d].target: %w", i, err)
		}
		if j, dup := seen[t]; dup {
			return fmt.Errorf("contents[%d].target %q: same as contents[%d]", i, c.Target, j)
		}
		seen[t] = i
		s.Contents[i].Target = t
	}
	for i, p := range s.KernelParams {
		if p == "" || strings.ContainsAny(p, " \t\n\"") {
			return fmt.Errorf("kernelParams[%d] %q: one parameter, without spaces or quotes", i, p)
		}
	}
	return nil
}

// isoTarget cleans a contents target; it must stay inside the ISO.
func isoTarget(t string) (string, error) {
	if t == "" {
		return "", errors.New("required")
	}
	for _, part := range strings.Split(strings.Trim(t, "/"), "/") {
		if part == ".." {
			return "", fmt.Errorf("%q leaves the ISO root", t)
		}
	}
	c := strings.TrimPrefix(path.Clean("/"+t), "/")
	if c == "" {
		return "", fmt.Errorf("%q is the ISO root", t)
	}
	return c, nil
}

// ReadSpec parses the spec file at p.
func ReadSpec(p string) (*Spec, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	defer f.Close()
	return ParseSpec(f, p)
}

// The dates an image can record: squashfs keeps unsigned 32-bit seconds
// (the ISO's records, from 1900 to 2155, hold them all).
const (
	MinEpoch = 0
	MaxEpoch = 1<<32 - 1
)

// CheckEpoch refuses a SOURCE_DATE_EPOCH the images cannot record.
func CheckEpoch(n int64) error {
	if n < MinEpoch || n > MaxEpoch {
		return fmt.Errorf("want %d to %d (%s to %s): the store image records unsigned 32-bit seconds",
			MinEpoch, MaxEpoch, time.Unix(MinEpoch, 0).UTC().Format(time.RFC3339), time.Unix(MaxEpoch, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

// checkVolumeID refuses the volume IDs an ISO cannot carry; any other,
// spaces and all, reaches stage 1 (see kernelRoot).
func checkVolumeID(v string) error {
	switch {
	case len(v) > 32:
		return fmt.Errorf("volumeID %q is %d bytes: at most 32 (the ISO 9660 field)", v, len(v))
	case strings.HasSuffix(v, " "):
		return fmt.Errorf("volumeID %q: a trailing space cannot be carried (the ISO 9660 field is padded with spaces, which readers remove)", v)
	case strings.IndexByte(v, 0) >= 0:
		return fmt.Errorf("volumeID %q: a NUL byte cannot be carried (readers end the label there)", v)
	case !utf8.ValidString(v):
		return fmt.Errorf("volumeID %q: not valid UTF-8 (the Joliet volume ID is UCS-2)", v)
	}
	return nil
}
