//! Why a connection ended: a typed reason, classified by who is at fault.

use std::fmt;

use crate::bitfield::BitfieldError;
use crate::error::{Classify, Fault};
use crate::wire::{BlockRequest, WireError};

/// Why a peer connection was closed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The peer sent bytes the wire codec refuses (malformed, or over a frame limit).
    Wire(WireError),
    /// The peer sent well-formed messages that break the protocol.
    Violation(Violation),
    /// The peer's handshake names a torrent this session does not have.
    UnknownTorrent,
    /// The peer's handshake names another torrent than the one we connected for.
    InfoHashMismatch,
    /// The handshake came from ourselves (our own peer id).
    SelfConnection,
    /// We already have a connection to this peer id on this torrent.
    DuplicatePeer,
    /// No complete handshake within the handshake timeout.
    HandshakeTimeout,
    /// Nothing received within the idle timeout.
    IdleTimeout,
    /// The connection attempt failed (as the runtime reported it).
    ConnectFailed,
    /// The peer, or the network, closed the connection.
    ClosedByRemote,
    /// The torrent was removed or paused.
    TorrentStopped,
    /// Both sides are seeds: neither wants anything from the other.
    BothSeeding,
    /// The session's or the torrent's connection limit was reached.
    TooManyConnections,
    /// The peer sent data that failed piece verification (smart ban): its address is refused
    /// for this torrent from now on.
    Banned,
}

/// A protocol rule a peer broke.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// A bitfield, have-all or have-none anywhere but straight after the handshake (BEP 3, 6).
    BitfieldNotFirst,
    /// A bitfield of the wrong length or with spare bits set (BEP 3).
    BadBitfield(BitfieldError),
    /// A `have` (or suggest / allowed-fast) for a piece past the end of the torrent.
    PieceOutOfRange(u32),
    /// A request outside the torrent, past the end of its piece, empty, or over 16 KiB (BEP 3:
    /// implementations "close connections which request an amount greater than that").
    BadRequest(BlockRequest),
    /// Far more requests queued than our advertised `reqq` allows.
    RequestFlood,
    /// A fast-extension message (BEP 6) on a connection that did not negotiate it.
    FastNotNegotiated,
    /// A block we never asked for while the fast extension is on (BEP 6: "MUST close").
    UnrequestedBlock(BlockRequest),
    /// A reject for a request we never sent (BEP 6: "SHOULD close").
    UnrequestedReject(BlockRequest),
    /// A BEP 10 extended message on a connection that did not negotiate it.
    ExtensionNotNegotiated,
    /// Far more BEP 52 hash requests than any download needs.
    HashRequestFlood,
    /// Metadata (BEP 9) of the wrong size or length, or that failed verification.
    BadMetadata,
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Wire(e) => write!(f, "{e}"),
            Self::Violation(v) => write!(f, "protocol violation: {v}"),
            Self::UnknownTorrent => f.write_str("handshake for an unknown torrent"),
            Self::InfoHashMismatch => f.write_str("handshake for another torrent"),
            Self::SelfConnection => f.write_str("connected to ourselves"),
            Self::DuplicatePeer => f.write_str("already connected to this peer"),
            Self::HandshakeTimeout => f.write_str("handshake timed out"),
            Self::IdleTimeout => f.write_str("idle timeout"),
            Self::ConnectFailed => f.write_str("connection failed"),
            Self::ClosedByRemote => f.write_str("closed by the remote side"),
            Self::TorrentStopped => f.write_str("torrent stopped"),
            Self::BothSeeding => f.write_str("both sides are seeding"),
            Self::TooManyConnections => f.write_str("connection limit reached"),
            Self::Banned => f.write_str("banned for sending corrupt data"),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BitfieldNotFirst => f.write_str("bitfield after other messages"),
            Self::BadBitfield(e) => write!(f, "{e}"),
            Self::PieceOutOfRange(i) => write!(f, "piece {i} out of range"),
            Self::BadRequest(r) => write!(
                f,
                "invalid request (piece {}, offset {}, length {})",
                r.index, r.begin, r.length
            ),
            Self::RequestFlood => f.write_str("too many outstanding requests"),
            Self::FastNotNegotiated => f.write_str("fast-extension message without BEP 6"),
            Self::UnrequestedBlock(r) => {
                write!(
                    f,
                    "unrequested block (piece {}, offset {})",
                    r.index, r.begin
                )
            }
            Self::UnrequestedReject(r) => write!(
                f,
                "reject for a request never sent (piece {}, offset {})",
                r.index, r.begin
            ),
            Self::ExtensionNotNegotiated => f.write_str("extended message without BEP 10"),
            Self::HashRequestFlood => f.write_str("too many hash requests"),
            Self::BadMetadata => f.write_str("metadata of the wrong size or that failed its hash"),
        }
    }
}

impl DisconnectReason {
    /// Who is at fault, or `None` for the ordinary ends of connections (timeouts, closes,
    /// duplicates, limits of our own).
    pub fn fault(&self) -> Option<Fault> {
        match self {
            Self::Wire(e) => Some(e.fault()),
            Self::Violation(Violation::RequestFlood | Violation::HashRequestFlood) => {
                Some(Fault::LimitExceeded)
            }
            Self::Violation(_) | Self::InfoHashMismatch | Self::Banned => {
                Some(Fault::PeerMisbehaved)
            }
            Self::UnknownTorrent
            | Self::SelfConnection
            | Self::DuplicatePeer
            | Self::HandshakeTimeout
            | Self::IdleTimeout
            | Self::ConnectFailed
            | Self::ClosedByRemote
            | Self::TorrentStopped
            | Self::BothSeeding
            | Self::TooManyConnections => None,
        }
    }
}
