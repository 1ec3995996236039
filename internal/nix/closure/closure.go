// Package closure computes the closure of a set of store paths, with the
// registration data (NAR hash and size, references) of every path in it:
// what nixpkgs' closureInfo provides, and what an image needs to ship its
// store and register it at boot.
//
// A closure can be computed from a store on disk (FromStoreRoot), reading
// every path of the closure once, or read back from a closureInfo output
// (FromClosureInfo). Both give the same Closure for the same store.
package closure

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/nixlive/nixlive/internal/nix/nar"
	"github.com/nixlive/nixlive/internal/nix/refscan"
	"github.com/nixlive/nixlive/internal/nix/registration"
	"github.com/nixlive/nixlive/internal/nix/storepath"
)

// Closure is a set of store paths closed under references, with their
// registration records.
type Closure struct {
	StoreDir string
	// Paths are the absolute store paths, sorted.
	Paths []string
	// Records[i] is the registration of Paths[i]; references are sorted
	// and include self-references.
	Records []registration.Record
}

// Stamps is the state in which a hash pass found each regular file, by
// its path in the store (/nix/store/…-foo/bin/x): a later read of the
// file can tell whether it still holds what was hashed.
type Stamps map[string]nar.Stamp

// Record returns the registration of path.
func (c *Closure) Record(path string) (registration.Record, bool) {
	i, ok := slices.BinarySearch(c.Paths, path)
	if !ok {
		return registration.Record{}, false
	}
	return c.Records[i], true
}

// TotalNarSize is the sum of the NAR sizes (closureInfo's total-nar-size).
func (c *Closure) TotalNarSize() uint64 {
	var n uint64
	for _, r := range c.Records {
		n += r.NarSize
	}
	return n
}

// WriteRegistration writes the closure's registration (closureInfo's
// `registration`, an image's nix-path-registration).
func (c *Closure) WriteRegistration(w io.Writer) error {
	return registration.Write(w, c.Records)
}

// WriteClosureInfo writes closureInfo's three files into dir:
// store-paths, registration and total-nar-size.
func (c *Closure) WriteClosureInfo(dir string) error {
	var sp strings.Builder
	for _, p := range c.Paths {
		sp.WriteString(p)
		sp.WriteByte('\n')
	}
	files := []struct {
		name string
		data []byte
	}{
		{"store-paths", []byte(sp.String())},
		{"registration", registration.Marshal(c.Records)},
		{"total-nar-size", []byte(strconv.FormatUint(c.TotalNarSize(), 10) + "\n")},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			return fmt.Errorf("closure: %w", err)
		}
	}
	return nil
}

// FromStoreRoot computes the closure of roots (store paths, paths in one,
// or links into the store) in the store seen through root. Every store path
// present is a reference candidate, registered or not: a file can only use
// a path that is in the store. One pass over each path's NAR gives its
// hash, size and references; paths are read in parallel, and the result
// does not depend on the order in which they finish.
func FromStoreRoot(root storepath.Root, roots []string) (*Closure, error) {
	return fromStoreRoot(root, roots, runtime.GOMAXPROCS(0))
}

// FromStoreRootStamped is FromStoreRoot that also returns the Stamps of
// the files it hashed.
func FromStoreRootStamped(root storepath.Root, roots []string) (*Closure, Stamps, error) {
	return scanStore(root, roots, runtime.GOMAXPROCS(0))
}

func fromStoreRoot(root storepath.Root, roots []string, workers int) (*Closure, error) {
	c, _, err := scanStore(root, roots, workers)
	return c, err
}

