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
  lt_dht.py getpeers HASH - NODES BOOTSTRAP
      NODES DHT-only sessions plus one that asks the DHT for the peers of HASH (40 hex
      digits) every two seconds. Prints "DHT <host:port>", then "PEERS <ip:port>,..." once
      a reply names peers.
  lt_dht.py mget KEY SALT NODES BOOTSTRAP
      NODES DHT-only sessions plus one that gets the BEP 44 mutable item of public key KEY
      (64 hex digits) and SALT (hex, "-" for none) every two seconds. Prints "DHT
      <host:port>", then "ITEM <seq> <signature in hex>" once one is found (libtorrent
      reports only items whose signature it verified).

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


def query(worker, mode, key, salt, deadline):
    """The getpeers and mget modes: ask until an answer comes."""
    worker.apply_settings({"alert_mask": lt.alert.category_t.dht_notification
                           | lt.alert.category_t.dht_operation_notification})
    key = bytes.fromhex(key)
    salt = b"" if salt == "-" else bytes.fromhex(salt)
    while time.time() < deadline:
        if worker.status().dht_nodes > 0:
            if mode == "getpeers":
                worker.dht_get_peers(lt.sha1_hash(key))
            else:
                worker.dht_get_mutable_item(key, salt)
        end = time.time() + 2
        while time.time() < end:
            worker.wait_for_alert(200)
            for a in worker.pop_alerts():
                if isinstance(a, lt.dht_get_peers_reply_alert) and a.num_peers() > 0:
                    peers = ["%s:%d" % (ip, port) for ip, port in a.peers()]
                    print("PEERS", ",".join(peers), flush=True)
                    return 0
                # The binding reads the item as a string only; libtorrent alerts only
                # items whose signature it verified, so the signature identifies it.
                if isinstance(a, lt.dht_mutable_item_alert) and a.seq > 0:
                    print("ITEM", a.seq, bytes(a.signature).hex(), flush=True)
                    return 0
    print("TIMEOUT", worker.status().dht_nodes, flush=True)
    return 1


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
    if mode in ("getpeers", "mget"):
        return query(worker, mode, torrent, save, deadline)
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
