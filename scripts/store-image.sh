#!/usr/bin/env bash
# Quick start, part one: builds a small real Nix store under _out/demo-store
# with Debian's nix-bin (always --store DIR, so /nix is never touched), then
# writes its squashfs image with imagegen and shows it with unsquashfs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
mkdir -p _out bin
go build -o bin/imagegen ./cmd/imagegen

store="$PWD/_out/demo-store"
export HOME="$PWD/_out/home" NIX_CONFIG="build-users-group ="
mkdir -p "$HOME"
nixs() { nix-store --store "$store" "$@"; }
src="$PWD/_out/demo-src"
rm -rf "$src" && mkdir -p "$src/hello/bin"
printf '#!/bin/sh\necho hello from the store\n' > "$src/hello/bin/hello"
chmod +x "$src/hello/bin/hello"
hello=$(nixs --add "$src/hello")
# A text path that refers to the first, so the closure has an edge.
motd=$(nix-instantiate --store "$store" --read-write-mode --eval \
  -E "builtins.toFile \"motd\" \"run ${hello}/bin/hello\"" | tr -d '"')

bin/imagegen store -o _out/nix-store.squashfs --store-root "$store" \
  --registration-out _out/nix-path-registration "$motd"
echo "--- registration"
cat _out/nix-path-registration
echo "--- unsquashfs -s"
unsquashfs -s _out/nix-store.squashfs | head -8
echo "--- unsquashfs -lln"
unsquashfs -lln _out/nix-store.squashfs
