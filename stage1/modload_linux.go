package stage1

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/nixlive/nixlive/internal/kmod"
)

// kernelCompression is the module compression the running kernel
// decompresses itself (/sys/module/compression: CONFIG_MODULE_DECOMPRESS,
// Linux 6.4 and later), "" if none. Read once.
var kernelCompression = sync.OnceValue(func() string {
	b, err := os.ReadFile("/sys/module/compression")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
})

// loadModuleFile loads one module file (p, named f in errors): a plain
// .ko with finit_module; a compressed one with finit_module and
// MODULE_INIT_COMPRESSED_FILE when the kernel decompresses that format
// itself, else (Linux before 6.4, or without CONFIG_MODULE_DECOMPRESS, or
// another format) decompressed here and given to init_module. here says
// that stage 1 decompressed it.
func loadModuleFile(p, f string) (here bool, err error) {
	c := kmod.Compression(f)
	if c == kmod.None || c == kernelCompression() {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return false, err
		}
		flags := 0
		if c != kmod.None {
			flags = unix.MODULE_INIT_COMPRESSED_FILE
		}
		err = unix.FinitModule(fd, "", flags)
		unix.Close(fd)
		// A kernel that names the format but refuses the flag should not
		// be: decompress here, as below, if it is.
		if c == kmod.None || !(errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP)) {
			return false, err
		}
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return false, err
	}
	img, err := kmod.Decompress(f, data)
	if err != nil {
		return false, err
	}
	return true, unix.InitModule(img, "")
}

// decompressedNote says, for the timeline, who decompressed the modules
// loaded: n of them compressed, here of those by stage 1 (because the
// kernel decompresses none, or another format).
func decompressedNote(n, here int) string {
	kernel := kernelCompression()
	if kernel == "" {
		kernel = "none"
	}
	switch {
	case n == 0:
		return ""
	case here == 0:
		return fmt.Sprintf(" (%d decompressed by the kernel)", n)
	case here == n:
		return fmt.Sprintf(" (%d decompressed by stage 1; the kernel decompresses %s)", n, kernel)
	}
	return fmt.Sprintf(" (%d decompressed by the kernel, %d by stage 1)", n-here, here)
}
