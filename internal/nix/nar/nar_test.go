package nar_test

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gonar "github.com/nix-community/go-nix/pkg/nar"
	"github.com/nix-community/go-nix/pkg/nixbase32"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/nixtest"
	"github.com/nixlive/nixlive/internal/nix/nar"
)

func TestHelloVector(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hello")
	require.NoError(t, os.WriteFile(p, []byte("hello\n"), 0o644))
	h, n, err := nar.Hash(p)
	require.NoError(t, err)
	require.Equal(t, uint64(120), n)
	require.Equal(t, "04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw", nixbase32.EncodeToString(h[:]))
}

// TestInfoStream checks that the extra writer sees exactly the bytes that
// were hashed and counted.
func TestInfoStream(t *testing.T) {
	dir := variedTree(t)
	var buf bytes.Buffer
	h, n, err := nar.InfoVisit(dir, &buf, nil)
	require.NoError(t, err)
	require.Equal(t, uint64(buf.Len()), n)
	require.Equal(t, sha256.Sum256(buf.Bytes()), h)

	var dump bytes.Buffer
	require.NoError(t, gonar.DumpPath(&dump, dir))
	require.Equal(t, buf.Bytes(), dump.Bytes())
}

func TestErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	_, _, err := nar.Hash(missing)
	require.ErrorContains(t, err, missing)

	// A FIFO has no NAR form; the error must name it.
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	_, _, err = nar.Hash(dir)
	require.ErrorContains(t, err, fifo)

	if os.Geteuid() != 0 {
		// Root reads unreadable files anyway; only check as a user.
		dir := t.TempDir()
		f := filepath.Join(dir, "secret")
		require.NoError(t, os.WriteFile(f, []byte("x"), 0o000))
		_, _, err = nar.Hash(dir)
		require.ErrorContains(t, err, f)
	}
}

// variedTree builds a tree exercising every NAR node kind: nested
// directories, empty files and directories, executables, symlinks
// (relative, absolute, dangling), names needing sorting by bytes, and
// contents whose lengths hit every padding remainder.
func variedTree(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree")
	must := func(err error) {
		t.Helper()
		require.NoError(t, err)
	}
	must(os.MkdirAll(filepath.Join(dir, "a/b/c"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "empty"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "a/b/c/deep"), []byte("deep\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "emptyfile"), nil, 0o644))
	must(os.WriteFile(filepath.Join(dir, "run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "Upper"), []byte("sorts before lower"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "a-b"), []byte("dash"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "a.b"), []byte("dot"), 0o600))
	for i := 0; i < 17; i++ {
		must(os.WriteFile(filepath.Join(dir, "a", strings.Repeat("p", i+1)), bytes.Repeat([]byte{byte(i)}, i), 0o644))
	}
	big := make([]byte, 3<<20+5)
	for i := range big {
		big[i] = byte(i*7 + i>>11)
	}
	must(os.WriteFile(filepath.Join(dir, "big"), big, 0o644))
	must(os.Symlink("a/b/c/deep", filepath.Join(dir, "rel")))
	must(os.Symlink("/nix/store/00000000000000000000000000000000-x", filepath.Join(dir, "abs")))
	must(os.Symlink("nowhere", filepath.Join(dir, "dangling")))
	return dir
}

// TestAgainstNix compares with nix-hash and the length of nix-store
// --dump on a varied tree, a single file, an executable and a symlink.
func TestAgainstNix(t *testing.T) {
	nixtest.HaveNix(t)
	dir := variedTree(t)
	for _, p := range []string{
		dir,
		filepath.Join(dir, "big"),
		filepath.Join(dir, "run.sh"),
		filepath.Join(dir, "emptyfile"),
		filepath.Join(dir, "rel"),
		filepath.Join(dir, "empty"),
	} {
		t.Run(filepath.Base(p), func(t *testing.T) {
			h, n, err := nar.Hash(p)
			require.NoError(t, err)
			require.Equal(t, nixtest.NarHash(t, p), nixbase32.EncodeToString(h[:]), "narHash")
			require.Equal(t, nixtest.NarSize(t, p), n, "narSize")
		})
	}
}

func BenchmarkHash(b *testing.B) {
	dir := b.TempDir()
	data := make([]byte, 64<<20)
	for i := range data {
		data[i] = byte(i)
	}
	require.NoError(b, os.WriteFile(filepath.Join(dir, "f"), data, 0o644))
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, _, err := nar.Hash(dir); err != nil {
			b.Fatal(err)
		}
	}
}

// TestWalkChangedWhileRead: a file rewritten after Walk opened it, while
// it is being read, is an error naming it (fstat after the read).
func TestWalkChangedWhileRead(t *testing.T) {
	for name, data := range map[string]string{"same size": "HELLO\n", "larger": "hello, world\n"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			f := filepath.Join(dir, "f")
			require.NoError(t, os.WriteFile(f, []byte("hello\n"), 0o644))
			var sum bytes.Buffer
			err := nar.Walk(&sum, dir, func(e *nar.Entry) error {
				if e.Content != nil {
					time.Sleep(10 * time.Millisecond) // a new ctime even on a coarse clock
					require.NoError(t, os.WriteFile(f, []byte(data), 0o644))
				}
				return nil
			})
			require.ErrorContains(t, err, f+" changed while it was read")
		})
	}
}
