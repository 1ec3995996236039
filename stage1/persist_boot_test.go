//go:build linux

package stage1_test

import (
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/internal/boottest/livetest"
	"github.com/nixlive/nixlive/internal/boottest/vmtest"
)

// TestPersistBoot boots the test ISO written to a disk with a nixlive-rw
// partition after it ("imagegen persist"), the same disk each time (no
// snapshot): without "persistence" the partition is not touched; with it,
// / is on the partition, and a file the first boot writes below /root is
// there in the second; the file system is clean after (e2fsck -fn).
func TestPersistBoot(t *testing.T) {
	vmtest.HaveQEMU(t)
	for _, tool := range []string{"mkfs.ext4", "e2fsck", "sfdisk"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install e2fsprogs and fdisk", tool)
		}
	}
	env := livetest.New(t)
	env.Start(livetest.ISO)
	sum := &summary{}
	t.Cleanup(func() { t.Logf("boots:\n\t%s", strings.Join(sum.lines, "\n\t")) })
	img, off, size := env.PersistedDisk(t, "--size", "64M")
	partSum := func() [32]byte {
		f, err := os.Open(img)
		require.NoError(t, err)
		defer f.Close()
		h := sha256.New()
		_, err = io.Copy(h, io.NewSectionReader(f, off, size))
		require.NoError(t, err)
		var s [32]byte
		copy(s[:], h.Sum(nil))
		return s
	}
	boot := func(name string, extra ...string) vmtest.Options {
		return vmtest.Options{
			Name:   name,
			Kernel: env.Kernel.Vmlinuz,
			Initrd: env.Path(t, livetest.Initrd),
			Append: env.Cmdline(t, extra...),
			Disks:  []vmtest.Disk{{Path: img}},
		}
	}

	// Without persistence: the boot of today, the partition untouched.
	before := partSum()
	r := bootToPass(t, sum, boot("no-persistence"), liveChecks, cdSteps)
	assert.Equal(t, "source=/dev/sda", checkDetail(r, "iso-iso9660"))
	assert.Equal(t, before, partSum(), "a boot without persistence wrote to the nixlive-rw partition")
	if t.Failed() {
		return
	}

	run := func(name string, extra ...string) consoleReport {
		t.Helper()
		vm := vmtest.Start(t, boot(name, extra...))
		expect(t, vm, `^`+regexp.QuoteMeta(livetest.ResultPrefix))
		vm.MustWait(bootTimeout)
		console := vm.Console()
		r, err := livetest.Parse(console)
		require.NoError(t, err)
		var failed []string // the checks of the layout without persistence
		for _, c := range r.Checks {
			if !c.OK {
				failed = append(failed, c.Name)
			}
		}
		// The checks of the layout without persistence that fail with /
		// on the disk; overlay-dirs-0700 once the first boot's stage 2
		// made the store (the upper directory) 1775, as NixOS's does.
		assert.Subset(t, []string{"fstab-types", "no-stray-mounts", "root-tmpfs", "overlay-dirs-0700"}, failed, "checks that failed")
		sum.add("%-16s %s in %v wall (failed, as expected with / on disk: %v)", name, r.Result, vm.Elapsed().Round(100*time.Millisecond), failed)
		for _, line := range strings.Split(console, "\n") {
			if strings.Contains(line, "persistence") && strings.Contains(line, "stage1") {
				t.Logf("%s: %s", name, strings.TrimSpace(line))
			}
		}
		return consoleReport{Report: r, console: console}
	}
	ok := func(r consoleReport, name string) {
		t.Helper()
		for _, c := range r.Checks {
			if c.Name == name {
				assert.True(t, c.OK, "check %s: %s", name, c.Detail)
				return
			}
		}
		t.Errorf("no check %s", name)
	}

	// Boot 1: / on the partition, a file written below /root.
	r = run("persist-1", "persistence", "check.persist=write")
	ok(r, "persist-root")
	ok(r, "persist-write")
	ok(r, "store-writable")
	ok(r, "store-file-intact")
	_, msg, found := livetest.Stage1Log(r.console, "persistence")
	if assert.True(t, found, "stage 1 logs the persistence step") {
		assert.Contains(t, msg, "ext4 /dev/sda")
		assert.Contains(t, msg, "storeLayer=true rebuildDB=true")
	}
	assert.Contains(t, r.console, "are kept on /dev/sda", "the first boot's message")
	assert.Equal(t, "rebuild-db=true", checkDetail(r, "persist-note"), "stage 1's note to stage 2")

	// Boot 2: the same disk; the file is there, the store layer kept.
	r = run("persist-2", "persistence", "check.persist=read")
	ok(r, "persist-root")
	ok(r, "persist-read")
	ok(r, "store-file-intact")
	_, msg, found = livetest.Stage1Log(r.console, "persistence")
	if assert.True(t, found, "stage 1 logs the persistence step") {
		assert.Contains(t, msg, "storeLayer=true rebuildDB=false", "the store layer kept for the same image")
	}
	assert.NotContains(t, r.console, "set aside")
	assert.Equal(t, "rebuild-db=false", checkDetail(r, "persist-note"), "no note: the database is kept")

	// The file system is clean.
	part := filepath.Join(t.TempDir(), "part.ext4")
	require.NoError(t, livetest.ExtractRange(img, off, size, part))
	out, err := exec.Command("e2fsck", "-fn", part).CombinedOutput()
	assert.NoError(t, err, "e2fsck -fn on the nixlive-rw partition:\n%s", out)
	t.Logf("e2fsck -fn:\n%s", out)
}
