package live

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeout is how long stage 1 waits for the live medium unless
// live.timeout= says otherwise.
const DefaultTimeout = 30 * time.Second

// Cmdline is what the stages take from the kernel command line, split into
// tokens as the kernel itself splits them (see nextToken). A token "--" ends
// the parameters; what follows goes to init (InitArgs).
type Cmdline struct {
	Init         string            // init= (stage 2), default "/init"
	SystemConfig string            // systemConfig=
	Root         Root              // root=LABEL=x | root=UUID=x | root=/dev/...
	CopyToRAM    bool              // copytoram
	FindISO      string            // findiso=/path/to/file.iso (on another filesystem)
	ShellOnFail  bool              // boot.shell_on_fail
	PanicOnFail  bool              // boot.panic_on_fail (or NixOS's stage1panic=1)
	Debug1       bool              // boot.debug1 (or debug1), boot.debug1devices or boot.debug1mounts
	Trace        bool              // boot.trace (or debugtrace): NixOS's set -x of its stage 1 script
	Debug1Where  string            // "", "devices" or "mounts": which of them (the last)
	Timeout      time.Duration     // live.timeout=<seconds>, default DefaultTimeout
	LiveInit     string            // live.init= : fallback init for stage 2
	Persistence  bool              // persistence, persistence=DEVICE: / and the store layer kept on a disk
	PersistDev   Root              // persistence=LABEL=x | UUID=x | /dev/...; default LABEL=PersistLabel
	PersistReset bool              // persistence.reset: a fresh store layer, the old one set aside
	Consoles     []string          // every console= value in order
	Params       map[string]string // every key=value / flag (flag → ""), last wins
	InitArgs     []string          // the tokens after "--", unquoted as the kernel passes them to init
	Raw          string            // the command line as given
}

// Root names the device holding the live medium. At most one field is set.
// root=/dev/disk/by-label/X and /dev/disk/by-uuid/X are read as LABEL=X and
// UUID=X (with udev's \xHH escapes decoded): stage 1 has no udev to make
// those links.
type Root struct{ Label, UUID, Device string }

func (r Root) String() string {
	switch {
	case r.Label != "":
		return "LABEL=" + r.Label
	case r.UUID != "":
		return "UUID=" + r.UUID
	}
	return r.Device
}

// ParseCmdline parses a kernel command line; unknown parameters are kept in
// Params. Flags are set by the bare key or key=1/y/yes/on/true, cleared by
// key=0/n/no/off/false; the last of a repeated parameter wins. It refuses,
// naming the parameter, only values that would make the boot hang or fail
// obscurely (a root= or persistence= of unknown form, a bad live.timeout=, a relative
// init=, live.init= or findiso=, a findiso= with a ".."), and even then returns what it parsed, so
// that a caller can still honour boot.shell_on_fail.
func ParseCmdline(s string) (*Cmdline, error) {
	c := &Cmdline{Init: "/init", Timeout: DefaultTimeout, Params: map[string]string{}, Raw: s}
	var errs []error
	bad := func(key, val, why string) {
		errs = append(errs, fmt.Errorf("kernel command line: %s=%q: %s", key, val, why))
	}
	rest := s
	for {
		var t token
		t, rest = nextToken(rest)
		if t.key == "" && !t.hasVal {
			if rest == "" {
				break
			}
			continue
		}
		if t.key == "--" && !t.hasVal {
			for rest != "" {
				t, rest = nextToken(rest)
				if t.key != "" || t.hasVal {
					c.InitArgs = append(c.InitArgs, t.String())
				}
			}
			break
		}
		c.Params[t.key] = t.val
		switch k, v := t.key, t.val; k {
		case "init", "live.init", "findiso":
			if !strings.HasPrefix(v, "/") {
				bad(k, v, "not an absolute path")
				continue
			}
			if k == "findiso" && slices.Contains(strings.Split(v, "/"), "..") {
				bad(k, v, `a ".." component would leave the file system it names a file on`)
				continue
			}
			switch k {
			case "init":
				c.Init = v
			case "live.init":
				c.LiveInit = v
			default:
				c.FindISO = v
			}
		case "systemConfig":
			c.SystemConfig = v
		case "root":
			r, ok := parseRoot(v)
			if !ok {
				bad(k, v, "want LABEL=<label>, UUID=<uuid> or /dev/<device>")
				continue
			}
			c.Root = r
		case "copytoram":
			c.CopyToRAM = flag(t)
		case "boot.shell_on_fail":
			c.ShellOnFail = flag(t)
		case "boot.panic_on_fail":
			c.PanicOnFail = flag(t)
		case "stage1panic": // NixOS's older spelling, only as stage1panic=1
			c.PanicOnFail = v == "1"
		case "boot.debug1", "debug1", "boot.debug1devices", "boot.debug1mounts":
			c.Debug1 = flag(t)
			c.Debug1Where = ""
			if c.Debug1 {
				c.Debug1Where = strings.TrimPrefix(strings.TrimPrefix(k, "boot."), "debug1")
			}
		case "boot.trace", "debugtrace":
			c.Trace = flag(t)
		case "live.timeout":
			d, err := parseSeconds(v)
			if err != nil {
				bad(k, v, err.Error())
				continue
			}
			c.Timeout = d
		case "console":
			c.Consoles = append(c.Consoles, v)
		case "persistence":
			if !c.setPersistence(v) {
				bad(k, v, "want LABEL=<label>, UUID=<uuid>, /dev/<device>, or 0/1 to turn it off/on")
			}
		case "persistence.reset":
			c.PersistReset = flag(t)
		}
	}
	return c, errors.Join(errs...)
}

