package archtest

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const module = "github.com/nixlive/nixlive"

// application is what the libraries under internal/ and live/ must never
// depend on: the programs and their packages.
var application = []string{"imagegen", "stage1", "stage2", "postboot", "demo"}

const (
	maxFuncLines = 100
	maxFileLines = 600
)

type pkg struct {
	ImportPath string
	Dir        string
	Deps       []string
}

// listPackages runs go list over patterns (non-test builds).
func listPackages(t *testing.T, patterns ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json=ImportPath,Dir,Deps"}, patterns...)...)
	cmd.Dir = moduleRoot(t)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go list %v: %s", patterns, stderr.String())
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		require.NoError(t, dec.Decode(&p))
		pkgs = append(pkgs, p)
	}
	require.NotEmpty(t, pkgs, "go list %v", patterns)
	return pkgs
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	require.NoError(t, err)
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func isApplication(importPath string) bool {
	for _, a := range application {
		if importPath == module+"/"+a || strings.HasPrefix(importPath, module+"/"+a+"/") {
			return true
		}
	}
	return false
}

func TestLibrariesDoNotImportTheApplication(t *testing.T) {
	for _, p := range listPackages(t, "./internal/...", "./live/...") {
		for _, d := range p.Deps {
			assert.False(t, isApplication(d), "%s depends on %s: nothing under internal/ or live/ may import the application", p.ImportPath, d)
		}
	}
}

func TestLiveIsALeaf(t *testing.T) {
	for _, p := range listPackages(t, "./live/...") {
		for _, d := range p.Deps {
			assert.False(t, strings.HasPrefix(d, module+"/"), "%s depends on %s: live imports nothing of nixlive", p.ImportPath, d)
		}
	}
}

func TestStage2DoesNotLinkStage1(t *testing.T) {
	for _, p := range listPackages(t, "./stage2/...", "./cmd/stage2") {
		for _, d := range p.Deps {
			assert.NotEqual(t, module+"/stage1", d, "%s depends on stage1; the contract between the stages is package live", p.ImportPath)
			assert.NotEqual(t, module+"/internal/kmod", d, "%s depends on kmod: stage 2 loads no modules", p.ImportPath)
		}
	}
}

func TestProgramsDoNotLinkTesting(t *testing.T) {
	for _, p := range listPackages(t, "./cmd/...", "./scripts/...") {
		for _, d := range p.Deps {
			assert.NotEqual(t, "testing", d, "%s links the testing package (through a test harness?)", p.ImportPath)
		}
	}
}

// sourceFiles returns the module's non-test Go files, relative to the root.
func sourceFiles(t *testing.T) []string {
	t.Helper()
	root := moduleRoot(t)
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && p != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") {
			rel, _ := filepath.Rel(root, p)
			files = append(files, rel)
		}
		return nil
	})
	require.NoError(t, err)
	require.NotEmpty(t, files)
	return files
}

func parseFile(t *testing.T, fset *token.FileSet, rel string) *ast.File {
	t.Helper()
	f, err := parser.ParseFile(fset, filepath.Join(moduleRoot(t), rel), nil, parser.SkipObjectResolution)
	require.NoError(t, err)
	return f
}

func TestSizes(t *testing.T) {
	fset := token.NewFileSet()
	for _, rel := range sourceFiles(t) {
		f := parseFile(t, fset, rel)
		if n := fset.File(f.Pos()).LineCount(); n > maxFileLines {
			t.Errorf("%s: %d lines; split it (at most %d lines a file)", rel, n, maxFileLines)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			start, end := fset.Position(fn.Pos()).Line, fset.Position(fn.End()).Line
			if n := end - start + 1; n > maxFuncLines {
				t.Errorf("%s:%d: %s is %d lines; split it where the parts have names (at most %d)", rel, start, fn.Name.Name, n, maxFuncLines)
			}
		}
	}
}

// layoutLiteral matches a string literal that spells a path of the live
// layout, which only package live may do.
var layoutLiteral = regexp.MustCompile(`/nix/\.ro-store|/nix/\.rw-store|/nix/\.squashfs-ram|/run/nixlive|/mnt-root|^/proc/cmdline$|(^|/)(nix-store\.squashfs|nix-path-registration|nixlive\.modules)(/|$)`)

func TestLayoutHasOneHome(t *testing.T) {
	fset := token.NewFileSet()
	for _, rel := range sourceFiles(t) {
		if strings.HasPrefix(rel, "live/") {
			continue
		}
		f := parseFile(t, fset, rel)
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err == nil && layoutLiteral.MatchString(s) {
				t.Errorf("%s: %q is a path of the live layout: use the constant in package live", fset.Position(lit.Pos()), s)
			}
			return true
		})
	}
}

// TestOneParserOneResolver: the kernel command line is parsed in package
// live only, and symlinks are followed to a store path in storepath only.
func TestOneParserOneResolver(t *testing.T) {
	parserName := regexp.MustCompile(`(?i)(parse|read|split).*cmdline|cmdline.*(parse|split)`)
	resolverName := regexp.MustCompile(`(?i)(resolve|follow).*(store|link)`)
	fset := token.NewFileSet()
	for _, rel := range sourceFiles(t) {
		f := parseFile(t, fset, rel)
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			name := fn.Name.Name
			if parserName.MatchString(name) && !strings.HasPrefix(rel, "live/") {
				t.Errorf("%s: %s: the kernel command line has one parser, live.ParseCmdline", fset.Position(fn.Pos()), name)
			}
			if resolverName.MatchString(name) && !strings.HasPrefix(rel, filepath.FromSlash("internal/nix/storepath/")) {
				t.Errorf("%s: %s: store paths have one resolver, in internal/nix/storepath", fset.Position(fn.Pos()), name)
			}
		}
	}
}

func TestModuleRootFound(t *testing.T) {
	_, err := os.Stat(filepath.Join(moduleRoot(t), "go.mod"))
	require.NoError(t, err)
}
