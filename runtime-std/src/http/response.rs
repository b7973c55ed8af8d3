//! Reading a response: the head with `httparse`, the body by `Content-Length`, chunked
//! transfer coding or until close, then gzip decoding; each bounded.

use std::io::Read;

use super::conn::Conn;
use super::error::{Exceeded, Fail};

/// Interim (1xx) responses skipped before the real one.
const MAX_INTERIM: usize = 8;

/// The longest chunk-size line (size, extensions, CRLF).
const MAX_CHUNK_LINE: usize = 1024;

/// A response's status line and headers.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) status: u16,
    /// Names in lower case, in the order sent.
    pub(crate) headers: Vec<(String, Vec<u8>)>,
}

impl Head {
    /// Every value of header `name` (lower case), in order.
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The comma-separated tokens of every value of `name`, lower case, without `identity`.
    fn codings(&self, name: &str) -> Vec<String> {
        self.values(name)
            .flat_map(|v| v.split(|&b| b == b','))
            .map(|t| String::from_utf8_lossy(t.trim_ascii()).to_ascii_lowercase())
            .filter(|t| !t.is_empty() && t != "identity")
            .collect()
    }

    /// The first value of header `name` (lower case).
    pub(crate) fn get(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// Bounds on one response.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_head_bytes: usize,
    pub(crate) max_headers: usize,
    pub(crate) max_body: usize,
}

/// Reads the final response head, skipping interim 1xx responses.
pub(crate) fn read_head(conn: &mut Conn, limits: &Limits) -> Result<Head, Fail> {
    for _ in 0..MAX_INTERIM {
        let head = read_one_head(conn, limits)?;
        match head.status {
            101 => return Err(Fail::malformed("101 Switching Protocols to a GET")),
            100..=199 => continue,
            _ => return Ok(head),
        }
    }
    Err(Fail::malformed("too many interim (1xx) responses"))
}

fn read_one_head(conn: &mut Conn, limits: &Limits) -> Result<Head, Fail> {
    loop {
        // Header slots borrow from the buffer, which the next `fill` changes.
        let mut slots = vec![httparse::EMPTY_HEADER; limits.max_headers];
        let buffered = conn.buffered();
        let mut response = httparse::Response::new(&mut slots);
        match response.parse(buffered) {
            Ok(httparse::Status::Complete(len)) => {
                if len > limits.max_head_bytes {
                    return Err(Fail::TooLarge(Exceeded::HeadBytes, limits.max_head_bytes));
                }
                let head = Head {
                    status: response.code.unwrap_or_default(),
                    headers: response
                        .headers
                        .iter()
                        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
                        .collect(),
                };
                conn.consume(len);
                return Ok(head);
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Fail::TooLarge(Exceeded::HeaderCount, limits.max_headers))
            }
            Err(e) => return Err(Fail::malformed(format!("response head: {e}"))),
        }
        let have = buffered.len();
        if have >= limits.max_head_bytes {
            return Err(Fail::TooLarge(Exceeded::HeadBytes, limits.max_head_bytes));
        }
        if conn.fill(limits.max_head_bytes - have)? == 0 {
            return Err(Fail::malformed(if have == 0 {
                "connection closed without a response"
            } else {
                "connection closed in the response head"
            }));
        }
    }
}

/// How the body's end is found (RFC 9112 section 6.3).
#[derive(Debug, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(usize),
    Chunked,
    UntilClose,
}

fn framing(head: &Head, max_body: usize) -> Result<Framing, Fail> {
    if matches!(head.status, 204 | 304) {
        return Ok(Framing::Empty);
    }
    let te = head.codings("transfer-encoding");
    match te.as_slice() {
        [] => {}
        [chunked] if chunked == "chunked" => return Ok(Framing::Chunked),
        _ => return Err(Fail::malformed("unsupported Transfer-Encoding")),
    }
    let mut length: Option<u64> = None;
    for value in head.values("content-length") {
        for part in value.split(|&b| b == b',') {
            let part = part.trim_ascii();
            let n = std::str::from_utf8(part)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| Fail::malformed("invalid Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(Fail::malformed("conflicting Content-Length values"));
            }
            length = Some(n);
        }
    }
    match length {
        Some(n) if n > max_body as u64 => Err(Fail::TooLarge(Exceeded::Body, max_body)),
        Some(n) => Ok(Framing::Length(n as usize)),
        None => Ok(Framing::UntilClose),
    }
}

