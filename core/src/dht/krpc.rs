//! The KRPC codec (BEP 5): queries, responses and errors over bencoded UDP datagrams, with the
//! fields of BEP 32 (`nodes6`, `want`), BEP 33 (`scrape`, `noseed`, `seed`, `BFsd`, `BFpe`),
//! BEP 42 (`ip`), BEP 43 (`ro`), BEP 44 (`get`, `put`; `k`, `seq`, `sig`, `salt`, `cas`, `v`)
//! and BEP 51 (`sample_infohashes`).
//!
//! Decoding is lenient (remote DHT traffic is sloppy) but tightly bounded: datagrams over
//! [`MAX_DATAGRAM`] bytes are refused before any parsing, and the bencode decoder runs with a
//! small depth and value limit. Unknown keys are ignored (forward compatibility, BEP 5); a
//! query with a method we do not know decodes as [`QueryKind::Unknown`] so the node can answer
//! it as libtorrent does. Decoding copies what it keeps; every collection it builds is bounded
//! by the datagram size.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use arrayvec::ArrayVec;
use bytes::BufMut;

use super::bloom::ScrapeBloom;
use super::node_id::NodeId;
use crate::bencode::{
    self, put_bytes, put_int, DecodeError, DecodeOptions, Dict, DictWriter, Value,
};
use crate::error::{Classify, Fault};

/// The largest datagram decoded; larger ones are dropped unread.
pub const MAX_DATAGRAM: usize = 1500;

/// The longest transaction id accepted (real clients use 2 to 8 bytes).
pub const MAX_TID: usize = 16;

/// The longest write token accepted (real clients use 4 to 20 bytes).
pub const MAX_TOKEN: usize = 32;

/// The longest method name or error message kept.
const MAX_NAME: usize = 32;

/// Bencode limits for KRPC: BEP 5 messages nest dict → dict → list → string; a BEP 44 `v`
/// (any bencoded value of at most 1,000 bytes) sits at depth 3 and may nest a little.
const OPTIONS: DecodeOptions = DecodeOptions::LENIENT
    .with_max_depth(12)
    .with_max_tokens(768);

/// The longest BEP 44 salt kept by the decoder (the node refuses over 64 with error 207).
pub const MAX_SALT: usize = 128;

/// A transaction id (`t`), echoed in the response.
pub type TxId = ArrayVec<u8, MAX_TID>;

/// A write token (`token`) from `get_peers`, handed back in `announce_peer` (BEP 5).
pub type Token = ArrayVec<u8, MAX_TOKEN>;

/// A node's contact: its id and UDP address (BEP 5 "compact node info").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeInfo {
    /// The node's id.
    pub id: NodeId,
    /// The node's UDP address.
    pub addr: SocketAddr,
}

/// BEP 32 `want`: which address families of nodes the requester asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Want {
    /// `n4`: include `nodes` (IPv4).
    pub n4: bool,
    /// `n6`: include `nodes6` (IPv6).
    pub n6: bool,
}

impl Want {
    /// Whether a `want` key was present with anything we know.
    pub fn is_set(&self) -> bool {
        self.n4 || self.n6
    }
}

/// One decoded or to-be-encoded KRPC message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The transaction id (`t`).
    pub tid: TxId,
    /// Query, response or error.
    pub body: Body,
    /// BEP 42 `ip`: the address the responder saw the requester at (responses).
    pub ip: Option<SocketAddr>,
    /// BEP 43 `ro`: the querying node is read-only and must not be added to routing tables.
    pub read_only: bool,
    /// `v`: the sender's client version, when present (at most 4 bytes kept).
    pub version: Option<ArrayVec<u8, 4>>,
}

/// The three kinds of KRPC message (`y` = `q`, `r`, `e`).
// A message lives only while one datagram is handled; boxing the response would cost an
// allocation per datagram for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// `y = q`.
    Query(Query),
    /// `y = r`.
    Response(Response),
    /// `y = e`.
    Error(ErrorReply),
}

