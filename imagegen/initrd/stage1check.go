package initrd

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// checkStage1 makes sure a prebuilt stage 1 can be the initrd's /init: the
// kernel runs it with nothing else in the initrd, so it must be an x86-64
// ELF executable, statically linked (no PT_INTERP: no loader to run it
// with) and executable. The boot would otherwise end in a kernel panic.
func checkStage1(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("initrd: stage1: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("initrd: stage1 %s: not a regular file", p)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("initrd: stage1 %s: not executable (mode %v)", p, fi.Mode().Perm())
	}
	f, err := elf.Open(p)
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("initrd: stage1 %s: not an ELF executable (%v)", p, err)
		}
		return fmt.Errorf("initrd: stage1: %w", err)
	}
	defer f.Close()
	switch {
	case f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64:
		return fmt.Errorf("initrd: stage1 %s: a %v %v ELF file, want ELFCLASS64 EM_X86_64", p, f.Class, f.Machine)
	case f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN:
		return fmt.Errorf("initrd: stage1 %s: an ELF file of type %v, want an executable (ET_EXEC, or ET_DYN for a static PIE)", p, f.Type)
	}
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		interp, _ := io.ReadAll(io.LimitReader(prog.Open(), 4096))
		return fmt.Errorf("initrd: stage1 %s: dynamically linked (PT_INTERP %s), want a static binary (CGO_ENABLED=0)", p, strings.TrimRight(string(interp), "\x00"))
	}
	return nil
}
