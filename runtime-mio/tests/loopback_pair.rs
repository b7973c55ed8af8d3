//! Two event loops on 127.0.0.1 exchange a torrent over real TCP sockets, with disk and hash
//! jobs run inline by an in-memory job sink.

use std::sync::Arc;
use std::time::Duration;

use bitshoal_core::bencode::DictWriter;
use bitshoal_core::bitfield::Bitfield;
use bitshoal_core::metainfo::Info;
use bitshoal_core::session::{
    AddTorrent, Config, Digest, DiskCmd, DiskDone, Event, HashJob, Input, Session,
};
use bitshoal_mio::event_loop::{CompletionSender, EventLoop, JobSink};
use sha1::{Digest as _, Sha1};

/// A single-file torrent's bytes in memory; jobs complete at once through the loop's channel.
struct MemoryJobs {
    disk: Vec<u8>,
    done: CompletionSender,
}

impl JobSink for MemoryJobs {
    fn disk(&mut self, cmd: DiskCmd) {
        match cmd {
            DiskCmd::Write {
                req, spans, data, ..
            } => {
                let mut at = 0;
                for span in spans {
                    let (off, len) = (span.offset as usize, span.length as usize);
                    self.disk[off..off + len].copy_from_slice(&data[at..at + len]);
                    at += len;
                }
                let result = Ok(DiskDone::Written);
                self.done.send(Input::DiskDone { req, result });
            }
            DiskCmd::Read { req, spans, .. } => {
                let mut out = Vec::new();
                for span in spans {
                    let off = span.offset as usize;
                    out.extend_from_slice(&self.disk[off..off + span.length as usize]);
                }
                let result = Ok(DiskDone::Read(out.into()));
                self.done.send(Input::DiskDone { req, result });
            }
            _ => {}
        }
    }

    fn hash(&mut self, job: HashJob) {
        let mut h = Sha1::new();
        for b in &job.data {
            h.update(b);
        }
        let digest = Digest::Sha1(h.finalize().into());
        self.done.send(Input::Hashed {
            req: job.req,
            digest,
        });
    }
}

fn torrent(data: &[u8], piece_length: usize) -> Arc<Info> {
    let mut pieces = Vec::new();
    for chunk in data.chunks(piece_length) {
        pieces.extend_from_slice(&Sha1::digest(chunk));
    }
    let mut raw = Vec::new();
    let mut d = DictWriter::new(&mut raw);
    d.int(b"length", data.len() as i64);
    d.bytes(b"name", b"payload.bin");
    d.int(b"piece length", piece_length as i64);
    d.bytes(b"pieces", &pieces);
    d.finish();
    Arc::new(Info::from_bytes(&raw).expect("valid torrent"))
}

#[test]
fn two_loops_transfer_a_torrent_over_loopback_tcp() {
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i ^ (i >> 11)) as u8).collect();
    let info = torrent(&data, 256 * 1024);
    let pieces = info.layout().piece_count();

    let seed_session = Session::new(Config {
        rng_seed: 1,
        ..Config::default()
    });
    let mut seed = EventLoop::new(seed_session, Some("127.0.0.1:0".parse().unwrap())).unwrap();
    let seed_addr = seed.local_addr().unwrap();
    let mut seed_jobs = MemoryJobs {
        disk: data.clone(),
        done: seed.completion_sender(),
    };
    let now = seed.now();
    seed.session()
        .add_torrent(
            now,
            AddTorrent::new(info.clone()).with_have(Bitfield::full(pieces)),
        )
        .unwrap();
    seed.dispatch(&mut seed_jobs);

    let leech_session = Session::new(Config {
        rng_seed: 2,
        ..Config::default()
    });
    let mut leech = EventLoop::new(leech_session, None).unwrap();
    let mut leech_jobs = MemoryJobs {
        disk: vec![0; data.len()],
        done: leech.completion_sender(),
    };
    let now = leech.now();
    let id = leech
        .session()
        .add_torrent(now, AddTorrent::new(info.clone()))
        .unwrap();
    leech.dispatch(&mut leech_jobs);
    leech.session().connect(now, id, seed_addr).unwrap();
    leech.dispatch(&mut leech_jobs);

    let mut finished = false;
    // Bounded: at most 20,000 turns of at most 5 ms each.
    for _ in 0..20_000 {
        seed.turn(&mut seed_jobs, Duration::from_millis(5)).unwrap();
        leech
            .turn(&mut leech_jobs, Duration::from_millis(5))
            .unwrap();
        if leech
            .take_events()
            .iter()
            .any(|e| matches!(e, Event::TorrentFinished { .. }))
        {
            finished = true;
            break;
        }
    }
    assert!(finished, "the leecher finished");
    assert!(
        leech_jobs.disk == data,
        "the leecher's bytes equal the payload"
    );
    let status = leech.session().torrent_status(id).unwrap();
    assert_eq!(status.pieces_have, pieces);
}
