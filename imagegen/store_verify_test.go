package imagegen

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/imagegen/squashfs"
	"github.com/nixlive/nixlive/internal/nix/closure"
	"github.com/nixlive/nixlive/internal/nix/storepath"
)

// verifyStore makes a store root with one store path, foo, holding
// bin/x (12 bytes), and returns the root and the store path.
func verifyStore(t *testing.T) (root storepath.Root, foo string) {
	t.Helper()
	dir := t.TempDir()
	foo = "/nix/store/" + strings.Repeat("a", 32) + "-foo"
	host := filepath.Join(dir, foo)
	require.NoError(t, os.MkdirAll(filepath.Join(host, "bin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(host, "bin/x"), []byte("hello world\n"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(host, "README"), []byte("read me\n"), 0o644))
	return storepath.Root{Dir: dir}, foo
}

// requireNoOutput checks that a failed build left nothing in dir.
func requireNoOutput(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	require.Empty(t, names, "a failed build left files behind")
}

// changes are the edits made to bin/x between the passes, with what the
// error must say about them.
var changes = []struct {
	name string
	edit func(t *testing.T, file string)
	want string
}{
	{"same size, other content", func(t *testing.T, file string) {
		// Make sure the new ctime differs even on a coarse clock.
		time.Sleep(10 * time.Millisecond)
		require.NoError(t, os.WriteFile(file, []byte("HELLO WORLD\n"), 0o755))
	}, "when hashed"},
	{"larger", func(t *testing.T, file string) {
		require.NoError(t, os.WriteFile(file, []byte("hello world, and more\n"), 0o755))
	}, "size 12 bytes when hashed, 22 bytes when written"},
	{"smaller", func(t *testing.T, file string) {
		require.NoError(t, os.WriteFile(file, []byte("hello\n"), 0o755))
	}, "size 12 bytes when hashed, 6 bytes when written"},
}

// TestStoreFileChangedBetweenPasses: a store file that changes after the
// hash pass and before the write pass fails the build, naming the file
// and what changed, and leaves no output.
func TestStoreFileChangedBetweenPasses(t *testing.T) {
	for _, ch := range changes {
		t.Run(ch.name, func(t *testing.T) {
			root, foo := verifyStore(t)
			outDir := t.TempDir()
			img := &StoreImage{
				Output:             filepath.Join(outDir, "store.squashfs"),
				RegistrationOutput: filepath.Join(outDir, "registration"),
				Roots:              []string{foo},
				Store:              root,
				Compression:        squashfs.Compression{Algorithm: squashfs.Gzip, Level: 1},
				Epoch:              time.Unix(DefaultSourceDateEpoch, 0),
			}
			img.betweenPasses = func(*closure.Closure) { ch.edit(t, root.HostPath(foo+"/bin/x")) }
			_, err := img.Build(context.Background())
			require.Error(t, err)
			require.ErrorContains(t, err, foo+"/bin/x changed while the image was built")
			require.ErrorContains(t, err, ch.want)
			requireNoOutput(t, outDir)
		})
	}
}

// TestStoreFileChangedAddTo: the same through AddTo, as imagegen build
// uses it, with the closure computed before the change.
func TestStoreFileChangedAddTo(t *testing.T) {
	root, foo := verifyStore(t)
	img := &StoreImage{Roots: []string{foo}, Store: root, Epoch: time.Unix(DefaultSourceDateEpoch, 0)}
	c, reg, err := img.Closure()
	require.NoError(t, err)
	changes[1].edit(t, root.HostPath(foo+"/bin/x"))
	f, err := os.Create(filepath.Join(t.TempDir(), "img"))
	require.NoError(t, err)
	defer f.Close()
	w, err := squashfs.NewWriter(f, squashfs.Options{Compression: squashfs.Compression{Algorithm: squashfs.Gzip, Level: 1}})
	require.NoError(t, err)
	defer w.Close()
	err = img.AddTo(context.Background(), w, c, reg)
	require.ErrorContains(t, err, foo+"/bin/x changed while the image was built (size 12 bytes when hashed, 22 bytes when written)")
}

// TestClosureInfoMismatch: with --closure-info the hashes come from Nix,
// not from a hash pass of ours; the bytes written must still match the
// registration's narHash and narSize, else the build fails naming the
// store path, and leaves no output.
func TestClosureInfoMismatch(t *testing.T) {
	for _, ch := range changes {
		t.Run(ch.name, func(t *testing.T) {
			root, foo := verifyStore(t)
			c, err := closure.FromStoreRoot(root, []string{foo})
			require.NoError(t, err)
			info := t.TempDir()
			require.NoError(t, c.WriteClosureInfo(info))
			ch.edit(t, root.HostPath(foo+"/bin/x"))

			outDir := t.TempDir()
			img := &StoreImage{
				Output:      filepath.Join(outDir, "store.squashfs"),
				Roots:       []string{foo},
				Store:       root,
				ClosureInfo: info,
				Compression: squashfs.Compression{Algorithm: squashfs.Gzip, Level: 1},
				Epoch:       time.Unix(DefaultSourceDateEpoch, 0),
			}
			_, err = img.Build(context.Background())
			require.Error(t, err)
			require.ErrorContains(t, err, foo+" does not match its registration in "+filepath.Join(info, "registration"))
			if ch.name != changes[0].name {
				require.ErrorContains(t, err, "NAR size")
			}
			requireNoOutput(t, outDir)
		})
	}
}

// TestStoreUnchangedBuilds: the checks pass on an unchanged store, from
// a hash pass and from a closureInfo.
func TestStoreUnchangedBuilds(t *testing.T) {
	root, foo := verifyStore(t)
	c, err := closure.FromStoreRoot(root, []string{foo})
	require.NoError(t, err)
	info := t.TempDir()
	require.NoError(t, c.WriteClosureInfo(info))
	for _, ci := range []string{"", info} {
		out := filepath.Join(t.TempDir(), "store.squashfs")
		img := &StoreImage{Output: out, Roots: []string{foo}, Store: root, ClosureInfo: ci,
			Compression: squashfs.Compression{Algorithm: squashfs.Gzip, Level: 1}, Epoch: time.Unix(DefaultSourceDateEpoch, 0)}
		_, err := img.Build(context.Background())
		require.NoError(t, err)
		require.FileExists(t, out)
	}
}

// TestStoreStampsOnlyChangedBuilds: a touch, a chmod that NAR does not
// record, or a hard link (as nix-store --optimise makes) between the passes
// changes a file's stamps but not its bytes: the build goes on.
func TestStoreStampsOnlyChangedBuilds(t *testing.T) {
	for name, edit := range map[string]func(file string) error{
		"touched": func(file string) error { return os.Chtimes(file, time.Unix(1, 0), time.Unix(1, 0)) },
		"hard linked": func(file string) error { // from the store's .links, outside the path
			return os.Link(file, filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(file))), ".links-x"))
		},
		"group write": func(file string) error { return os.Chmod(file, 0o775) },
	} {
		t.Run(name, func(t *testing.T) {
			root, foo := verifyStore(t)
			out := filepath.Join(t.TempDir(), "store.squashfs")
			img := &StoreImage{Output: out, Roots: []string{foo}, Store: root,
				Compression: squashfs.Compression{Algorithm: squashfs.Gzip, Level: 1}, Epoch: time.Unix(DefaultSourceDateEpoch, 0)}
			img.betweenPasses = func(*closure.Closure) {
				time.Sleep(10 * time.Millisecond) // a ctime that differs even on a coarse clock
				require.NoError(t, edit(root.HostPath(foo+"/bin/x")))
			}
			_, err := img.Build(context.Background())
			require.NoError(t, err)
			require.FileExists(t, out)
		})
	}
}

// TestStorePathChangedBetweenPasses: changes no file stamp shows (a file
// removed, a link retargeted) are caught by the NAR hash of what is
// written, naming the store path.
func TestStorePathChangedBetweenPasses(t *testing.T) {
	for name, edit := range map[string]func(host string) error{
		"file removed": func(host string) error { return os.Remove(filepath.Join(host, "README")) },
		"link added":   func(host string) error { return os.Symlink("x", filepath.Join(host, "bin/y")) },
	} {
		t.Run(name, func(t *testing.T) {
			root, foo := verifyStore(t)
			outDir := t.TempDir()
			img := &StoreImage{Output: filepath.Join(outDir, "store.squashfs"), Roots: []string{foo}, Store: root,
				Compression: squashfs.Compression{Algorithm: squashfs.Gzip, Level: 1}, Epoch: time.Unix(DefaultSourceDateEpoch, 0)}
			img.betweenPasses = func(*closure.Closure) { require.NoError(t, edit(root.HostPath(foo))) }
			_, err := img.Build(context.Background())
			require.ErrorContains(t, err, foo+" changed while the image was built (NAR hash sha256:")
			t.Log(err)
			requireNoOutput(t, outDir)
		})
	}
}
