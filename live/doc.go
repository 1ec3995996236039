// Package live is the contract between nixlive's builder (imagegen) and the
// boot stages it builds (stage 1 in the initrd, stage 2 and postboot after
// switch_root, the demo system's init): the layout they mount and find,
// the names of the files on the medium and in the initrd, the kernel
// command line they all read, and the timeline they leave in /run.
//
// It is a leaf: it imports nothing of nixlive, so every stage can depend on
// it without depending on another stage.
package live
