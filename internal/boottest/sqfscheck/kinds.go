package sqfscheck

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// The kinds of entries the test tree holds, one builder method each.
//
// Layout (B is the block size):
//
//	blocks/   files of 1, B/2, B-1, B, B+1, 2B and 3B bytes, all-zero blocks
//	big/      several MiB of compressible, incompressible, mixed and zero data
//	dups/     identical content under different names (empty, tiny, one
//	          block, 3 blocks, 2 MiB+), files sharing their first block,
//	          same size but different last byte
//	text/     small text files
//	modes/    files 0755/0644/0555/0444/0600/0640/0700, dirs 0555/0700/0750
//	links/    relative, absolute, dangling, to a dir, loops, 4095-byte target
//	names/    255-byte names (file, dir, symlink, multi-byte), spaces, " -> ",
//	          a newline, a tab, non-UTF-8, leading dash, hidden
//	bigdir/   Options.BigDir entries with mixed lengths and prefixes
//	deep/     Options.Depth nested directories with a file and link at the bottom
//	empty/, empty-nested/a/b/c/   empty directories
//	sparse/   only with Options.Sparse4G

// random returns n pseudo-random (incompressible) bytes.
func (b *builder) random(n int) []byte {
	p := make([]byte, n)
	_, _ = b.rng.Read(p)
	return p
}

var words = strings.Fields(`nix store derivation closure squashfs inode
	fragment block directory symlink kernel loop mount compress zstd gzip
	xz lz4 output path hash narinfo profile generation boot initrd stage
	the a of and to in is it for with on as by at from`)

// text returns n bytes of compressible, line-structured text.
func (b *builder) text(n int) []byte {
	var buf bytes.Buffer
	buf.Grow(n + 100)
	for line := 0; buf.Len() < n; line++ {
		fmt.Fprintf(&buf, "%06d:", line)
		for range 4 + b.rng.Uint64()%9 {
			buf.WriteByte(' ')
			buf.WriteString(words[b.rng.Uint64()%uint64(len(words))])
		}
		buf.WriteByte('\n')
	}
	return buf.Bytes()[:n]
}

func (b *builder) blocks() {
	bs := b.opts.BlockSize
	b.mkdir("blocks", 0o755)
	b.file("blocks/one-byte", []byte{'1'}, 0o644)
	b.file("blocks/half", b.random(bs/2), 0o644)
	b.file("blocks/minus-1", b.random(bs-1), 0o644)
	b.file("blocks/exact-1x", b.random(bs), 0o644)
	b.file("blocks/plus-1", b.random(bs+1), 0o644)
	b.file("blocks/exact-2x", b.random(2*bs), 0o644)
	b.file("blocks/exact-3x-text", b.text(3*bs), 0o644)
	b.file("blocks/zeros-1x", make([]byte, bs), 0o644)
	b.file("blocks/zeros-2x-plus-7", make([]byte, 2*bs+7), 0o644)
	// random, zero block, random: a hole in the middle
	hole := b.random(3 * bs)
	clear(hole[bs : 2*bs])
	b.file("blocks/hole-middle", hole, 0o644)
	// a zero tail after a full random block
	tail := b.random(bs + bs/3 + 1)
	clear(tail[bs:])
	b.file("blocks/zero-tail", tail, 0o644)
}

func (b *builder) big() {
	const mib = 1 << 20
	b.mkdir("big", 0o755)
	b.file("big/compressible-6M", b.text(6*mib+3), 0o644)
	b.file("big/incompressible-3M", b.random(3*mib+7), 0o644)
	mixed := make([]byte, 0, 5*mib+11)
	for i := 0; len(mixed) < 5*mib+11; i++ {
		n := min(64<<10+i*4099, 5*mib+11-len(mixed))
		switch i % 3 {
		case 0:
			mixed = append(mixed, b.random(n)...)
		case 1:
			mixed = append(mixed, b.text(n)...)
		default:
			mixed = append(mixed, make([]byte, n)...)
		}
	}
	b.file("big/mixed-5M", mixed, 0o644)
	b.file("big/zeros-2M", make([]byte, 2*mib), 0o644)
}