/// Reads the body `head` announces, decoded, within `limits.max_body`.
pub(crate) fn read_body(conn: &mut Conn, head: &Head, limits: &Limits) -> Result<Vec<u8>, Fail> {
    let max = limits.max_body;
    let gzip = match head.codings("content-encoding").as_slice() {
        [] => false,
        [c] if c == "gzip" || c == "x-gzip" => true,
        _ => return Err(Fail::malformed("unsupported Content-Encoding")),
    };
    let mut body = Vec::new();
    match framing(head, max)? {
        Framing::Empty => {}
        Framing::Length(n) => {
            body.reserve_exact(n);
            read_exact_into(conn, &mut body, n)?;
        }
        Framing::Chunked => read_chunked(conn, &mut body, limits)?,
        Framing::UntilClose => read_to_close(conn, &mut body, max)?,
    }
    if gzip && !body.is_empty() {
        gunzip(&body, max)
    } else {
        Ok(body)
    }
}

/// Appends exactly `n` more bytes to `body`.
fn read_exact_into(conn: &mut Conn, body: &mut Vec<u8>, n: usize) -> Result<(), Fail> {
    let mut left = n;
    while left > 0 {
        if conn.buffered().is_empty() && conn.fill(left)? == 0 {
            return Err(Fail::malformed("connection closed in the body"));
        }
        let take = conn.buffered().len().min(left);
        body.extend_from_slice(&conn.buffered()[..take]);
        conn.consume(take);
        left -= take;
    }
    Ok(())
}

fn read_to_close(conn: &mut Conn, body: &mut Vec<u8>, max: usize) -> Result<(), Fail> {
    loop {
        let take = conn.buffered().len();
        body.extend_from_slice(conn.buffered());
        conn.consume(take);
        if body.len() > max {
            return Err(Fail::TooLarge(Exceeded::Body, max));
        }
        if conn.fill(max + 1 - body.len())? == 0 {
            return Ok(());
        }
    }
}

/// Reads until `conn.buffered()` holds a complete line (ending in LF) of at most `max` bytes;
/// returns its length with the LF.
fn buffer_line(conn: &mut Conn, max: usize, what: &str) -> Result<usize, Fail> {
    loop {
        if let Some(i) = conn.buffered().iter().position(|&b| b == b'\n') {
            if i >= max {
                return Err(Fail::malformed(format!("{what} too long")));
            }
            return Ok(i + 1);
        }
        let have = conn.buffered().len();
        if have >= max {
            return Err(Fail::malformed(format!("{what} too long")));
        }
        if conn.fill(max - have)? == 0 {
            return Err(Fail::malformed(format!("connection closed in a {what}")));
        }
    }
}

fn read_chunked(conn: &mut Conn, body: &mut Vec<u8>, limits: &Limits) -> Result<(), Fail> {
    let max = limits.max_body;
    loop {
        let line = buffer_line(conn, MAX_CHUNK_LINE, "chunk size line")?;
        let size = match httparse::parse_chunk_size(&conn.buffered()[..line]) {
            Ok(httparse::Status::Complete((used, size))) if used == line => size,
            _ => return Err(Fail::malformed("invalid chunk size line")),
        };
        conn.consume(line);
        if size == 0 {
            break;
        }
        if size > (max - body.len()) as u64 {
            return Err(Fail::TooLarge(Exceeded::Body, max));
        }
        read_exact_into(conn, body, size as usize)?;
        let end = buffer_line(conn, 3, "chunk end")?;
        if !matches!(&conn.buffered()[..end], b"\r\n" | b"\n") {
            return Err(Fail::malformed("chunk data longer than its size"));
        }
        conn.consume(end);
    }
    // Trailer fields, ignored, up to the empty line; bounded like the head. A server that
    // closes right after the last chunk has still sent the whole body.
    let mut trailer = 0;
    loop {
        if conn.buffered().is_empty() && conn.at_eof() {
            return Ok(());
        }
        let budget = limits.max_head_bytes.saturating_sub(trailer).max(3);
        let line = match buffer_line(conn, budget, "trailer") {
            Ok(line) => line,
            Err(_) if conn.at_eof() => return Ok(()),
            Err(e) => return Err(e),
        };
        let empty = matches!(&conn.buffered()[..line], b"\r\n" | b"\n");
        conn.consume(line);
        trailer += line;
        if empty {
            return Ok(());
        }
        if trailer > limits.max_head_bytes {
            return Err(Fail::TooLarge(Exceeded::HeadBytes, limits.max_head_bytes));
        }
    }
}

/// Decodes a gzip body (one or more members), stopping past `max` decoded bytes: a small body
/// that inflates to gigabytes ends as [`Exceeded::Body`] after `max + 1` bytes of work.
fn gunzip(data: &[u8], max: usize) -> Result<Vec<u8>, Fail> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Fail::malformed(format!("gzip: {e}")))?;
    if out.len() > max {
        return Err(Fail::TooLarge(Exceeded::Body, max));
    }
    Ok(out)
}
