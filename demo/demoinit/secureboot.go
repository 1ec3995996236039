package demoinit

import (
	"fmt"
	"strings"
)

// Report.SecureBoot's values, besides Unknown's.
const (
	SecureBootEnabled  = "enabled"
	SecureBootDisabled = "disabled"
	NotUEFI            = "not UEFI" // booted by a BIOS: no /sys/firmware/efi
)

// Where Linux shows the firmware's Secure Boot state and the kernel's
// lockdown mode.
const (
	EFIDir      = "/sys/firmware/efi"         // there when booted by UEFI
	EFIVarsDir  = "/sys/firmware/efi/efivars" // efivarfs's mount point
	SecurityDir = "/sys/kernel/security"      // securityfs's mount point
	// SecureBootVar is the global variable SecureBoot as efivarfs names
	// it: name-GUID, EFI_GLOBAL_VARIABLE being
	// {0x8BE4DF61, 0x93CA, 0x11D2, {0xAA, 0x0D, 0x00, 0xE0, 0x98, 0x03, 0x2B, 0x8C}}.
	SecureBootVar = "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
	LockdownFile  = SecurityDir + "/lockdown"
)

// SecureBootLine is the report's line for people, e.g.
// "Secure Boot: enabled, lockdown: integrity".
func (r *Report) SecureBootLine() string {
	return fmt.Sprintf("Secure Boot: %s, lockdown: %s", r.SecureBoot, r.Lockdown)
}

// Unknown is the value of a state that could not be read: "unknown (why)".
func Unknown(why error) string { return "unknown (" + why.Error() + ")" }

// ParseSecureBootVar reads the SecureBoot variable as efivarfs gives it:
// 4 bytes of attributes (not checked: firmware differs in them), then the
// variable's one byte, 1 when the firmware enforces Secure Boot and 0 when
// it does not. It returns SecureBootEnabled or SecureBootDisabled.
func ParseSecureBootVar(b []byte) (string, error) {
	if len(b) != 5 {
		return "", fmt.Errorf("%s is %d bytes, want 5 (4 of attributes, 1 of value)", SecureBootVar, len(b))
	}
	switch b[4] {
	case 0:
		return SecureBootDisabled, nil
	case 1:
		return SecureBootEnabled, nil
	}
	return "", fmt.Errorf("%s holds %d, want 0 or 1", SecureBootVar, b[4])
}

// ParseLockdown reads /sys/kernel/security/lockdown, the modes the kernel
// knows with the one in effect in brackets ("none [integrity]
// confidentiality"), and returns that one.
func ParseLockdown(s string) (string, error) {
	fields := strings.Fields(s)
	mode := ""
	for _, f := range fields {
		w, bracketed := strings.CutPrefix(f, "[")
		if bracketed {
			var ok bool
			if w, ok = strings.CutSuffix(w, "]"); !ok {
				return "", fmt.Errorf("lockdown %q: %q lacks its closing bracket", s, f)
			}
		}
		if !isWord(w) {
			return "", fmt.Errorf("lockdown %q: %q is not a mode", s, f)
		}
		if bracketed {
			if mode != "" {
				return "", fmt.Errorf("lockdown %q: more than one mode in brackets", s)
			}
			mode = w
		}
	}
	if mode == "" {
		return "", fmt.Errorf("lockdown %q: no mode in brackets", s)
	}
	return mode, nil
}

// isWord reports whether w is a lockdown mode's name: lower-case letters.
func isWord(w string) bool {
	if w == "" {
		return false
	}
	for _, c := range w {
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}
