// Package archtest holds the tests that keep nixlive's tree in order: which
// packages may depend on which, how long functions and files may grow, and
// that the live layout and the kernel command line have one home (package
// live). It has no code of its own; see arch_test.go.
package archtest
