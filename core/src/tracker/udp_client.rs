//! The machine that talks to one UDP tracker (BEP 15): connect, connection ids, retransmission.
//!
//! The rules are documented on the machine's type.

use std::collections::VecDeque;

use super::udp::response_transaction_id;
use super::{
    AnnounceRequest, AnnounceResponse, ScrapeStats, TrackerError, TrackerLimits, UdpRequest,
    UdpResponse, MAX_SCRAPE_HASHES,
};
use crate::rng::Rng;
use crate::time::{Duration, Instant};

/// Settings of a [`UdpTrackerClient`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpClientConfig {
    /// The last retransmission count `n` (waits are 15·2ⁿ s); BEP 15 goes up to 8, which makes
    /// about two hours in all. The tier policy's announce timeout usually gives up sooner.
    pub max_retransmits: u32,
    /// The base of the retransmission schedule (BEP 15: 15 s).
    pub base_timeout: Duration,
    /// How long a connection id may be used after it arrived (BEP 15: one minute).
    pub connection_lifetime: Duration,
}

impl UdpClientConfig {
    /// BEP 15's numbers: 15 s doubling up to n = 8, connection ids for one minute.
    pub const BEP15: Self = Self {
        max_retransmits: 8,
        base_timeout: Duration::from_secs(15),
        connection_lifetime: Duration::from_secs(60),
    };
}

impl Default for UdpClientConfig {
    fn default() -> Self {
        Self::BEP15
    }
}

/// What a [`UdpTrackerClient`] operation came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdpEvent {
    /// The announce succeeded.
    Announced(AnnounceResponse),
    /// The scrape succeeded: counts in the order of the info-hashes asked for.
    Scraped(Vec<ScrapeStats>),
    /// The operation failed: the tracker refused ([`TrackerError::Failure`]), answered garbage,
    /// or never answered ([`TrackerError::TimedOut`]).
    Failed(TrackerError),
}

#[derive(Clone, Debug)]
enum Op {
    Announce(AnnounceRequest),
    Scrape(Vec<[u8; 20]>),
}

#[derive(Clone, Debug)]
enum State {
    Idle,
    Connecting {
        op: Op,
        transaction_id: u32,
        attempt: u32,
        deadline: Instant,
    },
    Requesting {
        op: Op,
        transaction_id: u32,
        attempt: u32,
        deadline: Instant,
    },
}

/// One UDP tracker endpoint's client machine.
///
/// States: `Idle` (nothing asked), `Connecting` (a connect request is out), `Requesting` (an
/// announce or scrape is out under a connection id). Invariants:
/// - at most one operation is in flight; a new one replaces it (its result is never reported);
/// - a connection id is used only until one minute after it arrived (BEP 15), then the client
///   connects again before the next (re)transmission;
/// - each transmission stage has one transaction id drawn from the client's seeded [`Rng`];
///   retransmissions of a stage reuse it, so a late answer to an earlier copy still counts;
///   datagrams with any other transaction id are ignored;
/// - the retransmission count `n` grows by one per timeout over the whole operation (connect and
///   request together) and the wait after a transmission is 15·2ⁿ seconds; after the wait at
///   `n = max_retransmits` the operation fails with [`TrackerError::TimedOut`]. `n` is not reset
///   by a connect response, so a tracker that answers connects but nothing else cannot keep us
///   busy forever.
///
/// `handle_*` in, `poll_*` out: after each call, drain [`poll_transmit`](Self::poll_transmit)
/// (datagrams to send to the tracker's address) and [`poll_event`](Self::poll_event), then read
/// [`poll_timeout`](Self::poll_timeout).
#[derive(Debug)]
pub struct UdpTrackerClient {
    config: UdpClientConfig,
    limits: TrackerLimits,
    ipv6: bool,
    url_data: Vec<u8>,
    rng: Rng,
    /// The connection id and when it stops being usable.
    connection: Option<(u64, Instant)>,
    state: State,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<UdpEvent>,
}

