//! Tests of the BEP 14 codec and announce policy.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::*;
use crate::error::{Classify, Fault};

const H1: [u8; 20] = [0x11; 20];
const H2: [u8; 20] = [0x22; 20];

fn encode(a: &LsdAnnounce, group: LsdGroup) -> Vec<u8> {
    let mut buf = Vec::new();
    a.encode(group, &mut buf);
    buf
}

#[test]
fn encodes_the_bep14_format() {
    let a = LsdAnnounce {
        port: 6881,
        info_hashes: vec![H1],
        cookie: Some("abc".into()),
    };
    let text = String::from_utf8(encode(&a, LsdGroup::V4)).unwrap();
    assert_eq!(
        text,
        format!(
            "BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\n\
             Infohash: {}\r\ncookie: abc\r\n\r\n\r\n",
            "11".repeat(20)
        )
    );
    let v6 = String::from_utf8(encode(&a, LsdGroup::V6)).unwrap();
    assert!(v6.contains("\r\nHost: [ff15::efc0:988f]:6771\r\n"));
    assert_eq!(LsdGroup::V6.addr().to_string(), "[ff15::efc0:988f]:6771");
    assert_eq!(LsdGroup::V4.addr().to_string(), "239.192.152.143:6771");
}

#[test]
fn decodes_what_other_clients_send() {
    // Mixed-case names, LF-only endings, an unknown header, several info-hashes, upper-case hex.
    let datagram = format!(
        "BT-SEARCH * HTTP/1.1\nhost: 239.192.152.143:6771\nPORT:  51413 \nX-Other: y\n\
         infohash: {}\nInfohash: {}\n\n",
        "AB".repeat(20),
        "22".repeat(20)
    );
    let a = LsdAnnounce::decode(datagram.as_bytes()).unwrap();
    assert_eq!(a.port, 51413);
    assert_eq!(a.info_hashes, vec![[0xab; 20], H2]);
    assert_eq!(a.cookie, None);
}

#[test]
fn rejects_bad_announces() {
    let ok = |rest: &str| format!("BT-SEARCH * HTTP/1.1\r\n{rest}\r\n\r\n");
    let ih = format!("Infohash: {}", "11".repeat(20));
    let cases: Vec<(String, LsdError)> = vec![
        ("M-SEARCH * HTTP/1.1\r\n\r\n".into(), LsdError::NotAnnounce),
        (
            ok(&format!("Port: 1\r\n{ih}")).replace("\r\n\r\n", ""),
            LsdError::Truncated,
        ),
        (ok(&ih), LsdError::MissingPort),
        (ok("Port: 1"), LsdError::MissingInfohash),
        (ok(&format!("Port: 0\r\n{ih}")), LsdError::BadPort),
        (ok(&format!("Port: 65536\r\n{ih}")), LsdError::BadPort),
        (ok(&format!("Port: +1\r\n{ih}")), LsdError::BadPort),
        (
            ok(&format!("Port: 1\r\nPort: 2\r\n{ih}")),
            LsdError::BadPort,
        ),
        (ok("Port: 1\r\nInfohash: 1234"), LsdError::BadInfohash),
        (
            ok(&format!("Port: 1\r\n{ih}\r\nno colon")),
            LsdError::BadHeader,
        ),
        (
            ok(&format!(
                "Port: 1\r\n{ih}\r\ncookie: {}",
                "c".repeat(MAX_COOKIE_LEN + 1)
            )),
            LsdError::BadCookie,
        ),
    ];
    for (datagram, expected) in cases {
        assert_eq!(
            LsdAnnounce::decode(datagram.as_bytes()),
            Err(expected),
            "{datagram:?}"
        );
    }
    let many = ok(&format!(
        "Port: 1{}",
        format!("\r\n{ih}").repeat(MAX_INFOHASHES + 1)
    ));
    assert_eq!(
        LsdAnnounce::decode(many.as_bytes()),
        Err(LsdError::TooManyInfohashes)
    );
    let headers = ok(&format!(
        "Port: 1\r\n{ih}{}",
        "\r\nX: y".repeat(MAX_HEADERS)
    ));
    assert_eq!(
        LsdAnnounce::decode(headers.as_bytes()),
        Err(LsdError::TooManyHeaders)
    );
    let huge = vec![b'a'; MAX_DATAGRAM + 1];
    assert_eq!(
        LsdAnnounce::decode(&huge),
        Err(LsdError::TooLarge {
            len: MAX_DATAGRAM + 1
        })
    );
    assert_eq!(LsdError::TooManyInfohashes.fault(), Fault::LimitExceeded);
}

fn config() -> LsdConfig {
    LsdConfig {
        listen_port: 6881,
        cookie: "ourcookie".into(),
        groups: vec![LsdGroup::V4, LsdGroup::V6],
    }
}

fn drain(lsd: &mut LsdAnnouncer) -> Vec<Transmit> {
    std::iter::from_fn(|| lsd.poll_transmit()).collect()
}