func (b *builder) dups() {
	bs := b.opts.BlockSize
	b.mkdir("dups", 0o755)
	b.file("dups/empty-a", nil, 0o644)
	b.file("dups/empty-b", nil, 0o644)
	b.file("dups/empty-x", nil, 0o755)
	b.file("dups/tiny-a", []byte("x"), 0o644)
	b.file("dups/tiny-b", []byte("x"), 0o644)

	small := b.text(777)
	b.file("dups/small-a.txt", small, 0o644)
	b.file("dups/small-b.txt", small, 0o644)
	b.file("dups/sub/small-c.txt", small, 0o444)
	b.file("dups/small-exec", small, 0o755)

	one := b.random(bs)
	b.file("dups/block-a", one, 0o644)
	b.file("dups/block-b", one, 0o644)

	three := b.random(3 * bs)
	b.file("dups/blocks3-a", three, 0o644)
	b.file("dups/blocks3-b", three, 0o644)
	b.file("dups/sub/blocks3-c", three, 0o755)

	big := b.random(2<<20 + 333)
	b.file("dups/big-a", big, 0o644)
	b.file("dups/big-b", big, 0o644)

	// same first block, different later
	pa := b.random(2*bs + 50)
	pb := bytes.Clone(pa)
	pb[bs+bs/2] ^= 0xff
	b.file("dups/prefix-a", pa, 0o644)
	b.file("dups/prefix-b", pb, 0o644)
	b.file("dups/prefix-short", bytes.Clone(pa[:bs+10]), 0o644)
	b.file("dups/prefix-1block", bytes.Clone(pa[:bs]), 0o644)

	// same size, only the last byte differs
	sa := b.random(bs + 100)
	sb := bytes.Clone(sa)
	sb[len(sb)-1] ^= 1
	b.file("dups/samesize-a", sa, 0o644)
	b.file("dups/samesize-b", sb, 0o644)

	// same tail (fragment candidates), different first block
	ta := b.random(bs + 200)
	tb := bytes.Clone(ta)
	tb[0] ^= 1
	b.file("dups/tail-a", ta, 0o644)
	b.file("dups/tail-b", tb, 0o644)
}

func (b *builder) textFiles() {
	b.mkdir("text", 0o755)
	b.file("text/hello.txt", []byte("hello, world\n"), 0o644)
	b.file("text/no-newline", []byte("no newline at end"), 0o644)
	b.file("text/crlf.txt", []byte("line one\r\nline two\r\n"), 0o644)
	b.file("text/unicode.txt", []byte("grüße, 日本語, ελληνικά, emoji 🙂\n"), 0o644)
	b.file("text/README", b.text(1500), 0o644)
	b.file("text/script.sh", []byte("#!/bin/sh\necho hi\n"), 0o755)
	for i := range 12 {
		b.file(fmt.Sprintf("text/small-%02d.txt", i), b.text(1+int(b.rng.Uint64()%4000)), 0o644)
	}
}

func (b *builder) modes() {
	b.mkdir("modes", 0o755)
	for _, m := range []fs.FileMode{0o755, 0o644, 0o555, 0o444, 0o600, 0o640, 0o700, 0o711, 0o664} {
		b.file(fmt.Sprintf("modes/file-%04o", uint32(m)), []byte(fmt.Sprintf("mode %04o\n", uint32(m))), m)
	}
	b.mkdir("modes/dir-0555", 0o555)
	b.file("modes/dir-0555/inner.txt", []byte("inside a read-only directory\n"), 0o444)
	b.file("modes/dir-0555/inner-exec", []byte("#!/bin/sh\n"), 0o555)
	b.mkdir("modes/dir-0555/sub-0555", 0o555)
	b.file("modes/dir-0555/sub-0555/leaf", []byte("leaf\n"), 0o644)
	b.mkdir("modes/dir-0555-empty", 0o555)
	b.mkdir("modes/dir-0700", 0o700)
	b.file("modes/dir-0700/secret", []byte("secret\n"), 0o600)
	b.mkdir("modes/dir-0750", 0o750)
}

// longName pads prefix with fill to exactly 255 bytes; fill must be one
// byte or divide the remaining length.
func longName(prefix, fill string) string {
	n := 255 - len(prefix)
	return prefix + strings.Repeat(fill, n/len(fill)) + strings.Repeat("z", n%len(fill))
}

func (b *builder) names() {
	b.mkdir("names", 0o755)
	b.file("names/"+longName("file-255-", "f"), []byte("255-byte name\n"), 0o644)
	b.mkdir("names/"+longName("dir-255-", "d"), 0o755)
	b.file("names/"+longName("dir-255-", "d")+"/"+longName("inner-255-", "i"), []byte("two long names\n"), 0o644)
	b.symlink("names/"+longName("link-255-", "l"), longName("file-255-", "f"))
	b.file("names/"+longName("u", "é"), []byte("multi-byte 255\n"), 0o644)
	b.file("names/with space", []byte("space\n"), 0o644)
	b.file("names/ leading space", []byte("leading space\n"), 0o644)
	b.file("names/trailing space ", []byte("trailing space\n"), 0o644)
	b.file("names/two  spaces  inside", []byte("spaces\n"), 0o644)
	b.file("names/arrow -> name", []byte("arrow\n"), 0o644)
	b.file("names/new\nline", []byte("newline\n"), 0o644)
	b.file("names/tab\tname", []byte("tab\n"), 0o644)
	b.file("names/bad-utf8-\xff\xfe", []byte("not utf-8\n"), 0o644)
	b.file("names/-leading-dash", []byte("dash\n"), 0o644)
	b.file("names/.hidden", []byte("hidden\n"), 0o644)
	b.file("names/..dots", []byte("dots\n"), 0o644)
	b.file("names/quote'\"`$(x)*?[a]\\", []byte("shell\n"), 0o644)
	b.file("names/ünïcødé-日本", []byte("unicode\n"), 0o644)
	b.file("names/UPPER", []byte("upper\n"), 0o644)
	b.file("names/lower", []byte("lower\n"), 0o644)
}