/// A query: the sender's id and what it asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// The querying node's id (`a.id`).
    pub id: NodeId,
    /// The method and its arguments.
    pub kind: QueryKind,
}

/// The methods of BEP 5, 33 and 51, and unknown ones.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueryKind {
    /// `ping`.
    Ping,
    /// `find_node`.
    FindNode {
        /// The id looked for.
        target: NodeId,
        /// BEP 32 `want`.
        want: Want,
    },
    /// `get_peers`.
    GetPeers {
        /// The info-hash (20 bytes; BEP 52 torrents use the truncated v2 hash).
        info_hash: [u8; 20],
        /// BEP 32 `want`.
        want: Want,
        /// BEP 33 `noseed`: prefer non-seeds in `values`.
        noseed: bool,
        /// BEP 33 `scrape`: include the `BFsd`/`BFpe` bloom filters.
        scrape: bool,
    },
    /// `announce_peer`.
    AnnouncePeer {
        /// The info-hash announced.
        info_hash: [u8; 20],
        /// The announced port (ignored with `implied_port`).
        port: u16,
        /// `implied_port`: use the datagram's source port instead of `port`.
        implied_port: bool,
        /// The token from an earlier `get_peers` response.
        token: Token,
        /// BEP 33 `seed`: the announcer is a seed.
        seed: bool,
    },
    /// BEP 44 `get`: an item by target.
    Get {
        /// SHA-1 of the immutable value, or of the mutable item's key and salt.
        target: NodeId,
        /// Only send a mutable item's value if its `seq` is above this.
        seq: Option<i64>,
        /// BEP 32 `want`.
        want: Want,
    },
    /// BEP 44 `put`: store an item.
    Put(Box<PutArgs>),
    /// BEP 51 `sample_infohashes`.
    SampleInfohashes {
        /// The id that steers the returned `nodes`.
        target: NodeId,
        /// BEP 32 `want`.
        want: Want,
    },
    /// A method we do not know. Its `target` or `info_hash`, if any, lets the node answer it
    /// as a `find_node` (libtorrent's forward compatibility rule).
    Unknown {
        /// The method name (at most 32 bytes kept).
        method: ArrayVec<u8, MAX_NAME>,
        /// `target` or `info_hash`, when 20 bytes long.
        target: Option<NodeId>,
        /// BEP 32 `want`.
        want: Want,
    },
}

impl QueryKind {
    /// The method name on the wire.
    pub fn method(&self) -> &[u8] {
        match self {
            Self::Ping => b"ping",
            Self::FindNode { .. } => b"find_node",
            Self::GetPeers { .. } => b"get_peers",
            Self::AnnouncePeer { .. } => b"announce_peer",
            Self::Get { .. } => b"get",
            Self::Put(_) => b"put",
            Self::SampleInfohashes { .. } => b"sample_infohashes",
            Self::Unknown { method, .. } => method,
        }
    }
}

/// The arguments of a BEP 44 `put`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutArgs {
    /// The token from an earlier `get` response.
    pub token: Token,
    /// The value (`v`), re-encoded canonically; a value that was not canonical on the wire
    /// fails to decode (BEP 44: "MUST reject ... invalid bencoding").
    pub value: Vec<u8>,
    /// The mutable part, when `k` is present.
    pub mutable: Option<MutablePut>,
}

/// The fields of a mutable `put` (BEP 44).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MutablePut {
    /// `k`: the ed25519 public key.
    pub public_key: [u8; 32],
    /// `sig`: the signature.
    pub signature: [u8; 64],
    /// `seq`.
    pub seq: i64,
    /// `salt` (empty when absent; at most [`MAX_SALT`] bytes kept).
    pub salt: Vec<u8>,
    /// `cas`: the sequence number expected to be replaced.
    pub cas: Option<i64>,
}

