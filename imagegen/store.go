package imagegen

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/nixlive/nixlive/imagegen/progress"
	"github.com/nixlive/nixlive/imagegen/squashfs"
	"github.com/nixlive/nixlive/internal/atomicfile"
	"github.com/nixlive/nixlive/internal/nix/closure"
	"github.com/nixlive/nixlive/internal/nix/nar"
	"github.com/nixlive/nixlive/internal/nix/registration"
	"github.com/nixlive/nixlive/internal/nix/storepath"
	"github.com/nixlive/nixlive/live"
)

// DefaultSourceDateEpoch is Nix's stdenv default: 1980-01-01.
const DefaultSourceDateEpoch = 315532800

// SourceDateEpoch returns the time from $SOURCE_DATE_EPOCH, or the default.
func SourceDateEpoch() (time.Time, error) {
	v, ok := os.LookupEnv("SOURCE_DATE_EPOCH")
	if !ok || v == "" {
		return time.Unix(DefaultSourceDateEpoch, 0), nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want whole seconds since 1970, %d to %d", v, MinEpoch, MaxEpoch)
	}
	if err := CheckEpoch(n); err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", v, err)
	}
	return time.Unix(n, 0), nil
}

// StoreImage builds a store image: the squashfs of a closure with its
// registration, as NixOS's nix-store.squashfs.
type StoreImage struct {
	// Output is the image file; RegistrationOutput, when set, also gets the
	// registration.
	Output             string
	RegistrationOutput string
	// Roots are the store paths (or links into the store) whose closure
	// goes into the image.
	Roots []string
	// Store is where the store paths are read from (Nix's --store DIR).
	Store storepath.Root
	// ClosureInfo, when set, is a folder made by Nix's closureInfo
	// (store-paths and registration); the closure is taken from it instead
	// of being computed by scanning.
	ClosureInfo string
	Compression squashfs.Compression
	BlockSize   int
	ExactLevel  bool // see squashfs.Options.ExactLevel
	// Epoch dates the image, its root directory and the registration file.
	Epoch time.Time
	// Progress, when set and a terminal, shows progress.
	Progress *os.File

	// hashed is what Closure's hash pass saw of each file (nil from a
	// closureInfo); AddTo checks the files against it (storecheck.go).
	hashed closure.Stamps
	// betweenPasses, when set (by tests), runs in Build between the hash
	// pass (Closure) and the write pass (AddTo).
	betweenPasses func(*closure.Closure)
}

// StoreResult says what went into an image.
type StoreResult struct {
	Closure      *closure.Closure
	Registration []byte
	Content      squashfs.Stats
}

// Closure computes the image's closure and registration. AddTo checks
// the files it writes against them.
func (s *StoreImage) Closure() (*closure.Closure, []byte, error) {
	var c *closure.Closure
	var err error
	s.hashed = nil
	if s.ClosureInfo != "" {
		c, err = closure.FromClosureInfo(s.ClosureInfo, s.Store.Store())
		if err == nil {
			err = s.checkRoots(c)
		}
	} else {
		if len(s.Roots) == 0 {
			return nil, nil, fmt.Errorf("imagegen: no store paths given")
		}
		c, s.hashed, err = closure.FromStoreRootStamped(s.Store, s.Roots)
	}
	if err != nil {
		return nil, nil, err
	}
	return c, registration.Marshal(c.Records), nil
}

// checkRoots makes sure every root given beside a closureInfo is part of it.
func (s *StoreImage) checkRoots(c *closure.Closure) error {
	in := map[string]bool{}
	for _, p := range c.Paths {
		in[p] = true
	}
	for _, r := range s.Roots {
		sp, err := s.Store.Resolve(r)
		if err != nil {
			return fmt.Errorf("imagegen: %w", err)
		}
		if !in[sp.Abs(s.Store.Store())] {
			return fmt.Errorf("imagegen: %s is not in the closure of %s", r, s.ClosureInfo)
		}
	}
	return nil
}

// AddTo adds the closure to w with NixOS's layout (mksquashfs
// -keep-as-directory -all-root -no-hardlinks): nix-path-registration and one
// directory (or file, or link) per store path at the root, everything owned
// by root, store mtimes kept, the root and the registration dated Epoch.
func (s *StoreImage) AddTo(ctx context.Context, w *squashfs.Writer, c *closure.Closure, reg []byte) error {
	if err := w.WriteHeader(&squashfs.Header{Name: ".", Mode: os.ModeDir | 0o755, ModTime: s.Epoch}); err != nil {
		return err
	}
	if err := w.WriteHeader(&squashfs.Header{Name: live.RegistrationName, Mode: 0o644, Size: int64(len(reg)), ModTime: s.Epoch}); err != nil {
		return err
	}
	if _, err := w.Write(reg); err != nil {
		return err
	}
	// Each path is checked against its registration as it is written
	// (storecheck.go).
	sum := nar.NewAsyncSum()
	defer sum.Close()
	for _, p := range c.Paths {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.addStorePath(w, sum, c, p); err != nil {
			return err
		}
	}
	return nil
}

// Build writes the image to Output (atomically: a failed build leaves no
// file) and, when RegistrationOutput is set, the registration there.
func (s *StoreImage) Build(ctx context.Context) (*StoreResult, error) {
	c, reg, err := s.Closure()
	if err != nil {
		return nil, err
	}
	if s.betweenPasses != nil {
		s.betweenPasses(c)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The NAR size is close enough to the content size for a progress bar.
	meter := progress.New(s.Progress, "squashfs", int64(c.TotalNarSize()))
	defer meter.Done()

	f, err := atomicfile.Create(s.Output, 0o644)
	if err != nil {
		return nil, fmt.Errorf("imagegen: %w", err)
	}
	defer f.Abort()
	w, err := squashfs.NewWriter(f, squashfs.Options{
		Compression: s.Compression,
		BlockSize:   s.BlockSize,
		ExactLevel:  s.ExactLevel,
		ModTime:     s.Epoch,
		Progress:    meter.Set,
		Context:     ctx,
	})
	if err != nil {
		return nil, err
	}
	if err := s.AddTo(ctx, w, c, reg); err != nil {
		w.Close()
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	// Both outputs are complete before either is renamed into place.
	var regFile *atomicfile.File
	if s.RegistrationOutput != "" {
		if regFile, err = atomicfile.Create(s.RegistrationOutput, 0o644); err != nil {
			return nil, fmt.Errorf("imagegen: %w", err)
		}
		defer regFile.Abort()
		if _, err := regFile.Write(reg); err != nil {
			return nil, fmt.Errorf("imagegen: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := f.Commit(); err != nil {
		return nil, fmt.Errorf("imagegen: %w", err)
	}
	if regFile != nil {
		if err := regFile.Commit(); err != nil {
			return nil, fmt.Errorf("imagegen: %w", err)
		}
	}
	return &StoreResult{Closure: c, Registration: reg, Content: w.Stats()}, nil
}
