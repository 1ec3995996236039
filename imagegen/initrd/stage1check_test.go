package initrd_test

import (
	"context"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nixlive/nixlive/imagegen/initrd"
)

// tinyELF is a minimal ELF file: a header and its program headers (one
// PT_LOAD, and a PT_INTERP when interp is set).
func tinyELF(class elf.Class, machine elf.Machine, typ elf.Type, interp bool) []byte {
	if class == elf.ELFCLASS32 {
		b := make([]byte, 52)
		copy(b, "\x7fELF\x01\x01\x01")
		le := binary.LittleEndian
		le.PutUint16(b[16:], uint16(typ))
		le.PutUint16(b[18:], uint16(machine))
		le.PutUint32(b[20:], 1)
		le.PutUint16(b[40:], 52)
		return b
	}
	le := binary.LittleEndian
	n := 1
	if interp {
		n = 2
	}
	b := make([]byte, 64+56*n+32)
	copy(b, "\x7fELF\x02\x01\x01")
	le.PutUint16(b[16:], uint16(typ))
	le.PutUint16(b[18:], uint16(machine))
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[24:], 0x401000) // entry
	le.PutUint64(b[32:], 64)       // phoff
	le.PutUint16(b[52:], 64)       // ehsize
	le.PutUint16(b[54:], 56)       // phentsize
	le.PutUint16(b[56:], uint16(n))
	ph := b[64:]
	le.PutUint32(ph[0:], uint32(elf.PT_LOAD))
	le.PutUint32(ph[4:], uint32(elf.PF_R|elf.PF_X))
	le.PutUint64(ph[16:], 0x400000)
	le.PutUint64(ph[32:], uint64(len(b)))
	le.PutUint64(ph[40:], uint64(len(b)))
	if interp {
		ph = b[64+56:]
		le.PutUint32(ph[0:], uint32(elf.PT_INTERP))
		le.PutUint64(ph[8:], uint64(64+56*n))
		le.PutUint64(ph[32:], 28)
		copy(b[64+56*n:], "/lib64/ld-linux-x86-64.so.2\x00")
	}
	return b
}

// TestStage1Checked: --stage1 must be what the kernel can run as /init
// with nothing else in the initrd: an x86-64 ELF executable, statically
// linked (no PT_INTERP), with an executable mode. Anything else is refused
// before the initrd is written, saying what is wrong; the boot would die
// in a kernel panic.
func TestStage1Checked(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, mode))
		require.NoError(t, os.Chmod(p, mode))
		return p
	}
	static := tinyELF(elf.ELFCLASS64, elf.EM_X86_64, elf.ET_EXEC, false)
	for _, tc := range []struct {
		name string
		file string
		why  string
	}{
		{"text", write("text", []byte("#!/bin/sh\necho hi\n"), 0o755), "not an ELF"},
		{"empty", write("empty", nil, 0o755), "not an ELF"},
		{"dynamic", write("dynamic", tinyELF(elf.ELFCLASS64, elf.EM_X86_64, elf.ET_EXEC, true), 0o755), "dynamically linked"},
		{"pie-dynamic", write("pie", tinyELF(elf.ELFCLASS64, elf.EM_X86_64, elf.ET_DYN, true), 0o755), "/lib64/ld-linux-x86-64.so.2"},
		{"arm64", write("arm64", tinyELF(elf.ELFCLASS64, elf.EM_AARCH64, elf.ET_EXEC, false), 0o755), "EM_AARCH64"},
		{"32-bit", write("i386", tinyELF(elf.ELFCLASS32, elf.EM_386, elf.ET_EXEC, false), 0o755), "ELFCLASS32"},
		{"object", write("object", tinyELF(elf.ELFCLASS64, elf.EM_X86_64, elf.ET_REL, false), 0o755), "ET_REL"},
		{"not-executable", write("noexec", static, 0o644), "not executable"},
		{"directory", dir, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "initrd")
			_, err := (&initrd.Initrd{Output: out, Stage1: tc.file}).Build(context.Background())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.file)
			assert.Contains(t, err.Error(), tc.why)
			assert.NoFileExists(t, out)
			t.Log(err)
		})
	}
	t.Run("static", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "initrd")
		_, err := (&initrd.Initrd{Output: out, Stage1: write("static", static, 0o755)}).Build(context.Background())
		require.NoError(t, err)
		_, err = (&initrd.Initrd{Output: out, Stage1: write("static-pie", tinyELF(elf.ELFCLASS64, elf.EM_X86_64, elf.ET_DYN, false), 0o755)}).Build(context.Background())
		require.NoError(t, err, "a static PIE has no PT_INTERP either")
	})
}
