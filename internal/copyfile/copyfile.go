// Package copyfile copies a file's bytes to a new file: the one copy loop
// that stage 1 (copytoram), the kernel module subset, the tests' fixtures
// and the benchmarks share.
package copyfile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Copy copies src to dst, creating or truncating dst with perm (less the
// umask). Reads go through a 1 MiB buffer, so a large file (a squashfs
// store copied to RAM) moves in few system calls.
func Copy(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(out, in, make([]byte, 1<<20)); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return out.Close()
}
