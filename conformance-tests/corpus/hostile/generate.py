#!/usr/bin/env python3
"""Writes the hostile-torrent corpus: NAME.torrent and NAME.expected for each case.

Standard library only. Each .expected holds the exact `Debug` form of the `MetainfoError` that
`Metainfo::from_bytes` must return for the torrent, written here by hand from the rules (not
copied from the implementation's output). conformance-tests/tests/hostile_corpus.rs checks them.

Run from anywhere: python3 conformance-tests/corpus/hostile/generate.py
"""

import hashlib
import os

HERE = os.path.dirname(os.path.abspath(__file__))
BLOCK = 16384
I64_MAX = 2**63 - 1


class Raw(bytes):
    """Bytes written as they are, not as a bencode string."""


def enc(v, sort=True):
    if isinstance(v, Raw):
        return bytes(v)
    if isinstance(v, bool):
        raise TypeError("no bools in bencode")
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(enc(x, sort) for x in v) + b"e"
    if isinstance(v, dict):
        items = [(k.encode() if isinstance(k, str) else k, x) for k, x in v.items()]
        if sort:
            items.sort(key=lambda kv: kv[0])
        return b"d" + b"".join(enc(k) + enc(x, sort) for k, x in items) + b"e"
    raise TypeError(type(v))


# ---------------------------------------------------------------- builders of (nearly) valid parts