fn at(secs: u64) -> Instant {
    Instant::ZERO + Duration::from_secs(secs)
}

#[test]
fn announces_each_torrent_every_five_minutes_at_most_one_datagram_a_minute() {
    let mut lsd = LsdAnnouncer::new(config());
    assert_eq!(lsd.poll_timeout(), None, "nothing to announce");
    lsd.add_torrent(H1, false);
    lsd.add_torrent(H2, true); // private: never announced
    assert_eq!(lsd.poll_timeout(), Some(Instant::ZERO));
    lsd.handle_timeout(at(0));
    let sent = drain(&mut lsd);
    assert_eq!(
        sent.iter().map(|t| t.to).collect::<Vec<_>>(),
        vec![LsdGroup::V4.addr(), LsdGroup::V6.addr()]
    );
    let a = LsdAnnounce::decode(&sent[0].data).unwrap();
    assert_eq!(a.info_hashes, vec![H1]);
    assert_eq!((a.port, a.cookie.as_deref()), (6881, Some("ourcookie")));
    assert_eq!(lsd.poll_timeout(), Some(at(0) + ANNOUNCE_INTERVAL));
    // A torrent added later waits for the one-a-minute gap.
    let h3 = [0x33; 20];
    lsd.add_torrent(h3, false);
    assert_eq!(lsd.poll_timeout(), Some(at(0) + MIN_SEND_GAP));
    lsd.handle_timeout(at(30));
    assert!(
        drain(&mut lsd).is_empty(),
        "too soon after the last datagram"
    );
    lsd.handle_timeout(at(60));
    let sent = drain(&mut lsd);
    assert_eq!(
        LsdAnnounce::decode(&sent[0].data).unwrap().info_hashes,
        vec![h3]
    );
    lsd.handle_timeout(at(200));
    assert!(drain(&mut lsd).is_empty(), "H1 not due again yet");
    lsd.handle_timeout(at(300));
    let sent = drain(&mut lsd);
    assert_eq!(
        LsdAnnounce::decode(&sent[0].data).unwrap().info_hashes,
        vec![H1]
    );
    lsd.remove_torrent(H1);
    lsd.remove_torrent(h3);
    assert_eq!(lsd.poll_timeout(), None);
}

#[test]
fn packs_many_torrents_under_1400_bytes() {
    let mut lsd = LsdAnnouncer::new(config());
    for i in 0..100u8 {
        lsd.add_torrent([i; 20], false);
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut now = at(0);
    while seen.len() < 100 {
        lsd.handle_timeout(now);
        for t in drain(&mut lsd) {
            assert!(t.data.len() <= MAX_SENT_DATAGRAM, "{} bytes", t.data.len());
            let a = LsdAnnounce::decode(&t.data).unwrap();
            assert!(a.info_hashes.len() > 1, "several per datagram");
            seen.extend(a.info_hashes);
        }
        now += MIN_SEND_GAP;
        assert!(now < at(3600), "all torrents announced within the hour");
    }
}

#[test]
fn learns_peers_but_not_from_itself_or_for_unknown_torrents() {
    let mut lsd = LsdAnnouncer::new(config());
    lsd.add_torrent(H1, false);
    lsd.add_torrent(H2, true);
    let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 5)), 40000);
    let theirs = LsdAnnounce {
        port: 51413,
        info_hashes: vec![H1, H2, [0x44; 20]],
        cookie: Some("theirs".into()),
    };
    let peers = lsd
        .handle_datagram(from, &encode(&theirs, LsdGroup::V4))
        .unwrap();
    assert_eq!(
        peers,
        vec![LsdPeer {
            info_hash: H1,
            addr: SocketAddr::new(from.ip(), 51413)
        }],
        "source address with the announced port; private and unknown torrents ignored"
    );
    let ours = LsdAnnounce {
        cookie: Some("ourcookie".into()),
        ..theirs
    };
    assert_eq!(
        lsd.handle_datagram(from, &encode(&ours, LsdGroup::V4)),
        Ok(vec![])
    );
    assert!(lsd.handle_datagram(from, b"garbage").is_err());
}

#[test]
fn cookie_is_sanitised_to_read_back_as_sent() {
    let mut lsd = LsdAnnouncer::new(LsdConfig {
        cookie: format!(" a b\r\n{}", "x".repeat(100)),
        ..config()
    });
    lsd.add_torrent(H1, false);
    lsd.handle_timeout(at(0));
    let t = lsd.poll_transmit().unwrap();
    let a = LsdAnnounce::decode(&t.data).unwrap();
    let cookie = a.cookie.clone().unwrap();
    assert_eq!(cookie.len(), MAX_COOKIE_LEN);
    assert!(cookie.starts_with("abx"));
    assert_eq!(
        lsd.handle_datagram(t.to, &t.data),
        Ok(vec![]),
        "recognised as ours"
    );
}