/// A response. KRPC responses do not name their method, so every optional field of every
/// method is here; the requester reads the ones its query asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// The responding node's id.
    pub id: NodeId,
    /// `nodes`: IPv4 contacts.
    pub nodes: Vec<NodeInfo>,
    /// BEP 32 `nodes6`: IPv6 contacts.
    pub nodes6: Vec<NodeInfo>,
    /// `values`: peers (6-byte IPv4 or, BEP 32, 18-byte IPv6 compact entries).
    pub values: Vec<SocketAddr>,
    /// `token`, from `get_peers`.
    pub token: Option<Token>,
    /// BEP 33 `BFsd`: the seeds' bloom filter.
    pub seeds_bloom: Option<Box<ScrapeBloom>>,
    /// BEP 33 `BFpe`: the peers' bloom filter.
    pub peers_bloom: Option<Box<ScrapeBloom>>,
    /// BEP 51 `samples`: info-hashes the responder stores.
    pub samples: Option<Vec<[u8; 20]>>,
    /// BEP 51 `num`: how many info-hashes the responder stores.
    pub num: Option<i64>,
    /// BEP 51 `interval`: seconds before asking this node for samples again.
    pub interval: Option<i64>,
    /// BEP 44 `v`: an item's value, canonically encoded.
    pub v: Option<Vec<u8>>,
    /// BEP 44 `k`: a mutable item's public key.
    pub k: Option<[u8; 32]>,
    /// BEP 44 `sig`: a mutable item's signature.
    pub sig: Option<[u8; 64]>,
    /// BEP 44 `seq`: a mutable item's sequence number.
    pub seq: Option<i64>,
}

/// A KRPC error (`y = e`): a code and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorReply {
    /// The error code (201 generic, 202 server, 203 protocol, 204 method unknown).
    pub code: i64,
    /// The message (lossy UTF-8, at most 32 bytes kept on decode).
    pub message: String,
}

/// BEP 5 error codes.
pub mod code {
    /// Generic error.
    pub const GENERIC: i64 = 201;
    /// Server error.
    pub const SERVER: i64 = 202;
    /// Protocol error: a malformed packet, invalid arguments or a bad token.
    pub const PROTOCOL: i64 = 203;
    /// Method unknown.
    pub const METHOD_UNKNOWN: i64 = 204;
}

/// Why a datagram is not a KRPC message we can use.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KrpcError {
    /// Larger than [`MAX_DATAGRAM`]; not decoded.
    TooLarge {
        /// The datagram's length.
        len: usize,
    },
    /// Not bencode, or over the depth or value limits.
    Bencode(DecodeError),
    /// Bencode, but not a dictionary.
    NotADictionary,
    /// A required key is missing.
    MissingField {
        /// The key.
        field: &'static str,
    },
    /// A key has the wrong type or length.
    InvalidField {
        /// The key.
        field: &'static str,
    },
    /// `y` is not `q`, `r` or `e`.
    UnknownType,
}

impl fmt::Display for KrpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len } => write!(f, "KRPC datagram of {len} bytes is too large"),
            Self::Bencode(e) => write!(f, "KRPC: {e}"),
            Self::NotADictionary => f.write_str("KRPC message is not a dictionary"),
            Self::MissingField { field } => write!(f, "KRPC message lacks `{field}`"),
            Self::InvalidField { field } => write!(f, "KRPC field `{field}` is invalid"),
            Self::UnknownType => f.write_str("KRPC message type is not q, r or e"),
        }
    }
}

impl std::error::Error for KrpcError {}

impl Classify for KrpcError {
    fn fault(&self) -> Fault {
        match self {
            Self::TooLarge { .. } => Fault::LimitExceeded,
            Self::Bencode(e) => e.fault(),
            _ => Fault::Malformed,
        }
    }
}

/// A datagram that failed to decode, with enough of it to answer with a BEP 5 error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeFailure {
    /// What was wrong.
    pub error: KrpcError,
    /// The transaction id, when the datagram was a query with a usable `t` (so the node may
    /// answer with error 203).
    pub query_tid: Option<TxId>,
}

