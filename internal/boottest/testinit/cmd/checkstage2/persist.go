package main

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/nixlive/nixlive/live"
)

const ext4Magic = 0xEF53

// persistFile is the file the persistence boot test writes in one boot and
// finds in the next.
const persistFile = "/root/nixlive-persist-test"

// persistence, for check.persist=write or check.persist=read: / is on the
// persistence file system (ext4), which is mounted at live.PersistDir,
// and persistFile is written (write) or found as the first boot wrote it
// (read).
func (c *checker) persistence(mode string) {
	ms := mounts()
	c.check("persist-root", fsMagic("/") == ext4Magic && fsMagic(live.PersistDir) == ext4Magic,
		fmt.Sprintf("/=%s(%s) %s=%s(%s) rw-store=%s", ms["/"].fstype, ms["/"].source, live.PersistDir,
			ms[live.PersistDir].fstype, ms[live.PersistDir].source, ms[live.RWStore].fstype))
	// The note stage 1 leaves when the Nix database is to be rebuilt
	// (live.RebuildDBNote): reported, for the test to judge.
	_, err := os.Stat(live.RebuildDBNote)
	c.check("persist-note", err == nil || errors.Is(err, os.ErrNotExist), fmt.Sprintf("rebuild-db=%v", err == nil))
	const content = "written in the first boot\n"
	switch mode {
	case "write":
		err := os.MkdirAll("/root", 0o700)
		if err == nil {
			err = os.WriteFile(persistFile, []byte(content), 0o644)
		}
		c.check("persist-write", err == nil, fmt.Sprint(err))
	case "read":
		b, err := os.ReadFile(persistFile)
		c.check("persist-read", err == nil && string(b) == content, fmt.Sprintf("%q err=%v", b, err))
	}
}

// freezePersistence flushes the persistence file system and its journal to
// the disk and freezes it (FIFREEZE: nothing more is written), so that the
// power-off leaves it as an unmount would: the test checks it with
// e2fsck on the host.
func freezePersistence() {
	unix.Sync()
	f, err := os.Open(live.PersistDir)
	if err != nil {
		fmt.Printf("NIXLIVE-PERSIST freeze: %v\n", err)
		return
	}
	defer f.Close()
	err = unix.IoctlSetInt(int(f.Fd()), fiFreeze, 0)
	if errors.Is(err, unix.ENOTTY) {
		err = nil
	}
	fmt.Printf("NIXLIVE-PERSIST frozen err=%v\n", err)
}

// fiFreeze is FIFREEZE, _IOWR('X', 119, int), which x/sys/unix lacks.
const fiFreeze = 0xC0045877
