//! BEP 28 tracker exchange (`lt_tex`): the message codec, the tracker-list hash of the
//! handshake's `tr` key, and what to tell one peer, and when.
//!
//! Tracker exchange must not be used for private torrents (BEP 27): the caller must neither
//! create a [`TexState`] nor offer `lt_tex` for one, and must ignore `lt_tex` messages for one.
//! Trackers learned here are untrusted (BEP 28): announce to them with fewer retries, and pass on
//! only trackers that answered ("verified").

use std::collections::BTreeSet;

use bytes::BufMut;
use sha1::{Digest as _, Sha1};

use super::ExtError;
use crate::bencode::{put_bytes, DictWriter, Value};
use crate::time::{Duration, Instant};

/// The most URLs a received message may hold (and the most we send in one).
pub const MAX_TEX_URLS: usize = 100;
/// The longest URL kept, in bytes; longer ones are skipped.
pub const MAX_TEX_URL_LEN: usize = 1024;
/// The shortest time between two messages to one peer (BEP 28 recommends two minutes).
pub const TEX_INTERVAL: Duration = Duration::from_secs(120);

/// One `lt_tex` message: trackers the sender added since its last message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TexMessage {
    /// Tracker URLs.
    pub added: Vec<String>,
}

impl TexMessage {
    /// Decodes an `lt_tex` payload.
    ///
    /// More than [`MAX_TEX_URLS`] entries is an error. Entries that are not UTF-8 strings of at
    /// most [`MAX_TEX_URL_LEN`] bytes are skipped. A missing `added` is an empty list.
    pub fn decode(payload: &[u8]) -> Result<Self, ExtError> {
        let dict = super::decode_dict(payload)?;
        let list = match dict.get(b"added") {
            None => return Ok(Self::default()),
            Some(Value::List(list)) => list,
            Some(_) => return Err(ExtError::BadValue("added")),
        };
        if list.len() > MAX_TEX_URLS {
            return Err(ExtError::TooMany {
                what: "lt_tex added",
                limit: MAX_TEX_URLS,
            });
        }
        let added = list
            .iter()
            .filter_map(Value::as_str)
            .filter(|u| u.len() <= MAX_TEX_URL_LEN)
            .map(str::to_owned)
            .collect();
        Ok(Self { added })
    }

    /// Writes the bencoded payload into `buf`.
    pub fn encode(&self, buf: &mut impl BufMut) {
        let mut d = DictWriter::new(buf);
        let list = d.value(b"added");
        list.put_u8(b'l');
        for url in &self.added {
            put_bytes(list, url.as_bytes());
        }
        list.put_u8(b'e');
        d.finish();
    }
}

/// The tracker-list hash of the extension handshake's `tr` key (BEP 28): the SHA-1 of the URLs,
/// sorted bytewise and concatenated. URLs are hashed as given (BEP 28's normalisation is a
/// SHOULD that we skip; it only costs a full list now and then).
pub fn tracker_list_hash<'a>(urls: impl IntoIterator<Item = &'a str>) -> [u8; 20] {
    let sorted: BTreeSet<&str> = urls.into_iter().collect();
    let mut h = Sha1::new();
    for url in sorted {
        h.update(url.as_bytes());
    }
    h.finalize().into()
}

/// What tracker exchange has told one peer, and when it may tell it more (BEP 28).
#[derive(Clone, Debug, Default)]
pub struct TexState {
    told: BTreeSet<String>,
    last_sent: Option<Instant>,
}

impl TexState {
    /// A fresh state. If the peer's handshake `tr` equals [`tracker_list_hash`] of our verified
    /// list, pass that list as `same_list` so it is not sent again (BEP 28); otherwise pass none
    /// and the first message carries the whole list.
    pub fn new<'a>(same_list: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            told: same_list.into_iter().map(str::to_owned).collect(),
            last_sent: None,
        }
    }

    /// The earliest time the next message may go, if one was sent already.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.last_sent.map(|t| t + TEX_INTERVAL)
    }

    /// The message to send now, if any: the verified trackers not yet told (at most
    /// [`MAX_TEX_URLS`], each at most [`MAX_TEX_URL_LEN`] bytes). `None` within
    /// [`TEX_INTERVAL`] of the last message or when there is nothing new (BEP 28).
    pub fn next_message<'a>(
        &mut self,
        now: Instant,
        verified: impl IntoIterator<Item = &'a str>,
    ) -> Option<TexMessage> {
        if self.poll_timeout().is_some_and(|t| now < t) {
            return None;
        }
        let new: BTreeSet<&str> = verified
            .into_iter()
            .filter(|u| u.len() <= MAX_TEX_URL_LEN && !self.told.contains(*u))
            .collect();
        if new.is_empty() {
            return None;
        }
        let added: Vec<String> = new
            .into_iter()
            .take(MAX_TEX_URLS)
            .map(str::to_owned)
            .collect();
        self.told.extend(added.iter().cloned());
        self.last_sent = Some(now);
        Some(TexMessage { added })
    }
}
