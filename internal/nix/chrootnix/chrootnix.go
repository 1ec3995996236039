// Package chrootnix is how nixlive runs Debian's Nix tools (nix-store,
// nix-instantiate, nix-build) without touching the host's /nix: always on
// a chroot store (--store DIR), with no build users (there is no nixbld
// group to drop privileges to), no substituters (no network), a private
// HOME, and nothing of the caller's environment that would point Nix at a
// daemon, another store or a user's nix.conf. Tests (internal/boottest/
// nixtest) and the benchmarks share it.
package chrootnix

import (
	"os"
	"path/filepath"
	"strings"
)

// Args go first on every command line of a Nix tool on the store at
// storeRoot.
func Args(storeRoot string) []string {
	return []string{"--store", storeRoot, "--option", "build-users-group", ""}
}

// Env is the environment for Nix tools with home as HOME (nix-instantiate
// and nix-env write caches and profiles there): os.Environ() without the
// variables Nix reads, plus the settings above.
func Env(home string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "HOME", k == "NIX_REMOTE", k == "NIX_CONFIG", k == "NIX_PATH",
			k == "XDG_CACHE_HOME", k == "XDG_CONFIG_HOME", k == "XDG_DATA_HOME",
			strings.HasPrefix(k, "NIX_STORE"), strings.HasPrefix(k, "NIX_STATE"),
			strings.HasPrefix(k, "NIX_CONF"), strings.HasPrefix(k, "NIX_USER_CONF"):
			continue
		}
		out = append(out, kv)
	}
	return append(out,
		"HOME="+home,
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		// An empty user config dir list keeps ~/.config/nix/nix.conf of
		// the real user out of the picture.
		"NIX_USER_CONF_FILES=",
		// No substituters: nix-build would otherwise ask cache.nixos.org
		// about every output first (seconds of network timeouts here).
		"NIX_CONFIG=build-users-group =\nsubstituters =",
	)
}
