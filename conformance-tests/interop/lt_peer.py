#!/usr/bin/python3
"""A libtorrent peer for interop tests, on loopback only.

Usage:
  lt_peer.py seed  TORRENT SAVE_DIR        -> seeds; prints "READY <port>" once seeding
  lt_peer.py leech TORRENT SAVE_DIR PEER   -> downloads from PEER (host:port); prints "DONE"

Options, after the arguments:
  --download-limit=N   leech at most N bytes per second (a leech that stays one, for PEX tests);
                       also prints "STARTED <port>" as always, then "CONNECTED" once it has a peer

Everything that would reach beyond 127.0.0.1 is off: DHT, LSD, UPnP, NAT-PMP. The process exits
by itself after a deadline (60 s) so a failed test never leaves it behind; the test also kills it.
"""
import sys
import time

import libtorrent as lt


def session():
    return lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": 0,
    })


def main():
    options = [a for a in sys.argv[1:] if a.startswith("--")]
    args = [sys.argv[0]] + [a for a in sys.argv[1:] if not a.startswith("--")]
    sys.argv = args
    limit = None
    for option in options:
        if option.startswith("--download-limit="):
            limit = int(option.split("=", 1)[1])
    mode, torrent, save = sys.argv[1], sys.argv[2], sys.argv[3]
    ses = session()
    info = lt.torrent_info(torrent)
    params = {"ti": info, "save_path": save}
    handle = ses.add_torrent(params)
    deadline = time.time() + 60
    if mode == "seed":
        while time.time() < deadline:
            st = handle.status()
            if st.is_seeding:
                print("READY", ses.listen_port(), flush=True)
                break
            time.sleep(0.05)
        else:
            print("TIMEOUT checking", flush=True)
            return 1
        while time.time() < deadline:
            time.sleep(0.2)
        return 0
    host, port = sys.argv[4].rsplit(":", 1)
    if limit is not None:
        handle.set_download_limit(limit)
    handle.connect_peer((host, int(port)))
    print("STARTED", ses.listen_port(), flush=True)
    connected = False
    while time.time() < deadline:
        st = handle.status()
        if st.is_seeding:
            print("DONE", st.total_payload_download, flush=True)
            return 0
        if st.num_peers == 0:
            handle.connect_peer((host, int(port)))
        elif limit is not None and not connected:
            connected = True
            print("CONNECTED", flush=True)
        time.sleep(0.05)
    print("TIMEOUT", handle.status().progress, flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
