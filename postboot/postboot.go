// Package postboot does the NixOS live CD's post-boot commands in
// process, without Nix:
//
//	nix-store --load-db < /nix/store/nix-path-registration
//	touch /etc/NIXOS
//	nix-env -p /nix/var/nix/profiles/system --set /run/current-system
//
// Each step leaves on disk what the Nix 2.8 command leaves (the same
// database rows, links and directories), so that the Nix of the booted
// system takes over a store it could have made itself. Everything works
// on a root directory that stands for "/" (Nix's `--store DIR`): paths
// given and written are inside it, and symlinks are followed inside it.
//
// See Store.LoadDB, Store.TouchNixOS and Store.SetProfile for the steps,
// Config.Run for all three, Default for stage 2 and Main for the command
// line.
//
// Where the result differs from Nix 2.8's, on purpose:
//   - the database's bytes (SQLite version, page layout) differ; what Nix
//     reads from it does not (rows, ids, schema text, journal mode);
//   - a derivation's output paths are recorded but not checked against
//     the derivation's hash (Nix's checkInvariants);
//   - an empty registration with no database creates nothing (Nix would
//     create an empty database);
//   - a profile link that already points at the right generation is left
//     alone (nix-env makes it again);
//   - temporary links are named .NAME.tmp-PID-RANDOM, so that one left
//     behind by a kill never looks like a generation (Nix's
//     NAME.tmp-PID-RANDOM can);
//   - adding a GC root waits for a running garbage collection to finish
//     (Nix tells the collector about the new root through its socket);
//   - as root with build-users-group set, Nix also makes /nix/store owned
//     by root:nixbld with mode 1775: stage 2 does that before us.
package postboot

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nixlive/nixlive/live"
)

// Store is a Nix store seen from the root directory that holds it.
type Store struct {
	// Root is the host directory that stands for "/" ("" means "/").
	Root string
	// Now gives the registration time of new paths; nil means time.Now.
	Now func() time.Time
}

func (s *Store) root() root {
	if s.Root == "" {
		return "/"
	}
	abs, err := filepath.Abs(s.Root)
	if err != nil {
		return root(filepath.Clean(s.Root))
	}
	return root(abs)
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// TouchNixOS creates /etc/NIXOS (and /etc) inside the root, or updates
// its times if it exists, as `touch /etc/NIXOS` does: the file marks the
// system as NixOS for NixOS's tools.
func (s *Store) TouchNixOS() error {
	p, err := s.root().host("/etc/NIXOS")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o666)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	now := time.Now()
	return os.Chtimes(p, now, now)
}

// Defaults of the live CD's post-boot commands.
const (
	DefaultRegistration = live.RegistrationPath // inside the root
	DefaultProfile      = "/nix/var/nix/profiles/system"
	DefaultSystem       = "/run/current-system"
)

// Config says what Run does.
type Config struct {
	Root string // "/" if empty
	// Registration is the registration file, a host path; empty means
	// DefaultRegistration inside the root.
	Registration string
	Profile      string // in-root path; DefaultProfile if empty
	System       string // in-root path of the system, or a link to it; DefaultSystem if empty
	Now          func() time.Time
}

func (c Config) store() *Store { return &Store{Root: c.Root, Now: c.Now} }

func (c Config) registration() (string, error) {
	if c.Registration != "" {
		return c.Registration, nil
	}
	return c.store().root().host(DefaultRegistration)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// LoadDB runs the load-db step: the registration file into the database.
func (c Config) LoadDB(log *slog.Logger) error {
	file, err := c.registration()
	if err != nil {
		return fmt.Errorf("load-db: %w", err)
	}
	start := time.Now()
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("load-db: %w", err)
	}
	defer f.Close()
	res, err := c.store().LoadDB(f)
	if err != nil {
		return fmt.Errorf("load-db: %s: %w", file, err)
	}
	logger(log).Info("load-db", "registration", file, "paths", res.Paths, "new", res.New,
		"updated", res.Updated, "created", res.Created, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// TouchNixOS runs the touch step.
func (c Config) TouchNixOS(log *slog.Logger) error {
	if err := c.store().TouchNixOS(); err != nil {
		return fmt.Errorf("touch /etc/NIXOS: %w", err)
	}
	logger(log).Info("touch /etc/NIXOS")
	return nil
}

// SetProfile runs the set-profile step.
func (c Config) SetProfile(log *slog.Logger) error {
	profile, system := or(c.Profile, DefaultProfile), or(c.System, DefaultSystem)
	res, err := c.store().SetProfile(profile, system)
	if err != nil {
		return fmt.Errorf("set-profile %s: %w", profile, err)
	}
	logger(log).Info("set-profile", "profile", profile, "system", res.StorePath, "generation", res.Generation,
		"new", res.NewGeneration, "switched", res.Switched)
	return nil
}

// Run runs the three steps in order. Like the shell script NixOS runs
// them from, a failed step does not stop the next ones; the errors are
// returned together.
func (c Config) Run(log *slog.Logger) error {
	return errors.Join(c.LoadDB(log), c.TouchNixOS(log), c.SetProfile(log))
}

// Default runs the three steps with the defaults on the real root: the
// live CD's post-boot commands. It fits stage2.PostBoot.
func Default(log *slog.Logger) error {
	return Config{}.Run(log)
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