func (b *builder) links() {
	b.mkdir("links", 0o755)
	b.symlink("links/rel-file", "../text/hello.txt")
	b.symlink("links/rel-dir", "../blocks")
	b.symlink("links/rel-dir-slash", "../blocks/")
	b.symlink("links/abs", "/nix/store/00000000000000000000000000000000-dummy/bin/sh")
	b.symlink("links/abs-root", "/")
	b.symlink("links/dangling", "does/not/exist")
	b.symlink("links/dot", ".")
	b.symlink("links/dotdot", "..")
	b.symlink("links/chain", "rel-file")
	b.symlink("links/loop-a", "loop-b")
	b.symlink("links/loop-b", "loop-a")
	b.symlink("links/with space", "target with space")
	b.symlink("links/arrow -> link", "tar -> get")
	b.symlink("links/to-255", "../names/"+longName("file-255-", "f"))
	b.symlink("links/one-char", "x")
	// the longest target Linux accepts (PATH_MAX-1)
	long := strings.Repeat("long-target/", 4095/12)
	long += strings.Repeat("t", 4095-len(long))
	b.symlink("links/target-4095", long)
}

// bigDirNames returns n distinct names chosen to sort awkwardly: numbers
// (1 < 10 < 100 < 2), case, separators that sort around digits, shared
// prefixes of different lengths, multi-byte characters and long names.
func (b *builder) bigDirNames(n int) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if len(out) < n && !seen[s] && len(s) <= 255 {
			seen[s] = true
			out = append(out, s)
		}
	}
	for c := 'a'; c <= 'z'; c++ {
		add(string(c))
	}
	for c := 'A'; c <= 'Z'; c++ {
		add(string(c))
	}
	for c := '0'; c <= '9'; c++ {
		add(string(c))
	}
	for k := 2; k <= 40; k++ {
		add(strings.Repeat("p", k)) // p, pp, ppp...: each a prefix of the next
	}
	for i := 0; len(out) < n; i++ {
		switch i % 9 {
		case 0:
			add(fmt.Sprint(i))
		case 1:
			add(fmt.Sprintf("file-%d", i))
		case 2:
			add(fmt.Sprintf("file.%d", i))
		case 3:
			add(fmt.Sprintf("file_%d", i))
		case 4:
			add(fmt.Sprintf("File%05d", i))
		case 5:
			add(fmt.Sprintf("%d-%s", i, strings.Repeat("L", 150+i%100)))
		case 6:
			add(fmt.Sprintf("ü%d", i))
		case 7:
			k := 1 + int(b.rng.Uint64()%60)
			name := make([]byte, k)
			for j := range name {
				name[j] = "abcdefghijklmnopqrstuvwxyz0123456789-._"[b.rng.Uint64()%39]
			}
			add(string(name) + fmt.Sprintf("~%d", i))
		default:
			add(fmt.Sprintf("x%0*d", 1+i%12, i))
		}
	}
	return out
}

func (b *builder) bigDir() {
	b.mkdir("bigdir", 0o755)
	for i, name := range b.bigDirNames(b.opts.BigDir) {
		rel := "bigdir/" + name
		switch {
		case i%211 == 5:
			b.mkdir(rel, 0o755)
		case i%97 == 3:
			b.symlink(rel, "../text/hello.txt")
		case i%3 == 0:
			b.file(rel, nil, 0o644)
		default:
			b.file(rel, []byte(name[:min(len(name), i%40)]+"\n"), 0o644)
		}
	}
}

func (b *builder) deep() {
	rel := "deep"
	b.mkdir(rel, 0o755)
	for i := range b.opts.Depth {
		rel += "/" + fmt.Sprintf("level-%02d-", i) + strings.Repeat("n", 30)
		b.mkdir(rel, 0o755)
		if i == b.opts.Depth/2 {
			b.file(rel+"/middle.txt", []byte("half way down\n"), 0o644)
		}
	}
	b.file(rel+"/bottom.txt", []byte("bottom\n"), 0o644)
	b.symlink(rel+"/up", strings.Repeat("../", b.opts.Depth)+"text/hello.txt")
	b.mkdir(rel+"/empty", 0o755)
}

func (b *builder) empties() {
	b.mkdir("empty", 0o755)
	b.mkdir("empty-nested/a/b/c", 0o755)
}

func (b *builder) sparse() {
	b.parent(Sparse4GPath)
	if b.err != nil {
		return
	}
	f, err := os.OpenFile(b.abs(Sparse4GPath), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		b.fail(err)
		return
	}
	b.fail(f.Truncate(Sparse4GSize))
	for _, w := range []struct {
		off  int64
		data string
	}{{0, "START"}, {Sparse4GSize/2 - 1, "MIDDLE"}, {Sparse4GSize - 3, "END"}} {
		_, err := f.WriteAt([]byte(w.data), w.off)
		b.fail(err)
	}
	b.fail(f.Close())
	b.fail(os.Chmod(b.abs(Sparse4GPath), 0o644))
	b.want[Sparse4GPath] = Entry{Path: Sparse4GPath, Mode: 0o644, Size: Sparse4GSize}
}
