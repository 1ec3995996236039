package imagegen

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"github.com/DataDog/zstd"
	"github.com/dsnet/compress/bzip2"

	"github.com/nixlive/nixlive/internal/atomicfile"
)

// compressFile writes src compressed with algo ("zstd" or "bzip2") to dst,
// atomically: the compressImage option.
func compressFile(src, dst, algo string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := atomicfile.Create(dst, 0o644)
	if err != nil {
		return err
	}
	defer out.Abort()
	bw := bufio.NewWriterSize(out, 1<<20)
	var zw io.WriteCloser
	switch algo {
	case "zstd":
		zw = zstd.NewWriterLevel(bw, 3) // zstd's default, what NixOS's "zstd -T0" gives
	case "bzip2":
		zw, err = bzip2.NewWriter(bw, &bzip2.WriterConfig{Level: 9})
		if err != nil {
			return err
		}
	default:
		return fmt.Errorf("compressImage: unknown %q", algo)
	}
	if _, err := io.Copy(zw, bufio.NewReaderSize(in, 1<<20)); err != nil {
		return fmt.Errorf("compress %s: %w", dst, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compress %s: %w", dst, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("compress %s: %w", dst, err)
	}
	return out.Commit()
}
