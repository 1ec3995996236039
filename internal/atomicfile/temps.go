package atomicfile

import (
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"
)

// tempInfix is in the name of every temporary output: ".NAME.tmp-RANDOM".
const tempInfix = ".tmp-"

// StaleAge is how old a temporary file of ours must be (since it was last
// written) before another run takes it for the leftover of a killed one
// and removes it. A running build writes its output continuously, so this
// spares a concurrent build in the same directory.
var StaleAge = 15 * time.Minute

// OnStale, when set, is told of each leftover removed (a temporary file,
// or a temporary directory) and its age.
var OnStale func(path string, age time.Duration)

// staleFile is the name os.CreateTemp gives a temporary output.
var staleFile = regexp.MustCompile(`^\..+\.tmp-[0-9]+$`)

var temps struct {
	sync.Mutex
	paths map[string]bool // temporary files and directories of this process
}

func register(p string) {
	temps.Lock()
	defer temps.Unlock()
	if temps.paths == nil {
		temps.paths = map[string]bool{}
	}
	temps.paths[p] = true
}

func unregister(p string) {
	temps.Lock()
	defer temps.Unlock()
	delete(temps.paths, p)
}

func removeTemp(p string) {
	os.RemoveAll(p)
	unregister(p)
}

// RemoveTemps removes every temporary file and directory this process has
// made and not yet renamed or removed: for an interrupted run that cannot
// wait for its work to wind down.
func RemoveTemps() {
	temps.Lock()
	defer temps.Unlock()
	for p := range temps.paths {
		os.RemoveAll(p)
		delete(temps.paths, p)
	}
}

// TempDir makes a temporary directory in $TMPDIR named prefix followed by
// digits, after removing stale ones of that name: older than StaleAge
// (by the newest of the directory and its entries). remove removes it.
func TempDir(prefix string) (dir string, remove func(), err error) {
	base := os.TempDir()
	if entries, err := os.ReadDir(base); err == nil {
		pat := regexp.MustCompile("^" + regexp.QuoteMeta(prefix) + "[0-9]+$")
		for _, e := range entries {
			if e.IsDir() && pat.MatchString(e.Name()) {
				p := filepath.Join(base, e.Name())
				removeIfStale(p, newestMtime(p))
			}
		}
	}
	dir, err = os.MkdirTemp("", prefix+"*")
	if err != nil {
		return "", nil, err
	}
	register(dir)
	return dir, func() { removeTemp(dir) }, nil
}

// removeStale removes our temporary files in dir that are older than
// StaleAge.
func removeStale(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !staleFile.MatchString(e.Name()) {
			continue
		}
		if fi, err := e.Info(); err == nil {
			removeIfStale(filepath.Join(dir, e.Name()), fi.ModTime())
		}
	}
}

func removeIfStale(p string, mtime time.Time) {
	age := time.Since(mtime)
	if age < StaleAge {
		return
	}
	temps.Lock()
	ours := temps.paths[p]
	temps.Unlock()
	if ours {
		return
	}
	if err := os.RemoveAll(p); err == nil && OnStale != nil {
		OnStale(p, age)
	}
}

// newestMtime is the latest mtime of dir and the entries in it.
func newestMtime(dir string) time.Time {
	var t time.Time
	if fi, err := os.Stat(dir); err == nil {
		t = fi.ModTime()
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.ModTime().After(t) {
			t = fi.ModTime()
		}
	}
	return t
}
