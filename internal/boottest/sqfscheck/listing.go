package sqfscheck

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// HaveTools skips the test unless mksquashfs and unsquashfs are installed.
func HaveTools(t interface {
	Helper()
	Skipf(string, ...any)
}) {
	t.Helper()
	for _, tool := range []string{"mksquashfs", "unsquashfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("squashfs-tools not installed (%s not found): make test installs it", tool)
		}
	}
}

// Listing lists image with `unsquashfs -lln -UTC -d "" IMAGE`, one line
// per object in image order, such as
// "lrwxrwxrwx 0/0 10 1970-01-01 00:00 /l -> with space" (ParseListing
// has the quirks: the root's empty name, raw names, minute resolution).
// The root is "." and other paths are relative. squashfs-tools 4.5.1
// prints device numbers wrongly for minors above 255.
func Listing(image string) ([]Entry, error) {
	out, err := run("unsquashfs", "-lln", "-UTC", "-d", "", image)
	if err != nil {
		return nil, err
	}
	entries, err := ParseListing(bytes.NewReader(out))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", image, err)
	}
	return entries, nil
}

var listingLine = regexp.MustCompile(`^([-dlbcps])([-r][-w][-xsS][-r][-w][-xsS][-r][-w][-xtT]) ([0-9]+)/([0-9]+) +([0-9]+|[0-9]+, *[0-9]+) ([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}) (.*)$`)

// ParseListing parses the output of `unsquashfs -lln -UTC -d ”`.
//
// Names are printed raw, without quoting, so:
//   - a line that is not an entry header continues the previous name after
//     a newline that was part of the name;
//   - "name -> target" is split using the symlink's size, which is the
//     target's length, so names and targets may themselves contain " -> ".
func ParseListing(r io.Reader) ([]Entry, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	text := strings.TrimSuffix(string(data), "\n")
	if text == "" {
		return nil, fmt.Errorf("empty listing")
	}
	type record struct {
		m    []string
		rest string
		line int
	}
	var recs []record
	for i, line := range strings.Split(text, "\n") {
		if m := listingLine.FindStringSubmatch(line); m != nil {
			recs = append(recs, record{m: m, rest: m[7], line: i + 1})
			continue
		}
		if len(recs) == 0 {
			return nil, fmt.Errorf("listing line %d: not an entry: %q", i+1, line)
		}
		recs[len(recs)-1].rest += "\n" + line
	}
	out := make([]Entry, 0, len(recs))
	for _, rec := range recs {
		e, err := parseRecord(rec.m, rec.rest)
		if err != nil {
			return nil, fmt.Errorf("listing line %d: %w", rec.line, err)
		}
		out = append(out, e)
	}
	return out, nil
}

func parseRecord(m []string, rest string) (Entry, error) {
	var e Entry
	e.Mode = parseMode(m[1], m[2])
	uid, err1 := strconv.Atoi(m[3])
	gid, err2 := strconv.Atoi(m[4])
	if err1 != nil || err2 != nil {
		return e, fmt.Errorf("bad owner %s/%s", m[3], m[4])
	}
	e.Uid, e.Gid = uid, gid
	if maj, min, ok := strings.Cut(m[5], ","); ok {
		a, err1 := strconv.ParseUint(strings.TrimSpace(maj), 10, 32)
		b, err2 := strconv.ParseUint(strings.TrimSpace(min), 10, 32)
		if err1 != nil || err2 != nil {
			return e, fmt.Errorf("bad device numbers %q", m[5])
		}
		e.Major, e.Minor = uint32(a), uint32(b)
	} else {
		n, err := strconv.ParseInt(m[5], 10, 64)
		if err != nil {
			return e, fmt.Errorf("bad size %q", m[5])
		}
		e.Size = n
	}
	t, err := time.ParseInLocation("2006-01-02 15:04", m[6], time.UTC)
	if err != nil {
		return e, fmt.Errorf("bad time %q", m[6])
	}
	e.ModTime = t
	name := rest
	if e.Mode&fs.ModeSymlink != 0 {
		n := int(e.Size)
		sep := len(rest) - n - len(" -> ")
		if n < 0 || sep < 0 || rest[sep:sep+4] != " -> " {
			return e, fmt.Errorf("symlink %q: cannot split off a %d-byte target", rest, n)
		}
		name, e.Target = rest[:sep], rest[sep+4:]
	}
	switch {
	case name == "":
		e.Path = "."
	case strings.HasPrefix(name, "/") && len(name) > 1:
		e.Path = name[1:]
	default:
		return e, fmt.Errorf("unexpected path %q (want \"/...\"; was -d '' given?)", name)
	}
	return e, nil
}

func parseMode(typ, perm string) fs.FileMode {
	var m fs.FileMode
	switch typ {
	case "d":
		m = fs.ModeDir
	case "l":
		m = fs.ModeSymlink
	case "b":
		m = fs.ModeDevice
	case "c":
		m = fs.ModeDevice | fs.ModeCharDevice
	case "p":
		m = fs.ModeNamedPipe
	case "s":
		m = fs.ModeSocket
	}
	for i, c := range perm {
		bit := fs.FileMode(1) << (8 - i)
		switch c {
		case 'r', 'w', 'x':
			m |= bit
		case 's', 't':
			m |= bit | special(i)
		case 'S', 'T':
			m |= special(i)
		}
	}
	return m
}

// special is the setuid, setgid or sticky bit shown in position i of the
// nine permission characters.
func special(i int) fs.FileMode {
	switch i {
	case 2:
		return fs.ModeSetuid
	case 5:
		return fs.ModeSetgid
	default:
		return fs.ModeSticky
	}
}

