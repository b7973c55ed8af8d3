//! A small blocking HTTP/1.1 GET client, for HTTP trackers (BEP 3, 48) and web seeds (BEP 19).
//!
//! [`HttpClient::get`] fetches one URL on the calling thread; [`HttpPool`] runs
//! [`HttpRequest`]s on worker threads and delivers [`Completion::Http`] through a [`Sink`], like
//! the other IO services.
//!
//! What a GET does:
//!
//! - The URL is parsed with the `url` crate; only `http` and `https` are fetched. The request
//!   target is the URL's path and query exactly as given (a tracker's percent-encoded
//!   `info_hash` goes out untouched); the fragment is never sent.
//! - The host (a name, an IPv4 literal or a bracketed IPv6 literal) is resolved by the system
//!   resolver within the deadline (on a helper thread, since `getaddrinfo` has no timeout of its
//!   own); each address is tried in turn, each attempt bounded by
//!   [`HttpOptions::connect_timeout`] and the overall deadline.
//! - `https` runs over rustls (ring provider) with the Mozilla roots from `webpki-roots`, or
//!   the caller's [`HttpOptions::tls_roots`].
//! - One request per connection (`Connection: close`), with `Host`, `User-Agent:
//!   bitshoal/<version>` and `Accept-Encoding: gzip`.
//! - The response head is parsed by `httparse`, bounded in bytes and header count; interim
//!   1xx responses are skipped. The body ends by `Content-Length`, chunked transfer coding
//!   (chunk sizes bounded by what is left of the body limit) or the server's close, and a gzip
//!   body is decoded. The body is bounded by [`HttpOptions::max_body`] both as sent and
//!   decoded, so a gzip bomb stops at the limit.
//! - Redirects (301, 302, 303, 307, 308 with a `Location`, absolute or relative) are followed
//!   to `http` and `https` URLs only, at most [`HttpOptions::max_redirects`] times; a 3xx
//!   without `Location` is returned as the response.
//! - [`HttpOptions::timeout`] is one deadline for the whole GET, redirects included: every
//!   socket read and write is given the time left, so a server that stalls or trickles bytes
//!   ends in [`HttpError::TimedOut`] at the deadline.
//! - Any status is a response: a 404 is `Ok` with `status: 404`, and it is the caller's to
//!   judge (`parse_announce_response` takes the status).
//!
//! Errors never show a URL's query or the inside of its path, where private trackers keep
//! passkeys (see [`RedactedUrl`]).

mod conn;
mod error;
mod response;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_tls;
#[cfg(test)]
mod testserver;

pub use error::{Exceeded, HttpError, RedactedUrl};

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ClientConfig, RootCertStore};
use url::Url;

use crate::workers::{Completion, Sink, Workers};
use conn::Conn;
use error::Fail;
use response::Limits;

/// The `User-Agent` we send.
pub const USER_AGENT: &str = concat!("bitshoal/", env!("CARGO_PKG_VERSION"));

/// HTTP worker threads when none are configured: requests wait on the network, not the CPU.
pub const DEFAULT_HTTP_THREADS: usize = 4;

/// Request headers [`HttpOptions::headers`] may not set, because the client sets them.
const RESERVED_HEADERS: [&str; 6] = [
    "host",
    "user-agent",
    "accept-encoding",
    "connection",
    "content-length",
    "transfer-encoding",
];

