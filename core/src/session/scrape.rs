//! Scrapes inside the session: asking a torrent's trackers how many seeders, leechers and
//! completed downloads they count ([`Session::scrape`]).
//!
//! - `http(s)://` trackers: the scrape URL is derived from the announce URL by the BEP 48
//!   convention ([`scrape_url`]); a tracker whose announce URL does not follow it fails with
//!   [`TrackerError::NoScrape`]. The request goes out as [`Output::Http`] and the body is read
//!   with [`parse_scrape_response`].
//! - `udp://` trackers (BEP 15): the scrape action through a [`UdpTrackerClient`] of its own
//!   per (torrent, tracker URL), so a scrape never replaces an announce in flight; it gives
//!   up after [`SCRAPE_RETRANSMITS`] retransmissions (15 + 30 + 60 s). Host names are resolved
//!   first ([`Output::Resolve`]).
//!
//! Each tracker's outcome is one [`Event::ScrapeResult`] or [`Event::ScrapeFailed`]. A tracker
//! whose scrape is still in flight is not asked again; one that asked for a pause between
//! scrapes (BEP 48 `flags.min_request_interval`) fails with [`TrackerError::ScrapeTooSoon`]
//! until it is over. A torrent without trackers scrapes nothing.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

use super::{CommandError, Event, HttpReply, Output, Session};
use crate::id::{RequestId, TorrentId};
use crate::time::{Duration, Instant};
use crate::tracker::{
    parse_scrape_response, scrape_request_url, scrape_url, ScrapeStats, TrackerError,
    TrackerLimits, TrackerUrl, UdpClientConfig, UdpEvent, UdpTrackerClient,
};

/// The last retransmission count of a UDP scrape: it fails after 15 + 30 + 60 s of silence.
pub(crate) const SCRAPE_RETRANSMITS: u32 = 2;

/// A scrape of one tracker for one torrent.
#[derive(Debug, Clone)]
pub(super) struct ScrapeOf {
    torrent: TorrentId,
    /// The tracker's announce URL (how the application knows it).
    url: String,
}

#[derive(Debug)]
struct UdpScrape {
    client: UdpTrackerClient,
    /// The tracker's address.
    addr: SocketAddr,
    /// Whether a scrape is in flight on this client.
    busy: bool,
}

/// Every scrape in flight, for all torrents.
#[derive(Debug, Default)]
pub(super) struct Scrapes {
    http: HashMap<RequestId, ScrapeOf>,
    resolving: HashMap<RequestId, ScrapeOf>,
    /// One UDP client per torrent and tracker URL (two URLs may name one address).
    udp: BTreeMap<(TorrentId, String), UdpScrape>,
    /// Not before this instant, per torrent and tracker URL (BEP 48 `min_request_interval`).
    not_before: HashMap<(TorrentId, String), Instant>,
}

impl Scrapes {
    /// The earliest UDP scrape deadline.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.udp
            .values()
            .filter_map(|s| s.client.poll_timeout())
            .min()
    }

    pub(super) fn take_http(&mut self, req: RequestId) -> Option<ScrapeOf> {
        self.http.remove(&req)
    }

    pub(super) fn take_resolving(&mut self, req: RequestId) -> Option<ScrapeOf> {
        self.resolving.remove(&req)
    }

    /// Drops everything about a removed torrent.
    pub(super) fn forget(&mut self, torrent: TorrentId) {
        self.http.retain(|_, s| s.torrent != torrent);
        self.resolving.retain(|_, s| s.torrent != torrent);
        self.udp.retain(|(t, _), _| *t != torrent);
        self.not_before.retain(|(t, _), _| *t != torrent);
    }

    fn in_flight(&self, torrent: TorrentId, url: &str) -> bool {
        let same = |s: &ScrapeOf| s.torrent == torrent && s.url == url;
        self.http.values().any(same)
            || self.resolving.values().any(same)
            || self
                .udp
                .get(&(torrent, url.to_string()))
                .is_some_and(|s| s.busy)
    }
}

