#!/usr/bin/python3
"""libtorrent's view of .torrent files, as the text of a `.expected` sidecar.

Usage: /usr/bin/python3 lt_view.py FILE.torrent...
Prints, for each file, its sidecar text (without the `#` header line) followed by a line `end`.
`generate.py` writes these sidecars; conformance-tests/tests/valid_corpus.rs reads them and also
runs this script to check that the committed ones still match what libtorrent says.

Line format (one fact per line, `-` for an absent hash):
  v1 HEX | v1 -            v2 HEX | v2 -
  name NAME                piece_length N      pieces N     total N (padding included)
  num_files N (padding files included)
  private 0|1              creation_date N (0 when absent)
  comment TEXT             created_by TEXT     (only when non-empty)
  tracker TIER URL (sorted within a tier)   web_seed URL        http_seed URL        node HOST PORT
  similar HEX              collection NAME
  file OFFSET SIZE FLAGS PATH    (FLAGS: letters p h x l, or -)
  symlink INDEX TARGET
"""
import sys

import libtorrent as lt


def view(path):
    ti = lt.torrent_info(path)
    ih = ti.info_hashes()
    fs = ti.files()
    out = []
    out.append("v1 %s" % (ih.v1 if ih.has_v1() else "-"))
    out.append("v2 %s" % (ih.v2 if ih.has_v2() else "-"))
    out.append("name %s" % ti.name())
    out.append("piece_length %d" % ti.piece_length())
    out.append("pieces %d" % ti.num_pieces())
    out.append("total %d" % fs.total_size())
    out.append("num_files %d" % fs.num_files())
    out.append("private %d" % (1 if ti.priv() else 0))
    out.append("creation_date %d" % ti.creation_date())
    if ti.comment():
        out.append("comment %s" % ti.comment())
    if ti.creator():
        out.append("created_by %s" % ti.creator())
    # libtorrent shuffles the trackers of each tier as it loads them (BEP 12), so sort them.
    for t in sorted(ti.trackers(), key=lambda t: (t.tier, t.url)):
        out.append("tracker %d %s" % (t.tier, t.url))
    for ws in ti.web_seeds():
        out.append("%s %s" % ("web_seed" if ws["type"] == 0 else "http_seed", ws["url"]))
    for host, port in ti.nodes():
        out.append("node %s %d" % (host, port))
    for h in ti.similar_torrents():
        out.append("similar %s" % h)
    for c in ti.collections():
        out.append("collection %s" % c)
    for i in range(fs.num_files()):
        fl = fs.file_flags(i)
        flags = "".join(c for bit, c in [(1, "p"), (2, "h"), (4, "x"), (8, "l")] if fl & bit) or "-"
        out.append("file %d %d %s %s" % (fs.file_offset(i), fs.file_size(i), flags, fs.file_path(i)))
    for i in range(fs.num_files()):
        if fs.file_flags(i) & 8:
            out.append("symlink %d %s" % (i, fs.symlink(i)))
    return "\n".join(out) + "\n"


def header():
    return "# libtorrent %s's view (written by lt_view.py)\n" % lt.__version__


if __name__ == "__main__":
    # UTF-8 whatever the locale, as the sidecars are.
    for p in sys.argv[1:]:
        sys.stdout.buffer.write((view(p) + "end\n").encode("utf-8"))
