//! `bitshoal download` and `seed` over a loopback DHT (BEP 5): a download that knows no
//! tracker and no peer finds the seed through `--dht-bootstrap`; `--no-dht` (or a loopback
//! listen address with no bootstrap node named) leaves it nowhere to download from.

mod common;

use std::fs;

use bitshoal_core::create::Version;
use bitshoal_core::rng::Rng;
use bitshoal_std::create::{create_torrent, CreateOptions};

use common::cli::{bitshoal, stderr, Running};

#[test]
fn a_download_finds_its_seed_through_the_dht_only() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let data = dir.join("data");
    fs::create_dir_all(&data).unwrap();
    let mut bytes = vec![0u8; 200_000];
    Rng::from_seed(46).fill(&mut bytes);
    fs::write(data.join("one.bin"), &bytes).unwrap();
    let options = CreateOptions {
        version: Version::V1,
        piece_length: Some(16 * 1024),
        ..CreateOptions::default()
    };
    let created = create_torrent(&data.join("one.bin"), &options, |_, _| {}).unwrap();
    let torrent = dir.join("t.torrent");
    fs::write(&torrent, &created.bytes).unwrap();
    let torrent = torrent.to_str().unwrap();

    // Without a DHT, nothing to download from: exit 3 at once.
    for flags in [&["--no-dht", "--dht-bootstrap", "127.0.0.1:9"][..], &[]] {
        let mut args = vec![
            "download",
            torrent,
            "-o",
            "nowhere",
            "--listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(flags);
        let out = bitshoal(&args, dir);
        assert_eq!(out.status.code(), Some(3), "{flags:?}: {}", stderr(&out));
    }

    // The seed's DHT is on (a bootstrap node is named, though nothing listens there); the
    // downloader bootstraps from the seed's address and knows nothing else.
    let seed = Running::start(
        &[
            "seed",
            torrent,
            "--data",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.52:0",
            "--dht-bootstrap",
            "127.0.0.53:9",
            "--json",
        ],
        dir,
    );
    let addr = seed.wait_event("started")["listen"]
        .as_str()
        .unwrap()
        .to_string();
    seed.wait_event("checked");
    let out_dir = dir.join("out");
    let out = bitshoal(
        &[
            "download",
            torrent,
            "-o",
            out_dir.to_str().unwrap(),
            "--listen",
            "127.0.0.53:0",
            "--dht-bootstrap",
            &addr,
            "--json",
            "--timeout",
            "60",
        ],
        dir,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fs::read(out_dir.join("one.bin")).unwrap(), bytes);
}

/// The node id saved in a `dht.dat`.
fn saved_id(path: &std::path::Path) -> [u8; 20] {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bitshoal_core::dht::DhtState::decode(&bytes).unwrap().id.0
}

#[test]
fn a_magnet_with_only_a_bootstrap_node_downloads_and_both_ends_keep_their_node_ids() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let data = dir.join("data");
    fs::create_dir_all(&data).unwrap();
    let mut bytes = vec![0u8; 150_000];
    Rng::from_seed(47).fill(&mut bytes);
    fs::write(data.join("two.bin"), &bytes).unwrap();
    let options = CreateOptions {
        version: Version::V1,
        piece_length: Some(16 * 1024),
        ..CreateOptions::default()
    };
    let created = create_torrent(&data.join("two.bin"), &options, |_, _| {}).unwrap();
    let torrent = dir.join("t.torrent");
    fs::write(&torrent, &created.bytes).unwrap();
    let torrent = torrent.to_str().unwrap();
    let magnet = format!("magnet:?xt=urn:btih:{}", created.info_hashes.v1().unwrap());
    // A DHT of two nodes: another seed (of another torrent) as the bootstrap node, and
    // the seed, which announces itself there.
    let other = dir.join("other");
    fs::create_dir_all(&other).unwrap();
    fs::write(other.join("x.bin"), b"another torrent").unwrap();
    let other_torrent = dir.join("other.torrent");
    let made = create_torrent(&other.join("x.bin"), &options, |_, _| {}).unwrap();
    fs::write(&other_torrent, &made.bytes).unwrap();
    let router = Running::start(
        &[
            "seed",
            other_torrent.to_str().unwrap(),
            "--data",
            other.to_str().unwrap(),
            "--listen",
            "127.0.0.56:0",
            "--dht-bootstrap",
            "127.0.0.57:9",
            "--json",
        ],
        dir,
    );
    let addr = router.wait_event("started")["listen"]
        .as_str()
        .unwrap()
        .to_string();
    let seed_args = [
        "seed",
        torrent,
        "--data",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.54:0",
        "--dht-bootstrap",
        &addr,
        "--json",
    ];
    let seed = Running::start(&seed_args, dir);
    // Checked and joined (the two lines come in either order).
    let (mut checked, mut joined) = (false, false);
    seed.lines_until(|l| {
        checked |= l["event"] == "checked";
        joined |= l["event"] == "dht_bootstrapped" && l["nodes"].as_u64() >= Some(1);
        checked && joined
    });
    // The magnet names no tracker and no peer: the DHT is the only way to the seed.
    let out_dir = dir.join("out");
    let download = |dir: &std::path::Path| {
        bitshoal(
            &[
                "download",
                &magnet,
                "-o",
                out_dir.to_str().unwrap(),
                "--listen",
                "127.0.0.55:0",
                "--dht-bootstrap",
                &addr,
                "--json",
                "--timeout",
                "60",
            ],
            dir,
        )
    };
    let out = download(dir);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stderr(&out),
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(fs::read(out_dir.join("two.bin")).unwrap(), bytes);
    let lines = common::cli::json_lines(&out);
    assert!(
        lines
            .iter()
            .any(|l| l["event"] == "dht_lookup" && l["peers"].as_u64() >= Some(1)),
        "a DHT lookup found the seed: {lines:?}"
    );
    // The node id and the bootstrap node's contact are saved beside the resume files.
    let state = out_dir.join(".bitshoal").join("dht.dat");
    let first = saved_id(&state);
    let saved = bitshoal_core::dht::DhtState::decode(&fs::read(&state).unwrap()).unwrap();
    assert!(
        saved.nodes.iter().any(|n| n.addr.to_string() == addr),
        "the bootstrap node is saved: {saved:?}"
    );
    // A second run starts with the same id (and finds everything there already).
    let out = download(dir);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(saved_id(&state), first, "the node id survived the restart");

    // The seed saves its own, in DATA/.bitshoal/dht.dat, and keeps it across a restart.
    seed.interrupt();
    assert_eq!(seed.exit_code(), 0);
    let seed_state = data.join(".bitshoal").join("dht.dat");
    let seed_id = saved_id(&seed_state);
    assert_ne!(seed_id, first);
    let seed = Running::start(&seed_args, dir);
    seed.wait_event("checked");
    seed.interrupt();
    assert_eq!(seed.exit_code(), 0);
    assert_eq!(saved_id(&seed_state), seed_id);
}

