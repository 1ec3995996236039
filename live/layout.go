package live

// The live layout: where stage 1 mounts what, as NixOS's stage 1 does for a
// live CD (nixos/modules/installer/cd-dvd/iso-image.nix declares the same
// file systems), and where the stages leave what they tell each other.
const (
	NewRoot = "/mnt-root"      // stage 1 builds the new root here before switch_root
	ISODir  = "/iso"           // the medium
	ROStore = "/nix/.ro-store" // the squashfs store, read-only, on a loop device
	RWStore = "/nix/.rw-store" // the tmpfs holding the overlay's upper and work directories
	Store   = "/nix/store"     // the overlay of the two: the writable store
	// FindISOBase is where stage 1 mounts the file systems it searches for
	// findiso=: in the initramfs, as NixOS's /findiso, so that after
	// switch_root stage 2 sees none of them.
	FindISOBase = "/findiso"
	// CopySource is where stage 1 mounts the medium for copytoram, in the
	// initramfs, while it copies it onto the tmpfs at ISODir (NixOS's
	// /tmp-iso).
	CopySource = "/tmp-iso"
	// DevRoot is the link to the medium NixOS's stage 1 makes (the fstab
	// mounts /dev/root on ISODir), and DevRootRule the udev rule it writes
	// so that udev in stage 2 keeps the link.
	DevRoot     = "/dev/root"
	DevRootRule = "/run/udev/rules.d/61-dev-root-link.rules"

	// Stage1TimelinePath is where stage 1 leaves its timeline; /run moves
	// into the new root, so stage 2 finds it there.
	Stage1TimelinePath = "/run/nixlive/stage1.json"
	// TimelinePath holds both stages' steps once stage 2 has run.
	TimelinePath = "/run/nixlive/timeline.json"
	// RebuildDBNote is stage 1's note to stage 2 that the persistent Nix
	// database must be loaded from the image's registration again.
	RebuildDBNote = "/run/nixlive/persistence-rebuild-db"
)

// Files on the medium and in the initrd.
const (
	// StoreImage is the squashfs image of the store at the root of the ISO
	// (NixOS's name for it).
	StoreImage = "nix-store.squashfs"
	// RegistrationName is the file at the root of the store image that stage
	// 2 loads into the Nix database (NixOS's name for it).
	RegistrationName = "nix-path-registration"
	// ModulesList names, in the initrd's module directory, the modules stage
	// 1 loads before it looks for the medium (one name a line); imagegen
	// initrd writes it.
	ModulesList = "nixlive.modules"
	// RescueShell is the shell imagegen initrd --rescue-shell puts in the
	// initrd, and the one stage 1 opens on failure.
	RescueShell = "/bin/sh"
)

// RegistrationPath is where stage 2 finds the registration: the store
// image's root is the lower layer of the store overlay.
const RegistrationPath = Store + "/" + RegistrationName
