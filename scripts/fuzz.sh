#!/usr/bin/env bash
# Runs every fuzz target in the module for a short while (FUZZTIME, default
# 30s each). The seed corpora also run in every plain `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-30s}
grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./_out/' | sort | while read -r file; do
  pkg="./$(dirname "${file#./}")"
  for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
    echo "fuzz: $pkg $target ($fuzztime)"
    # A short minimize time: the default (60 s) spends a short run on
    # shrinking one input, which the ISO reader's fuzz target hits.
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime "${FUZZMINIMIZETIME:-5s}" "$pkg"
  done
done