/// How to fetch a URL, and the bounds on the answer.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// The largest body accepted, as sent and after gzip decoding (default 2 MiB, the tracker
    /// limit).
    pub max_body: usize,
    /// The largest status line plus headers (default 16 KiB).
    pub max_head_bytes: usize,
    /// The most headers in a response (default 64).
    pub max_headers: usize,
    /// The deadline for the whole GET, redirects included (default 15 s).
    pub timeout: Duration,
    /// The longest wait for one address to accept a connection (default 5 s; never past the
    /// deadline).
    pub connect_timeout: Duration,
    /// The most redirects followed (default 5).
    pub max_redirects: u32,
    /// Whether to send `Accept-Encoding: gzip` (default true); turn off for range requests,
    /// whose byte offsets would count the compressed body.
    pub accept_gzip: bool,
    /// More request headers (a web seed's `Range`, say). `Host`, `User-Agent`,
    /// `Accept-Encoding`, `Connection`, `Content-Length` and `Transfer-Encoding` are the
    /// client's and are refused with [`HttpError::InvalidHeader`], as are names that are not
    /// tokens and values with control characters.
    pub headers: Vec<(String, String)>,
    /// Trust anchors for `https` instead of the bundled Mozilla roots (`webpki-roots`); for
    /// tests and private deployments.
    pub tls_roots: Option<Arc<RootCertStore>>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            max_body: 2 * 1024 * 1024,
            max_head_bytes: 16 * 1024,
            max_headers: 64,
            timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            max_redirects: 5,
            accept_gzip: true,
            headers: Vec::new(),
            tls_roots: None,
        }
    }
}

/// A response (any status).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The headers of the final response, names in lower case, values as sent, in order (at
    /// most [`HttpOptions::max_headers`]). `Content-Encoding` still says `gzip` when the body
    /// was decoded.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body, decoded from gzip if it was sent so.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

/// A blocking HTTP/1.1 GET client; cheap to clone, for use from any thread.
#[derive(Clone)]
pub struct HttpClient {
    /// The TLS configuration with the bundled roots, built once.
    default_tls: Arc<ClientConfig>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HttpClient(..)")
    }
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

/// A rustls client configuration trusting `roots`, on the ring provider.
fn tls_config(roots: Arc<RootCertStore>) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports rustls's default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Parses `url` and checks that we can fetch it.
fn parse_url(url: &str) -> Result<Url, HttpError> {
    let parsed = Url::parse(url).map_err(|e| HttpError::InvalidUrl {
        reason: e.to_string(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(HttpError::UnsupportedScheme {
            scheme: parsed.scheme().to_string(),
        });
    }
    if parsed.host().is_none() {
        return Err(HttpError::InvalidUrl {
            reason: "no host".to_string(),
        });
    }
    Ok(parsed)
}

/// Checks a caller's request header.
fn check_header(name: &str, value: &str) -> Result<(), HttpError> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let valid = !name.is_empty()
        && name.bytes().all(token)
        && !RESERVED_HEADERS
            .iter()
            .any(|r| r.eq_ignore_ascii_case(name))
        && value
            .bytes()
            .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f));
    if valid {
        Ok(())
    } else {
        Err(HttpError::InvalidHeader {
            name: name.to_string(),
        })
    }
}

/// The request head for `url`.
fn request_head(url: &Url, options: &HttpOptions) -> String {
    let mut head = format!("GET {}", url.path());
    if let Some(query) = url.query() {
        head.push('?');
        head.push_str(query);
    }
    head.push_str(" HTTP/1.1\r\nHost: ");
    head.push_str(url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        head.push(':');
        head.push_str(&port.to_string());
    }
    head.push_str("\r\nUser-Agent: ");
    head.push_str(USER_AGENT);
    if options.accept_gzip {
        head.push_str("\r\nAccept-Encoding: gzip");
    }
    head.push_str("\r\nConnection: close\r\n");
    for (name, value) in &options.headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head
}

/// Where a redirect from `from` with `Location: location` goes, if we may follow it.
fn redirect_target(from: &Url, location: &[u8]) -> Result<Url, HttpError> {
    let bad = |reason: String| HttpError::BadRedirect {
        url: RedactedUrl::new(from),
        reason,
    };
    let location = std::str::from_utf8(location)
        .map_err(|_| bad("Location is not UTF-8".to_string()))?
        .trim();
    let mut target = from
        .join(location)
        .map_err(|e| bad(format!("Location does not parse: {e}")))?;
    if !matches!(target.scheme(), "http" | "https") {
        return Err(bad(format!(
            "Location has scheme {:?}, not http or https",
            target.scheme()
        )));
    }
    if target.host().is_none() {
        return Err(bad("Location has no host".to_string()));
    }
    target.set_fragment(None);
    Ok(target)
}

