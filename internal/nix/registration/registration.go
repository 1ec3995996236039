// Package registration reads and writes Nix's path registration format:
// the `registration` file of nixpkgs' closureInfo, shipped in NixOS images
// as nix-path-registration and loaded at boot by `nix-store --load-db`.
//
// Each record is a run of lines, every one ending in "\n":
//
//	/nix/store/<hash>-<name>       the path
//	sha256:<nix32 narHash>         its NAR hash
//	<narSize>                      its NAR size in bytes
//	<deriver>                      a store path, or empty (closureInfo: empty)
//	<n>                            the number of references
//	<reference>                    n lines, sorted, a self-reference included
//
// Records follow each other with no separator, sorted by path, and the file
// ends right after the last record's last newline. Nix is unforgiving at
// the end: without the final newline load-db fails with "missing input",
// and an extra empty line is read as the start of another record ("hash ”
// has wrong length"). Write produces exactly this; Parse accepts exactly
// this, plus the other hash spellings below that closureInfo never writes
// but `nix-store --dump-db` does.
package registration

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/nix-community/go-nix/pkg/nixbase32"

	"github.com/nixlive/nixlive/internal/nix/storepath"
)

// Record is the registration of one store path.
type Record struct {
	Path       string   // absolute store path
	NarHash    [32]byte // SHA-256 of the path's NAR serialisation
	NarSize    uint64
	Deriver    string   // absolute store path of the .drv, or ""
	References []string // absolute store paths, sorted, self included if referenced
}

// HashString returns r's NAR hash as closureInfo prints it,
// "sha256:<nix32>".
func (r Record) HashString() string {
	return "sha256:" + nixbase32.EncodeToString(r.NarHash[:])
}

// Write writes records in the registration format. It sorts the records
// by path and each record's references (on copies; the caller's slices are
// left alone), because load-db needs neither but closureInfo's output has
// both sorted, and a byte-identical file is the goal. Write does not
// validate paths; Parse does.
func Write(w io.Writer, records []Record) error {
	sorted := slices.Clone(records)
	slices.SortStableFunc(sorted, func(a, b Record) int { return strings.Compare(a.Path, b.Path) })
	bw := bufio.NewWriter(w)
	for _, r := range sorted {
		refs := slices.Clone(r.References)
		slices.Sort(refs)
		bw.WriteString(r.Path)
		bw.WriteByte('\n')
		bw.WriteString(r.HashString())
		bw.WriteByte('\n')
		bw.WriteString(strconv.FormatUint(r.NarSize, 10))
		bw.WriteByte('\n')
		bw.WriteString(r.Deriver)
		bw.WriteByte('\n')
		bw.WriteString(strconv.Itoa(len(refs)))
		bw.WriteByte('\n')
		for _, ref := range refs {
			bw.WriteString(ref)
			bw.WriteByte('\n')
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("registration: writing: %w", err)
	}
	return nil
}

// Marshal returns the registration of records as bytes.
func Marshal(records []Record) []byte {
	var b bytes.Buffer
	_ = Write(&b, records) // a bytes.Buffer does not fail
	return b.Bytes()
}

// maxLine bounds a line: a store path is at most storeDir + 245 bytes, and
// nothing else in the format is longer, so a longer line means the input
// is not a registration (and must not make us buffer it whole).
const maxLine = 64 << 10

// lineReader hands out lines with their numbers and knows whether the
// input ended with a newline.
type lineReader struct {
	sc   *bufio.Scanner
	line int
	// the text of the current line, and whether it was terminated by "\n"
	text       string
	terminated bool
}

func newLineReader(r io.Reader) *lineReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxLine)
	// Like bufio.ScanLines, but reports a final unterminated line as such
	// and does not strip "\r": Nix reads lines with getline, so a "\r"
	// is part of the line (and makes the path or number invalid).
	lr := &lineReader{sc: sc}
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			lr.terminated = true
			return i + 1, data[:i], nil
		}
		if atEOF && len(data) > 0 {
			lr.terminated = false
			return len(data), data, nil
		}
		return 0, nil, nil
	})
	return lr
}

// next reads a line; ok is false at the end of the input.
func (lr *lineReader) next() (ok bool, err error) {
	if !lr.sc.Scan() {
		if err := lr.sc.Err(); err != nil {
			if err == bufio.ErrTooLong {
				return false, fmt.Errorf("registration: line %d: longer than %d bytes", lr.line+1, maxLine)
			}
			return false, fmt.Errorf("registration: reading line %d: %w", lr.line+1, err)
		}
		return false, nil
	}
	lr.line++
	lr.text = lr.sc.Text()
	return true, nil
}

func (lr *lineReader) errorf(format string, args ...any) error {
	return fmt.Errorf("registration: line %d: %s", lr.line, fmt.Sprintf(format, args...))
}

// field reads the next line of a record, which must exist.
func (lr *lineReader) field(what string) error {
	ok, err := lr.next()
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("registration: line %d: truncated record: missing %s", lr.line+1, what)
	}
	return nil
}

