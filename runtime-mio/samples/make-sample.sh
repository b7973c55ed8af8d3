#!/usr/bin/env bash
# Rebuilds sample.torrent: a hybrid (v1 + v2) torrent of a small payload that this script makes
# the same way every time, written by `bitshoal create` without a creation date, so the result is
# byte-for-byte reproducible. The payload itself is not kept.
#
# Usage: runtime-mio/samples/make-sample.sh [OUT_DIR]     (default: this directory)
# Set BITSHOAL to a built bitshoal binary to skip `cargo run`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out_dir="$(cd "${1:-$here}" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

p="$tmp/bitshoal-sample"
mkdir -p "$p/data" "$p/docs"
printf 'A sample torrent for bitshoal.\nTry: bitshoal info sample.torrent\n' >"$p/README.txt"
seq 1 15000 | sed 's/^.*$/bitshoal sample data/' >"$p/data/lines.txt"
seq 1 20000 >"$p/data/numbers.txt"
seq -w 1 4000 | tr '\n' ' ' >"$p/docs/words.txt"
: >"$p/docs/empty.txt"

if [ -n "${BITSHOAL:-}" ]; then
  bitshoal=("$BITSHOAL")
else
  bitshoal=(cargo run --quiet --release -p bitshoal-mio --bin bitshoal --)
fi
"${bitshoal[@]}" create "$p" --hybrid --piece-length 32KiB \
  --tracker http://tracker.example/announce --tracker udp://tracker.example:6969/announce \
  --web-seed http://seed.example/files/ \
  --comment "bitshoal sample torrent (runtime-mio/samples/make-sample.sh)" \
  --created-by bitshoal --no-date --threads 1 --force --output "$out_dir/sample.torrent"