impl Message {
    /// Decodes one datagram (lenient bencode, bounded; see the [module docs](self)).
    pub fn decode(data: &[u8]) -> Result<Message, DecodeFailure> {
        let fail = |error| DecodeFailure {
            error,
            query_tid: None,
        };
        if data.len() > MAX_DATAGRAM {
            return Err(fail(KrpcError::TooLarge { len: data.len() }));
        }
        let value = bencode::decode_with(data, OPTIONS).map_err(|e| fail(KrpcError::Bencode(e)))?;
        let Value::Dict(top) = value else {
            return Err(fail(KrpcError::NotADictionary));
        };
        let tid = match top.get(b"t") {
            Some(Value::Bytes(t)) if t.len() <= MAX_TID => {
                TxId::try_from(*t).expect("length checked against MAX_TID")
            }
            Some(_) => return Err(fail(KrpcError::InvalidField { field: "t" })),
            None => return Err(fail(KrpcError::MissingField { field: "t" })),
        };
        let y = match top.get(b"y") {
            Some(Value::Bytes(y)) => *y,
            Some(_) => return Err(fail(KrpcError::InvalidField { field: "y" })),
            None => return Err(fail(KrpcError::MissingField { field: "y" })),
        };
        let body = match y {
            b"q" => Body::Query(decode_query(&top).map_err(|error| DecodeFailure {
                error,
                query_tid: Some(tid.clone()),
            })?),
            b"r" => Body::Response(decode_response(&top).map_err(fail)?),
            b"e" => Body::Error(decode_error(&top)),
            _ => return Err(fail(KrpcError::UnknownType)),
        };
        let ip = match top.get(b"ip") {
            Some(Value::Bytes(b)) => decode_compact_addr(b),
            _ => None,
        };
        let read_only = matches!(top.get(b"ro"), Some(Value::Int(1)));
        let version = match top.get(b"v") {
            Some(Value::Bytes(v)) => Some(v.iter().take(4).copied().collect()),
            _ => None,
        };
        Ok(Message {
            tid,
            body,
            ip,
            read_only,
            version,
        })
    }

    /// Encodes the message (strict, canonical bencode) onto `buf`.
    pub fn encode(&self, buf: &mut impl BufMut) {
        let mut top = DictWriter::new(buf);
        match &self.body {
            Body::Query(q) => encode_query_args(top.value(b"a"), q),
            Body::Error(e) => {
                let b = top.value(b"e");
                b.put_u8(b'l');
                put_int(b, e.code);
                put_bytes(b, e.message.as_bytes());
                b.put_u8(b'e');
            }
            Body::Response(_) => {}
        }
        if let Some(ip) = self.ip {
            top.bytes(b"ip", &compact_addr(ip));
        }
        if let Body::Query(q) = &self.body {
            top.bytes(b"q", q.kind.method());
        }
        if let Body::Response(r) = &self.body {
            encode_response(top.value(b"r"), r);
        }
        if self.read_only {
            top.int(b"ro", 1);
        }
        top.bytes(b"t", &self.tid);
        if let Some(v) = &self.version {
            top.bytes(b"v", v);
        }
        top.bytes(
            b"y",
            match self.body {
                Body::Query(_) => b"q",
                Body::Response(_) => b"r",
                Body::Error(_) => b"e",
            },
        );
        top.finish();
    }

    /// The encoded message as a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(256);
        self.encode(&mut v);
        v
    }
}

fn get_id(d: &Dict<'_>, field: &'static str) -> Result<NodeId, KrpcError> {
    match d.get(field.as_bytes()) {
        Some(Value::Bytes(b)) => NodeId::from_slice(b).ok_or(KrpcError::InvalidField { field }),
        Some(_) => Err(KrpcError::InvalidField { field }),
        None => Err(KrpcError::MissingField { field }),
    }
}

fn get_flag(d: &Dict<'_>, field: &str) -> bool {
    matches!(d.get(field.as_bytes()), Some(Value::Int(i)) if *i != 0)
}

