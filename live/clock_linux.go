package live

import (
	"time"

	"golang.org/x/sys/unix"
)

// Uptime is CLOCK_MONOTONIC: time since boot, the kernel log's clock, which
// every stage's timeline uses.
func Uptime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