// Parse reads a registration strictly: any deviation from the format, even
// one Nix would let pass, is an error naming the line, so that a file we
// accept is one every Nix accepts. Paths (record, deriver, references) must
// be valid store paths in storeDir ("" means the default). The hash may be
// "sha256:" + nix32, "sha256:" + base16 or bare base16 (either case).
//
// Records are returned in file order, duplicates included; see Dedup.
// References are returned as written (Parse does not require them sorted,
// nor to be registered in the same file: whether they must be is the
// caller's business).
func Parse(r io.Reader, storeDir string) ([]Record, error) {
	if storeDir == "" {
		storeDir = storepath.DefaultStoreDir
	}
	if err := storepath.CheckStoreDir(storeDir); err != nil {
		return nil, fmt.Errorf("registration: %w", err)
	}
	lr := newLineReader(r)
	var out []Record
	for {
		ok, err := lr.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		var rec Record
		if lr.text == "" {
			return nil, lr.errorf("empty line where a store path should start a record")
		}
		if _, err := storepath.Parse(storeDir, lr.text); err != nil {
			return nil, lr.errorf("%v", err)
		}
		rec.Path = lr.text

		if err := lr.field("the NAR hash"); err != nil {
			return nil, err
		}
		if rec.NarHash, err = parseHash(lr.text); err != nil {
			return nil, lr.errorf("NAR hash %q: %v", lr.text, err)
		}

		if err := lr.field("the NAR size"); err != nil {
			return nil, err
		}
		if rec.NarSize, err = parseNumber(lr.text); err != nil {
			return nil, lr.errorf("NAR size %q: %v", lr.text, err)
		}

		if err := lr.field("the deriver line"); err != nil {
			return nil, err
		}
		if lr.text != "" {
			if _, err := storepath.Parse(storeDir, lr.text); err != nil {
				return nil, lr.errorf("deriver: %v", err)
			}
			rec.Deriver = lr.text
		}

		if err := lr.field("the reference count"); err != nil {
			return nil, err
		}
		n, err := parseNumber(lr.text)
		if err != nil {
			return nil, lr.errorf("reference count %q: %v", lr.text, err)
		}
		for i := uint64(0); i < n; i++ {
			if err := lr.field(fmt.Sprintf("reference %d of %d", i+1, n)); err != nil {
				return nil, err
			}
			if _, err := storepath.Parse(storeDir, lr.text); err != nil {
				return nil, lr.errorf("reference: %v", err)
			}
			rec.References = append(rec.References, lr.text)
		}
		if !lr.terminated {
			return nil, lr.errorf("missing final newline (nix-store --load-db fails with \"missing input\")")
		}
		out = append(out, rec)
	}
	return out, nil
}

// parseNumber accepts decimal digits with an optional leading "+", as Nix
// 2.8's string2Int (boost::lexical_cast) does for the NAR size and the
// reference count; nothing else (no "-", spaces, "_" or hex).
func parseNumber(s string) (uint64, error) {
	if s == "" {
		return 0, fmt.Errorf("empty, want a number")
	}
	if d, ok := strings.CutPrefix(s, "+"); ok {
		if d == "" {
			return 0, fmt.Errorf("not a number")
		}
		s = d
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("not a number")
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("out of range")
	}
	return n, nil
}

// parseHash accepts the SHA-256 spellings load-db accepts and closureInfo
// or dump-db produce: "sha256:" + 52 nix32 characters, "sha256:" + 64 hex
// digits, or 64 bare hex digits.
func parseHash(s string) (h [32]byte, err error) {
	rest, prefixed := strings.CutPrefix(s, "sha256:")
	switch {
	case len(rest) == hex.EncodedLen(32):
		if _, err := hex.Decode(h[:], []byte(rest)); err != nil {
			return h, fmt.Errorf("bad base16: %v", err)
		}
	case prefixed && len(rest) == nixbase32.EncodedLen(32):
		if _, err := nixbase32.Decode(h[:], []byte(rest)); err != nil {
			return h, fmt.Errorf("bad nix32: %v", err)
		}
	case prefixed:
		return h, fmt.Errorf("want 52 nix32 or 64 base16 characters after %q, have %d", "sha256:", len(rest))
	default:
		return h, fmt.Errorf("want %q + 52 nix32 characters (or a 64-digit base16 SHA-256)", "sha256:")
	}
	return h, nil
}

// Dedup returns records with duplicates removed the way load-db resolves
// them: for a path registered more than once the last record wins, and it
// takes the place of the first occurrence so that the order is otherwise
// kept.
func Dedup(records []Record) []Record {
	last := make(map[string]int, len(records))
	for i, r := range records {
		last[r.Path] = i
	}
	out := make([]Record, 0, len(last))
	seen := make(map[string]bool, len(last))
	for _, r := range records {
		if seen[r.Path] {
			continue
		}
		seen[r.Path] = true
		out = append(out, records[last[r.Path]])
	}
	return out
}