fn get_want(d: &Dict<'_>) -> Want {
    let mut want = Want::default();
    if let Some(Value::List(l)) = d.get(b"want") {
        for item in l.iter() {
            match item.as_bytes() {
                Some(b"n4") => want.n4 = true,
                Some(b"n6") => want.n6 = true,
                _ => {} // BEP 32: unknown strings are ignored.
            }
        }
    }
    want
}

fn decode_query(top: &Dict<'_>) -> Result<Query, KrpcError> {
    let method = match top.get(b"q") {
        Some(Value::Bytes(q)) => *q,
        Some(_) => return Err(KrpcError::InvalidField { field: "q" }),
        None => return Err(KrpcError::MissingField { field: "q" }),
    };
    let a = match top.get(b"a") {
        Some(Value::Dict(a)) => a,
        Some(_) => return Err(KrpcError::InvalidField { field: "a" }),
        None => return Err(KrpcError::MissingField { field: "a" }),
    };
    let id = get_id(a, "id")?;
    let info_hash = || get_id(a, "info_hash").map(|h| h.0);
    let kind = match method {
        b"ping" => QueryKind::Ping,
        b"find_node" => QueryKind::FindNode {
            target: get_id(a, "target")?,
            want: get_want(a),
        },
        b"get_peers" => QueryKind::GetPeers {
            info_hash: info_hash()?,
            want: get_want(a),
            noseed: get_flag(a, "noseed"),
            scrape: get_flag(a, "scrape"),
        },
        b"announce_peer" => {
            let implied_port = get_flag(a, "implied_port");
            let port = match a.get(b"port") {
                Some(Value::Int(p)) => match u16::try_from(*p) {
                    Ok(p) => p,
                    Err(_) if implied_port => 0,
                    Err(_) => return Err(KrpcError::InvalidField { field: "port" }),
                },
                Some(_) => return Err(KrpcError::InvalidField { field: "port" }),
                None if implied_port => 0,
                None => return Err(KrpcError::MissingField { field: "port" }),
            };
            let token = match a.get(b"token") {
                Some(Value::Bytes(t)) if t.len() <= MAX_TOKEN => {
                    Token::try_from(*t).expect("length checked against MAX_TOKEN")
                }
                Some(_) => return Err(KrpcError::InvalidField { field: "token" }),
                None => return Err(KrpcError::MissingField { field: "token" }),
            };
            QueryKind::AnnouncePeer {
                info_hash: info_hash()?,
                port,
                implied_port,
                token,
                seed: get_flag(a, "seed"),
            }
        }
        b"sample_infohashes" => QueryKind::SampleInfohashes {
            target: get_id(a, "target")?,
            want: get_want(a),
        },
        b"get" => QueryKind::Get {
            target: get_id(a, "target")?,
            seq: match a.get(b"seq") {
                Some(Value::Int(i)) => Some(*i),
                Some(_) => return Err(KrpcError::InvalidField { field: "seq" }),
                None => None,
            },
            want: get_want(a),
        },
        b"put" => QueryKind::Put(Box::new(decode_put(a)?)),
        other => QueryKind::Unknown {
            method: other.iter().take(MAX_NAME).copied().collect(),
            target: get_id(a, "target").or_else(|_| get_id(a, "info_hash")).ok(),
            want: get_want(a),
        },
    };
    Ok(Query { id, kind })
}

/// The canonical encoding of `v`; `None` if the wire form was not canonical.
fn canonical_value(v: &Value<'_>) -> Option<Vec<u8>> {
    let canonical = v.to_vec();
    let raw = match v {
        Value::Dict(d) => d.raw(),
        Value::List(l) => l.raw(),
        // Strings and integers re-encode to themselves unless they had leading zeros,
        // which would then fail the signature check or hash to another target.
        _ => None,
    };
    match raw {
        Some(raw) if raw != canonical.as_slice() => None,
        _ => Some(canonical),
    }
}

fn fixed<const N: usize>(d: &Dict<'_>, field: &'static str) -> Result<Option<[u8; N]>, KrpcError> {
    match d.get(field.as_bytes()) {
        Some(Value::Bytes(b)) => <[u8; N]>::try_from(*b)
            .map(Some)
            .map_err(|_| KrpcError::InvalidField { field }),
        Some(_) => Err(KrpcError::InvalidField { field }),
        None => Ok(None),
    }
}

