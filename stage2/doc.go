// Package stage2 is PID 1 after stage 1's switch_root: it finishes what
// NixOS's stage-2-init does before handing over to the system's init —
// special file systems, a read-only store bind mount owned by the nixbld
// group, /etc and /tmp, the system's activation script, the
// /run/booted-system and /run/current-system links, the live CD's
// post-boot commands (postboot, in process) — then execs the system's init,
// saying which one and why.
package stage2
