package imagegen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/nixlive/nixlive/imagegen/iso9660"
	"github.com/nixlive/nixlive/imagegen/persist"
	"github.com/nixlive/nixlive/imagegen/progress"
	"github.com/nixlive/nixlive/imagegen/squashfs"
	"github.com/nixlive/nixlive/internal/atomicfile"
	"github.com/nixlive/nixlive/internal/blockdev"
	"github.com/nixlive/nixlive/internal/nix/closure"
	"github.com/nixlive/nixlive/internal/nix/storepath"
	"github.com/nixlive/nixlive/live"
)

// ISO builds a live ISO ("imagegen build") from a Spec.
type ISO struct {
	Spec  *Spec
	Store storepath.Root
	// Output is a file, or a directory to hold Spec.IsoName.
	Output   string
	Progress *os.File
	// Squashfs, when set, is a prebuilt nix-store.squashfs copied in as is
	// instead of one built from the spec's closure.
	Squashfs string
	// ClosureInfo, when set, is Nix's closureInfo of the spec's store
	// contents and system (store-paths and registration), as NixOS's
	// iso-image.nix has it: the closure is read from it instead of found
	// by hashing and scanning every path.
	ClosureInfo string
	// NoVerify skips reading back what was written to a block device.
	NoVerify bool
	// StrictSecureBoot refuses to build an ISO that Secure Boot firmware
	// would refuse (ISOResult.SecureBootWarning).
	StrictSecureBoot bool
}

// ISOResult says what was built.
type ISOResult struct {
	Path       string // the ISO (or the compressed ISO)
	StorePaths int
	Squashfs   int64          // bytes
	Content    squashfs.Stats // zero when the squashfs was given
	Written    *WriteResult   // the copy onto a block device; nil for a file
	// SecureBootWarning says, in one line, why the ISO will not boot with
	// Secure Boot on as it is; "" when it will.
	SecureBootWarning string

	Identity live.ImageIdentity // what the ISO's live.ImageIDFile says
}

// input is a file to put on the ISO, resolved on the host.
type input struct {
	target string
	field  string // the spec field that asked for it ("contents[2].target"), "" for the layout
	host   string // "" for data
	data   []byte
	mode   fs.FileMode
}

// isoPlan is what Build learns from the spec and the host before it
// writes anything.
type isoPlan struct {
	prebuilt       *prebuilt // the --squashfs file, checked
	epoch          time.Time
	out            string  // the final output file
	device         bool    // out is a block device
	kernel, initrd string  // on the host
	contents       []input // the spec's contents
	img            *StoreImage
	clo            *closure.Closure // nil with a prebuilt Squashfs
	reg            []byte
	storeImage     io.ReaderAt // the store image as streamed, for addIdentity
}

