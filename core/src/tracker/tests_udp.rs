//! The BEP 15 packet codec (golden packets, BEP 41 options) and the UDP client machine on a
//! virtual clock.

use std::net::SocketAddr;

use proptest::prelude::*;

use super::*;
use crate::error::{Classify, Fault};
use crate::rng::Rng;
use crate::time::Instant;

const HASH: [u8; 20] = [0xaa; 20];
const PEER: [u8; 20] = *b"-BS0001-123456789012";

fn request() -> AnnounceRequest {
    let mut r = AnnounceRequest::new(HASH, PeerId(PEER), 6881, 0xdead_beef);
    r.downloaded = 0x0102;
    r.left = 0x0304;
    r.uploaded = 0x0506;
    r.event = Some(AnnounceEvent::Started);
    r
}

fn encode(r: &UdpRequest) -> Vec<u8> {
    let mut out = Vec::new();
    r.encode(&mut out).unwrap();
    out
}

fn encode_response(r: &UdpResponse) -> Vec<u8> {
    let mut out = Vec::new();
    r.encode(&mut out);
    out
}

#[test]
fn connect_request_golden() {
    let packet = encode(&UdpRequest::Connect {
        transaction_id: 0x1234_5678,
    });
    assert_eq!(
        packet,
        [0, 0, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78]
    );
    assert_eq!(PROTOCOL_ID, 0x41727101980);
    assert_eq!(
        UdpRequest::decode(&packet),
        Ok(UdpRequest::Connect {
            transaction_id: 0x1234_5678
        })
    );
    // Without the magic it is not a connect.
    let mut bad = packet;
    bad[0] = 1;
    assert!(UdpRequest::decode(&bad).is_err());
}

#[test]
fn announce_request_golden_with_bep41_url_data() {
    let packet = encode(&UdpRequest::Announce {
        connection_id: 0x0102_0304_0506_0708,
        transaction_id: 7,
        request: request(),
        url_data: b"/dir?a=b&c=d".to_vec(),
    });
    let mut expected = vec![1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 1, 0, 0, 0, 7];
    expected.extend_from_slice(&HASH);
    expected.extend_from_slice(&PEER);
    expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 1, 2]); // downloaded
    expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 3, 4]); // left
    expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 5, 6]); // uploaded
    expected.extend_from_slice(&[0, 0, 0, 2]); // started
    expected.extend_from_slice(&[0, 0, 0, 0]); // ip: default
    expected.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]); // key
    expected.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // num_want -1
    expected.extend_from_slice(&[0x1a, 0xe1]); // port
    assert_eq!(expected.len(), 98);
    // BEP 41's example for udp://tracker.example.com:80/dir?a=b&c=d.
    expected.extend_from_slice(&[0x2, 0xC]);
    expected.extend_from_slice(b"/dir?a=b&c=d");
    assert_eq!(packet, expected);
}

#[test]
fn bep41_option_forms_decode_alike() {
    let base = encode(&UdpRequest::Announce {
        connection_id: 1,
        transaction_id: 2,
        request: request(),
        url_data: Vec::new(),
    });
    assert_eq!(base.len(), 98, "no options without URL data");
    let with = |options: &[u8]| {
        let mut p = base.clone();
        p.extend_from_slice(options);
        match UdpRequest::decode(&p) {
            Ok(UdpRequest::Announce { url_data, .. }) => Ok(url_data),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        }
    };
    let mut example = vec![0x2, 0xC];
    example.extend_from_slice(b"/dir?a=b&c=d");
    assert_eq!(with(&example).unwrap(), b"/dir?a=b&c=d");
    example.extend_from_slice(&[0x1, 0x1, 0x0, 0x2, 0x3, b'x', b'y', b'z']);
    assert_eq!(
        with(&example).unwrap(),
        b"/dir?a=b&c=d",
        "options stop at EndOfOptions"
    );
    // Split URL data concatenates; unknown options are skipped by length; empty URL data.
    assert_eq!(
        with(&[0x2, 0x2, b'/', b'a', 0x9, 0x1, 0xff, 0x2, 0x1, b'b']).unwrap(),
        b"/ab"
    );
    assert_eq!(with(&[0x2, 0x0]).unwrap(), b"");
    assert_eq!(with(&[0x1, 0x1]).unwrap(), b"");
    // A length past the end is truncation.
    assert_eq!(
        with(&[0x2, 0x5, b'/']).unwrap_err().fault(),
        Fault::Malformed
    );
    assert_eq!(with(&[0x2]).unwrap_err().fault(), Fault::Malformed);
}

