package stage1

// mediumMountData is the mount options for a medium of type fsType. FAT
// needs a character set for long names: the kernel's default iocharset is
// a build choice (Debian's "ascii", NixOS's "iso8859-1"), and a module the
// initrd may lack fails the mount ("IO charset ascii not found"), so it is
// named: iso8859-1, NixOS's, whose module the initrd carries.
func mediumMountData(fsType string) string {
	if fsType == "vfat" {
		return "iocharset=iso8859-1"
	}
	return ""
}
