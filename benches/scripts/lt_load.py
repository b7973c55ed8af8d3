#!/usr/bin/python3
"""Times libtorrent's torrent_info() loading the benchmark fixtures, for side-by-side figures.

Usage: /usr/bin/python3 benches/scripts/lt_load.py [FIXTURE_DIR] [SECONDS_PER_FILE]
Prints, per file, the mean time of one load (bytes already in memory, as in the criterion bench).
"""
import os
import sys
import time

import libtorrent as lt


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else "target/bench-fixtures"
    budget = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    print(f"libtorrent {lt.__version__}")
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".torrent"):
            continue
        data = open(os.path.join(folder, name), "rb").read()
        # Warm up, and check libtorrent accepts the file.
        ti = lt.torrent_info(data)
        runs = 0
        start = time.perf_counter()
        while time.perf_counter() - start < budget:
            lt.torrent_info(data)
            runs += 1
        per = (time.perf_counter() - start) / runs
        print(f"{name}: {per * 1e3:.3f} ms per load ({runs} runs, {len(data) / per / 1e6:.0f} MB/s, "
              f"{ti.num_pieces()} pieces, {ti.num_files()} files)")


if __name__ == "__main__":
    main()