#[test]
fn long_url_data_is_chunked_in_255_byte_options() {
    let data: Vec<u8> = (0..600u32).map(|i| b'a' + (i % 26) as u8).collect();
    let packet = encode(&UdpRequest::Announce {
        connection_id: 1,
        transaction_id: 2,
        request: request(),
        url_data: data.clone(),
    });
    let options = &packet[98..];
    assert_eq!(options[0..2], [2, 255]);
    assert_eq!(options[257..259], [2, 255]);
    assert_eq!(options[514..516], [2, 90]);
    assert_eq!(options.len(), 3 * 2 + 600);
    let Ok(UdpRequest::Announce { url_data, .. }) = UdpRequest::decode(&packet) else {
        panic!("decodes");
    };
    assert_eq!(url_data, data);
}

#[test]
fn scrape_request_golden_and_size_bounds() {
    let packet = encode(&UdpRequest::Scrape {
        connection_id: 9,
        transaction_id: 10,
        info_hashes: vec![[1; 20], [2; 20]],
    });
    assert_eq!(
        &packet[..16],
        &[0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 2, 0, 0, 0, 10]
    );
    assert_eq!(&packet[16..36], &[1; 20]);
    assert_eq!(&packet[36..], &[2; 20]);
    for count in [0, MAX_SCRAPE_HASHES + 1] {
        let e = UdpRequest::Scrape {
            connection_id: 9,
            transaction_id: 10,
            info_hashes: vec![[1; 20]; count],
        }
        .encode(&mut Vec::new())
        .unwrap_err();
        assert_eq!(e, TrackerError::ScrapeSize { count });
        assert_eq!(e.fault(), Fault::ApiMisuse);
    }
}