impl HttpClient {
    /// A client trusting the bundled Mozilla roots for `https`.
    pub fn new() -> Self {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        Self {
            default_tls: tls_config(Arc::new(roots)),
        }
    }

    /// Fetches `url` on the calling thread, following redirects; see the [module doc](self).
    pub fn get(&self, url: &str, options: &HttpOptions) -> Result<HttpResponse, HttpError> {
        let deadline = Instant::now() + options.timeout;
        for (name, value) in &options.headers {
            check_header(name, value)?;
        }
        let mut url = parse_url(url)?;
        let tls = match &options.tls_roots {
            Some(roots) => tls_config(Arc::clone(roots)),
            None => Arc::clone(&self.default_tls),
        };
        let limits = Limits {
            max_head_bytes: options.max_head_bytes,
            max_headers: options.max_headers,
            max_body: options.max_body,
        };
        let mut redirects = 0;
        loop {
            let fetched = (|| {
                let mut conn = Conn::open(&url, &tls, options.connect_timeout, deadline)?;
                conn.send(request_head(&url, options).as_bytes())?;
                let head = response::read_head(&mut conn, &limits)?;
                Ok::<_, Fail>((conn, head))
            })();
            let (mut conn, head) = fetched.map_err(|f| f.at(&url))?;
            if matches!(head.status, 301 | 302 | 303 | 307 | 308) {
                if let Some(location) = head.get("location") {
                    if redirects >= options.max_redirects {
                        return Err(HttpError::TooManyRedirects {
                            url: RedactedUrl::new(&url),
                            max: options.max_redirects,
                        });
                    }
                    url = redirect_target(&url, location)?;
                    redirects += 1;
                    continue;
                }
            }
            let body = response::read_body(&mut conn, &head, &limits).map_err(|f| f.at(&url))?;
            return Ok(HttpResponse {
                status: head.status,
                headers: head.headers,
                body,
            });
        }
    }
}

/// A GET to run on an [`HttpPool`]. Its `Debug` shows the URL [redacted](RedactedUrl).
#[derive(Clone)]
pub struct HttpRequest {
    /// The caller's id for it, returned in [`HttpDone::id`].
    pub id: u64,
    /// The URL.
    pub url: String,
    /// How to fetch it.
    pub options: HttpOptions,
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = Url::parse(&self.url).map(|u| RedactedUrl::new(&u).to_string());
        f.debug_struct("HttpRequest")
            .field("id", &self.id)
            .field("url", &url.as_deref().unwrap_or("<invalid URL>"))
            .field("options", &self.options)
            .finish()
    }
}

/// A finished GET.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpDone {
    /// The request's id.
    pub id: u64,
    /// The response, or why there is none.
    pub result: Result<HttpResponse, HttpError>,
}

/// Runs GETs on worker threads, delivering [`Completion::Http`].
///
/// Dropping the pool waits for the requests already submitted, each at most its
/// [`HttpOptions::timeout`].
#[derive(Debug)]
pub struct HttpPool {
    client: HttpClient,
    sink: Sink,
    workers: Workers,
}

impl HttpPool {
    /// A pool of `threads` workers (0: [`DEFAULT_HTTP_THREADS`]).
    pub fn new(threads: usize, sink: Sink) -> Self {
        let threads = if threads == 0 {
            DEFAULT_HTTP_THREADS
        } else {
            threads
        };
        Self {
            client: HttpClient::new(),
            sink,
            workers: Workers::new("bitshoal-http", threads),
        }
    }

    /// Queues a GET.
    pub fn submit(&self, request: HttpRequest) {
        let client = self.client.clone();
        let sink = self.sink.clone();
        self.workers.spawn(move || {
            let result = client.get(&request.url, &request.options);
            sink.deliver(Completion::Http(HttpDone {
                id: request.id,
                result,
            }));
        });
    }

    /// The number of worker threads.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }
}