fn decode_put(a: &Dict<'_>) -> Result<PutArgs, KrpcError> {
    let token = match a.get(b"token") {
        Some(Value::Bytes(t)) if t.len() <= MAX_TOKEN => {
            Token::try_from(*t).expect("length checked against MAX_TOKEN")
        }
        Some(_) => return Err(KrpcError::InvalidField { field: "token" }),
        None => return Err(KrpcError::MissingField { field: "token" }),
    };
    let value = match a.get(b"v") {
        Some(v) => canonical_value(v).ok_or(KrpcError::InvalidField { field: "v" })?,
        None => return Err(KrpcError::MissingField { field: "v" }),
    };
    let mutable = match fixed::<32>(a, "k")? {
        None => None,
        Some(public_key) => {
            let signature =
                fixed::<64>(a, "sig")?.ok_or(KrpcError::MissingField { field: "sig" })?;
            let seq = match a.get(b"seq") {
                Some(Value::Int(i)) => *i,
                Some(_) => return Err(KrpcError::InvalidField { field: "seq" }),
                None => return Err(KrpcError::MissingField { field: "seq" }),
            };
            let salt = match a.get(b"salt") {
                Some(Value::Bytes(s)) if s.len() <= MAX_SALT => s.to_vec(),
                Some(_) => return Err(KrpcError::InvalidField { field: "salt" }),
                None => Vec::new(),
            };
            let cas = match a.get(b"cas") {
                Some(Value::Int(i)) => Some(*i),
                Some(_) => return Err(KrpcError::InvalidField { field: "cas" }),
                None => None,
            };
            Some(MutablePut {
                public_key,
                signature,
                seq,
                salt,
                cas,
            })
        }
    };
    Ok(PutArgs {
        token,
        value,
        mutable,
    })
}

fn decode_nodes(bytes: &[u8], v6: bool) -> Vec<NodeInfo> {
    let size = if v6 { 38 } else { 26 };
    // A trailing partial entry is ignored (lenient).
    bytes
        .chunks_exact(size)
        .filter_map(|c| {
            let id = NodeId::from_slice(&c[..20])?;
            let addr = decode_compact_addr(&c[20..])?;
            (addr.port() != 0).then_some(NodeInfo { id, addr })
        })
        .collect()
}

fn decode_response(top: &Dict<'_>) -> Result<Response, KrpcError> {
    let r = match top.get(b"r") {
        Some(Value::Dict(r)) => r,
        Some(_) => return Err(KrpcError::InvalidField { field: "r" }),
        None => return Err(KrpcError::MissingField { field: "r" }),
    };
    let mut out = Response {
        id: get_id(r, "id")?,
        ..Response::default()
    };
    if let Some(Value::Bytes(b)) = r.get(b"nodes") {
        out.nodes = decode_nodes(b, false);
    }
    if let Some(Value::Bytes(b)) = r.get(b"nodes6") {
        out.nodes6 = decode_nodes(b, true);
    }
    if let Some(Value::List(values)) = r.get(b"values") {
        out.values = values
            .iter()
            .filter_map(|v| v.as_bytes().and_then(decode_compact_addr))
            .filter(|a| a.port() != 0)
            .collect();
    }
    if let Some(Value::Bytes(t)) = r.get(b"token") {
        out.token = Token::try_from(*t).ok();
    }
    let bloom = |key: &[u8]| match r.get(key) {
        Some(Value::Bytes(b)) => ScrapeBloom::from_slice(b).map(Box::new),
        _ => None,
    };
    out.seeds_bloom = bloom(b"BFsd");
    out.peers_bloom = bloom(b"BFpe");
    if let Some(Value::Bytes(s)) = r.get(b"samples") {
        out.samples = Some(
            s.chunks_exact(20)
                .map(|c| c.try_into().expect("chunks of 20"))
                .collect(),
        );
    }
    out.num = r.get(b"num").and_then(Value::as_int);
    out.interval = r.get(b"interval").and_then(Value::as_int);
    // BEP 44: a malformed item is dropped, the rest of the answer (nodes) is still useful.
    out.v = r.get(b"v").and_then(canonical_value);
    out.k = fixed::<32>(r, "k").ok().flatten();
    out.sig = fixed::<64>(r, "sig").ok().flatten();
    out.seq = r.get(b"seq").and_then(Value::as_int);
    Ok(out)
}

