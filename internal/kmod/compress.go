package kmod

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"path"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// The compressions of module files, as the kernel names them in
// /sys/module/compression (CONFIG_MODULE_DECOMPRESS) and as their file
// names end: kmod's and the kernel's build write foo.ko.xz, foo.ko.zst and
// foo.ko.gz.
const (
	None = ""
	Gzip = "gzip"
	XZ   = "xz"
	Zstd = "zstd"
)

// Compression is the compression of a module file, from its name: None
// for a plain .ko.
func Compression(file string) string {
	switch path.Ext(file) {
	case ".xz":
		return XZ
	case ".zst":
		return Zstd
	case ".gz":
		return Gzip
	}
	return None
}

// maxModule bounds a decompressed module: the largest modules of a distro
// kernel are a few tens of MiB (amdgpu); a file that says more is damaged.
const maxModule = 256 << 20

// Decompress returns the ELF image of a module file's contents, data,
// decompressed as its name (see Compression) says; a plain .ko is returned
// as is. It is the fallback for kernels that cannot decompress modules
// themselves (before 6.4, or without CONFIG_MODULE_DECOMPRESS), whose
// init_module wants the bytes. Errors name the file.
func Decompress(file string, data []byte) ([]byte, error) {
	var r io.Reader
	var err error
	switch c := Compression(file); c {
	case None:
		return data, nil
	case Gzip:
		r, err = gzip.NewReader(bytes.NewReader(data))
	case XZ:
		// As the kernel's build writes them: CRC32 checks, 1 MiB dictionary.
		r, err = xz.ReaderConfig{SingleStream: true}.NewReader(bytes.NewReader(data))
	case Zstd:
		var d *zstd.Decoder
		d, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxModule))
		if err == nil {
			defer d.Close()
			var out []byte
			out, err = d.DecodeAll(data, nil)
			return checkELF(file, out, err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("kmod: %s: %w", file, err)
	}
	out, err := io.ReadAll(io.LimitReader(r, maxModule+1))
	if err == nil && len(out) > maxModule {
		err = fmt.Errorf("more than %d MiB decompressed", maxModule>>20)
	}
	return checkELF(file, out, err)
}

// checkELF makes sure that decompressed bytes are an ELF file, so that a
// file that is not what its name says fails here, naming it, and not in
// the kernel with EINVAL or ENOEXEC.
func checkELF(file string, out []byte, err error) ([]byte, error) {
	if err != nil {
		return nil, fmt.Errorf("kmod: %s: %s: %w", file, Compression(file), err)
	}
	if !bytes.HasPrefix(out, []byte("\x7fELF")) {
		return nil, fmt.Errorf("kmod: %s: decompressed, it is not an ELF file", file)
	}
	return out, nil
}