def pieces_for(total, piece_length):
    count = -(-total // piece_length)
    return b"".join(hashlib.sha1(b"%d" % i).digest() for i in range(count))


def v1_single(length=100, piece_length=BLOCK, name="f.bin", **extra):
    info = {"name": name, "length": length, "piece length": piece_length,
            "pieces": pieces_for(length if isinstance(length, int) and length > 0 else 1, piece_length)}
    info.update(extra)
    return info


def v1_multi(files, piece_length=BLOCK, name="root", pieces=None):
    """files: list of dicts (path, length, attr, ...) or (path list, length) tuples."""
    entries, total = [], 0
    for f in files:
        if isinstance(f, tuple):
            f = {"path": list(f[0]), "length": f[1]}
        entries.append(f)
        if isinstance(f.get("length"), int) and f["length"] > 0:
            total += f["length"]
    if pieces is None:
        pieces = pieces_for(total, piece_length)
    return {"name": name, "files": entries, "piece length": piece_length, "pieces": pieces}


def torrent(info, **outer):
    t = {"announce": "http://127.0.0.1:6969/announce", "info": info}
    t.update(outer)
    return enc(t)


def content(length, seed):
    return bytes(((i * 31) ^ seed) & 0xFF for i in range(length))


def merkle(data, piece_length):
    """(pieces root, piece layer bytes) of data, BEP 52."""
    leaves = [hashlib.sha256(data[i:i + BLOCK]).digest() for i in range(0, len(data), BLOCK)]

    def fold(nodes, pad):
        n = 1
        while n < len(nodes):
            n *= 2
        nodes = nodes + [pad] * (n - len(nodes))
        while len(nodes) > 1:
            nodes = [hashlib.sha256(nodes[i] + nodes[i + 1]).digest() for i in range(0, len(nodes), 2)]
        return nodes[0]

    zero = b"\0" * 32
    root = fold(leaves, zero)
    per_piece = piece_length // BLOCK
    layer = [fold(leaves[i:i + per_piece] + [zero] * (per_piece - len(leaves[i:i + per_piece])), zero)
             for i in range(0, len(leaves), per_piece)]
    return root, b"".join(layer)


def v2(files, piece_length=BLOCK, name="root", layers=True):
    """files: list of (path list, data). Returns (info, piece layers)."""
    tree, piece_layers = {}, {}
    for path, data in files:
        leaf = {"length": len(data)}
        if data:
            root, layer = merkle(data, piece_length)
            leaf["pieces root"] = root
            if len(data) > piece_length and layers:
                piece_layers[root] = layer
        node = tree
        for c in path:
            node = node.setdefault(c, {})
        node[""] = leaf
    info = {"name": name, "meta version": 2, "piece length": piece_length, "file tree": tree}
    return info, piece_layers


def hybrid(files, piece_length=BLOCK, name="root", v1_files=None):
    """A hybrid with libtorrent-style padding; v1_files (path, length, attr) overrides the list."""
    info, layers = v2(files, piece_length, name)
    if v1_files is None:
        v1_files, offset = [], 0
        for i, (path, data) in enumerate(files):
            v1_files.append((path, len(data), ""))
            offset += len(data)
            gap = -offset % piece_length
            if gap and i + 1 < len(files):
                v1_files.append(([".pad", str(gap)], gap, "p"))
                offset += gap
    entries, total = [], 0
    for path, length, attr in v1_files:
        e = {"path": list(path), "length": length}
        if attr:
            e["attr"] = attr
        entries.append(e)
        total += length
    info["files"] = entries
    info["pieces"] = pieces_for(total, piece_length)
    return info, layers


def v2_torrent(files, piece_length=BLOCK, **kw):
    info, layers = v2(files, piece_length, **kw)
    return torrent(info, **{"piece layers": layers})


def depth_exceeded_offset(data, max_depth=100):
    """Offset at which a strict decoder with this depth limit stops: the list or dict opening
    at depth max_depth + 1 (the top level is depth 1)."""
    depth, i = 0, 0
    stack = []
    while i < len(data):
        c = data[i:i + 1]
        if c in (b"l", b"d"):
            depth += 1
            if depth > max_depth:
                return i
            stack.append(c)
            i += 1
        elif c == b"e":
            depth -= 1
            stack.pop()
            i += 1
        elif c == b"i":
            i = data.index(b"e", i) + 1
        else:
            colon = data.index(b":", i)
            i = colon + 1 + int(data[i:colon])
    raise ValueError("not deep enough")


def unsafe(file, component, reason):
    f = "None" if file is None else "Some(%d)" % file
    return 'UnsafePath { file: %s, error: PathError { component: %s, reason: %s } }' % (
        f, component, reason)


def bencode_err(offset, kind):
    return "Bencode(DecodeError { offset: %d, kind: %s })" % (offset, kind)


# ---------------------------------------------------------------------------------------- cases

CASES = []


def case(name, data, expected):
    CASES.append((name, data, expected))


A = content(40000, 1)   # 3 pieces of 16 KiB
B = content(70000, 2)   # 5 pieces
C = content(5, 3)       # less than a block

# --- bencode
case("bencode-empty-file", b"", bencode_err(0, "UnexpectedEof"))
case("bencode-truncated", b"d8:announce", bencode_err(11, "UnexpectedEof"))
good = torrent(v1_single())
case("bencode-trailing-data", good + b"x", bencode_err(len(good), "TrailingData"))
unsorted = b"d4:infod6:lengthi100e4:name5:f.bin12:piece lengthi16384e6:pieces20:" + b"a" * 20 + b"ee"
unsorted = unsorted.replace(b"6:lengthi100e4:name5:f.bin", b"4:name5:f.bin6:lengthi100e")
case("bencode-unsorted-keys", unsorted, bencode_err(unsorted.index(b"6:length"), "UnsortedKey"))
dup = b"d4:infod6:lengthi100e6:lengthi100e4:name5:f.bin12:piece lengthi16384e6:pieces20:" + b"a" * 20 + b"ee"
case("bencode-duplicate-key", dup, bencode_err(dup.index(b"6:length", 10), "DuplicateKey"))
lz = good.replace(b"6:lengthi100e", b"6:lengthi0100e")
case("bencode-leading-zero", lz, bencode_err(lz.index(b"i0100e") + 1, "LeadingZero"))
nz = torrent(v1_single(length=Raw(b"i-0e")))
case("bencode-negative-zero", nz, bencode_err(nz.index(b"i-0e") + 1, "NegativeZero"))
deep = b"l" * 200 + b"e" * 200
case("bencode-deep-nesting", deep, bencode_err(100, "DepthExceeded"))
case("bencode-string-length-overflow", b"99999999999999999999999:x",
     bencode_err(0, "IntegerOverflow"))
case("bencode-string-past-end", b"d4:info99:abe", bencode_err(7, "StringTooLong { declared: 99 }"))
io = torrent(v1_single(length=Raw(b"i9223372036854775808e")))
case("bencode-integer-overflow", io, bencode_err(io.index(b"i9223372036854775808e"), "IntegerOverflow"))
nk = b"d4:infodi1ei2eee"
case("bencode-key-not-string", nk, bencode_err(8, "KeyNotString"))
deep_tree = {"a": {}}
node = deep_tree["a"]
for _ in range(120):
    node["a"] = {}
    node = node["a"]
node[""] = {"length": 1, "pieces root": b"\1" * 32}
deep_t = torrent({"name": "root", "meta version": 2, "piece length": BLOCK, "file tree": deep_tree})
case("bencode-file-tree-too-deep", deep_t, bencode_err(depth_exceeded_offset(deep_t), "DepthExceeded"))

# --- structure and types
case("root-is-list", b"le", 'WrongType { key: "<root>", expected: "dictionary" }')
case("missing-info", enc({"announce": "http://x/"}), 'MissingKey { key: "info" }')
case("info-is-string", enc({"info": "x"}), 'WrongType { key: "info", expected: "dictionary" }')
i = v1_single(); del i["name"]
case("missing-name", torrent(i), 'MissingKey { key: "info.name" }')
case("name-is-integer", torrent(v1_single(name=5)), 'WrongType { key: "info.name", expected: "string" }')
i = v1_single(); del i["piece length"]
case("missing-piece-length", torrent(i), 'MissingKey { key: "info.piece length" }')
case("piece-length-is-string", torrent(dict(v1_single(), **{"piece length": "16384"})),
     'WrongType { key: "info.piece length", expected: "integer" }')
case("piece-length-zero", torrent(dict(v1_single(), **{"piece length": 0})),
     "BadPieceLength { length: 0, reason: NotPositive }")
case("piece-length-negative", torrent(dict(v1_single(), **{"piece length": -16384})),
     "BadPieceLength { length: -16384, reason: NotPositive }")
case("piece-length-huge", torrent(dict(v1_single(), **{"piece length": 2**31})),
     "BadPieceLength { length: 2147483648, reason: TooLarge }")
case("piece-length-i64-max", torrent(dict(v1_single(), **{"piece length": I64_MAX})),
     "BadPieceLength { length: %d, reason: TooLarge }" % I64_MAX)
i = v1_single(); del i["pieces"]
case("missing-pieces", torrent(i), 'MissingKey { key: "info.pieces" }')
case("pieces-is-integer", torrent(dict(v1_single(), pieces=20)),
     'WrongType { key: "info.pieces", expected: "string" }')
case("pieces-not-multiple-of-20", torrent(dict(v1_single(), pieces=b"x" * 21)),
     "PiecesNotMultipleOf20 { len: 21 }")
case("pieces-too-few", torrent(dict(v1_single(length=3 * BLOCK), pieces=b"x" * 40)),
     "PieceCountMismatch { expected: 3, actual: 2 }")
case("pieces-too-many", torrent(dict(v1_single(length=1), pieces=b"x" * 40)),
     "PieceCountMismatch { expected: 1, actual: 2 }")
case("pieces-2pow21-plus-1", torrent(dict(v1_single(), length=(2**21 + 1) * BLOCK, pieces=b"x" * 20)),
     "TooManyPieces { count: 2097153, max: 2097152 }")
case("pieces-huge-length-tiny-pieces",
     torrent(dict(v1_single(), length=2**40, pieces=b"x" * 20, **{"piece length": 1})),
     "TooManyPieces { count: 1099511627776, max: 2097152 }")
case("pieces-multi-file-2pow21-plus-1",
     torrent(v1_multi([(["a"], 2**21 * BLOCK), (["b"], 1)], pieces=b"x" * 20)),
     "TooManyPieces { count: 2097153, max: 2097152 }")
i = v1_single(); del i["length"]
case("missing-length-and-files", torrent(i), 'MissingKey { key: "info.files" }')
case("both-length-and-files", torrent(dict(v1_single(), files=[{"path": ["a"], "length": 1}])),
     "BothLengthAndFiles")
case("length-is-string", torrent(dict(v1_single(), length="100")),
     'WrongType { key: "info.length", expected: "integer" }')
case("negative-length-single", torrent(dict(v1_single(), length=-5)),
     "NegativeLength { file: 0, length: -5 }")
case("negative-length-multi", torrent(v1_multi([(["a"], 10), (["b"], -1)])),
     "NegativeLength { file: 1, length: -1 }")
case("length-overflow-when-summing",
     torrent(v1_multi([(["a"], I64_MAX), (["b"], I64_MAX), (["c"], I64_MAX)], pieces=b"x" * 20)),
     "LengthOverflow")
case("empty-torrent-zero-length", torrent(v1_single(length=0)), "EmptyTorrent")
case("empty-torrent-no-files", torrent(v1_multi([])), "EmptyTorrent")
case("files-is-dict", torrent(dict(v1_multi([(["a"], 1)]), files={"a": 1})),
     'WrongType { key: "info.files", expected: "list" }')
case("file-entry-is-string", torrent(dict(v1_multi([(["a"], 1)]), files=["a"])),
     'WrongType { key: "info.files", expected: "list of dictionaries" }')
case("file-missing-length", torrent(v1_multi([{"path": ["a"]}])), 'MissingKey { key: "info.files.length" }')
case("file-missing-path", torrent(v1_multi([{"length": 1}])), 'MissingKey { key: "info.files.path" }')
case("file-path-is-string", torrent(v1_multi([{"path": "a/b", "length": 1}])),
     'WrongType { key: "info.files.path", expected: "list" }')
case("file-path-component-integer", torrent(v1_multi([{"path": ["a", 1], "length": 1}])),
     'WrongType { key: "info.files.path", expected: "list of strings" }')
case("file-attr-is-integer", torrent(v1_multi([{"path": ["a"], "length": 1, "attr": 1}])),
     'WrongType { key: "info.files.attr", expected: "string" }')
case("private-is-string", torrent(dict(v1_single(), private="1")),
     'WrongType { key: "info.private", expected: "integer" }')

# --- paths (v1)
def path_case(name, components, component_debug, reason, file=0, depth_files=None):
    case(name, torrent(v1_multi([(components, 10)])), unsafe(file, component_debug, reason))

path_case("path-dotdot", [b".."], '".."', "DotDot")
path_case("path-dotdot-deeper", [b"a", b"..", b"..", b"etc"], '".."', "DotDot")
path_case("path-dot", [b"."], '"."', "Dot")
path_case("path-no-components", [], '""', "NoComponents")
path_case("path-empty-component", [b"a", b""], '""', "Empty")
path_case("path-absolute", [b"/etc/passwd"], '"/etc/passwd"', "Separator")
path_case("path-slash-inside", [b"a/../../b"], '"a/../../b"', "Separator")
path_case("path-backslash-traversal", [b"..\\..\\windows"], '"..\\\\..\\\\windows"', "Separator")
path_case("path-drive-letter", [b"C:", b"Windows"], '"C:"', "Colon")
path_case("path-ntfs-stream", [b"file.txt:hidden"], '"file.txt:hidden"', "Colon")
path_case("path-nul-byte", [b"a\0b"], '"a\\0b"', "ControlCharacter")
path_case("path-newline", [b"a\nb"], '"a\\nb"', "ControlCharacter")
path_case("path-escape-sequence", [b"\x1b[31mred"], '"\\u{1b}[31mred"', "ControlCharacter")
path_case("path-reserved-con", [b"CON"], '"CON"', "ReservedName")
path_case("path-reserved-lpt1-ext", [b"dir", b"lpt1.txt"], '"lpt1.txt"', "ReservedName")
path_case("path-reserved-nul-lowercase", [b"nul"], '"nul"', "ReservedName")
path_case("path-trailing-dot", [b"file."], '"file."', "TrailingDotOrSpace")
path_case("path-trailing-space", [b"file "], '"file "', "TrailingDotOrSpace")
path_case("path-invalid-utf8", [b"\xff\xfe"], '"\ufffd\ufffd"', "InvalidUtf8")
path_case("path-overlong-utf8-slash", [b"\xc0\xafetc"], '"\ufffd\ufffdetc"', "InvalidUtf8")
path_case("path-component-too-long", [b"a" * 256], '"%s"' % ("a" * 256), "TooLong { len: 256, max: 255 }")
case("path-too-deep", torrent(v1_multi([([b"d"] * 64, 10)])), "PathTooDeep { file: 0, depth: 65, max: 64 }")
case("path-utf8-variant-preferred", torrent(v1_multi([{"path": ["ok"], "path.utf-8": [".."], "length": 1}])),
     unsafe(0, '".."', "DotDot"))
case("path-in-second-file", torrent(v1_multi([(["ok"], 1), (["x", ".."], 1)])), unsafe(1, '".."', "DotDot"))
case("pad-file-with-traversal-path", torrent(v1_multi([(["a"], 1), {"path": ["..", "x"], "length": 5, "attr": "p"}])),
     unsafe(1, '".."', "DotDot"))
case("name-dotdot", torrent(v1_single(name="..")), unsafe(None, '".."', "DotDot"))
case("name-empty", torrent(v1_single(name="")), unsafe(None, '""', "Empty"))
case("name-absolute", torrent(v1_single(name="/etc/passwd")), unsafe(None, '"/etc/passwd"', "Separator"))
case("name-utf8-variant-traversal", torrent(v1_single(**{"name.utf-8": "../x"})),
     unsafe(None, '"../x"', "Separator"))
case("duplicate-path", torrent(v1_multi([(["a"], 1), (["b"], 1), (["a"], 1)])),
     'DuplicatePath { path: "root/a" }')
case("file-collides-with-directory", torrent(v1_multi([(["a"], 1), (["a", "b"], 1)])),
     'FileIsDirectory { path: "root/a", inside: "root/a/b" }')
case("file-collides-with-deep-directory", torrent(v1_multi([(["a", "b", "c"], 1), (["a-b"], 1), (["a", "b"], 1)])),
     'FileIsDirectory { path: "root/a/b", inside: "root/a/b/c" }')

# --- symlinks (BEP 47)
case("symlink-outside", torrent(v1_multi([(["a"], 5), {"path": ["l"], "length": 0, "attr": "l", "symlink path": ["..", "..", "etc", "passwd"]}])),
     unsafe(1, '".."', "DotDot"))
case("symlink-absolute", torrent(v1_multi([(["a"], 5), {"path": ["l"], "attr": "l", "symlink path": ["/etc/passwd"]}])),
     unsafe(1, '"/etc/passwd"', "Separator"))
case("symlink-without-target", torrent(v1_multi([(["a"], 5), {"path": ["l"], "attr": "l"}])),
     "MissingSymlinkTarget { file: 1 }")
case("symlink-with-length", torrent(v1_multi([{"path": ["l"], "length": 5, "attr": "l", "symlink path": ["a"]}])),
     "SymlinkWithLength { file: 0 }")
case("symlink-target-is-string", torrent(v1_multi([(["a"], 5), {"path": ["l"], "attr": "l", "symlink path": "a"}])),
     'WrongType { key: "info.files.symlink path", expected: "list of strings" }')

# --- v2 (BEP 52)
info, layers = v2([(["a.bin"], A)])
case("v2-meta-version-1", torrent(dict(info, **{"meta version": 1}), **{"piece layers": layers}),
     "UnsupportedMetaVersion(1)")
case("v2-meta-version-3", torrent(dict(info, **{"meta version": 3}), **{"piece layers": layers}),
     "UnsupportedMetaVersion(3)")
case("v2-meta-version-string", torrent(dict(info, **{"meta version": "2"}), **{"piece layers": layers}),
     'WrongType { key: "info.meta version", expected: "integer" }')
case("v2-piece-length-not-power-of-two", torrent(dict(info, **{"piece length": 3 * BLOCK}), **{"piece layers": layers}),
     "BadPieceLength { length: 49152, reason: NotPowerOfTwoAtLeast16KiB }")
case("v2-piece-length-below-16k", torrent(dict(info, **{"piece length": 8192}), **{"piece layers": layers}),
     "BadPieceLength { length: 8192, reason: NotPowerOfTwoAtLeast16KiB }")
i = dict(info); del i["file tree"]
case("v2-missing-file-tree", torrent(i), 'MissingKey { key: "info.file tree" }')
case("v2-file-tree-is-list", torrent(dict(info, **{"file tree": []})),
     'WrongType { key: "info.file tree", expected: "dictionary" }')
case("v2-root-is-file", torrent(dict(info, **{"file tree": {"": {"length": 5}}})),
     'BadFileTree { path: "", problem: RootIsFile }')
case("v2-empty-file-tree", torrent(dict(info, **{"file tree": {}})),
     'BadFileTree { path: "", problem: EmptyDirectory }')
case("v2-empty-directory", torrent(dict(info, **{"file tree": {"a": {"": {"length": 5, "pieces root": b"\1" * 32}}, "d": {}}})),
     'BadFileTree { path: "d", problem: EmptyDirectory }')
case("v2-file-with-siblings", torrent(dict(info, **{"file tree": {"a": {"": {"length": 5, "pieces root": b"\1" * 32}, "b": {"": {"length": 1}}}}})),
     'BadFileTree { path: "a", problem: FileWithSiblings }')
case("v2-leaf-missing-length", torrent(dict(info, **{"file tree": {"d": {"a": {"": {"pieces root": b"\1" * 32}}}}})),
     'BadFileTree { path: "d/a", problem: MissingLength }')
case("v2-node-is-integer", torrent(dict(info, **{"file tree": {"a": 5}})),
     'WrongType { key: "info.file tree", expected: "dictionary" }')
case("v2-leaf-is-list", torrent(dict(info, **{"file tree": {"a": {"": []}}})),
     'WrongType { key: "info.file tree.\\"\\"", expected: "dictionary" }')
case("v2-key-dotdot", v2_torrent([([b"..", b"etc"], C)]), unsafe(0, '".."', "DotDot"))
case("v2-key-with-slash", v2_torrent([([b"a/../../b"], C), ([b"z"], C)]), unsafe(0, '"a/../../b"', "Separator"))
case("v2-key-reserved", v2_torrent([([b"d"], C), ([b"e", b"aux.c"], C)]), unsafe(1, '"aux.c"', "ReservedName"))
# b"\xe2\x82" sorts after b"b", so it is the second file.
case("v2-key-invalid-utf8", v2_torrent([([b"\xe2\x82"], C), ([b"b"], C)]), unsafe(1, '"\ufffd"', "InvalidUtf8"))
deep_path = [b"d"] * 70
case("v2-path-too-deep", v2_torrent([(deep_path, C)]),
     "PathTooDeep { file: 0, depth: 65, max: 64 }")
case("v2-negative-length", torrent(dict(info, **{"file tree": {"a": {"": {"length": -1}}}})),
     "NegativeLength { file: 0, length: -1 }")
case("v2-missing-pieces-root", torrent(dict(info, **{"file tree": {"a": {"": {"length": 5}}}})),
     "BadPiecesRoot { file: 0 }")
case("v2-short-pieces-root", torrent(dict(info, **{"file tree": {"a": {"": {"length": 5, "pieces root": b"\1" * 31}}}})),
     "BadPiecesRoot { file: 0 }")
case("v2-pieces-root-is-integer", torrent(dict(info, **{"file tree": {"a": {"": {"length": 5, "pieces root": 1}}}})),
     'WrongType { key: "info.file tree.pieces root", expected: "string" }')
case("v2-2pow21-plus-1-pieces", torrent(dict(info, **{"file tree": {"a": {"": {"length": (2**21 + 1) * BLOCK, "pieces root": b"\1" * 32}}}})),
     "TooManyPieces { count: 2097153, max: 2097152 }")
case("v2-length-overflow-with-alignment", torrent(dict(info, **{"file tree": {
    "a": {"": {"length": I64_MAX, "pieces root": b"\1" * 32}},
    "b": {"": {"length": I64_MAX, "pieces root": b"\1" * 32}},
    "c": {"": {"length": 1, "pieces root": b"\1" * 32}}}})),
     "LengthOverflow")
case("v2-symlink-outside", torrent(dict(info, **{"file tree": {
    "a": {"": {"length": 5, "pieces root": b"\1" * 32}},
    "l": {"": {"attr": "l", "symlink path": ["..", "..", "x"]}}}})),
     unsafe(1, '".."', "DotDot"))
case("v2-missing-piece-layers", torrent(info), "MissingPieceLayer { file: 0 }")
root_a = info["file tree"]["a.bin"][""]["pieces root"]
case("v2-piece-layers-is-list", torrent(info, **{"piece layers": []}),
     'WrongType { key: "piece layers", expected: "dictionary" }')
case("v2-piece-layer-is-integer", torrent(info, **{"piece layers": {root_a: 1}}),
     'WrongType { key: "piece layers", expected: "dictionary of strings" }')
case("v2-piece-layer-for-other-root", torrent(info, **{"piece layers": {b"\2" * 32: layers[root_a]}}),
     "MissingPieceLayer { file: 0 }")
case("v2-piece-layer-short", torrent(info, **{"piece layers": {root_a: layers[root_a][:64]}}),
     "PieceLayerLength { file: 0, expected: 96, actual: 64 }")
case("v2-piece-layer-long", torrent(info, **{"piece layers": {root_a: layers[root_a] + b"\0" * 32}}),
     "PieceLayerLength { file: 0, expected: 96, actual: 128 }")
bad_layer = bytearray(layers[root_a]); bad_layer[33] ^= 1
case("v2-piece-layer-wrong-hashes", torrent(info, **{"piece layers": {root_a: bytes(bad_layer)}}),
     "PieceLayerMismatch { file: 0 }")
wrong_layer_height = merkle(A, 2 * BLOCK)[1]  # a layer of 32 KiB pieces for a 16 KiB torrent
case("v2-piece-layer-from-wrong-layer", torrent(info, **{"piece layers": {root_a: wrong_layer_height + b"\0" * 32}}),
     "PieceLayerMismatch { file: 0 }")
info2, layers2 = v2([(["a.bin"], A), (["b.bin"], B)])
root_b = info2["file tree"]["b.bin"][""]["pieces root"]
swapped = {root_a: layers2[root_a], root_b: layers2[root_a] + b"\0" * 64}
case("v2-second-file-bad-layer", torrent(info2, **{"piece layers": swapped}),
     "PieceLayerMismatch { file: 2 }")

# --- hybrid (BEP 52 upgrade path)
files = [(["a.bin"], A), (["b.bin"], B), (["c.txt"], C)]
hinfo, hlayers = hybrid(files)
case("hybrid-path-mismatch", torrent(hybrid(files, v1_files=[(["a.bin"], 40000, ""), ([".pad", "9152"], 9152, "p"), (["x.bin"], 70000, ""), ([".pad", "11920"], 11920, "p"), (["c.txt"], 5, "")])[0], **{"piece layers": hlayers}),
     'HybridMismatch(Path { index: 1, v1: "root/x.bin", v2: "root/b.bin" })')
case("hybrid-order-mismatch", torrent(hybrid(files, v1_files=[(["b.bin"], 70000, ""), ([".pad", "11920"], 11920, "p"), (["a.bin"], 40000, ""), ([".pad", "9152"], 9152, "p"), (["c.txt"], 5, "")])[0], **{"piece layers": hlayers}),
     'HybridMismatch(Path { index: 0, v1: "root/b.bin", v2: "root/a.bin" })')
case("hybrid-length-mismatch", torrent(hybrid(files, v1_files=[(["a.bin"], 40000, ""), ([".pad", "9152"], 9152, "p"), (["b.bin"], 70000, ""), ([".pad", "11920"], 11920, "p"), (["c.txt"], 6, "")])[0], **{"piece layers": hlayers}),
     "HybridMismatch(Length { index: 2, v1: 6, v2: 5 })")
case("hybrid-missing-padding", torrent(hybrid(files, v1_files=[(["a.bin"], 40000, ""), (["b.bin"], 70000, ""), (["c.txt"], 5, ""), ([".pad", "21072"], 21072, "p")])[0], **{"piece layers": hlayers}),
     "HybridMismatch(Unaligned { index: 1, offset: 40000 })")
case("hybrid-short-padding", torrent(hybrid(files, v1_files=[(["a.bin"], 40000, ""), ([".pad", "9151"], 9151, "p"), (["b.bin"], 70000, ""), ([".pad", "11921"], 11921, "p"), (["c.txt"], 5, "")])[0], **{"piece layers": hlayers}),
     "HybridMismatch(Unaligned { index: 1, offset: 49151 })")
case("hybrid-file-count-mismatch", torrent(hybrid(files, v1_files=[(["a.bin"], 40000, ""), ([".pad", "9152"], 9152, "p"), (["b.bin"], 70000, ""), ([".pad", "11925"], 11925, "p")])[0], **{"piece layers": hlayers}),
     "HybridMismatch(FileCount { v1: 2, v2: 3 })")
case("hybrid-attribute-mismatch", torrent(hybrid(files, v1_files=[(["a.bin"], 40000, "x"), ([".pad", "9152"], 9152, "p"), (["b.bin"], 70000, ""), ([".pad", "11920"], 11920, "p"), (["c.txt"], 5, "")])[0], **{"piece layers": hlayers}),
     "HybridMismatch(Attributes { index: 0 })")
case("hybrid-extra-padding-piece", torrent(hybrid(files, v1_files=[(["a.bin"], 40000, ""), ([".pad", "9152"], 9152, "p"), (["b.bin"], 70000, ""), ([".pad", "11920"], 11920, "p"), (["c.txt"], 5, ""), ([".pad", "32763"], 32763, "p")])[0], **{"piece layers": hlayers}),
     "HybridMismatch(PieceCount { v1: 10, v2: 9 })")
single_info, single_layers = hybrid([(["a.bin"], A)])
del single_info["files"]
single_info.update(name="other.bin", length=40000)
case("hybrid-single-file-name-mismatch", torrent(single_info, **{"piece layers": single_layers}),
     'HybridMismatch(Path { index: 0, v1: "other.bin", v2: "a.bin" })')
case("hybrid-piece-length-not-power-of-two", torrent(dict(hinfo, **{"piece length": 40000})),
     "BadPieceLength { length: 40000, reason: NotPowerOfTwoAtLeast16KiB }")
case("hybrid-v1-pieces-wrong-count", torrent(dict(hinfo, pieces=hinfo["pieces"][:-20]), **{"piece layers": hlayers}),
     "PieceCountMismatch { expected: 9, actual: 8 }")
case("hybrid-bad-piece-layer", torrent(hinfo, **{"piece layers": {root_a: hlayers[root_a][:-32]}}),
     "PieceLayerLength { file: 0, expected: 96, actual: 64 }")


def main():
    for old in os.listdir(HERE):
        if old.endswith((".torrent", ".expected")):
            os.remove(os.path.join(HERE, old))
    names = set()
    for name, data, expected in CASES:
        assert name not in names, name
        names.add(name)
        assert len(data) < 64 * 1024, name
        with open(os.path.join(HERE, name + ".torrent"), "wb") as f:
            f.write(data)
        with open(os.path.join(HERE, name + ".expected"), "w", encoding="utf-8") as f:
            f.write(expected + "\n")
    print("wrote %d cases" % len(CASES))


if __name__ == "__main__":
    main()