fn decode_error(top: &Dict<'_>) -> ErrorReply {
    // Lenient: a malformed `e` still tells the requester its query failed.
    let mut reply = ErrorReply {
        code: code::GENERIC,
        message: String::new(),
    };
    if let Some(Value::List(l)) = top.get(b"e") {
        if let Some(c) = l.iter().next().and_then(Value::as_int) {
            reply.code = c;
        }
        if let Some(m) = l.iter().nth(1).and_then(Value::as_bytes) {
            let m = &m[..m.len().min(MAX_NAME)];
            let mut text = String::from_utf8_lossy(m).into_owned();
            // Replacement characters can make it longer: cut at a character boundary.
            while text.len() > MAX_NAME {
                text.pop();
            }
            reply.message = text;
        }
    }
    reply
}

/// Decodes a compact address: 6 bytes (IPv4 + port) or 18 bytes (IPv6 + port).
pub fn decode_compact_addr(b: &[u8]) -> Option<SocketAddr> {
    match b.len() {
        6 => {
            let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            Some(SocketAddr::new(
                IpAddr::V4(ip),
                u16::from_be_bytes([b[4], b[5]]),
            ))
        }
        18 => {
            let octets: [u8; 16] = b[..16].try_into().expect("18 bytes");
            let port = u16::from_be_bytes([b[16], b[17]]);
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port))
        }
        _ => None,
    }
}

/// Appends a compact address (6 or 18 bytes).
pub fn put_compact_addr(buf: &mut impl BufMut, addr: SocketAddr) {
    match addr.ip() {
        IpAddr::V4(v4) => buf.put_slice(&v4.octets()),
        IpAddr::V6(v6) => buf.put_slice(&v6.octets()),
    }
    buf.put_u16(addr.port());
}

/// The compact form of an address (6 or 18 bytes).
pub fn compact_addr(addr: SocketAddr) -> ArrayVec<u8, 18> {
    let mut out = ArrayVec::new();
    match addr.ip() {
        IpAddr::V4(v4) => out.try_extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out.try_extend_from_slice(&v6.octets()),
    }
    .expect("an address fits 16 bytes");
    out.try_extend_from_slice(&addr.port().to_be_bytes())
        .expect("18 bytes hold address and port");
    out
}

/// Appends compact node infos of one family (26 or 38 bytes each).
pub fn put_compact_nodes(buf: &mut impl BufMut, nodes: &[NodeInfo]) {
    for n in nodes {
        buf.put_slice(&n.id.0);
        put_compact_addr(buf, n.addr);
    }
}

fn put_want(b: &mut impl BufMut, want: Want) {
    b.put_slice(b"l");
    if want.n4 {
        put_bytes(b, b"n4");
    }
    if want.n6 {
        put_bytes(b, b"n6");
    }
    b.put_slice(b"e");
}