impl Session {
    /// Asks every tracker of a torrent for the swarm's counts: seeders, leechers, completed
    /// downloads (BEP 48 over HTTP, the BEP 15 scrape over UDP). Works in any state (checking
    /// and paused torrents too). Each tracker answers with [`Event::ScrapeResult`] or
    /// [`Event::ScrapeFailed`]; see the rules in the `scrape` module documentation.
    pub fn scrape(&mut self, now: Instant, torrent: TorrentId) -> Result<(), CommandError> {
        let info_hash = self.command_target(torrent)?.info.hashes().wire_id();
        let urls: Vec<String> = self
            .trackers
            .list(torrent)
            .map(|t| t.list.trackers().map(|s| s.url.to_string()).collect())
            .unwrap_or_default();
        for url in urls {
            if self.trackers.scrapes.in_flight(torrent, &url) {
                continue;
            }
            let scrape = ScrapeOf { torrent, url };
            let key = (torrent, scrape.url.clone());
            if let Some(&at) = self.trackers.scrapes.not_before.get(&key) {
                if now < at {
                    let wait = at - now;
                    self.scrape_failed(scrape, TrackerError::ScrapeTooSoon { wait });
                    continue;
                }
            }
            self.start_scrape(now, scrape, info_hash);
        }
        Ok(())
    }

    fn start_scrape(&mut self, now: Instant, scrape: ScrapeOf, info_hash: [u8; 20]) {
        match TrackerUrl::parse(&scrape.url) {
            Ok(TrackerUrl::Http { url }) => {
                let request = scrape_url(&url)
                    .ok_or(TrackerError::NoScrape)
                    .and_then(|s| scrape_request_url(&s, &[info_hash]));
                match request {
                    Ok(url) => {
                        let req = self.next_request_id();
                        self.trackers.scrapes.http.insert(req, scrape);
                        self.outputs.push_back(Output::Http {
                            req,
                            url,
                            max_body: TrackerLimits::DEFAULT.max_body,
                        });
                    }
                    Err(error) => self.scrape_failed(scrape, error),
                }
            }
            Ok(TrackerUrl::Udp { host, port, .. }) => match host.parse::<IpAddr>() {
                Ok(ip) => self.udp_scrape(now, scrape, SocketAddr::new(ip, port)),
                Err(_) => {
                    let req = self.next_request_id();
                    self.trackers.scrapes.resolving.insert(req, scrape);
                    self.outputs.push_back(Output::Resolve { req, host, port });
                }
            },
            Err(error) => self.scrape_failed(scrape, error),
        }
    }

    fn udp_scrape(&mut self, now: Instant, scrape: ScrapeOf, addr: SocketAddr) {
        let Some(info_hash) = self
            .torrents
            .get(scrape.torrent.0)
            .map(|t| t.info.hashes().wire_id())
        else {
            return;
        };
        let key = (scrape.torrent, scrape.url.clone());
        let fresh = self
            .trackers
            .scrapes
            .udp
            .get(&key)
            .is_none_or(|s| s.addr != addr);
        if fresh {
            let config = UdpClientConfig {
                max_retransmits: SCRAPE_RETRANSMITS,
                ..UdpClientConfig::BEP15
            };
            let client = UdpTrackerClient::new(
                addr.is_ipv6(),
                "",
                config,
                TrackerLimits::DEFAULT,
                self.rng.fork(),
            );
            let slot = UdpScrape {
                client,
                addr,
                busy: false,
            };
            self.trackers.scrapes.udp.insert(key.clone(), slot);
        }
        let slot = self
            .trackers
            .scrapes
            .udp
            .get_mut(&key)
            .expect("inserted just above");
        // One hash: always within the BEP 15 bounds.
        if let Err(error) = slot.client.scrape(now, &[info_hash]) {
            self.scrape_failed(scrape, error);
            return;
        }
        slot.busy = true;
        self.scrape_udp_flush(now, key);
    }

