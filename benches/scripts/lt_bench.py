#!/usr/bin/python3
"""libtorrent peers for the end-to-end benchmark (benches/src/bin/e2e), on 127.0.0.1 only.

Usage:
  lt_bench.py seed  SAVE_DIR TORRENT...     -> seeds every TORRENT from SAVE_DIR (no recheck:
                                               seed mode); prints "READY <port>", runs until killed
  lt_bench.py leech SAVE_DIR TORRENT PEER   -> downloads from PEER (host:port); prints
                                               "DONE <payload bytes>" and exits when finished

Both are tuned for throughput, as a user who cares about speed would set them up: the seed with
libtorrent's own high_performance_seed() preset, the leecher with a 64 MiB disk queue, two hashing
threads and a 1,500-request queue (the settings the issue's reference figures were taken with).
Everything that would reach beyond 127.0.0.1 is off: DHT, LSD, UPnP, NAT-PMP, uTP. A deadline
(--deadline seconds, default 900) ends a forgotten process; the benchmark kills it by pid anyway.
"""
import sys
import time

import libtorrent as lt

LOOPBACK = {
    "listen_interfaces": "127.0.0.1:0",
    "enable_dht": False,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "enable_incoming_utp": False,
    "enable_outgoing_utp": False,
    "allow_multiple_connections_per_ip": True,
    "alert_mask": 0,
}


def seed(save, torrents, deadline):
    settings = lt.high_performance_seed()
    settings.update(LOOPBACK)
    ses = lt.session(settings)
    handles = []
    for t in torrents:
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(t)
        params.save_path = save
        params.flags |= lt.torrent_flags.seed_mode
        handles.append(ses.add_torrent(params))
    while time.time() < deadline:
        if all(h.status().is_seeding for h in handles):
            # libtorrent drops connections that arrive right after its listen socket opens.
            time.sleep(0.5)
            print("READY", ses.listen_port(), flush=True)
            break
        time.sleep(0.02)
    else:
        print("TIMEOUT checking", flush=True)
        return 1
    while time.time() < deadline:
        time.sleep(0.5)
    return 0


def leech(save, torrent, peer, deadline):
    settings = dict(LOOPBACK)
    settings.update({
        "max_queued_disk_bytes": 64 * 1024 * 1024,
        "hashing_threads": 2,
        "max_out_request_queue": 1500,
    })
    ses = lt.session(settings)
    handle = ses.add_torrent({"ti": lt.torrent_info(torrent), "save_path": save})
    host, port = peer.rsplit(":", 1)
    handle.connect_peer((host, int(port)))
    while time.time() < deadline:
        st = handle.status()
        if st.is_seeding:
            print("DONE", st.total_payload_download, flush=True)
            return 0
        if st.num_peers == 0:
            handle.connect_peer((host, int(port)))
        time.sleep(0.01)
    print("TIMEOUT", handle.status().progress, flush=True)
    return 1


def main():
    args = sys.argv[1:]
    deadline = time.time() + 900
    if len(args) >= 2 and args[0] == "--deadline":
        deadline = time.time() + float(args[1])
        args = args[2:]
    if len(args) >= 3 and args[0] == "seed":
        return seed(args[1], args[2:], deadline)
    if len(args) == 4 and args[0] == "leech":
        return leech(args[1], args[2], args[3], deadline)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
