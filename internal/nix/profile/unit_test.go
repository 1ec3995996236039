package profile

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGCRootName(t *testing.T) {
	// Measured: `nix-env --store /tmp/pb/s2 -p /tmp/pb/s2/nix/var/nix/profiles/system --set ...`
	// made gcroots/auto/0qkdfg65adn7nfzsz3k6z7aakzmlz904 for generation 1
	// and bpg6pnrydh3j7y18hjv4dn66j0qdj1qd for generation 2.
	require.Equal(t, "0qkdfg65adn7nfzsz3k6z7aakzmlz904", GCRootName("/tmp/pb/s2/nix/var/nix/profiles/system-1-link"))
	require.Equal(t, "bpg6pnrydh3j7y18hjv4dn66j0qdj1qd", GCRootName("/tmp/pb/s2/nix/var/nix/profiles/system-2-link"))
}

func TestParseGeneration(t *testing.T) {
	for _, c := range []struct {
		name string
		n    int
		ok   bool
	}{
		{"system-1-link", 1, true},
		{"system-42-link", 42, true},
		{"system-007-link", 7, true},
		{"system-0-link", 0, true},
		{"system-3-link.tmp-12-34", 3, true}, // as Nix's parseName
		{"system", 0, false},
		{"system-link", 0, false},
		{"system--link", 0, false},
		{"system-x-link", 0, false},
		{"system--1-link", 0, false},
		{"system-+1-link", 0, false},
		{"system-1", 0, false},
		{"systemd-1-link", 0, false},
		{"other-1-link", 0, false},
		{".system-1-link.tmp-1-2", 0, false},
		{"system-99999999999-link", 0, false}, // not an unsigned int
	} {
		n, ok := parseGeneration("system", c.name)
		require.Equal(t, c.ok, ok, c.name)
		require.Equal(t, c.n, n, c.name)
	}
}