    /// Sends a UDP scrape client's datagrams and reports its outcome.
    fn scrape_udp_flush(&mut self, now: Instant, key: (TorrentId, String)) {
        let Some(slot) = self.trackers.scrapes.udp.get_mut(&key) else {
            return;
        };
        while let Some(data) = slot.client.poll_transmit() {
            self.outputs.push_back(Output::SendDatagram {
                to: slot.addr,
                data: Bytes::from(data),
            });
        }
        let mut outcomes = Vec::new();
        while let Some(event) = slot.client.poll_event() {
            if std::mem::take(&mut slot.busy) {
                outcomes.push(event);
            }
        }
        for event in outcomes {
            let scrape = ScrapeOf {
                torrent: key.0,
                url: key.1.clone(),
            };
            match event {
                UdpEvent::Scraped(stats) => match stats.into_iter().next() {
                    Some(stats) => self.scrape_succeeded(now, scrape, stats, None),
                    None => self.scrape_failed(scrape, TrackerError::NotListed),
                },
                UdpEvent::Failed(error) => self.scrape_failed(scrape, error),
                // A scrape client never announces.
                UdpEvent::Announced(_) => {}
            }
        }
    }

    /// Runs the UDP scrape timers due at `now`.
    pub(super) fn scrapes_timeout(&mut self, now: Instant) {
        let due: Vec<(TorrentId, String)> = self
            .trackers
            .scrapes
            .udp
            .iter()
            .filter(|(_, s)| s.client.poll_timeout().is_some_and(|d| d <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if let Some(slot) = self.trackers.scrapes.udp.get_mut(&key) {
                slot.client.handle_timeout(now);
            }
            self.scrape_udp_flush(now, key);
        }
    }

    /// A datagram no announce client took: offer it to the scrape clients of its sender.
    pub(super) fn scrape_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let keys: Vec<(TorrentId, String)> = self
            .trackers
            .scrapes
            .udp
            .iter()
            .filter(|(_, s)| s.addr == from)
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            let taken = self
                .trackers
                .scrapes
                .udp
                .get_mut(&key)
                .is_some_and(|slot| slot.client.handle_datagram(now, data));
            if taken {
                self.scrape_udp_flush(now, key);
                return;
            }
        }
    }

    /// A UDP tracker's name resolved (or not) for a scrape.
    pub(super) fn scrape_resolved(
        &mut self,
        now: Instant,
        scrape: ScrapeOf,
        result: Result<Vec<SocketAddr>, String>,
    ) {
        match result {
            Ok(addrs) => {
                // Prefer IPv4, as for announces.
                match addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()) {
                    Some(&addr) => self.udp_scrape(now, scrape, addr),
                    None => self.scrape_failed(
                        scrape,
                        TrackerError::Transport {
                            message: "the tracker's name has no address".into(),
                        },
                    ),
                }
            }
            Err(message) => self.scrape_failed(scrape, TrackerError::Transport { message }),
        }
    }

    /// An HTTP scrape finished.
    pub(super) fn scrape_http_done(
        &mut self,
        now: Instant,
        scrape: ScrapeOf,
        result: Result<HttpReply, String>,
    ) {
        let Some(info_hash) = self
            .torrents
            .get(scrape.torrent.0)
            .map(|t| t.info.hashes().wire_id())
        else {
            return;
        };
        let outcome = result
            .map_err(|message| TrackerError::Transport { message })
            .and_then(|reply| {
                parse_scrape_response(reply.status, &reply.body, &TrackerLimits::DEFAULT)
            });
        match outcome {
            Ok(response) => match response.get(&info_hash) {
                Some(stats) => {
                    let stats = stats.clone();
                    self.scrape_succeeded(now, scrape, stats, response.min_request_interval);
                }
                None => self.scrape_failed(scrape, TrackerError::NotListed),
            },
            Err(error) => self.scrape_failed(scrape, error),
        }
    }

    fn scrape_succeeded(
        &mut self,
        now: Instant,
        scrape: ScrapeOf,
        stats: ScrapeStats,
        min_interval: Option<Duration>,
    ) {
        if let Some(wait) = min_interval.filter(|d| *d > Duration::ZERO) {
            self.trackers
                .scrapes
                .not_before
                .insert((scrape.torrent, scrape.url.clone()), now + wait);
        }
        self.outputs.push_back(Output::Event(Event::ScrapeResult {
            torrent: scrape.torrent,
            url: scrape.url,
            complete: stats.complete,
            incomplete: stats.incomplete,
            downloaded: stats.downloaded,
        }));
    }

    fn scrape_failed(&mut self, scrape: ScrapeOf, error: TrackerError) {
        self.outputs.push_back(Output::Event(Event::ScrapeFailed {
            torrent: scrape.torrent,
            url: scrape.url,
            error,
        }));
    }
}
