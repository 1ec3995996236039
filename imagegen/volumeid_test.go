package imagegen

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/live"
)

const (
	vidSystem = "/nix/store/77777777777777777777777777777777-nixos-system"
	vidKernel = "/nix/store/55555555555555555555555555555555-linux/bzImage"
	vidInitrd = "/nix/store/33333333333333333333333333333333-initrd/initrd"
)

func vidSpec(t *testing.T, extra string) (*Spec, error) {
	t.Helper()
	s := `{"system": "` + vidSystem + `", "kernel": "` + vidKernel + `", "initrd": "` + vidInitrd + `"`
	if extra != "" {
		s += ", " + extra
	}
	return ParseSpec(strings.NewReader(s+"}"), "test.json")
}

// TestVolumeIDCarried: NixOS allows any volume ID of up to 32 bytes. One
// with spaces, slashes, shell and GRUB metacharacters and UTF-8 reaches
// stage 1 intact from both menus: the isolinux APPEND line as the kernel
// gets it, and the GRUB linux line after GRUB's own word splitting and
// its building of the kernel line (grub-core/lib/cmdline.c). No raw
// metacharacter reaches grub.cfg outside quotes.
func TestVolumeIDCarried(t *testing.T) {
	for _, vid := range []string{
		"my label",
		"a b/c;d*é",
		`x"y'z\w$HOME {a}|b&c<d>#e`,
		" lead\ttab\x01ctl",
		"NIXOS_BOOT_CD",
		"nixos-minimal-25.05-x86_64",
		"à la carte", // é and à: UTF-8 bytes 0xA0/0xA9, and 0xA0 is the kernel's space
	} {
		t.Run(vid, func(t *testing.T) {
			s, err := vidSpec(t, `"volumeID": `+jsonString(vid)+`, "kernelParams": ["quiet"]`)
			require.NoError(t, err)
			m := newMenu(s)
			// isolinux: APPEND takes the rest of the line, as is.
			for _, l := range strings.Split(m.isolinuxCfg(), "\n") {
				if a, ok := strings.CutPrefix(l, "  APPEND "); ok && a != "hd0" {
					c, err := live.ParseCmdline(a)
					require.NoError(t, err, "isolinux APPEND %q", a)
					assert.Equal(t, vid, c.Root.Label, "isolinux APPEND %q", a)
					assert.Equal(t, vidSystem+"/init", c.Init)
				}
			}
			// GRUB: the linux lines, split as GRUB splits words, then joined
			// into the kernel line as GRUB's loader does.
			n := 0
			for _, l := range strings.Split(m.grubCfg(), "\n") {
				a, ok := strings.CutPrefix(l, "  linux ")
				if !ok {
					continue
				}
				n++
				words, err := grubWords(a)
				require.NoError(t, err, "grub.cfg line %q", l)
				require.Equal(t, "/"+isoKernel, words[0])
				for _, passHex := range []bool{true, false} {
					line := grubKernelLine(words[1:], passHex)
					c, err := live.ParseCmdline(line)
					require.NoError(t, err, "kernel line %q from grub.cfg line %q", line, l)
					assert.Equal(t, vid, c.Root.Label, "kernel line %q from grub.cfg line %q", line, l)
					assert.Equal(t, vidSystem, c.SystemConfig)
					assert.Contains(t, c.Params, "quiet")
				}
			}
			assert.Equal(t, 4, n, "linux lines in grub.cfg")
			if vid == "NIXOS_BOOT_CD" {
				assert.Contains(t, m.isolinuxCfg(), " root=LABEL=NIXOS_BOOT_CD ", "a plain label keeps NixOS's root=LABEL= form")
			}
		})
	}
}

// TestVolumeIDRefused: what no ISO 9660 volume ID can carry is refused by
// the spec, naming volumeID and why.
func TestVolumeIDRefused(t *testing.T) {
	for _, tc := range []struct{ vid, why string }{
		{"trailing ", "trailing space"},
		{"nul\x00byte", "NUL"},
		{"bad\xffutf8", "UTF-8"},
		{strings.Repeat("x", 33), "at most 32"},
	} {
		t.Run(tc.vid, func(t *testing.T) {
			_, err := vidSpec(t, `"volumeID": `+jsonString(tc.vid))
			if !utf8.ValidString(tc.vid) {
				// JSON has no invalid UTF-8 (the decoder makes it U+FFFD):
				// a spec made in Go is checked by Validate.
				s, perr := vidSpec(t, "")
				require.NoError(t, perr)
				s.VolumeID = tc.vid
				err = s.Validate()
			} else {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "test.json")
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), "volumeID")
			assert.Contains(t, err.Error(), tc.why)
		})
	}
}

func jsonString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// grubWords splits a grub.cfg command line into words as GRUB's script
// lexer does for the cases that matter: single quotes keep everything,
// double quotes keep all but \ before $ " \ and newline, a backslash
// outside quotes escapes the next character, and unquoted ; | & < > $ {
// } are metacharacters (an error here: a kernel line must have none).
func grubWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	in := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
			continue
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated single quote at %d", i)
			}
			w.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '$' {
					return nil, fmt.Errorf("variable in double quotes at %d", i)
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("$\"\\\n", s[i+1]) >= 0 {
					i++
				}
				w.WriteByte(s[i])
			}
			if i == len(s) {
				return nil, fmt.Errorf("unterminated double quote")
			}
		case c == '\\':
			if i+1 == len(s) {
				return nil, fmt.Errorf("trailing backslash")
			}
			i++
			w.WriteByte(s[i])
		case strings.IndexByte(";|&<>${}", c) >= 0 || (c == '#' && !in):
			return nil, fmt.Errorf("unquoted metacharacter %q at %d", c, i)
		default:
			w.WriteByte(c)
		}
		in = true
	}
	if in {
		words = append(words, w.String())
	}
	return words, nil
}

// grubKernelLine is grub_create_loader_cmdline (grub-core/lib/cmdline.c):
// a word with a space is put in double quotes, and \ ' " are escaped with
// a backslash; with passHex (later GRUBs), not the backslash of a \xHH
// escape, which Debian 12's GRUB 2.06 doubles too.
func grubKernelLine(words []string, passHex bool) string {
	isHex := func(c byte) bool { return strings.IndexByte("0123456789abcdefABCDEF", c) >= 0 }
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		space := strings.Contains(w, " ")
		if space {
			b.WriteByte('"')
		}
		for j := 0; j < len(w); j++ {
			c := w[j]
			if passHex && c == '\\' && j+3 < len(w) && w[j+1] == 'x' && isHex(w[j+2]) && isHex(w[j+3]) {
				b.WriteString(w[j : j+4])
				j += 3
				continue
			}
			if c == '\\' || c == '\'' || c == '"' {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		}
		if space {
			b.WriteByte('"')
		}
	}
	return b.String()
}
