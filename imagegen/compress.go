package imagegen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/DataDog/zstd"
	"github.com/dsnet/compress/bzip2"

	"github.com/nixlive/nixlive/internal/atomicfile"
)

// compressFile writes src compressed with algo ("zstd" or "bzip2") to dst,
// atomically: the compressImage option. It stops when ctx is done.
func compressFile(ctx context.Context, src, dst, algo string) error {
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
	if _, err := io.Copy(zw, ctxReader{ctx, bufio.NewReaderSize(in, 1<<20)}); err != nil {
		return fmt.Errorf("compress %s: %w", dst, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compress %s: %w", dst, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("compress %s: %w", dst, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return out.Commit()
}

// ctxReader reads r until ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