// Build writes the ISO. Every input is checked before the output is
// created; the output appears only when complete.
func (b *ISO) Build(ctx context.Context) (*ISOResult, error) {
	p, err := b.plan()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tmp, removeTmp, err := atomicfile.TempDir("imagegen-")
	if err != nil {
		return nil, err
	}
	defer removeTmp()
	inputs, warning, err := b.bootFiles(newMenu(b.Spec), tmp, p)
	if err != nil {
		return nil, err
	}
	if warning != "" && b.StrictSecureBoot {
		return nil, fmt.Errorf("--strict-secure-boot: %s", warning)
	}
	inputs = append(inputs, p.contents...)
	if err := checkTargets(inputs); err != nil {
		return nil, err
	}
	// A block device gets the finished ISO copied onto it, not the ISO as
	// it is made: its size is known only once the store image is
	// compressed, and a device too small for it must be refused before a
	// byte is written (finding the size first would compress everything
	// twice). So it is built in $TMPDIR first, which needs its size free.
	isoPath := p.out
	if b.Spec.CompressImage != "" || p.device {
		isoPath = filepath.Join(tmp, "image.iso")
	}
	res, err := b.write(ctx, isoPath, p, inputs)
	if err != nil {
		return nil, err
	}
	res.SecureBootWarning = warning
	if b.Spec.CompressImage != "" {
		if err := compressFile(ctx, isoPath, p.out, b.Spec.CompressImage); err != nil {
			return nil, err
		}
	}
	if p.device {
		iw := &ImageWrite{Source: isoPath, Dest: p.out, NoVerify: b.NoVerify, Progress: b.Progress}
		if res.Written, err = iw.Write(ctx); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// plan checks the spec against the host: the dates, the output, every
// file it names, its store paths, and the closure the store image holds.
func (b *ISO) plan() (*isoPlan, error) {
	s := b.Spec
	p := &isoPlan{}
	var err error
	if p.epoch, err = SourceDateEpoch(); err != nil {
		return nil, err
	}
	if s.SourceDateEpoch != nil {
		p.epoch = time.Unix(*s.SourceDateEpoch, 0)
	}
	if p.out, err = b.outputPath(); err != nil {
		return nil, err
	}
	if p.device, err = b.checkDevice(p.out); err != nil {
		return nil, err
	}
	if !p.device {
		if err := keepsPersistence(p.out); err != nil {
			return nil, err
		}
	}
	if p.kernel, err = b.hostFile("kernel", s.Kernel); err != nil {
		return nil, err
	}
	if p.initrd, err = b.hostFile("initrd", s.Initrd); err != nil {
		return nil, err
	}
	for i, c := range s.Contents {
		in, err := b.contentInputs(i, c)
		if err != nil {
			return nil, err
		}
		p.contents = append(p.contents, in...)
	}
	for i, sp := range s.StoreContents {
		if _, err := storepath.ToStorePath(b.Store.Store(), sp); err != nil {
			return nil, fmt.Errorf("storeContents[%d]: %q is not in the store %s", i, sp, b.Store.Store())
		}
	}
	if _, err := storepath.ToStorePath(b.Store.Store(), s.System); err != nil {
		return nil, fmt.Errorf("system: %q is not in the store %s", s.System, b.Store.Store())
	}
	p.img = &StoreImage{
		Roots:       append(append([]string{}, s.StoreContents...), s.System),
		Store:       b.Store,
		Compression: s.SquashfsCompression,
		Epoch:       p.epoch,
		ClosureInfo: b.ClosureInfo,
	}
	if b.Squashfs != "" {
		if p.prebuilt, err = checkPrebuilt(b.Squashfs); err != nil {
			return nil, err
		}
	} else if p.clo, p.reg, err = p.img.Closure(); err != nil {
		return nil, err
	}
	return p, nil
}

// write writes the ISO file at isoPath: the inputs, the live system's
// layout (/nix/store, /system, /init) and, last, the store image.
func (b *ISO) write(ctx context.Context, isoPath string, p *isoPlan, inputs []input) (*ISOResult, error) {
	f, err := atomicfile.Create(isoPath, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Abort()
	opts, err := b.isoOptions(p.epoch)
	if err != nil {
		return nil, err
	}
	w, err := iso9660.NewWriter(f, opts)
	if err != nil {
		return nil, err
	}
	for _, in := range inputs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := addInput(w, in, p.epoch); err != nil {
			return nil, err
		}
	}
	for _, h := range []iso9660.Header{
		{Name: "nix/store", Mode: fs.ModeDir | 0o555},
		{Name: "system", Mode: fs.ModeSymlink | 0o777, Linkname: b.Spec.System},
		{Name: "init", Mode: fs.ModeSymlink | 0o777, Linkname: b.Spec.System + "/init"},
	} {
		h.ModTime = p.epoch
		if err := w.WriteHeader(&h); err != nil {
			return nil, err
		}
	}
	res := &ISOResult{Path: p.out}
	if b.Squashfs != "" {
		if err := addInput(w, input{target: live.StoreImage, host: b.Squashfs}, p.epoch); err != nil {
			return nil, err
		}
		res.StorePaths, res.Squashfs = p.prebuilt.storePaths, p.prebuilt.size
	} else if err := b.streamStoreImage(ctx, w, p, res); err != nil {
		return nil, err
	}
	if err := b.addIdentity(ctx, w, p, res); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := f.Commit(); err != nil {
		return nil, err
	}
	return res, nil
}

// streamStoreImage writes the store image straight into the ISO, with no
// temporary file, and records its size and content in res.
func (b *ISO) streamStoreImage(ctx context.Context, w *iso9660.Writer, p *isoPlan, res *ISOResult) error {
	st, err := w.Stream(&iso9660.Header{Name: live.StoreImage, Mode: 0o444, ModTime: p.epoch})
	if err != nil {
		return err
	}
	meter := progress.New(b.Progress, live.StoreImage, int64(p.clo.TotalNarSize()))
	sw, err := squashfs.NewWriter(st, squashfs.Options{Compression: p.img.Compression, ModTime: p.epoch, Progress: meter.Set, Context: ctx})
	if err != nil {
		return err
	}
	err = p.img.AddTo(ctx, sw, p.clo, p.reg)
	if cerr := sw.Close(); err == nil {
		err = cerr
	}
	meter.Done()
	if err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	res.StorePaths, res.Squashfs, res.Content = len(p.clo.Paths), st.Size(), sw.Stats()
	p.storeImage = st
	return nil
}

func (b *ISO) outputPath() (string, error) {
	out := b.Output
	if out == "" {
		return "", errors.New("no output given")
	}
	if fi, err := os.Stat(out); err == nil && fi.IsDir() {
		out = filepath.Join(out, b.Spec.IsoName)
		switch b.Spec.CompressImage {
		case "zstd":
			out += ".zst"
		case "bzip2":
			out += ".bz2"
		}
	}
	return out, nil
}

// checkDevice says whether out is (or leads to) a block device, which
// must not be in use: checked now, so that a mounted stick is refused
// before the build rather than after.
func (b *ISO) checkDevice(out string) (bool, error) {
	if !blockdev.IsBlock(out) {
		return false, nil
	}
	if b.Spec.CompressImage != "" {
		return false, fmt.Errorf("compressImage %q with -o %s, a block device: a USB stick takes the plain ISO", b.Spec.CompressImage, out)
	}
	if err := blockdev.CheckUnused(out); err != nil {
		return false, err
	}
	return true, nil
}

// keepsPersistence refuses to replace a disk image file that holds a
// nixlive-rw partition: the user's persistent data would go with it.
// imagegen write upgrades such a file in place and keeps the partition.
func keepsPersistence(out string) error {
	if fi, err := os.Stat(out); err != nil || !fi.Mode().IsRegular() {
		return nil // nothing there to lose (or the output step says why)
	}
	f, err := os.Open(out)
	if err != nil {
		return nil
	}
	defer f.Close()
	var has *persist.HasPartitionError
	if _, err := persist.ReadTables(f, out); errors.As(err, &has) {
		return fmt.Errorf("%s holds a %s partition (persistent data, partition %d): imagegen build would replace the whole file; upgrade it with \"imagegen write NEW.iso %s\", which keeps the partition, or remove the file first",
			out, persist.Label, has.Number, out)
	}
	return nil
}

// onHost is where a path the spec names is on the host: a store path (or
// a path in one) under the store root, anything else as given.
func (b *ISO) onHost(p string) string {
	if strings.HasPrefix(p, b.Store.Store()+"/") {
		return b.Store.HostPath(p)
	}
	return p
}

// hostFile finds a spec's input on the host: a store path (or a path in
// one) is read under the store root, anything else as given.
func (b *ISO) hostFile(field, p string) (string, error) {
	h := b.onHost(p)
	fi, err := os.Stat(h)
	switch {
	case err != nil:
		return "", fmt.Errorf("%s: %w", field, err)
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("%s: %s is not a regular file", field, h)
	}
	return h, nil
}

// contentInputs resolves contents[i]: a file, or a directory whose files
// (symlinks to files followed) go under the target, as NixOS allows.
// Empty directories are left out; a symlink to a directory is refused
// (it could loop).
func (b *ISO) contentInputs(i int, c Content) ([]input, error) {
	field := fmt.Sprintf("contents[%d].source", i)
	target := fmt.Sprintf("contents[%d].target", i)
	h := b.onHost(c.Source)
	if fi, err := os.Stat(h); err != nil || !fi.IsDir() {
		h, err := b.hostFile(field, c.Source)
		return []input{{target: c.Target, host: h, field: target}}, err
	}
	var in []input
	err := filepath.WalkDir(h, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := os.Stat(p)
		switch {
		case err != nil:
			return err
		case fi.IsDir():
			return fmt.Errorf("%s is a symlink to a directory", p)
		case !fi.Mode().IsRegular():
			return fmt.Errorf("%s is not a regular file", p)
		}
		rel, err := filepath.Rel(h, p)
		if err != nil {
			return err
		}
		in = append(in, input{target: path.Join(c.Target, filepath.ToSlash(rel)), host: p, field: target})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return in, nil
}

func (b *ISO) isoOptions(epoch time.Time) (iso9660.Options, error) {
	s := b.Spec
	o := iso9660.Options{
		VolumeID:    s.VolumeID,
		Preparer:    "NIXLIVE IMAGEGEN",
		Application: "NIXOS LIVE CD",
		ModTime:     epoch,
		Joliet:      true,
		Catalog:     isoCatalog,
	}
	if s.Boot.BIOS {
		o.Boot = append(o.Boot, iso9660.BootEntry{Platform: iso9660.BIOS, Path: "isolinux/isolinux.bin", LoadSectors: 4, BootInfoTable: true})
	}
	if s.Boot.EFI {
		o.Boot = append(o.Boot, iso9660.BootEntry{Platform: iso9660.EFI, Path: isoEFIImage})
	}
	if s.Boot.USB {
		o.Hybrid = &iso9660.Hybrid{GPT: s.Boot.EFI}
		if s.Boot.BIOS {
			h, err := b.biosFile("boot.biosFiles.isolinux", s.Boot.BIOSFiles.Isolinux, "isohdpfx.bin", "isolinux")
			if err != nil {
				return o, fmt.Errorf("boot.usb: %w", err)
			}
			if o.Hybrid.MBR, err = os.ReadFile(h); err != nil {
				return o, fmt.Errorf("boot.usb: %w", err)
			}
		}
	}
	return o, nil
}

// bootFiles makes the boot loaders' files and the kernel and initrd
// they load: isolinux and its menu, and the EFI loader's (efiboot.go).
// It returns what Secure Boot firmware will make of the ISO when that is
// not "boots".
func (b *ISO) bootFiles(m *menu, tmp string, p *isoPlan) ([]input, string, error) {
	s := b.Spec
	var in []input
	if s.Boot.BIOS {
		h, err := b.biosFile("boot.biosFiles.isolinux", s.Boot.BIOSFiles.Isolinux, "isolinux.bin", "isolinux")
		if err != nil {
			return nil, "", err
		}
		in = append(in, input{target: "isolinux/isolinux.bin", host: h})
		for _, mod := range isolinuxModules {
			h, err := b.biosFile("boot.biosFiles.syslinuxModules", s.Boot.BIOSFiles.SyslinuxModules, mod, "syslinux-common")
			if err != nil {
				return nil, "", err
			}
			in = append(in, input{target: "isolinux/" + mod, host: h})
		}
		in = append(in, input{target: "isolinux/isolinux.cfg", data: []byte(m.isolinuxCfg())})
	}
	kernel := input{target: isoKernel, host: p.kernel}
	var warning string
	if s.Boot.EFI {
		e, err := b.efiBoot(m, tmp, p)
		if err != nil {
			return nil, "", err
		}
		img, err := e.image(p.epoch)
		if err != nil {
			return nil, "", err
		}
		in = append(in, input{target: isoEFIImage, data: img})
		in = append(in, e.iso...)
		if e.kernel != nil {
			kernel = input{target: isoKernel, data: e.kernel}
		}
		warning = e.warning
	}
	return append(in, kernel, input{target: isoInitrd, host: p.initrd}), warning, nil
}

func opener(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

// checkTargets refuses inputs that clash with each other or with the
// ISO's own entries: the same path twice, a file where a directory must be
// or inside a file, anything under /nix/store (kept empty). The layout is
// placed first, so that a clash is blamed on the contents entry.
func checkTargets(in []input) error {
	const layout = "the bootloader or the live system layout"
	files := map[string]string{live.StoreImage: layout, "system": layout, "init": layout, isoCatalog: layout} // path -> who put it there
	dirs := map[string]string{"nix": "nix/store"}                                                             // path -> a path under it
	files[live.ImageIDFile] = layout
	var ordered []input
	for _, contents := range []bool{false, true} {
		for _, i := range in {
			if (i.field != "") == contents {
				ordered = append(ordered, i)
			}
		}
	}
	for _, i := range ordered {
		who := i.field
		if who == "" {
			who = "bootloader file"
		}
		switch {
		case i.target == "nix/store" || strings.HasPrefix(i.target, "nix/store/"):
			return fmt.Errorf("%s %q: /nix/store on the ISO is kept empty", who, i.target)
		case files[i.target] != "":
			return fmt.Errorf("%s %q: taken by %s", who, i.target, files[i.target])
		case dirs[i.target] != "":
			return fmt.Errorf("%s %q: a directory on the ISO (it holds %q)", who, i.target, dirs[i.target])
		}
		for d := path.Dir(i.target); d != "."; d = path.Dir(d) {
			if by := files[d]; by != "" {
				return fmt.Errorf("%s %q: %q is a file (%s)", who, i.target, d, by)
			}
			dirs[d] = i.target
		}
		by := i.field
		if by == "" {
			by = layout
		}
		files[i.target] = by
	}
	return nil
}

func addInput(w *iso9660.Writer, in input, epoch time.Time) error {
	h := &iso9660.Header{Name: in.target, Mode: 0o444, ModTime: epoch}
	var r io.Reader
	if in.host != "" {
		f, err := os.Open(in.host)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if fi.Mode()&0o111 != 0 {
			h.Mode = 0o555
		}
		h.Size, r = fi.Size(), f
	} else {
		h.Size, r = int64(len(in.data)), bytes.NewReader(in.data)
	}
	if err := w.WriteHeader(h); err != nil {
		return err
	}
	_, err := w.ReadFrom(r)
	return err
}