// ListDir lists the tree under dir with os.Lstat, the root included (as
// "."), sorted by path. Symlinks are not followed.
func ListDir(dir string) ([]Entry, error) {
	var out []Entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		e := Entry{Path: filepath.ToSlash(rel), Mode: fi.Mode(), Size: fi.Size(), ModTime: fi.ModTime()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			e.Uid, e.Gid = int(st.Uid), int(st.Gid)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// CompareListing checks that the unsquashfs listing of image has exactly
// the paths of the tree under srcDir, with the same type, permission bits,
// regular file size, symlink target and modification time (to the minute,
// the listing's resolution), and that every entry is owned by
// wantUID/wantGID (a negative value skips that check). Directory sizes are
// not compared. The error lists the first differences.
func CompareListing(image, srcDir string, wantUID, wantGID int) error {
	src, err := ListDir(srcDir)
	if err != nil {
		return err
	}
	img, err := Listing(image)
	if err != nil {
		return err
	}
	diffs := compareEntries(src, img, checks{
		uid: wantUID, gid: wantGID,
		mtime: func(s, i time.Time) bool { return s.UTC().Truncate(time.Minute).Equal(i) },
	})
	return diffError(fmt.Sprintf("%s: listing differs from %s", image, srcDir), diffs)
}

// checks selects what compareEntries compares beyond paths, types,
// permissions, regular file sizes and symlink targets.
type checks struct {
	uid, gid int                                 // wanted owner of image entries; <0: any
	mtime    func(src, img time.Time) bool       // nil: not compared
	content  func(path string, size int64) error // nil: not compared
}

// compareEntries compares src (from ListDir) with img and returns one line
// per difference, in path order.
func compareEntries(src, img []Entry, c checks) []string {
	var diffs []string
	add := func(path, format string, args ...any) {
		diffs = append(diffs, fmt.Sprintf("%q: ", path)+fmt.Sprintf(format, args...))
	}
	imgBy := make(map[string]Entry, len(img))
	for _, e := range img {
		if _, dup := imgBy[e.Path]; dup {
			add(e.Path, "listed more than once in the image")
		}
		imgBy[e.Path] = e
	}
	srcBy := make(map[string]bool, len(src))
	for _, s := range src {
		srcBy[s.Path] = true
		i, ok := imgBy[s.Path]
		if !ok {
			add(s.Path, "missing from the image (source: %v, %d bytes)", s.Mode, s.Size)
			continue
		}
		if st, it := s.Mode.Type(), i.Mode.Type(); st != it {
			add(s.Path, "type %v in image, %v in source", i.Mode, s.Mode)
			continue
		}
		const permBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky
		if s.Mode&permBits != i.Mode&permBits {
			add(s.Path, "mode %v in image, %v in source", i.Mode, s.Mode)
		}
		if (c.uid >= 0 && i.Uid != c.uid) || (c.gid >= 0 && i.Gid != c.gid) {
			add(s.Path, "owner %d/%d in image, want %d/%d", i.Uid, i.Gid, c.uid, c.gid)
		}
		switch {
		case s.Mode.IsRegular():
			if s.Size != i.Size {
				add(s.Path, "size %d in image, %d in source", i.Size, s.Size)
			} else if c.content != nil {
				if err := c.content(s.Path, s.Size); err != nil {
					add(s.Path, "%v", err)
				}
			}
		case s.Mode&fs.ModeSymlink != 0:
			if s.Target != i.Target {
				add(s.Path, "symlink target %q in image, %q in source", i.Target, s.Target)
			}
		}
		if c.mtime != nil && !c.mtime(s.ModTime, i.ModTime) {
			add(s.Path, "mtime %s in image, %s in source", i.ModTime.UTC().Format(time.RFC3339), s.ModTime.UTC().Format(time.RFC3339Nano))
		}
	}
	for _, e := range img {
		if !srcBy[e.Path] {
			add(e.Path, "in the image (%v, %d bytes) but not in the source", e.Mode, e.Size)
		}
	}
	sort.Stable(byQuotedPath(diffs))
	return diffs
}

// byQuotedPath keeps differences in path order (lines start with the
// quoted path).
type byQuotedPath []string

func (d byQuotedPath) Len() int      { return len(d) }
func (d byQuotedPath) Swap(i, j int) { d[i], d[j] = d[j], d[i] }
func (d byQuotedPath) Less(i, j int) bool {
	pi, _ := strconv.QuotedPrefix(d[i])
	pj, _ := strconv.QuotedPrefix(d[j])
	ui, _ := strconv.Unquote(pi)
	uj, _ := strconv.Unquote(pj)
	return ui < uj
}

// MaxDiffs is how many differences an error shows.
const MaxDiffs = 20

func diffError(title string, diffs []string) error {
	if len(diffs) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d difference(s)", title, len(diffs))
	for i, d := range diffs {
		if i == MaxDiffs {
			fmt.Fprintf(&b, "\n  ... and %d more", len(diffs)-MaxDiffs)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(d)
	}
	return fmt.Errorf("%s", b.String())
}

// run runs a command and returns its standard output; the error includes
// the exit status and (the start of) standard error.
func run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(quoteArgs(args), " "), err, head(stderr.String(), 40))
	}
	return out, nil
}

func quoteArgs(args []string) []string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[") {
			a = strconv.Quote(a)
		}
		q[i] = a
	}
	return q
}

// head returns the first n lines of s.
func head(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) <= n {
		return s
	}
	return strings.Join(lines[:n], "") + fmt.Sprintf("... (%d more lines)\n", len(lines)-n)
}