fn encode_query_args(buf: &mut impl BufMut, q: &Query) {
    let mut a = DictWriter::new(buf);
    if let QueryKind::Put(p) = &q.kind {
        if let Some(cas) = p.mutable.as_ref().and_then(|m| m.cas) {
            a.int(b"cas", cas);
        }
    }
    a.bytes(b"id", &q.id.0);
    match &q.kind {
        QueryKind::Ping => {}
        QueryKind::FindNode { target, want } | QueryKind::SampleInfohashes { target, want } => {
            a.bytes(b"target", &target.0);
            if want.is_set() {
                put_want(a.value(b"want"), *want);
            }
        }
        QueryKind::GetPeers {
            info_hash,
            want,
            noseed,
            scrape,
        } => {
            a.bytes(b"info_hash", info_hash);
            if *noseed {
                a.int(b"noseed", 1);
            }
            if *scrape {
                a.int(b"scrape", 1);
            }
            if want.is_set() {
                put_want(a.value(b"want"), *want);
            }
        }
        QueryKind::AnnouncePeer {
            info_hash,
            port,
            implied_port,
            token,
            seed,
        } => {
            if *implied_port {
                a.int(b"implied_port", 1);
            }
            a.bytes(b"info_hash", info_hash);
            a.int(b"port", i64::from(*port));
            if *seed {
                a.int(b"seed", 1);
            }
            a.bytes(b"token", token);
        }
        QueryKind::Get { target, seq, want } => {
            if let Some(seq) = seq {
                a.int(b"seq", *seq);
            }
            a.bytes(b"target", &target.0);
            if want.is_set() {
                put_want(a.value(b"want"), *want);
            }
        }
        QueryKind::Put(p) => {
            // Keys in order: cas id k salt seq sig token v (`id` is already written).
            if let Some(m) = &p.mutable {
                a.bytes(b"k", &m.public_key);
                if !m.salt.is_empty() {
                    a.bytes(b"salt", &m.salt);
                }
                a.int(b"seq", m.seq);
                a.bytes(b"sig", &m.signature);
            }
            a.bytes(b"token", &p.token);
            a.raw(b"v", &p.value);
        }
        QueryKind::Unknown { target, want, .. } => {
            if let Some(t) = target {
                a.bytes(b"target", &t.0);
            }
            if want.is_set() {
                put_want(a.value(b"want"), *want);
            }
        }
    }
    a.finish();
}

fn encode_response(buf: &mut impl BufMut, r: &Response) {
    let mut d = DictWriter::new(buf);
    if let Some(b) = &r.peers_bloom {
        d.bytes(b"BFpe", b.as_bytes());
    }
    if let Some(b) = &r.seeds_bloom {
        d.bytes(b"BFsd", b.as_bytes());
    }
    d.bytes(b"id", &r.id.0);
    if let Some(i) = r.interval {
        d.int(b"interval", i);
    }
    if let Some(k) = &r.k {
        d.bytes(b"k", k);
    }
    let mut put_nodes = |key: &[u8], nodes: &[NodeInfo], size: usize| {
        let b = d.value(key);
        put_int_len(b, nodes.len() * size);
        put_compact_nodes(b, nodes);
    };
    if !r.nodes.is_empty() {
        put_nodes(b"nodes", &r.nodes, 26);
    }
    if !r.nodes6.is_empty() {
        put_nodes(b"nodes6", &r.nodes6, 38);
    }
    if let Some(n) = r.num {
        d.int(b"num", n);
    }
    if let Some(s) = &r.samples {
        let b = d.value(b"samples");
        put_int_len(b, s.len() * 20);
        for h in s {
            b.put_slice(h);
        }
    }
    if let Some(seq) = r.seq {
        d.int(b"seq", seq);
    }
    if let Some(sig) = &r.sig {
        d.bytes(b"sig", sig);
    }
    if let Some(t) = &r.token {
        d.bytes(b"token", t);
    }
    if let Some(v) = &r.v {
        d.raw(b"v", v);
    }
    if !r.values.is_empty() {
        let b = d.value(b"values");
        b.put_u8(b'l');
        for v in &r.values {
            put_bytes(b, &compact_addr(*v));
        }
        b.put_u8(b'e');
    }
    d.finish();
}

/// Writes a bencode string length prefix (`<len>:`), for strings written piecewise.
fn put_int_len(b: &mut impl BufMut, len: usize) {
    let mut digits = ArrayVec::<u8, 20>::new();
    let mut n = len;
    loop {
        digits.push(b'0' + (n % 10) as u8);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    digits.reverse();
    b.put_slice(&digits);
    b.put_u8(b':');
}
