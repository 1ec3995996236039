package iso9660

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/sqfscheck"
)

// Boot files as Debian ships them (syslinux, isolinux packages).
const (
	ckIsolinuxBin = "/usr/lib/ISOLINUX/isolinux.bin"
	ckIsohdpfxBin = "/usr/lib/ISOLINUX/isohdpfx.bin"
	ckLdlinuxC32  = "/usr/lib/syslinux/modules/bios/ldlinux.c32"
)

// ckNeedTools skips the test unless every tool is on PATH.
func ckNeedTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (make test installs it: scripts/deps.sh)", tool)
		}
	}
}

// ckNeedFiles skips the test unless the files exist.
func ckNeedFiles(t testing.TB, files ...string) {
	t.Helper()
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("%s missing (isolinux/syslinux-common packages; make test installs them): %v", f, err)
		}
	}
}

// ckToolTimeout bounds every external reader: one that loops on a broken
// image fails the test instead of hanging it.
const ckToolTimeout = 60 * time.Second

// ckRunTool runs a command and returns its standard output; a failure
// includes standard error.
func ckRunTool(t testing.TB, name string, args ...string) string {
	t.Helper()
	stdout, stderr, err := ckRunCmd(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, ckTailOf(stderr, 4000))
	}
	return stdout
}

// ckRunCombined is ckRunTool with standard error appended to the output
// (xorriso reports some results there).
func ckRunCombined(t testing.TB, name string, args ...string) string {
	t.Helper()
	stdout, stderr, err := ckRunCmd(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, ckTailOf(stdout+stderr, 4000))
	}
	return stdout + stderr
}

func ckRunCmd(name string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ckToolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("killed after %v (looping on a broken image?): %w", ckToolTimeout, err)
	}
	return stdout.String(), stderr.String(), err
}

func ckTailOf(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// ckEfiImage makes a small FAT image, standing in for the EFI boot image.
func ckEfiImage(t testing.TB, dir string) string {
	t.Helper()
	ckNeedTools(t, "mkfs.vfat", "mcopy")
	p := filepath.Join(dir, "efi.img")
	require.NoError(t, os.WriteFile(p, make([]byte, 1440<<10), 0o644))
	ckRunTool(t, "mkfs.vfat", "-n", "EFIBOOT", "-i", "12345678", p)
	txt := filepath.Join(dir, "grub.cfg")
	require.NoError(t, os.WriteFile(txt, []byte("set root=(cd0)\n"), 0o644))
	ckRunTool(t, "mcopy", "-i", p, txt, "::/GRUB.CFG")
	return p
}

// ckAddTree adds the tree under src to w, in ListDir (path) order, with the
// source's modes, times and contents.
func ckAddTree(w *Writer, src string) error {
	entries, err := sqfscheck.ListDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		h := &Header{Name: e.Path, Mode: e.Mode, ModTime: e.ModTime, Linkname: e.Target}
		if e.Mode.IsRegular() {
			h.Size = e.Size
		}
		if err := w.WriteHeader(h); err != nil {
			return err
		}
		if !e.Mode.IsRegular() || e.Size == 0 {
			continue
		}
		f, err := os.Open(filepath.Join(src, filepath.FromSlash(e.Path)))
		if err != nil {
			return err
		}
		_, err = io.Copy(w, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
	}
	return nil
}

// ckWriteImage creates out and writes an image into it with add.
func ckWriteImage(t testing.TB, out string, opts Options, add func(w *Writer) error) {
	t.Helper()
	f, err := os.Create(out)
	require.NoError(t, err)
	defer f.Close()
	w, err := NewWriter(f, opts)
	require.NoError(t, err)
	require.NoError(t, add(w))
	require.NoError(t, w.Close())
	require.NoError(t, f.Close())
}

// ckBootOptions is the NixOS-like boot setup: isolinux for BIOS with a
// boot-info-table and 4 loaded sectors, efi.img for UEFI, isohybrid MBR
// and GPT.
func ckBootOptions(t testing.TB, volID string) Options {
	t.Helper()
	mbr, err := os.ReadFile(ckIsohdpfxBin)
	require.NoError(t, err)
	return Options{
		VolumeID: volID,
		ModTime:  time.Unix(315532800, 0),
		Joliet:   true,
		Catalog:  "isolinux/boot.cat",
		Boot: []BootEntry{
			{Platform: BIOS, Path: "isolinux/isolinux.bin", LoadSectors: 4, BootInfoTable: true},
			{Platform: EFI, Path: "boot/efi.img"},
		},
		Hybrid: &Hybrid{MBR: mbr, GPT: true},
	}
}

// ckCopyTestFile copies a regular file, giving it mode.
func ckCopyTestFile(dst, src string, mode fs.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, data, mode)
}

// ckErrContains asserts that err is non-nil and mentions every part.
func ckErrContains(t testing.TB, err error, parts ...string) {
	t.Helper()
	require.Error(t, err)
	for _, p := range parts {
		require.Contains(t, err.Error(), p)
	}
}