func scanStore(root storepath.Root, roots []string, workers int) (*Closure, Stamps, error) {
	store := root.Store()
	cands, err := root.List()
	if err != nil {
		return nil, nil, fmt.Errorf("closure: %w", err)
	}
	set, err := refscan.NewSet(cands)
	if err != nil {
		return nil, nil, fmt.Errorf("closure: %w", err)
	}
	present := make(map[string]bool, len(cands))
	for _, p := range cands {
		present[p] = true
	}

	var start []string
	for _, r := range roots {
		sp, err := root.Resolve(r)
		if err != nil {
			var nis *storepath.NotInStoreError
			if errors.As(err, &nis) {
				return nil, nil, fmt.Errorf("closure: %w", nis)
			}
			return nil, nil, fmt.Errorf("closure: root %s: %w", r, err)
		}
		p := sp.Abs(store)
		if !present[p] {
			return nil, nil, fmt.Errorf("closure: root %s: store path %s is missing (no %s)", r, p, root.HostPath(p))
		}
		start = append(start, p)
	}
	slices.Sort(start)
	start = slices.Compact(start)

	var (
		files   []scanned
		filesMu sync.Mutex
	)
	recs, err := walk(start, workers, func(p string) (registration.Record, error) {
		rec, f, err := scanPath(root, set, p)
		if err == nil {
			filesMu.Lock()
			files = append(files, f)
			filesMu.Unlock()
		}
		return rec, err
	})
	if err != nil {
		return nil, nil, err
	}
	n := 0
	for _, f := range files {
		n += len(f.paths)
	}
	stamps := make(Stamps, n)
	for _, f := range files {
		for i, p := range f.paths {
			stamps[p] = f.stamps[i]
		}
	}
	return fromRecords(store, recs), stamps, nil
}

// scanned is what the hash pass saw of one store path's regular files.
type scanned struct {
	paths  []string
	stamps []nar.Stamp
}

// scanPath computes the registration record of one store path, and the
// stamps of its regular files as they were hashed.
func scanPath(root storepath.Root, set *refscan.Set, p string) (registration.Record, scanned, error) {
	var f scanned
	host := root.HostPath(p)
	if _, err := os.Lstat(host); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return registration.Record{}, f, fmt.Errorf("closure: %s is missing (no %s)", p, host)
		}
		return registration.Record{}, f, fmt.Errorf("closure: %s: %w", p, err)
	}
	sc := set.NewScanner()
	h, n, err := nar.InfoVisit(host, sc, func(e *nar.Entry) error {
		if e.Content != nil {
			f.paths = append(f.paths, path.Join(p, e.Path))
			f.stamps = append(f.stamps, e.Stamp)
		}
		return nil
	})
	if err != nil {
		// nar's error names the file that could not be read.
		return registration.Record{}, f, fmt.Errorf("closure: reading %s: %w", p, err)
	}
	return registration.Record{Path: p, NarHash: h, NarSize: n, References: sc.Found()}, f, nil
}

type result struct {
	path string
	rec  registration.Record
	err  error
}

// walk visits everything reachable from start through References, calling
// visit once per path on up to workers goroutines. The coordinator (this
// goroutine) owns the visited set and the queue, so workers share nothing.
// On errors, no new work is started, and the error of the smallest failing
// path is returned, so that the report is the same from run to run as far
// as possible.
func walk(start []string, workers int, visit func(string) (registration.Record, error)) ([]registration.Record, error) {
	workers = max(workers, 1)
	jobs := make(chan string)
	results := make(chan result)
	for i := 0; i < workers; i++ {
		go func() {
			for p := range jobs {
				rec, err := visit(p)
				results <- result{p, rec, err}
			}
		}()
	}
	defer close(jobs)

	seen := make(map[string]bool, len(start))
	queue := slices.Clone(start)
	for _, p := range queue {
		seen[p] = true
	}
	var (
		recs    []registration.Record
		errs    []result
		pending int
	)
	for (len(queue) > 0 && errs == nil) || pending > 0 {
		var send chan string
		var next string
		if len(queue) > 0 && errs == nil {
			send, next = jobs, queue[0]
		}
		select {
		case send <- next:
			queue = queue[1:]
			pending++
		case r := <-results:
			pending--
			if r.err != nil {
				errs = append(errs, r)
				continue
			}
			recs = append(recs, r.rec)
			for _, ref := range r.rec.References {
				if !seen[ref] {
					seen[ref] = true
					queue = append(queue, ref)
				}
			}
		}
	}
	if errs != nil {
		first := slices.MinFunc(errs, func(a, b result) int { return cmp.Compare(a.path, b.path) })
		return nil, first.err
	}
	return recs, nil
}

func fromRecords(storeDir string, recs []registration.Record) *Closure {
	slices.SortFunc(recs, func(a, b registration.Record) int { return cmp.Compare(a.Path, b.Path) })
	c := &Closure{StoreDir: storeDir, Records: recs, Paths: make([]string, len(recs))}
	for i, r := range recs {
		c.Paths[i] = r.Path
	}
	return c
}
