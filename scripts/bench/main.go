// Command bench compares nixlive with the reference tools on the same input
// in one run and rewrites the measured section of BENCHMARKS.md. Run it
// through "make bench". Each section has its file: store, iso, boot,
// postboot, demo and nixbuild.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/nixlive/nixlive/internal/gobuild"
)

// Host trees that stand in for store paths: a toolchain with many small
// files, large binaries, an interpreter's library, and documentation full
// of duplicates, as a NixOS closure has.
var storeSources = []struct{ name, dir string }{
	{"go-toolchain", "/usr/local/go"},
	{"gcc-lib", "/usr/lib/gcc"},
	{"python3.11-lib", "/usr/lib/python3.11"},
	{"perl-share", "/usr/share/perl"},
	{"doc", "/usr/share/doc"},
}

var runs int

func main() {
	out := flag.String("out", "BENCHMARKS.md", "file whose measured section is rewritten")
	work := flag.String("work", "_out/bench", "work directory")
	only := flag.String("only", "", "run one section: store, iso, boot, postboot, demo or nixbuild (default: all)")
	flag.IntVar(&runs, "runs", 3, "alternating runs of each side of the whole-ISO comparison (the median counts)")
	flag.Parse()
	log.SetFlags(0)

	imagegen := filepath.Join(*work, "imagegen")
	must(gobuild.Host(context.Background(), imagegen, "./cmd/imagegen"))
	store, info, paths := makeStore(*work)

	sections := []struct {
		name string
		run  func() string
	}{
		{"store", func() string { return benchStore(*work, imagegen, store, info, paths) }},
		{"iso", func() string { return benchISO(*work, imagegen, store, info, paths) }},
		{"boot", func() string { return benchBoot(*work, imagegen) }},
		{"postboot", func() string { return benchPostboot(*work) }},
		{"demo", func() string { return benchDemo(*work, imagegen) }},
		{"nixbuild", func() string { return benchNixBuild(*work, store, paths) }},
	}
	for _, sec := range sections {
		if *only != "" && *only != sec.name {
			continue
		}
		text := sec.run()
		writeSection(*out, sec.name, text)
		fmt.Print(text)
	}
}

// writeSection replaces the text between "<!-- bench:NAME -->" and
// "<!-- /bench:NAME -->" in file, or appends the section.
func writeSection(file, name, body string) {
	open, close := "<!-- bench:"+name+" -->", "<!-- /bench:"+name+" -->"
	old, _ := os.ReadFile(file)
	block := open + "\n" + body + close
	var out []byte
	if i := bytes.Index(old, []byte(open)); i >= 0 {
		j := bytes.Index(old, []byte(close))
		must(nilIf(j < i, fmt.Errorf("%s: %s without %s", file, open, close)))
		out = append(append(append([]byte{}, old[:i]...), block...), old[j+len(close):]...)
	} else {
		out = append(append(old, '\n'), block+"\n"...)
	}
	must(os.WriteFile(file, out, 0o644))
}

func nilIf(cond bool, err error) error {
	if cond {
		return err
	}
	return nil
}
