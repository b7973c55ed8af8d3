#!/usr/bin/python3
"""A small loopback DHT of libtorrent sessions for interop tests (BEP 5).

Usage:
  lt_dht.py seed TORRENT SAVE_DIR NODES BOOTSTRAP
      NODES DHT-only sessions plus one seeding TORRENT from SAVE_DIR; every session
      bootstraps from BOOTSTRAP (host:port, or "-" for the first session of this process).
      Prints "DHT <host:port>" (the first session's DHT address) as soon as it listens, then
      "READY" once the seed is seeding and has announced to the DHT.
  lt_dht.py fetch TORRENT SAVE_DIR NODES BOOTSTRAP
      NODES DHT-only sessions plus one that adds TORRENT with no peers: it must find them
      through the DHT. Prints "DHT <host:port>", then "DONE <bytes>" once complete.

Each session listens on its own loopback address (127.0.0.20, .21, ...: DHT routing tables keep
one node per IP). libtorrent's IP restrictions are switched off so that loopback nodes may
route and be searched. Nothing here reaches beyond loopback: no LSD, UPnP or NAT-PMP, and the
bootstrap nodes are the ones given. The process exits by itself after 90 s; the test also
kills it.
"""
import sys
import time

import libtorrent as lt


def session(index, bootstrap):
    ip = "127.0.0.%d" % (20 + index)
    return lt.session({
        "listen_interfaces": ip + ":0",
        "enable_dht": True,
        "dht_bootstrap_nodes": bootstrap,
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_prefer_verified_node_ids": False,
        "dht_enforce_node_id": False,
        "dht_ignore_dark_internet": False,
        "dht_announce_interval": 5,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": 0,
    }), ip


def main():
    mode, torrent, save, nodes, bootstrap = sys.argv[1:6]
    deadline = time.time() + 90
    sessions = []
    first, ip = session(0, "" if bootstrap == "-" else bootstrap)
    sessions.append(first)
    first_addr = "%s:%d" % (ip, first.listen_port())
    if bootstrap == "-":
        bootstrap = first_addr
    print("DHT", first_addr, flush=True)
    for i in range(1, int(nodes)):
        sessions.append(session(i, bootstrap)[0])
    worker, _ = session(int(nodes), bootstrap)
    sessions.append(worker)
    info = lt.torrent_info(torrent)
    handle = worker.add_torrent({"ti": info, "save_path": save})
    if mode == "seed":
        while time.time() < deadline and not handle.status().is_seeding:
            time.sleep(0.05)
        # Announce as soon as the DHT has nodes, and again now and then.
        announced = False
        while time.time() < deadline:
            if worker.status().dht_nodes > 0:
                handle.force_dht_announce()
                if not announced:
                    print("READY", flush=True)
                    announced = True
            time.sleep(2)
        return 0
    while time.time() < deadline:
        st = handle.status()
        if st.is_seeding:
            print("DONE", st.total_payload_download, flush=True)
            return 0
        if st.num_peers == 0 and worker.status().dht_nodes > 0:
            handle.force_dht_announce()
        time.sleep(0.5)
    print("TIMEOUT", handle.status().progress, worker.status().dht_nodes, flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
