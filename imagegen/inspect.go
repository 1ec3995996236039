package imagegen

import (
	"fmt"
	"io"

	"github.com/nixlive/nixlive/imagegen/iso9660"
)

// Inspect prints what an ISO is: its label, boot entries, partition tables,
// EFI binaries with their signers, and files — what one reaches for xorriso or isoinfo to learn.
func Inspect(w io.Writer, r io.ReaderAt, files bool) error {
	im, err := iso9660.Open(r)
	if err != nil {
		return err
	}
	var entries []iso9660.Entry
	byLBA := map[uint32]string{}
	if err := im.Walk(func(e iso9660.Entry) error {
		entries = append(entries, e)
		if e.Mode.IsRegular() {
			byLBA[e.LBA] = e.Path
		}
		return nil
	}); err != nil {
		return err
	}
	fmt.Fprintf(w, "volume ID:   %q\n", im.VolumeID)
	fmt.Fprintf(w, "size:        %d sectors of 2048 bytes (%.1f MiB)\n", im.Sectors, float64(im.Sectors)*2048/(1<<20))
	fmt.Fprintf(w, "extensions:  Rock Ridge %s, Joliet %s\n", yesNo(im.RockRidge), yesNo(im.Joliet))
	if im.CatalogLBA == 0 {
		fmt.Fprintln(w, "El Torito:   none (not bootable from a CD)")
	} else {
		fmt.Fprintf(w, "El Torito:   catalog at sector %d\n", im.CatalogLBA)
		for i, b := range im.Boot {
			plat := fmt.Sprintf("0x%02X", byte(b.Platform))
			switch b.Platform {
			case iso9660.BIOS:
				plat = "BIOS"
			case iso9660.EFI:
				plat = "UEFI"
			}
			fmt.Fprintf(w, "  %d %-4s %-12s load %5d × 512 bytes  sector %-8d %s\n", i+1, plat, map[bool]string{true: "bootable", false: "not bootable"}[b.Bootable], b.LoadSectors, b.LBA, byLBA[b.LBA])
		}
	}
	if im.MBR == nil {
		fmt.Fprintln(w, "MBR:         none (not bootable from a disk)")
	} else {
		fmt.Fprintln(w, "MBR:         partitions (512-byte sectors)")
		for _, p := range im.MBR {
			fmt.Fprintf(w, "  %d %-6s type 0x%02X start %-8d count %-8d %s\n", p.Index, map[bool]string{true: "active", false: ""}[p.Bootable], p.Type, p.Start, p.Count, byLBA[p.Start/4])
		}
	}
	if im.GPT != nil {
		fmt.Fprintln(w, "GPT:         partitions (512-byte sectors)")
		for _, p := range im.GPT {
			fmt.Fprintf(w, "  %d %q type %s start %d end %d %s\n", p.Index, p.Name, p.Type, p.Start, p.End, byLBA[uint32(p.Start/4)])
		}
	}
	if err := inspectSecureBoot(w, r, im, entries); err != nil {
		return err
	}
	if !files {
		return nil
	}
	fmt.Fprintf(w, "files:       %d entries\n", len(entries))
	for _, e := range entries {
		line := fmt.Sprintf("  %s %12d  %s", e.Mode, e.Size, e.Path)
		if e.Linkname != "" {
			line += " -> " + e.Linkname
		}
		fmt.Fprintln(w, line)
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