impl UdpTrackerClient {
    /// A client for a tracker reached over IPv6 (`ipv6`, which decides the peer format) or IPv4.
    ///
    /// `url_data` is the URL's path and query ([`TrackerUrl::Udp`](super::TrackerUrl)), sent with
    /// every announce (BEP 41). `rng` supplies transaction ids; fork it from the session's.
    pub fn new(
        ipv6: bool,
        url_data: &str,
        config: UdpClientConfig,
        limits: TrackerLimits,
        rng: Rng,
    ) -> Self {
        Self {
            config,
            limits,
            ipv6,
            url_data: url_data.as_bytes().to_vec(),
            rng,
            connection: None,
            state: State::Idle,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Starts an announce, replacing any operation in flight.
    pub fn announce(&mut self, now: Instant, request: AnnounceRequest) {
        self.start(now, Op::Announce(request));
    }

    /// Starts a scrape of 1 to [`MAX_SCRAPE_HASHES`] torrents, replacing any operation in flight.
    pub fn scrape(&mut self, now: Instant, info_hashes: &[[u8; 20]]) -> Result<(), TrackerError> {
        if info_hashes.is_empty() || info_hashes.len() > MAX_SCRAPE_HASHES {
            return Err(TrackerError::ScrapeSize {
                count: info_hashes.len(),
            });
        }
        self.start(now, Op::Scrape(info_hashes.to_vec()));
        Ok(())
    }

    /// Drops the operation in flight (its result, if it comes, is ignored); keeps the
    /// connection id.
    pub fn cancel(&mut self) {
        self.state = State::Idle;
        self.transmit.clear();
    }

    /// Whether an operation is in flight.
    pub fn is_busy(&self) -> bool {
        !matches!(self.state, State::Idle)
    }

    /// Feeds a datagram that came from the tracker's address.
    ///
    /// Returns whether it answered the operation in flight (its transaction id matched); others
    /// (late, duplicate, spoofed, too short to hold a transaction id) are ignored. A matching
    /// datagram that does not parse, or has the wrong action, fails the operation.
    pub fn handle_datagram(&mut self, now: Instant, data: &[u8]) -> bool {
        let Some(tid) = response_transaction_id(data) else {
            return false;
        };
        let (op, attempt, connecting) = match &self.state {
            State::Connecting {
                transaction_id,
                attempt,
                op,
                ..
            } if *transaction_id == tid => (op.clone(), *attempt, true),
            State::Requesting {
                transaction_id,
                attempt,
                op,
                ..
            } if *transaction_id == tid => (op.clone(), *attempt, false),
            _ => return false,
        };
        self.state = State::Idle;
        let response = match UdpResponse::decode(data, self.ipv6, &self.limits) {
            Ok(r) => r,
            Err(e) => {
                self.events.push_back(UdpEvent::Failed(e));
                return true;
            }
        };
        let event = match (response, connecting, &op) {
            (UdpResponse::Error { message, .. }, _, _) => UdpEvent::Failed(TrackerError::Failure {
                reason: message,
                retry_in: None,
            }),
            (UdpResponse::Connect { connection_id, .. }, true, _) => {
                let expires = now + self.config.connection_lifetime;
                self.connection = Some((connection_id, expires));
                self.send_request(now, op, attempt, connection_id);
                return true;
            }
            (response @ UdpResponse::Announce { .. }, false, Op::Announce(_)) => {
                response.into_announce_response().map_or(
                    UdpEvent::Failed(TrackerError::UnexpectedAction { action: 1 }),
                    UdpEvent::Announced,
                )
            }
            (UdpResponse::Scrape { stats, .. }, false, Op::Scrape(_)) => UdpEvent::Scraped(stats),
            (other, _, _) => UdpEvent::Failed(TrackerError::UnexpectedAction {
                action: action_of(&other),
            }),
        };
        self.events.push_back(event);
        true
    }

    /// Retransmits or gives up if the deadline passed; harmless when called early.
    pub fn handle_timeout(&mut self, now: Instant) {
        let (op, attempt) = match &self.state {
            State::Connecting {
                op,
                attempt,
                deadline,
                ..
            }
            | State::Requesting {
                op,
                attempt,
                deadline,
                ..
            } if now >= *deadline => (op.clone(), *attempt),
            _ => return,
        };
        if attempt >= self.config.max_retransmits {
            self.state = State::Idle;
            self.events
                .push_back(UdpEvent::Failed(TrackerError::TimedOut));
            return;
        }
        let attempt = attempt + 1;
        match (&self.state, self.usable_connection(now)) {
            // Same stage, same transaction id.
            (State::Connecting { transaction_id, .. }, None) => {
                let tid = *transaction_id;
                self.transmit_connect(now, op, attempt, tid);
            }
            (State::Requesting { transaction_id, .. }, Some(connection_id)) => {
                let tid = *transaction_id;
                self.transmit_request(now, op, attempt, connection_id, tid);
            }
            // The connection id expired (or one arrived meanwhile): a new stage.
            (_, None) => {
                let tid = self.rng.next_u32();
                self.transmit_connect(now, op, attempt, tid);
            }
            (_, Some(connection_id)) => self.send_request(now, op, attempt, connection_id),
        }
    }

    /// The next datagram to send to the tracker.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next finished operation.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<UdpEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Idle => None,
            State::Connecting { deadline, .. } | State::Requesting { deadline, .. } => {
                Some(*deadline)
            }
        }
    }

