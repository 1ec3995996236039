// Package postboot does the NixOS live CD's post-boot commands in
// process, without Nix:
//
//	nix-store --load-db < /nix/store/nix-path-registration
//	touch /etc/NIXOS
//	nix-env -p /nix/var/nix/profiles/system --set /run/current-system
//
// It only orchestrates: the database is nixdb's, the profile profile's,
// and both leave on disk what Nix 2.8 leaves, inside a root directory that
// stands for "/" (Nix's `--store DIR`). See Config.Run for the steps and
// Default for stage 2; the command line is cmd/postboot. It does not make
// /nix/store owned by root:nixbld (Nix does as root with
// build-users-group set): stage 2 does that before.
package postboot

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nixlive/nixlive/internal/nix/nixdb"
	"github.com/nixlive/nixlive/internal/nix/nixroot"
	"github.com/nixlive/nixlive/internal/nix/profile"
	"github.com/nixlive/nixlive/live"
)

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

func (c Config) store() *nixdb.Store { return &nixdb.Store{Root: c.Root, Now: c.Now} }

func (c Config) registration() (string, error) {
	if c.Registration != "" {
		return c.Registration, nil
	}
	return nixroot.New(c.Root).Host(DefaultRegistration)
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
	if err := touchNixOS(nixroot.New(c.Root)); err != nil {
		return fmt.Errorf("touch /etc/NIXOS: %w", err)
	}
	logger(log).Info("touch /etc/NIXOS")
	return nil
}

// SetProfile runs the set-profile step.
func (c Config) SetProfile(log *slog.Logger) error {
	prof, system := or(c.Profile, DefaultProfile), or(c.System, DefaultSystem)
	res, err := profile.Set(c.store(), prof, system)
	if err != nil {
		return fmt.Errorf("set-profile %s: %w", prof, err)
	}
	logger(log).Info("set-profile", "profile", prof, "system", res.StorePath, "generation", res.Generation,
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

// touchNixOS creates /etc/NIXOS (and /etc) inside the root, or updates
// its times if it exists, as `touch /etc/NIXOS` does: the file marks the
// system as NixOS for NixOS's tools.
func touchNixOS(r nixroot.Root) error {
	p, err := r.Host("/etc/NIXOS")
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
