package stage1

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// attachLoop puts file on a free loop device, read-only and auto-clearing
// (the device goes away when its last user does), in one LOOP_CONFIGURE
// call. The caller must keep the device open, by not calling release, until
// something holds it (a mount).
func attachLoop(file string) (dev string, release func(), err error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return "", nil, err
	}
	defer ctl.Close()
	backing, err := os.Open(file)
	if err != nil {
		return "", nil, err
	}
	defer backing.Close()
	for tries := 0; tries < 8; tries++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return "", nil, fmt.Errorf("LOOP_CTL_GET_FREE: %w", err)
		}
		dev = fmt.Sprintf("/dev/loop%d", n)
		lf, err := os.OpenFile(dev, os.O_RDONLY, 0)
		if err != nil {
			return "", nil, err
		}
		cfg := unix.LoopConfig{Fd: uint32(backing.Fd())}
		cfg.Info.Flags = unix.LO_FLAGS_READ_ONLY | unix.LO_FLAGS_AUTOCLEAR
		copy(cfg.Info.File_name[:], file)
		err = unix.IoctlLoopConfigure(int(lf.Fd()), &cfg)
		if err == unix.EBUSY { // taken between GET_FREE and CONFIGURE
			lf.Close()
			continue
		}
		if err != nil {
			lf.Close()
			return "", nil, fmt.Errorf("LOOP_CONFIGURE %s: %w", dev, err)
		}
		return dev, func() { lf.Close() }, nil
	}
	return "", nil, fmt.Errorf("no free loop device after 8 tries")
}
