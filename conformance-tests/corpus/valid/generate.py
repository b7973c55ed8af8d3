#!/usr/bin/python3
"""Writes the valid-torrent corpus: small torrents made by mktorrent, transmission-create and
libtorrent (via this Python's `import libtorrent`), each with a `.expected` sidecar holding
libtorrent's view of it (see lt_view.py for the format).

Usage: /usr/bin/python3 generate.py     (needs mktorrent, transmission-create, python3-libtorrent)

The payloads are made deterministically in a temporary directory and thrown away; only the
.torrent files and their sidecars are kept. Info-hashes are reproducible; bytes outside `info`
are not always (transmission-create always writes the current time as `creation date`, and so does
mktorrent unless given -d).
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

import libtorrent as lt

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from lt_view import header, view  # noqa: E402

FIXED_DATE = 1700000000


def data(seed, n):
    """n bytes from a SHA-256 counter stream seeded by `seed` (incompressible, reproducible)."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(("%s/%d" % (seed, i)).encode()).digest()
        i += 1
    return bytes(out[:n])


# Payloads: name -> list of (relative path, size, mode) or (relative path, "->", target).
# A payload with one entry whose path has no "/" is a single-file torrent.
PAYLOADS = {
    "single": [("single-payload.bin", 200_001, 0o644)],
    "small": [("note.txt", 3_000, 0o644)],
    "big": [("blob.bin", 1_048_576 + 17, 0o644)],
    "multi": [
        ("album/01 intro.flac", 150_000, 0o644),
        ("album/02 song.flac", 220_000, 0o644),
        ("album/cover.jpg", 40_000, 0o644),
        ("album/notes/readme.txt", 1_234, 0o644),
        ("album/notes/empty.txt", 0, 0o644),
    ],
    "unicode": [
        ("données/café/naïve.txt", 5_000, 0o644),
        ("données/日本語.bin", 70_000, 0o644),
        ("données/ünïcödé/ß.dat", 33_333, 0o644),
    ],
    "deep": [
        ("deep/a/b/c/d/e.bin", 20_000, 0o644),
        ("deep/a/b/f.bin", 65_536, 0o644),
        ("deep/a/g.bin", 1, 0o644),
        ("deep/h.bin", 131_072, 0o644),
    ],
    "attrs": [
        ("attrs/bin/tool.sh", 5_000, 0o755),
        ("attrs/lib/data.bin", 300_000, 0o644),
        ("attrs/lib/link", "->", "data.bin"),
        ("attrs/empty", 0, 0o644),
        ("attrs/odd.bin", 12_345, 0o755),
    ],
}


def make_payload(base, name):
    """Writes payload `name` under `base`; returns the path of the file or top directory."""
    entries = PAYLOADS[name]
    for entry in entries:
        path = os.path.join(base, entry[0])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if entry[1] == "->":
            os.symlink(entry[2], path)
        else:
            with open(path, "wb") as f:
                f.write(data(name + "/" + entry[0], entry[1]))
            os.chmod(path, entry[2])
    return os.path.join(base, entries[0][0].split("/")[0])


