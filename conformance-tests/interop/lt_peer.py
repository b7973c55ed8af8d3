#!/usr/bin/python3
"""A libtorrent peer for bitshoal's interop tests, on 127.0.0.1 only.

Usage:
  lt_peer.py create SRC OUT.torrent [TRACKER]  -> writes a hybrid torrent (libtorrent pads every
                                                  file to a piece boundary); prints "CREATED"
  lt_peer.py create-v1 SRC OUT.torrent [TRACKER]
                                               -> the same as a v1-only torrent, still with BEP 47
                                                  pad files (libtorrent's canonical_files)
  lt_peer.py run SPEC.json                     -> runs the torrents SPEC describes

SPEC (JSON):
  torrents: [{torrent, save, seed: bool, peers: ["127.0.0.1:PORT", ...]}]
  settings: extra libtorrent settings (e.g. upload_rate_limit, unchoke_slots_limit)
  log:      peer-log message names to report (e.g. ["HAVE_ALL", "REJECT_PIECE"])
  pause:    {index, after_bytes, seconds}: once torrent `index` has moved `after_bytes` of
            payload, pause it (every connection closes), wait, resume and reconnect
  deadline: seconds before the process exits by itself (default 90)

Output lines:
  READY <port>                  every torrent is checked (seeds are seeding)
  DONE <index> <down> <up>      a downloading torrent completed (payload bytes)
  ALLDONE                       every downloading torrent completed
  LOG <dir> <NAME> <client> <args>  a peer-log message named in `log`; dir is "in" or "out";
                                client as libtorrent names the peer (spaces as "_")
  PEER <index> <client> <flags> a connected peer at DONE (client as libtorrent names it)
  PAUSED <index> / RESUMED <index>
  STATS <index> <down> <up>     for every torrent, once a second

Everything that would reach beyond 127.0.0.1 is off: DHT, LSD, UPnP, NAT-PMP, uTP. The process
exits by itself after the deadline so a failed test never leaves it behind; the test also kills it.
"""
import json
import re
import sys
import time

import libtorrent as lt

LOG_LINE = re.compile(r"(<==|==>) ([A-Z_]+) \[(.*)\]\s*$", re.S)
CLIENT = re.compile(r"client: (.*?) \]")


def create(src, out, tracker, v1_only=False):
    fs = lt.file_storage()
    lt.add_files(fs, src)
    if v1_only:
        flags = lt.create_torrent.v1_only | lt.create_torrent.canonical_files
        ct = lt.create_torrent(fs, 32 * 1024, flags=flags)
    else:
        ct = lt.create_torrent(fs, 32 * 1024)  # hybrid: v1 + v2, pad files
    if tracker:
        ct.add_tracker(tracker)
    parent = src.rstrip("/").rsplit("/", 1)[0] if "/" in src.rstrip("/") else "."
    lt.set_piece_hashes(ct, parent)
    with open(out, "wb") as f:
        f.write(lt.bencode(ct.generate()))
    print("CREATED", flush=True)


def addr(peer):
    host, port = peer.rsplit(":", 1)
    return (host, int(port))


def run(spec):
    log = set(spec.get("log", []))
    mask = lt.alert.category_t.error_notification
    if log:
        mask |= lt.alert.category_t.peer_log_notification
    settings = {
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": mask,
    }
    settings.update(spec.get("settings", {}))
    ses = lt.session(settings)
    # libtorrent puts 127.0.0.0/8 in its "local" peer class, which ignores rate limits and
    # unchoke slots: on loopback every peer is local, so give the class the session's limits.
    local = ses.get_peer_class(ses.local_peer_class_id)
    local["ignore_unchoke_slots"] = False
    local["upload_limit"] = settings.get("upload_rate_limit", 0)
    local["download_limit"] = settings.get("download_rate_limit", 0)
    ses.set_peer_class(ses.local_peer_class_id, local)
    torrents = spec["torrents"]
    handles = []
    for t in torrents:
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(t["torrent"])
        params.save_path = t["save"]
        handles.append(ses.add_torrent(params))
    deadline = time.time() + spec.get("deadline", 90)
    pause = spec.get("pause")
    paused_until = None
    ready = False
    done = set()
    leeching = [i for i, t in enumerate(torrents) if not t.get("seed")]
    last_stats = 0.0
    last_dial = 0.0
    while time.time() < deadline:
        now = time.time()
        statuses = [h.status() for h in handles]
        if not ready and all(
            (s.is_seeding if t.get("seed") else s.state != lt.torrent_status.checking_files)
            and s.state != lt.torrent_status.checking_resume_data
            for s, t in zip(statuses, torrents)
        ):
            ready = True
            print("READY", ses.listen_port(), flush=True)
        if ready and now - last_dial > 1.0:
            last_dial = now
            for i, (h, t, s) in enumerate(zip(handles, torrents, statuses)):
                if s.num_peers == 0 and not (paused_until and pause["index"] == i):
                    for p in t.get("peers", []):
                        h.connect_peer(addr(p))
        for i in leeching:
            s = statuses[i]
            if i not in done and s.is_seeding:
                done.add(i)
                handles[i].flush_cache()
                print("DONE", i, s.total_payload_download, s.total_payload_upload, flush=True)
                for p in handles[i].get_peer_info():
                    print("PEER", i, p.client.decode("utf-8", "replace").replace(" ", "_"),
                          int(p.flags), flush=True)
                if len(done) == len(leeching):
                    print("ALLDONE", flush=True)
        if pause and paused_until is None and "done" not in pause:
            s = statuses[pause["index"]]
            if s.total_payload_download + s.total_payload_upload >= pause["after_bytes"]:
                handles[pause["index"]].pause()
                paused_until = now + pause.get("seconds", 1.0)
                print("PAUSED", pause["index"], flush=True)
        if paused_until is not None and now >= paused_until:
            h = handles[pause["index"]]
            h.resume()
            for p in torrents[pause["index"]].get("peers", []):
                h.connect_peer(addr(p))
            paused_until = None
            pause["done"] = True
            print("RESUMED", pause["index"], flush=True)
        if now - last_stats >= 1.0:
            last_stats = now
            for i, s in enumerate(statuses):
                print("STATS", i, s.total_payload_download, s.total_payload_upload, flush=True)
        for a in ses.pop_alerts():
            if log and isinstance(a, lt.peer_log_alert):
                m = LOG_LINE.search(a.message())
                if m and m.group(2) in log:
                    direction = "in" if m.group(1) == "<==" else "out"
                    args = " ".join(m.group(3).split())
                    c = CLIENT.search(a.message())
                    client = c.group(1).replace(" ", "_") if c and c.group(1) else "?"
                    print("LOG", direction, m.group(2), client, args, flush=True)
            elif isinstance(a, lt.torrent_error_alert) or isinstance(a, lt.file_error_alert):
                print("ERROR", a.message(), flush=True)
        time.sleep(0.05)
    print("TIMEOUT", [s.progress for s in (h.status() for h in handles)], flush=True)
    return 1


def main():
    if sys.argv[1] in ("create", "create-v1"):
        tracker = sys.argv[4] if len(sys.argv) > 4 else None
        create(sys.argv[2], sys.argv[3], tracker, v1_only=sys.argv[1] == "create-v1")
        return 0
    with open(sys.argv[2]) as f:
        return run(json.load(f))


if __name__ == "__main__":
    sys.exit(main())
