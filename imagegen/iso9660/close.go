package iso9660

import (
	"errors"
	"fmt"
)

// Close lays out the directories and path tables after the data, writes
// the volume descriptors, the boot catalog and, for hybrid images, the MBR
// and GPT. It does not close the File.
func (w *Writer) Close() error {
	if err := w.usable(); err != nil {
		return err
	}
	if err := w.finishFile(); err != nil {
		return err
	}
	w.done = true
	if len(w.opts.Boot) > 0 {
		cat := w.nodes[w.opts.Catalog]
		cat.lba, cat.size = w.catalogSector(), sectorSize
	}
	for p := range w.boot {
		n := w.nodes[p]
		if n == nil || !n.mode.IsRegular() || n.size == 0 {
			return fmt.Errorf("iso9660: boot image /%s was not added as a non-empty file", p)
		}
	}

	prim := w.layout(false, w.next)
	end := prim.ptM + sectors(int64(prim.ptSize))
	var jol *hierarchy
	if w.opts.Joliet {
		jol = w.layout(true, end)
		end = jol.ptM + sectors(int64(jol.ptSize))
	}
	total := end
	if w.opts.Hybrid != nil {
		// Whole 1 MiB "cylinders" (64 heads × 32 sectors), as isohybrid
		// does for picky BIOSes, with room at the end for the backup GPT.
		need := total*4 + gptTailSectors
		total = (need + 2047) / 2048 * 2048 / 4
	}
	if total > 1<<32-1 {
		return errors.New("iso9660: image larger than 8 TiB")
	}

	if err := w.writeHierarchy(prim); err != nil {
		return err
	}
	if jol != nil {
		if err := w.writeHierarchy(jol); err != nil {
			return err
		}
	}
	if err := w.writeDescriptors(prim, jol, uint32(total)); err != nil {
		return err
	}
	if err := w.f.Truncate(total * sectorSize); err != nil {
		return fmt.Errorf("iso9660: %w", err)
	}
	if w.opts.Hybrid != nil {
		if err := w.writeHybrid(total); err != nil {
			return err
		}
	}
	return nil
}
