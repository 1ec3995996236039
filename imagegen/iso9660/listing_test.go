package iso9660

import (
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
)

// ckIsoinfoEntry is one line of `isoinfo -l` (with or without -R or -J).
type ckIsoinfoEntry struct {
	dir   string // the "Directory listing of" path, without the final slash ("" for the root)
	mode  string // e.g. "-rw-r--r--"
	nlink int
	size  int64
	lba   uint32
	flags string // the record's flags, hex
	text  string // name, or "name -> target" for a symlink
}

var ckIsoinfoLine = regexp.MustCompile(`^([-dlcbps][-r][-w][-xsS][-r][-w][-xsS][-r][-w][-xtT]) +([0-9]+) +([0-9]+) +([0-9]+) +([0-9]+) [A-Z][a-z][a-z] [ 0-9][0-9] [0-9]{4} \[ *([0-9]+) (?:([0-9a-fA-F]{2})\] |(FFFF)) (.*)$`)

// ckParseIsoinfo parses `isoinfo -l` output. isoinfo 1.1.11 prints the
// flags of a record with the multi-extent bit (0x80) as "FFFF" and no "]". Names may contain newlines:
// a line that is neither a record, a heading nor empty continues the name
// on the line before. Each name but a symlink's is followed by one space.
// "." and ".." are left out.
func ckParseIsoinfo(out string) ([]ckIsoinfoEntry, error) {
	var entries []ckIsoinfoEntry
	dir := ""
	inName := false
	for _, line := range strings.Split(out, "\n") {
		if m := ckIsoinfoLine.FindStringSubmatch(line); m != nil {
			e := ckIsoinfoEntry{dir: dir, mode: m[1], flags: m[7], text: m[9]}
			if m[8] != "" {
				e.flags = "80"
			}
			e.nlink, _ = strconv.Atoi(m[2])
			e.size, _ = strconv.ParseInt(m[5], 10, 64)
			lba, _ := strconv.ParseUint(m[6], 10, 32)
			e.lba = uint32(lba)
			entries = append(entries, e)
			inName = true
			continue
		}
		if h, ok := strings.CutPrefix(line, "Directory listing of /"); ok {
			dir = strings.TrimSuffix(h, "/")
			inName = false
			continue
		}
		if line == "" {
			inName = false
			continue
		}
		if !inName {
			return nil, fmt.Errorf("unexpected isoinfo line %q", line)
		}
		entries[len(entries)-1].text += "\n" + line
	}
	var out2 []ckIsoinfoEntry
	for _, e := range entries {
		if e.mode[0] != 'l' {
			var ok bool
			if e.text, ok = strings.CutSuffix(e.text, " "); !ok {
				return nil, fmt.Errorf("isoinfo name %q does not end with a space", e.text)
			}
		}
		if e.text == "." || e.text == ".." {
			continue
		}
		out2 = append(out2, e)
	}
	return out2, nil
}

// path is the entry's path (the text up to " -> " for a symlink is not
// separable in general, so the whole text is used).
func (e ckIsoinfoEntry) path() string {
	if e.dir == "" {
		return e.text
	}
	return e.dir + "/" + e.text
}

// lsMode renders a mode as ls does.
func ckLsMode(m fs.FileMode) string {
	b := []byte("----------")
	switch m.Type() {
	case fs.ModeDir:
		b[0] = 'd'
	case fs.ModeSymlink:
		b[0] = 'l'
	}
	const rwx = "rwxrwxrwx"
	for i := range 9 {
		if m&(1<<(8-i)) != 0 {
			b[1+i] = rwx[i]
		}
	}
	set := func(i int, on bool, x, noX byte) {
		if on {
			if b[i] == '-' {
				b[i] = noX
			} else {
				b[i] = x
			}
		}
	}
	set(3, m&fs.ModeSetuid != 0, 's', 'S')
	set(6, m&fs.ModeSetgid != 0, 's', 'S')
	set(9, m&fs.ModeSticky != 0, 't', 'T')
	return string(b)
}
