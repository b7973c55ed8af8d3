#!/usr/bin/env bash
# Installs what the tests need (on a fresh Debian machine, as root) and runs the whole test suite.
# Set BITSHOAL_SKIP_INSTALL=1 to skip the package installation.
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages the conformance tests use: libtorrent (via /usr/bin/python3), Transmission and
# aria2 (the real clients of the interop tests), mktorrent (a torrent maker whose files the
# valid-torrent corpus is checked against), and opentracker (a real HTTP and UDP tracker).
packages=(python3-libtorrent mktorrent transmission-cli aria2 opentracker)
if [ "${BITSHOAL_SKIP_INSTALL:-0}" != 1 ]; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    else
      echo "test.sh: missing packages ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    fi
  fi
fi

cargo test --workspace --all-targets
cargo test --workspace --doc