    fn usable_connection(&self, now: Instant) -> Option<u64> {
        self.connection
            .filter(|&(_, expires)| now < expires)
            .map(|(id, _)| id)
    }

    fn wait(&self, attempt: u32) -> Duration {
        // 15·2ⁿ, saturating for absurd configurations.
        self.config
            .base_timeout
            .saturating_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
    }

    fn start(&mut self, now: Instant, op: Op) {
        self.cancel();
        match self.usable_connection(now) {
            Some(connection_id) => self.send_request(now, op, 0, connection_id),
            None => {
                let tid = self.rng.next_u32();
                self.transmit_connect(now, op, 0, tid);
            }
        }
    }

    fn transmit_connect(&mut self, now: Instant, op: Op, attempt: u32, transaction_id: u32) {
        let mut packet = Vec::with_capacity(16);
        UdpRequest::Connect { transaction_id }
            .encode(&mut packet)
            .expect("a connect request always encodes");
        self.transmit.push_back(packet);
        self.state = State::Connecting {
            op,
            transaction_id,
            attempt,
            deadline: now + self.wait(attempt),
        };
    }

    /// Sends the operation's request under a new transaction id.
    fn send_request(&mut self, now: Instant, op: Op, attempt: u32, connection_id: u64) {
        let tid = self.rng.next_u32();
        self.transmit_request(now, op, attempt, connection_id, tid);
    }

    fn transmit_request(
        &mut self,
        now: Instant,
        op: Op,
        attempt: u32,
        connection_id: u64,
        transaction_id: u32,
    ) {
        let request = match &op {
            Op::Announce(request) => UdpRequest::Announce {
                connection_id,
                transaction_id,
                request: request.clone(),
                url_data: self.url_data.clone(),
            },
            Op::Scrape(info_hashes) => UdpRequest::Scrape {
                connection_id,
                transaction_id,
                info_hashes: info_hashes.clone(),
            },
        };
        let mut packet = Vec::with_capacity(128);
        request
            .encode(&mut packet)
            .expect("scrape sizes are checked when the operation starts");
        self.transmit.push_back(packet);
        self.state = State::Requesting {
            op,
            transaction_id,
            attempt,
            deadline: now + self.wait(attempt),
        };
    }
}

fn action_of(response: &UdpResponse) -> u32 {
    match response {
        UdpResponse::Connect { .. } => 0,
        UdpResponse::Announce { .. } => 1,
        UdpResponse::Scrape { .. } => 2,
        UdpResponse::Error { .. } => 3,
    }
}