#[test]
fn an_updatable_torrent_link_is_resolved_through_the_dht_then_downloaded() {
    use bitshoal_core::dht::{bep46, Item, ItemKey, MutableItem};
    use bitshoal_core::session::{Config, DhtSettings, Event};
    use bitshoal_mio::client::{Client, ClientConfig, ClientEvent};

    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let options = CreateOptions {
        version: Version::V1,
        piece_length: Some(16 * 1024),
        ..CreateOptions::default()
    };
    let make = |name: &str, len: usize, seed: u64| {
        let data = dir.join(name);
        fs::create_dir_all(&data).unwrap();
        let mut bytes = vec![0u8; len];
        Rng::from_seed(seed).fill(&mut bytes);
        fs::write(data.join("f.bin"), &bytes).unwrap();
        let created = create_torrent(&data.join("f.bin"), &options, |_, _| {}).unwrap();
        let torrent = dir.join(format!("{name}.torrent"));
        fs::write(&torrent, &created.bytes).unwrap();
        (data, torrent, bytes, created)
    };
    let (other, other_torrent, _, _) = make("other", 1000, 48);
    let (data, torrent, bytes, created) = make("data", 120_000, 49);
    let seed_cmd = |torrent: &std::path::Path, data: &std::path::Path, listen, boot: &str| {
        Running::start(
            &[
                "seed",
                torrent.to_str().unwrap(),
                "--data",
                data.to_str().unwrap(),
                "--listen",
                listen,
                "--dht-bootstrap",
                boot,
                "--json",
            ],
            dir,
        )
    };
    let router = seed_cmd(&other_torrent, &other, "127.0.0.60:0", "127.0.0.61:9");
    let addr = router.wait_event("started")["listen"]
        .as_str()
        .unwrap()
        .to_string();
    let seed = seed_cmd(&torrent, &data, "127.0.0.62:0", &addr);
    seed.wait_event("checked");

    // The publisher points its key at the torrent (BEP 46), through the DHT.
    let mut publisher = Client::new(ClientConfig {
        session: Config {
            rng_seed: 46,
            dht: Some(DhtSettings {
                bootstrap: vec![addr.clone()],
                ..DhtSettings::default()
            }),
            ..Config::default()
        },
        listen: Some("127.0.0.63:0".parse().unwrap()),
        ..ClientConfig::default()
    })
    .unwrap();
    let key = ItemKey::from_seed(&[0x46; 32]);
    let ih = created.info_hashes.v1().unwrap();
    let item = MutableItem::sign(&key, b"v", 3, bep46::torrent_value(ih)).unwrap();
    let deadline = std::time::Instant::now() + common::cli::WAIT;
    let (mut put, mut acked) = (None, 0);
    while acked == 0 && std::time::Instant::now() < deadline {
        for event in publisher
            .turn(std::time::Duration::from_millis(50))
            .unwrap()
        {
            if let ClientEvent::Session(Event::DhtPutDone {
                lookup, acked: n, ..
            }) = event
            {
                if Some(lookup) == put {
                    acked = n;
                    put = None; // put again if nobody stored it yet
                }
            }
        }
        let joined = publisher
            .session()
            .dht_node()
            .map_or(0, |n| n.routing_table(false).len());
        if put.is_none() && acked == 0 && joined >= 2 {
            put = publisher.command(|s, now| s.dht_put(now, Item::Mutable(item.clone())));
        }
    }
    assert!(acked >= 1, "the item is stored on the DHT");

    let key_hex: String = key
        .public_key()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let link = format!("magnet:?xs=urn:btpk:{key_hex}&s=76");
    let out_dir = dir.join("out");
    let out = bitshoal(
        &[
            "download",
            &link,
            "-o",
            out_dir.to_str().unwrap(),
            "--listen",
            "127.0.0.64:0",
            "--dht-bootstrap",
            &addr,
            "--json",
            "--timeout",
            "60",
        ],
        dir,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fs::read(out_dir.join("f.bin")).unwrap(), bytes);
    let lines = common::cli::json_lines(&out);
    let resolved = lines
        .iter()
        .find(|l| l["event"] == "dht_resolved")
        .expect("a dht_resolved line");
    assert_eq!(resolved["info_hash"], ih.to_string());
    assert_eq!(resolved["seq"], 3);

    // Without the DHT such a link has nowhere to come from.
    let out = bitshoal(
        &["download", &link, "-o", "x", "--listen", "127.0.0.64:0"],
        dir,
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    drop(seed);
    drop(router);
}