def run(argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def mktorrent(out, src, *args):
    run(["mktorrent", "-t", "1", "-o", out, *args, src])


def transmission(out, src, *args):
    run(["transmission-create", "-o", out, *args, src])


def libtorrent(out, src, piece_length, flags=0, setup=None):
    fs = lt.file_storage()
    lt.add_files(fs, src, flags=flags & lt.create_torrent.symlinks)
    t = lt.create_torrent(fs, piece_length, flags=flags)
    t.set_creator("libtorrent " + lt.__version__)
    if setup:
        setup(t)
    lt.set_piece_hashes(t, os.path.dirname(src))
    e = t.generate()
    e[b"creation date"] = FIXED_DATE
    with open(out, "wb") as f:
        f.write(lt.bencode(e))


C = lt.create_torrent
T1 = "http://tracker.example/announce"
T2 = "udp://tracker2.example:6969/announce"
T3 = "http://backup.example:8080/announce"


def lt_seeds_similar(t):
    t.add_tracker(T1, 0)
    t.add_url_seed("http://seed1.example/files/")
    t.add_url_seed("http://seed2.example/files/")
    t.add_http_seed("http://httpseed.example/seed.php")
    t.add_node("router.example", 6881)
    t.add_node("10.0.0.1", 51413)
    t.add_similar_torrent(lt.sha1_hash(bytes(range(20))))
    t.add_collection("bitshoal corpus")
    t.set_comment("url seeds, http seed, nodes, similar and collections")
    t.set_priv(True)


def lt_trackers(t):
    t.add_tracker(T1, 0)
    t.add_tracker(T3, 0)
    t.add_tracker(T2, 1)
    t.set_comment("hybrid, 128 KiB pieces")


# name -> (payload, maker)
CORPUS = {
    # mktorrent 1.1: v1 only; -l is log2 of the piece length.
    "mk-single-l15": ("single", lambda o, s: mktorrent(o, s, "-l", "15", "-a", T1, "-d")),
    "mk-multi-tiers": ("multi", lambda o, s: mktorrent(
        o, s, "-l", "16", "-a", T1 + "," + T3, "-a", T2, "-c", "multi-file, two tiers", "-d")),
    "mk-private-webseeds": ("deep", lambda o, s: mktorrent(
        o, s, "-l", "17", "-p", "-a", T1, "-w", "http://ws1.example/files/",
        "-w", "http://ws2.example/", "-d")),
    "mk-source-name": ("small", lambda o, s: mktorrent(
        o, s, "-l", "15", "-s", "BITSHOAL", "-n", "renamed.txt", "-a", T2, "-d")),
    "mk-unicode-dated": ("unicode", lambda o, s: mktorrent(o, s, "-l", "18", "-a", T1)),
    "mk-big-l20": ("big", lambda o, s: mktorrent(o, s, "-l", "20", "-a", T1, "-d")),
    # transmission-create 3.00: v1 only; -s is the piece size in KiB; always dated.
    "tr-single": ("single", lambda o, s: transmission(o, s, "-t", T1)),
    "tr-multi-s32-comment": ("multi", lambda o, s: transmission(
        o, s, "-s", "32", "-c", "made by transmission-create", "-t", T1, "-t", T2)),
    "tr-private": ("deep", lambda o, s: transmission(o, s, "-p", "-t", T3)),
    "tr-unicode-s16": ("unicode", lambda o, s: transmission(o, s, "-s", "16", "-t", T1)),
    "tr-small-no-tracker": ("small", lambda o, s: transmission(o, s)),
    "tr-big-s48": ("big", lambda o, s: transmission(o, s, "-s", "48", "-t", T1)),
    # libtorrent 2.0: v1, v2 and hybrid.
    "lt-v1-canonical-pad": ("multi", lambda o, s: libtorrent(
        o, s, 16384, C.v1_only | C.canonical_files, lambda t: t.add_tracker(T1, 0))),
    "lt-v1-piece-48k": ("single", lambda o, s: libtorrent(o, s, 49152, C.v1_only)),
    "lt-v1-seeds-similar": ("unicode", lambda o, s: libtorrent(
        o, s, 32768, C.v1_only, lt_seeds_similar)),
    "lt-v1-no-attributes": ("attrs", lambda o, s: libtorrent(
        o, s, 16384, C.v1_only | C.no_attributes)),
    "lt-v2-deep-32k": ("deep", lambda o, s: libtorrent(
        o, s, 32768, C.v2_only, lambda t: t.add_tracker(T2, 0))),
    "lt-v2-single-small": ("small", lambda o, s: libtorrent(o, s, 16384, C.v2_only)),
    "lt-hybrid-symlink-exec": ("attrs", lambda o, s: libtorrent(
        o, s, 16384, C.symlinks, lambda t: t.set_comment("symlink and executable files"))),
    "lt-hybrid-big-128k": ("big", lambda o, s: libtorrent(o, s, 131072, 0, lt_trackers)),
}


def main():
    for name, (payload, make) in CORPUS.items():
        base = tempfile.mkdtemp(prefix="bitshoal-corpus-")
        try:
            src = make_payload(base, payload)
            out = os.path.join(HERE, name + ".torrent")
            if os.path.exists(out):
                os.remove(out)
            make(out, src)
        except subprocess.CalledProcessError as e:
            sys.exit("%s: %s failed: %s" % (name, e.cmd[0], e.stderr.decode(errors="replace")))
        finally:
            shutil.rmtree(base)
        with open(os.path.join(HERE, name + ".expected"), "w", encoding="utf-8") as f:
            f.write(header())
            f.write(view(out))
        ih = lt.torrent_info(out).info_hashes()
        print("%-24s %5d bytes  v1 %s  v2 %s" % (
            name, os.path.getsize(out), ih.v1 if ih.has_v1() else "-", ih.v2 if ih.has_v2() else "-"))


if __name__ == "__main__":
    main()