#[test]
fn responses_golden() {
    let limits = TrackerLimits::DEFAULT;
    let connect = [0, 0, 0, 0, 0, 0, 0, 5, 0xa, 0xb, 0xc, 0xd, 1, 2, 3, 4];
    assert_eq!(
        UdpResponse::decode(&connect, false, &limits),
        Ok(UdpResponse::Connect {
            transaction_id: 5,
            connection_id: 0x0a0b_0c0d_0102_0304
        })
    );
    let mut announce = vec![0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 7, 8, 0, 0, 0, 3, 0, 0, 0, 4];
    announce.extend_from_slice(&[127, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0, 80]);
    let decoded = UdpResponse::decode(&announce, false, &limits).unwrap();
    assert_eq!(
        decoded,
        UdpResponse::Announce {
            transaction_id: 5,
            interval: 0x0708,
            leechers: 3,
            seeders: 4,
            peers: vec![
                "127.0.0.1:6881".parse().unwrap(),
                "10.0.0.2:80".parse().unwrap()
            ],
        }
    );
    assert_eq!(encode_response(&decoded), announce);
    // The same 12 bytes over IPv6 are not a whole peer; 18 are.
    let mut v6 = announce[..20].to_vec();
    v6.extend_from_slice(&[
        0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80,
    ]);
    let Ok(UdpResponse::Announce { peers, .. }) = UdpResponse::decode(&v6, true, &limits) else {
        panic!("decodes");
    };
    assert_eq!(
        peers,
        vec!["[2001:db8::1]:80".parse::<SocketAddr>().unwrap()]
    );

    let scrape = [0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
    assert_eq!(
        UdpResponse::decode(&scrape, false, &limits),
        Ok(UdpResponse::Scrape {
            transaction_id: 5,
            stats: vec![ScrapeStats {
                complete: 1,
                downloaded: 2,
                incomplete: 3,
                name: None
            }],
        })
    );
    let mut error = vec![0, 0, 0, 3, 0, 0, 0, 5];
    error.extend_from_slice(b"unregistered torrent");
    assert_eq!(
        UdpResponse::decode(&error, false, &limits),
        Ok(UdpResponse::Error {
            transaction_id: 5,
            message: "unregistered torrent".into()
        })
    );
}

#[test]
fn bad_responses_are_typed_errors() {
    let limits = TrackerLimits::DEFAULT;
    for packet in [
        &[][..],
        &[0, 0, 0, 0, 0, 0, 0],
        &[0, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3],
        &[0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 0],
        &[0, 0, 0, 9, 0, 0, 0, 5],
    ] {
        let e = UdpResponse::decode(packet, false, &limits).unwrap_err();
        assert_eq!(e.fault(), Fault::Malformed, "{packet:?}: {e}");
    }
}

prop_compose! {
    fn canonical_request()(
        hash in any::<[u8; 20]>(), id in any::<[u8; 20]>(), port in any::<u16>(),
        up in any::<u64>(), down in any::<u64>(), left in any::<u64>(),
        event in 0u32..4, key in any::<u32>(), numwant in proptest::option::of(0u32..=i32::MAX as u32),
        ip in proptest::option::of(any::<[u8; 4]>().prop_filter("not 0.0.0.0", |o| *o != [0; 4])),
    ) -> AnnounceRequest {
        let mut r = AnnounceRequest::new(hash, PeerId(id), port, key);
        r.uploaded = up;
        r.downloaded = down;
        r.left = left;
        r.event = AnnounceEvent::from_udp_code(event).unwrap();
        r.numwant = numwant;
        r.ip = ip.map(std::net::IpAddr::from);
        r
    }
}

proptest! {
    #[test]
    fn requests_round_trip(
        r in canonical_request(), cid in any::<u64>(), tid in any::<u32>(),
        url in proptest::collection::vec(any::<u8>(), 0..700),
    ) {
        let request = UdpRequest::Announce { connection_id: cid, transaction_id: tid, request: r, url_data: url };
        prop_assert_eq!(UdpRequest::decode(&encode(&request)), Ok(request));
    }

    #[test]
    fn responses_round_trip(
        tid in any::<u32>(), interval in any::<u32>(), l in any::<u32>(), s in any::<u32>(),
        v4 in proptest::collection::btree_set((any::<[u8; 4]>(), 1u16..), 0..50),
    ) {
        let peers: Vec<SocketAddr> = v4.into_iter()
            .filter(|(ip, _)| *ip != [0; 4])
            .map(|(ip, port)| SocketAddr::from((ip, port)))
            .collect();
        let response = UdpResponse::Announce { transaction_id: tid, interval, leechers: l, seeders: s, peers };
        let packet = encode_response(&response);
        prop_assert_eq!(UdpResponse::decode(&packet, false, &TrackerLimits::DEFAULT), Ok(response));
    }
}

// The client machine, on a virtual clock.

fn secs(s: u64) -> Instant {
    Instant::from_micros(s * 1_000_000)
}

fn client() -> UdpTrackerClient {
    UdpTrackerClient::new(
        false,
        "/announce",
        UdpClientConfig::BEP15,
        TrackerLimits::DEFAULT,
        Rng::from_seed(42),
    )
}

/// Takes the one datagram the client wants to send, decoded.
fn sent(c: &mut UdpTrackerClient) -> UdpRequest {
    let packet = c.poll_transmit().expect("a datagram to send");
    assert!(c.poll_transmit().is_none(), "one datagram at a time");
    UdpRequest::decode(&packet).expect("the client sends valid requests")
}

fn reply(c: &mut UdpTrackerClient, now: Instant, r: UdpResponse) -> bool {
    c.handle_datagram(now, &encode_response(&r))
}

fn connect_reply(tid: u32, cid: u64) -> UdpResponse {
    UdpResponse::Connect {
        transaction_id: tid,
        connection_id: cid,
    }
}

fn announce_reply(tid: u32) -> UdpResponse {
    UdpResponse::Announce {
        transaction_id: tid,
        interval: 1800,
        leechers: 2,
        seeders: 3,
        peers: vec!["10.1.1.1:6881".parse().unwrap()],
    }
}

#[test]
fn connect_then_announce_then_reuse_the_connection_id() {
    let mut c = client();
    c.announce(secs(0), request());
    let UdpRequest::Connect { transaction_id } = sent(&mut c) else {
        panic!("connects first");
    };
    assert_eq!(c.poll_timeout(), Some(secs(15)));
    assert!(reply(&mut c, secs(1), connect_reply(transaction_id, 77)));
    let UdpRequest::Announce {
        connection_id,
        transaction_id: announce_tid,
        request: r,
        url_data,
    } = sent(&mut c)
    else {
        panic!("then announces");
    };
    assert_eq!(connection_id, 77);
    assert_ne!(
        announce_tid, transaction_id,
        "a fresh transaction id per stage"
    );
    assert_eq!(r, request());
    assert_eq!(url_data, b"/announce");
    assert!(reply(&mut c, secs(2), announce_reply(announce_tid)));
    let Some(UdpEvent::Announced(resp)) = c.poll_event() else {
        panic!("announced");
    };
    assert_eq!(resp.interval, Some(Duration::from_secs(1800)));
    assert_eq!((resp.seeders, resp.leechers), (Some(3), Some(2)));
    assert_eq!(resp.peers.len(), 1);
    assert!(!c.is_busy());
    assert_eq!(c.poll_timeout(), None);

    // Within a minute of the connect response: straight to the announce.
    c.announce(secs(60), request());
    assert!(matches!(
        sent(&mut c),
        UdpRequest::Announce {
            connection_id: 77,
            ..
        }
    ));
    // A minute after it: connect again.
    c.announce(secs(61), request());
    assert!(matches!(sent(&mut c), UdpRequest::Connect { .. }));
}

#[test]
fn mismatched_and_late_datagrams_are_ignored() {
    let mut c = client();
    c.announce(secs(0), request());
    let tid = sent(&mut c).transaction_id();
    assert!(!reply(
        &mut c,
        secs(1),
        connect_reply(tid.wrapping_add(1), 5)
    ));
    assert!(!c.handle_datagram(secs(1), &[0, 0, 0]));
    assert!(c.poll_transmit().is_none());
    assert!(c.poll_event().is_none());
    assert!(c.is_busy());
    // Replaced by a scrape: the old connect's answer no longer counts.
    c.scrape(secs(2), &[HASH]).unwrap();
    let new_tid = sent(&mut c).transaction_id();
    assert_ne!(new_tid, tid);
    assert!(!reply(&mut c, secs(3), connect_reply(tid, 5)));
    assert!(reply(&mut c, secs(3), connect_reply(new_tid, 5)));
    let UdpRequest::Scrape {
        info_hashes,
        transaction_id,
        ..
    } = sent(&mut c)
    else {
        panic!("scrape");
    };
    assert_eq!(info_hashes, vec![HASH]);
    let stats = vec![ScrapeStats {
        complete: 1,
        downloaded: 2,
        incomplete: 3,
        name: None,
    }];
    assert!(reply(
        &mut c,
        secs(4),
        UdpResponse::Scrape {
            transaction_id,
            stats: stats.clone()
        }
    ));
    assert_eq!(c.poll_event(), Some(UdpEvent::Scraped(stats)));
}

#[test]
fn retransmits_on_the_15_times_2_to_the_n_schedule_then_times_out() {
    let mut c = client();
    c.announce(secs(0), request());
    let tid = sent(&mut c).transaction_id();
    let mut now = secs(0);
    for n in 0..=8u32 {
        let deadline = c.poll_timeout().expect("waiting");
        assert_eq!(deadline, now + Duration::from_secs(15 << n), "wait {n}");
        // Early timeouts do nothing.
        c.handle_timeout(deadline - Duration::from_secs(1));
        assert!(c.poll_transmit().is_none());
        now = deadline;
        c.handle_timeout(now);
        if n < 8 {
            let again = sent(&mut c);
            assert_eq!(again.transaction_id(), tid, "retransmissions keep the id");
            assert!(c.poll_event().is_none());
        }
    }
    assert!(c.poll_transmit().is_none());
    assert_eq!(
        c.poll_event(),
        Some(UdpEvent::Failed(TrackerError::TimedOut))
    );
    assert_eq!(c.poll_timeout(), None);
    // 15·(2⁹ − 1) seconds in all.
    assert_eq!(now, secs(15 * 511));
}

#[test]
fn an_expired_connection_id_means_connecting_again_and_n_keeps_growing() {
    let mut c = client();
    c.announce(secs(0), request());
    let tid = sent(&mut c).transaction_id();
    assert!(reply(&mut c, secs(0), connect_reply(tid, 1)));
    let announce_tid = sent(&mut c).transaction_id();
    c.handle_timeout(secs(15));
    assert_eq!(sent(&mut c).transaction_id(), announce_tid);
    // At 45 s the id (from 0 s) is still good; at 105 s it is not.
    c.handle_timeout(secs(45));
    assert!(matches!(sent(&mut c), UdpRequest::Announce { .. }));
    c.handle_timeout(secs(105));
    let UdpRequest::Connect { transaction_id } = sent(&mut c) else {
        panic!("reconnects");
    };
    assert_eq!(c.poll_timeout(), Some(secs(105 + 120)), "n = 3");
    assert!(reply(&mut c, secs(106), connect_reply(transaction_id, 2)));
    assert!(matches!(
        sent(&mut c),
        UdpRequest::Announce {
            connection_id: 2,
            ..
        }
    ));
    assert_eq!(c.poll_timeout(), Some(secs(106 + 120)), "n is not reset");
}

#[test]
fn error_and_garbage_answers_fail_the_operation() {
    let mut c = client();
    c.announce(secs(0), request());
    let tid = sent(&mut c).transaction_id();
    assert!(reply(
        &mut c,
        secs(1),
        UdpResponse::Error {
            transaction_id: tid,
            message: "go away".into()
        }
    ));
    let Some(UdpEvent::Failed(e)) = c.poll_event() else {
        panic!("failed");
    };
    assert_eq!(
        e,
        TrackerError::Failure {
            reason: "go away".into(),
            retry_in: None
        }
    );
    assert!(!c.is_busy());

    // An announce answer to a connect, and a truncated connect answer.
    for bad in [
        encode_response(&announce_reply(0)),
        vec![0, 0, 0, 0, 0, 0, 0, 0, 1],
    ] {
        c.announce(secs(2), request());
        let tid = sent(&mut c).transaction_id();
        let mut packet = bad.clone();
        packet[4..8].copy_from_slice(&tid.to_be_bytes());
        assert!(c.handle_datagram(secs(3), &packet));
        let Some(UdpEvent::Failed(e)) = c.poll_event() else {
            panic!("failed");
        };
        assert_eq!(e.fault(), Fault::Malformed);
        assert!(!c.is_busy());
    }
}

#[test]
fn ipv6_client_reads_18_byte_peers_and_scrape_size_is_checked() {
    let mut c = UdpTrackerClient::new(
        true,
        "",
        UdpClientConfig::BEP15,
        TrackerLimits::DEFAULT,
        Rng::from_seed(1),
    );
    assert_eq!(
        c.scrape(secs(0), &[]),
        Err(TrackerError::ScrapeSize { count: 0 })
    );
    assert!(c.poll_transmit().is_none());
    c.announce(secs(0), request());
    let tid = sent(&mut c).transaction_id();
    assert!(reply(&mut c, secs(0), connect_reply(tid, 3)));
    let UdpRequest::Announce {
        transaction_id,
        url_data,
        ..
    } = sent(&mut c)
    else {
        panic!("announce");
    };
    assert!(url_data.is_empty());
    let peer: SocketAddr = "[2001:db8::7]:6881".parse().unwrap();
    assert!(reply(
        &mut c,
        secs(1),
        UdpResponse::Announce {
            transaction_id,
            interval: 60,
            leechers: 0,
            seeders: 1,
            peers: vec![peer],
        }
    ));
    let Some(UdpEvent::Announced(r)) = c.poll_event() else {
        panic!("announced");
    };
    assert_eq!(r.peers, vec![peer]);
}

#[test]
fn transaction_ids_come_from_the_seed() {
    let first_tid = |seed| {
        let mut c = UdpTrackerClient::new(
            false,
            "",
            UdpClientConfig::BEP15,
            TrackerLimits::DEFAULT,
            Rng::from_seed(seed),
        );
        c.announce(secs(0), request());
        sent(&mut c).transaction_id()
    };
    assert_eq!(first_tid(9), first_tid(9));
    assert_ne!(first_tid(9), first_tid(10));
}
