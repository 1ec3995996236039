# nixlive — see README.md.
GO ?= go
export CGO_ENABLED ?= 1

.PHONY: all build test bench deps fuzz clean demo imagegen-static

all: build

# Boot-time binaries: static and reproducible, with the flags of
# internal/gobuild (StaticEnv, StaticFlags), which the tests and imagegen use.
STATIC_BUILD = CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -buildvcs=false -ldflags='-s -w -buildid='

build:
	$(GO) build -o bin/imagegen ./cmd/imagegen
	$(STATIC_BUILD) -o bin/ ./cmd/stage1 ./cmd/stage2 ./cmd/postboot ./cmd/demo-init

# imagegen as a static binary (cgo, for zstd, with libc linked in), for a
# Nix build whose sandbox has no shell and no libc: the builder of
# closureInfo and the ISO (nix/*.nix). The flags of internal/gobuild's
# StaticCgo.
imagegen-static:
	CGO_ENABLED=1 $(GO) build -tags=osusergo,netgo -trimpath -buildvcs=false \
		-ldflags='-linkmode external -extldflags -static -s -w -buildid=' \
		-o bin/imagegen-static ./cmd/imagegen

deps:
	bash scripts/deps.sh

# Every test, including those that need root, loop devices, Nix and QEMU
# (they say why when they skip; CI has all of them).
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...

# Short fuzzing runs of every parser.
fuzz:
	bash scripts/fuzz.sh

# Compares us with the reference tools on the same input in one run and
# rewrites the measured sections of BENCHMARKS.md.
bench: deps
	$(GO) run ./scripts/bench -out BENCHMARKS.md

clean:
	rm -rf bin _out

# The main job: build the demo live ISO (imagegen demo) and boot it in QEMU,
# which prints what the booted system reports about itself. INTERACTIVE=1
# leaves you at its shell ("poweroff" ends it).
demo: deps
	$(GO) run ./scripts/demo $(if $(INTERACTIVE),-interactive)

# A real Nix store made with nix-store --store, written as a
# squashfs image by imagegen and listed by unsquashfs.
.PHONY: store-image
store-image:
	bash scripts/store-image.sh