// setPersistence reads persistence= (v is "" for the bare flag): a
// device as root= takes one, or a flag value. An unknown value turns
// persistence off and returns false.
func (c *Cmdline) setPersistence(v string) bool {
	c.Persistence, c.PersistDev = false, Root{}
	if r, ok := parseRoot(v); ok {
		c.Persistence, c.PersistDev = true, r
		return true
	}
	switch strings.ToLower(v) {
	case "", "1", "y", "yes", "on", "true":
		c.Persistence, c.PersistDev = true, Root{Label: PersistLabel}
	case "0", "n", "no", "off", "false":
	default:
		return false
	}
	return true
}

// bootParams are the boot.* parameters the stages know: those stage 1
// reads, and boot.debugtrace, which NixOS's stage 2 script reads.
var bootParams = []string{
	"boot.shell_on_fail", "boot.panic_on_fail", "boot.debug1", "boot.debug1devices",
	"boot.debug1mounts", "boot.trace", "boot.debugtrace",
}

// UnknownBootParams lists, sorted, the boot.* parameters of the command
// line that no stage reads (a typo, or a NixOS parameter nixlive does not
// have), for stage 1 to say it ignores them.
func (c *Cmdline) UnknownBootParams() []string {
	var out []string
	for k := range c.Params {
		if strings.HasPrefix(k, "boot.") && !slices.Contains(bootParams, k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// token is one parameter: key, or key=val when hasVal.
type token struct {
	key, val string
	hasVal   bool
}

// String gives the token as the kernel hands it to init: key or key=val,
// without the quotes it removed.
func (t token) String() string {
	if t.hasVal {
		return t.key + "=" + t.val
	}
	return t.key
}

// isSpace is the kernel's isspace (lib/ctype.c).
func isSpace(b byte) bool {
	return b == ' ' || (b >= '\t' && b <= '\r') || b == 0xA0
}

// nextToken is the kernel's next_arg (lib/cmdline.c): it skips leading
// whitespace (the kernel's isspace), splits off one token at whitespace
// outside double quotes, and returns it with the rest of s. A token is key
// or key=value, split at its first '='. Like the kernel, it removes only a
// quote opening the token with the one closing it ("key=a b") and a quote
// opening the value with the one closing the token (key="a b"); a"b c"d
// stays one token as it is.
func nextToken(s string) (token, string) {
	for s != "" && isSpace(s[0]) {
		s = s[1:]
	}
	quoted := strings.HasPrefix(s, `"`)
	if quoted {
		s = s[1:]
	}
	inQuote, eq, i := quoted, -1, 0
	for ; i < len(s); i++ {
		if isSpace(s[i]) && !inQuote {
			break
		}
		if eq < 0 && s[i] == '=' {
			eq = i
		}
		if s[i] == '"' {
			inQuote = !inQuote
		}
	}
	tok, rest := s[:i], s[i:]
	if rest != "" {
		rest = rest[1:]
	}
	// The kernel drops a closing quote when the token or its value opened
	// with one.
	closing := strings.HasSuffix(tok, `"`)
	if eq < 0 {
		if quoted && closing {
			tok = tok[:len(tok)-1]
		}
		return token{key: tok}, rest
	}
	key, val := tok[:eq], tok[eq+1:]
	if strings.HasPrefix(val, `"`) {
		val = val[1:]
		if closing && val != "" {
			val = val[:len(val)-1]
		}
	} else if quoted && closing {
		val = val[:len(val)-1]
	}
	return token{key: key, val: val, hasVal: true}, rest
}

func flag(t token) bool {
	switch strings.ToLower(t.val) {
	case "0", "n", "no", "off", "false":
		return false
	}
	return true
}

func parseRoot(v string) (Root, bool) {
	var r Root
	switch {
	case strings.HasPrefix(v, "LABEL="):
		r.Label = v[len("LABEL="):]
	case strings.HasPrefix(v, "UUID="):
		r.UUID = v[len("UUID="):]
	case strings.HasPrefix(v, "/dev/disk/by-label/"):
		r.Label = unescapeUdev(v[len("/dev/disk/by-label/"):])
	case strings.HasPrefix(v, "/dev/disk/by-uuid/"):
		r.UUID = unescapeUdev(v[len("/dev/disk/by-uuid/"):])
	case strings.HasPrefix(v, "/dev/") && len(v) > len("/dev/"):
		r.Device = v
	}
	return r, r != Root{}
}

// unescapeUdev decodes the \xHH escapes udev puts in /dev/disk/by-* names.
// It also takes \\xHH, the same escape with its backslash doubled by GRUB
// 2.06 and older (grub_create_loader_cmdline escapes every backslash): udev
// writes a backslash of the name as \x5c, so a doubled one is never part
// of a name.
func unescapeUdev(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var b strings.Builder
	hexEscape := func(e string) (byte, bool) {
		if len(e) < 4 || e[0] != '\\' || e[1] != 'x' {
			return 0, false
		}
		n, err := strconv.ParseUint(e[2:4], 16, 8)
		return byte(n), err == nil
	}
	for i := 0; i < len(s); i++ {
		if c, ok := hexEscape(s[i:]); ok {
			b.WriteByte(c)
			i += 3
			continue
		}
		if c, ok := hexEscape(s[i+1:]); ok && s[i] == '\\' {
			b.WriteByte(c) // GRUB's doubled backslash
			i += 4
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseSeconds reads a non-negative number of seconds, such as 10 or 2.5:
// a decimal number, without the underscores, hex and "Inf" that Go's
// ParseFloat also takes.
func parseSeconds(v string) (time.Duration, error) {
	if strings.Trim(v, "0123456789.eE+-") != "" {
		return 0, errors.New("not a number of seconds")
	}
	f, err := strconv.ParseFloat(v, 64)
	switch {
	case err != nil || math.IsNaN(f) || math.IsInf(f, 0):
		return 0, errors.New("not a number of seconds")
	case f < 0:
		return 0, errors.New("negative")
	case f*float64(time.Second) >= math.MaxInt64:
		return 0, errors.New("too large")
	}
	return time.Duration(f * float64(time.Second)), nil
}

// ProcCmdline is where Linux shows the command line it booted with.
const ProcCmdline = "/proc/cmdline"

// ReadCmdline reads and parses the running kernel's command line. As
// ParseCmdline, it returns what it could parse together with any error.
func ReadCmdline() (*Cmdline, error) {
	raw, err := os.ReadFile(ProcCmdline)
	if err != nil {
		c, _ := ParseCmdline("")
		return c, fmt.Errorf("read %s: %w", ProcCmdline, err)
	}
	return ParseCmdline(strings.TrimSpace(string(raw)))
}
