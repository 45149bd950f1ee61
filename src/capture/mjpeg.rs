//! MJPEG over HTTP (`multipart/x-mixed-replace`), as IP cameras and ESP32-CAM serve it.
//!
//! Two halves: an I/O-free incremental parser ([`parse_response_head`], [`MultipartParser`]) fed
//! whatever bytes the socket gave, and [`MjpegSource`], a minimal HTTP/1.1 client over
//! `std::net::TcpStream` that reconnects after a disconnect.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::capture::{decode::decode_bytes, now_secs, CaptureError, Source};
use crate::pipeline::Frame;

/// Largest response head or part header block accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Largest part body accepted (a 4K JPEG is ~2 MiB).
pub const MAX_PART: usize = 16 * 1024 * 1024;
/// How far past a boundary marker its line may run before the marker is taken for body bytes.
const MAX_BOUNDARY_LINE: usize = 256;

// ---------------------------------------------------------------------------------------------
// Response head

/// The parts of an HTTP response head the client needs.
#[derive(Clone, Debug, PartialEq)]
pub struct ResponseHead {
    pub status: u16,
    pub reason: String,
    /// Header (lower-cased name, value) pairs in order.
    pub headers: Vec<(String, String)>,
    /// Bytes of `buf` the head occupied (the body starts there).
    pub len: usize,
}

impl ResponseHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// End of a header block (index just past the blank line), accepting CRLF or bare LF.
fn header_end(buf: &[u8]) -> Option<usize> {
    let crlf = find(buf, b"\r\n\r\n").map(|i| i + 4);
    let lf = find(buf, b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Earliest of `markers` in `hay`: (offset, marker length).
fn find_marker(markers: &[Vec<u8>], hay: &[u8]) -> Option<(usize, usize)> {
    markers
        .iter()
        .filter_map(|m| find(hay, m).map(|i| (i, m.len())))
        .min()
}

fn parse_header_lines(block: &str) -> Vec<(String, String)> {
    block
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect()
}

/// Parse a response head from the start of `buf`. `Ok(None)`: need more bytes. Errors say
/// what was expected.
pub fn parse_response_head(buf: &[u8]) -> Result<Option<ResponseHead>, String> {
    let Some(end) = header_end(buf) else {
        if buf.len() > MAX_HEAD {
            return Err(format!("response head longer than {MAX_HEAD} bytes"));
        }
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&buf[..end]);
    let mut lines = text.lines();
    let status_line = lines.next().unwrap_or("");
    let mut it = status_line.splitn(3, ' ');
    let version = it.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(format!(
            "expected an HTTP/1.x status line, got {:?}",
            status_line.chars().take(60).collect::<String>()
        ));
    }
    let status: u16 = it
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let reason = it.next().unwrap_or("").trim().to_string();
    let rest: Vec<&str> = lines.collect();
    Ok(Some(ResponseHead {
        status,
        reason,
        headers: parse_header_lines(&rest.join("\n")),
        len: end,
    }))
}

/// The boundary of a `multipart/x-mixed-replace; boundary=...` content type (quotes removed).
pub fn boundary_from_content_type(ct: &str) -> Result<String, String> {
    let mut parts = ct.split(';');
    let mime = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    if !mime.starts_with("multipart/") {
        return Err(format!(
            "expected Content-Type multipart/x-mixed-replace, got {ct:?}"
        ));
    }
    for p in parts {
        if let Some((k, v)) = p.split_once('=') {
            if k.trim().eq_ignore_ascii_case("boundary") {
                let b = v.trim().trim_matches('"');
                if b.is_empty() || b.len() > 200 {
                    return Err(format!("bad multipart boundary {b:?}"));
                }
                return Ok(b.to_string());
            }
        }
    }
    Err(format!("Content-Type {ct:?} has no boundary parameter"))
}

// ---------------------------------------------------------------------------------------------
// Multipart parser

/// One part of the stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    /// Part headers (lower-cased names).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Part(Part),
    /// The closing boundary (`--boundary--`): the server ended the stream.
    End,
    /// Bytes that were not a well-formed part were skipped while resynchronising (`what`
    /// says why); parsing goes on at the next boundary.
    Skipped {
        bytes: usize,
        what: String,
    },
}

#[derive(Clone, Debug)]
enum State {
    /// Looking for a boundary line.
    Boundary,
    /// After a boundary line, reading the part's header block.
    Headers,
    /// Reading a body: `Some(n)` bytes by Content-Length, or up to the next boundary.
    Body {
        headers: Vec<(String, String)>,
        len: Option<usize>,
    },
    Ended,
}

/// Incremental `multipart/x-mixed-replace` parser. Feed bytes with [`push`](Self::push), pull
/// events with [`next_event`](Self::next_event) until it returns `None` (needs more bytes).
///
/// Tolerates what cameras do in practice: a boundary in the stream with or without the `--`
/// prefix (some servers put `--` in the header parameter already), missing CRLF before a
/// boundary, missing Content-Length (then the body runs to the next boundary), bare-LF
/// headers, and garbage between parts (skipped and reported as [`Event::Skipped`]).
#[derive(Debug)]
pub struct MultipartParser {
    /// Boundary markers as they may appear at the start of a line.
    markers: Vec<Vec<u8>>,
    /// `markers` each preceded by '\n' (a body without Content-Length ends at one).
    line_markers: Vec<Vec<u8>>,
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    pos: usize,
    state: State,
    max_part: usize,
}

impl MultipartParser {
    pub fn new(boundary: &str) -> Self {
        Self::with_max_part(boundary, MAX_PART)
    }

    pub fn with_max_part(boundary: &str, max_part: usize) -> Self {
        let mut markers = vec![format!("--{boundary}").into_bytes()];
        if boundary.starts_with("--") {
            markers.push(boundary.as_bytes().to_vec());
        }
        let line_markers = markers.iter().map(|m| [b"\n", &m[..]].concat()).collect();
        MultipartParser {
            markers,
            line_markers,
            buf: Vec::new(),
            pos: 0,
            state: State::Boundary,
            max_part,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        // Compact lazily: only when the consumed prefix dominates, so pushes stay amortised O(n).
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes pushed but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            let avail = &self.buf[self.pos..];
            match &mut self.state {
                State::Ended => return None,
                State::Boundary => {
                    let Some((at, mlen)) = find_marker(&self.markers, avail) else {
                        // Keep a tail that could be the start of a split marker; skip the rest.
                        let keep = self.markers.iter().map(Vec::len).max().unwrap_or(0);
                        if avail.len() > keep + MAX_HEAD {
                            let n = avail.len() - keep;
                            self.pos += n;
                            return Some(Event::Skipped {
                                bytes: n,
                                what: "no boundary found".into(),
                            });
                        }
                        return None;
                    };
                    let line = &avail[at + mlen..];
                    let Some(eol) = line.iter().position(|&b| b == b'\n') else {
                        if line.len() > MAX_BOUNDARY_LINE {
                            // A marker-like byte run inside junk: skip past it.
                            self.pos += at + mlen;
                            return Some(Event::Skipped {
                                bytes: at + mlen,
                                what: "boundary marker without line end".into(),
                            });
                        }
                        if line.starts_with(b"--") {
                            self.state = State::Ended;
                            self.pos += at + mlen + 2;
                            return Some(Event::End);
                        }
                        return None;
                    };
                    let rest = String::from_utf8_lossy(&line[..eol]);
                    let rest = rest.trim();
                    // Whitespace before the marker (the CRLF ending the previous body) is
                    // normal; anything else is reported.
                    let junk = avail[..at].iter().any(|b| !b.is_ascii_whitespace());
                    // Only whitespace or the closing "--" may follow a real boundary marker.
                    if rest == "--" {
                        self.state = State::Ended;
                        self.pos += at + mlen + eol + 1;
                        return Some(Event::End);
                    }
                    if !rest.is_empty() {
                        self.pos += at + mlen;
                        return Some(Event::Skipped {
                            bytes: at + mlen,
                            what: "text after boundary marker".into(),
                        });
                    }
                    self.pos += at + mlen + eol + 1;
                    self.state = State::Headers;
                    if junk {
                        return Some(Event::Skipped {
                            bytes: at,
                            what: "bytes before boundary".into(),
                        });
                    }
                }
                State::Headers => {
                    // An empty header block is just a blank line.
                    let end = if avail.starts_with(b"\r\n") {
                        Some(2)
                    } else if avail.starts_with(b"\n") {
                        Some(1)
                    } else if avail.len() < 2 {
                        None
                    } else {
                        header_end(avail)
                    };
                    let end = end.filter(|&e| e <= MAX_HEAD);
                    let Some(end) = end else {
                        if avail.len() > MAX_HEAD {
                            // Resync at the next marker (or drop all but a tail that could be
                            // the start of one); always consume something, so no livelock.
                            let keep = self.markers.iter().map(Vec::len).max().unwrap_or(0);
                            let n = match find_marker(&self.markers, &avail[1..]) {
                                Some((at, _)) => at + 1,
                                None => avail.len().saturating_sub(keep).max(1),
                            };
                            self.pos += n;
                            self.state = State::Boundary;
                            return Some(Event::Skipped {
                                bytes: n,
                                what: format!("part headers longer than {MAX_HEAD} bytes"),
                            });
                        }
                        return None;
                    };
                    let headers = parse_header_lines(&String::from_utf8_lossy(&avail[..end]));
                    let len = match header(&headers, "content-length") {
                        Some(v) => match v.parse::<usize>() {
                            Ok(n) if n <= self.max_part => Some(n),
                            _ => {
                                self.pos += end;
                                self.state = State::Boundary;
                                return Some(Event::Skipped {
                                    bytes: end,
                                    what: format!(
                                        "bad Content-Length {v:?} (expected ≤ {})",
                                        self.max_part
                                    ),
                                });
                            }
                        },
                        None => None,
                    };
                    self.pos += end;
                    self.state = State::Body { headers, len };
                }
                State::Body { headers, len } => match *len {
                    Some(n) => {
                        if avail.len() < n {
                            return None;
                        }
                        let part = Part {
                            headers: std::mem::take(headers),
                            body: avail[..n].to_vec(),
                        };
                        self.pos += n;
                        self.state = State::Boundary;
                        return Some(Event::Part(part));
                    }
                    None => {
                        // The body ends at a line that starts with a marker.
                        let Some((at, _)) = find_marker(&self.line_markers, avail) else {
                            if avail.len() > self.max_part {
                                let n = avail.len();
                                self.pos += n;
                                self.state = State::Boundary;
                                return Some(Event::Skipped {
                                    bytes: n,
                                    what: format!(
                                        "part without Content-Length over {} bytes",
                                        self.max_part
                                    ),
                                });
                            }
                            return None;
                        };
                        // `at` is the '\n' before the marker; drop a CR before it too.
                        let body_end = if at > 0 && avail[at - 1] == b'\r' {
                            at - 1
                        } else {
                            at
                        };
                        let part = Part {
                            headers: std::mem::take(headers),
                            body: avail[..body_end].to_vec(),
                        };
                        // Leave the marker for the Boundary state.
                        self.pos += at + 1;
                        self.state = State::Boundary;
                        return Some(Event::Part(part));
                    }
                },
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// URL and client

/// `http://host[:port][/path]` split into (host, port, path-with-query).
pub fn parse_http_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("expected an http:// URL, got {url:?}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.contains('@') {
        return Err("credentials in the URL are not supported".into());
    }
    let (host, port) = if let Some(h) = authority.strip_prefix('[') {
        // [v6]:port
        let (h, after) = h
            .split_once(']')
            .ok_or_else(|| format!("bad IPv6 host in {url:?}"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p
                .parse()
                .map_err(|_| format!("bad port {p:?} in {url:?}"))?,
            None => 80,
        };
        (h.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse()
                    .map_err(|_| format!("bad port {p:?} in {url:?}"))?,
            ),
            None => (authority.to_string(), 80),
        }
    };
    if host.is_empty() {
        return Err(format!("no host in {url:?}"));
    }
    Ok((host, port, path.to_string()))
}

/// Timeouts and reconnect pacing for [`MjpegSource`].
#[derive(Clone, Debug)]
pub struct MjpegConfig {
    pub connect_timeout: Duration,
    /// No bytes for this long → the stream is taken as dead (Disconnected).
    pub read_timeout: Duration,
    /// Minimum time between two connection attempts.
    pub reconnect_delay: Duration,
}

impl Default for MjpegConfig {
    fn default() -> Self {
        MjpegConfig {
            connect_timeout: Duration::from_secs(3),
            read_timeout: Duration::from_secs(5),
            reconnect_delay: Duration::from_millis(500),
        }
    }
}

struct Conn {
    stream: TcpStream,
    parser: MultipartParser,
}

/// Frames from an MJPEG HTTP stream. After `Disconnected`, the next `next_frame` call
/// reconnects (no sooner than `reconnect_delay` after the previous attempt).
pub struct MjpegSource {
    url: String,
    host: String,
    port: u16,
    path: String,
    cfg: MjpegConfig,
    conn: Option<Conn>,
    last_attempt: Option<Instant>,
    seq: u64,
    /// Parts skipped as garbage since the start (for diagnostics).
    pub skipped_bytes: u64,
}

impl std::fmt::Debug for MjpegSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MjpegSource")
            .field("url", &self.url)
            .field("connected", &self.conn.is_some())
            .field("seq", &self.seq)
            .finish()
    }
}

impl MjpegSource {
    /// Connect now, so a wrong URL or a server that is not an MJPEG stream fails at startup
    /// with `Open`.
    pub fn open(url: &str) -> Result<Self, CaptureError> {
        Self::open_with(url, MjpegConfig::default())
    }

    pub fn open_with(url: &str, cfg: MjpegConfig) -> Result<Self, CaptureError> {
        let (host, port, path) = parse_http_url(url).map_err(|e| CaptureError::open(url, e))?;
        let mut s = MjpegSource {
            url: url.to_string(),
            host,
            port,
            path,
            cfg,
            conn: None,
            last_attempt: None,
            seq: 0,
            skipped_bytes: 0,
        };
        s.conn = Some(s.connect().map_err(|e| CaptureError::open(url, e))?);
        Ok(s)
    }

    fn connect(&mut self) -> Result<Conn, String> {
        self.last_attempt = Some(Instant::now());
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))?
            .collect();
        let mut last_err = format!("{} resolved to no address", self.host);
        let mut stream = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, self.cfg.connect_timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last_err = format!("connect to {a}: {e}"),
            }
        }
        let mut stream = stream.ok_or(last_err)?;
        stream
            .set_read_timeout(Some(self.cfg.read_timeout))
            .and_then(|_| stream.set_write_timeout(Some(self.cfg.read_timeout)))
            .map_err(|e| format!("socket setup: {e}"))?;
        let host_hdr = if self.port == 80 {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let req = format!(
            "GET {} HTTP/1.1\r\nHost: {host_hdr}\r\nUser-Agent: spotter/{}\r\n\
             Accept: multipart/x-mixed-replace, */*\r\nConnection: close\r\n\r\n",
            self.path,
            env!("CARGO_PKG_VERSION")
        );
        stream
            .write_all(req.as_bytes())
            .map_err(|e| format!("send request: {e}"))?;

        let mut buf = Vec::with_capacity(4096);
        let mut chunk = [0u8; 4096];
        let head = loop {
            if let Some(h) = parse_response_head(&buf)? {
                break h;
            }
            let n = stream
                .read(&mut chunk)
                .map_err(|e| format!("reading response head: {e}"))?;
            if n == 0 {
                return Err("connection closed before the response head".into());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        if head.status != 200 {
            return Err(format!(
                "HTTP {} {} (expected 200 and an MJPEG stream)",
                head.status, head.reason
            ));
        }
        if let Some(te) = head.header("transfer-encoding") {
            if !te.eq_ignore_ascii_case("identity") {
                return Err(format!("Transfer-Encoding {te:?} is not supported"));
            }
        }
        let ct = head
            .header("content-type")
            .ok_or("response has no Content-Type (expected multipart/x-mixed-replace)")?;
        let boundary = boundary_from_content_type(ct)?;
        let mut parser = MultipartParser::new(&boundary);
        parser.push(&buf[head.len..]);
        Ok(Conn { stream, parser })
    }

    fn disconnected(&mut self, what: impl Into<String>) -> CaptureError {
        self.conn = None;
        CaptureError::disconnected(&self.url, what)
    }
}

impl Source for MjpegSource {
    fn name(&self) -> &str {
        &self.url
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError> {
        if self.conn.is_none() {
            if let Some(t) = self.last_attempt {
                let wait = self.cfg.reconnect_delay.saturating_sub(t.elapsed());
                std::thread::sleep(wait);
            }
            match self.connect() {
                Ok(c) => self.conn = Some(c),
                Err(e) => return Err(self.disconnected(format!("reconnect failed: {e}"))),
            }
        }
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Err(self.disconnected("no connection"));
            };
            match conn.parser.next_event() {
                Some(Event::Part(part)) => {
                    let image = decode_bytes(&part.body, &self.url)?;
                    let frame = Frame {
                        seq: self.seq,
                        time: now_secs(),
                        image,
                    };
                    self.seq += 1;
                    return Ok(Some(frame));
                }
                Some(Event::Skipped { bytes, what }) => {
                    log::debug!("{}: skipped {bytes} bytes: {what}", self.url);
                    self.skipped_bytes += bytes as u64;
                    continue;
                }
                Some(Event::End) => {
                    return Err(self.disconnected("server sent the closing boundary"));
                }
                None => {}
            }
            match conn.stream.read(&mut chunk) {
                Ok(0) => return Err(self.disconnected("connection closed by the server")),
                Ok(n) => conn.parser.push(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.disconnected(format!("read: {e}"))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(body: &[u8], with_len: bool) -> Vec<u8> {
        let mut v = b"--frame\r\nContent-Type: image/jpeg\r\n".to_vec();
        if with_len {
            v.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        v.extend_from_slice(b"\r\n");
        v.extend_from_slice(body);
        v.extend_from_slice(b"\r\n");
        v
    }

    fn bodies(p: &mut MultipartParser) -> (Vec<Vec<u8>>, usize, bool) {
        let (mut out, mut skipped, mut ended) = (Vec::new(), 0, false);
        while let Some(ev) = p.next_event() {
            match ev {
                Event::Part(pt) => out.push(pt.body),
                Event::Skipped { .. } => skipped += 1,
                Event::End => ended = true,
            }
        }
        (out, skipped, ended)
    }

    /// Feed `stream` in chunks of `step` bytes, collecting bodies as they complete.
    fn feed(stream: &[u8], boundary: &str, step: usize) -> (Vec<Vec<u8>>, usize, bool) {
        let mut p = MultipartParser::new(boundary);
        let (mut out, mut skipped, mut ended) = (Vec::new(), 0, false);
        for c in stream.chunks(step) {
            p.push(c);
            let (b, s, e) = bodies(&mut p);
            out.extend(b);
            skipped += s;
            ended |= e;
        }
        (out, skipped, ended)
    }

    #[test]
    fn every_split_gives_the_same_parts() {
        let a = b"\xff\xd8JPEG-A with --fram in it\xff\xd9".to_vec();
        let b = b"\xff\xd8B\r\n--notboundary\xff\xd9".to_vec();
        let mut stream = part(&a, true);
        stream.extend(part(&b, false));
        stream.extend(part(&a, false));
        stream.extend(b"--frame--\r\n");
        for step in 1..=stream.len() {
            let (got, skipped, ended) = feed(&stream, "frame", step);
            assert_eq!(got, vec![a.clone(), b.clone(), a.clone()], "step {step}");
            assert_eq!(skipped, 0, "step {step}");
            assert!(ended, "step {step}");
        }
    }

    #[test]
    fn garbage_before_and_between_parts_is_skipped() {
        let a = b"\xff\xd8AAAA\xff\xd9".to_vec();
        let mut stream = b"random preamble \x00\x01\x02\r\n".to_vec();
        stream.extend(part(&a, true));
        stream.extend(b"junk junk junk\r\n");
        stream.extend(part(&a, true));
        let (got, skipped, _) = feed(&stream, "frame", 7);
        assert_eq!(got, vec![a.clone(), a.clone()]);
        assert_eq!(skipped, 2);
    }

    #[test]
    fn content_length_wins_over_boundary_bytes_inside_body() {
        let a = b"\xff\xd8\r\n--frame\r\n\xff\xd9".to_vec();
        let stream = [part(&a, true), part(b"x", true)].concat();
        let (got, _, _) = feed(&stream, "frame", 3);
        assert_eq!(got, vec![a, b"x".to_vec()]);
    }

    #[test]
    fn boundary_param_with_dashes_bare_lf_and_no_crlf_before_boundary() {
        // Some servers: boundary=--myboundary in the header, "--myboundary" in the stream,
        // LF-only header lines, and the next boundary glued to the body.
        let stream =
            b"--myboundary\nContent-Type: image/jpeg\nContent-Length: 3\n\nabc--myboundary\n\nxyz\n--myboundary--"
                .to_vec();
        let (got, skipped, ended) = feed(&stream, "--myboundary", 1);
        assert_eq!(got, vec![b"abc".to_vec(), b"xyz".to_vec()]);
        assert_eq!(skipped, 0);
        assert!(ended);
    }

    #[test]
    fn pure_garbage_is_bounded_and_bad_lengths_resync() {
        let mut p = MultipartParser::with_max_part("frame", 1000);
        let junk: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();
        p.push(&junk);
        let (got, skipped, _) = bodies(&mut p);
        assert!(got.is_empty());
        assert!(skipped >= 1);
        assert!(p.buffered() < 100, "junk is not hoarded: {}", p.buffered());

        let mut stream = b"--frame\r\nContent-Length: 99999999\r\n\r\n".to_vec();
        stream.extend(part(b"ok", true));
        let (got, skipped, _) = feed(&stream, "frame", 5);
        assert_eq!(got, vec![b"ok".to_vec()]);
        assert_eq!(skipped, 1);

        let mut stream = b"--frame\r\n".to_vec();
        stream.extend(vec![b'a'; 3 * MAX_HEAD]);
        stream.extend(part(b"ok", true));
        for step in [1000, 100_000] {
            let (got, skipped, _) = feed(&stream, "frame", step);
            assert_eq!(got, vec![b"ok".to_vec()], "step {step}");
            assert!(skipped >= 1);
        }

        let mut p = MultipartParser::with_max_part("frame", 100);
        p.push(b"--frame\r\n\r\n");
        p.push(&[7u8; 500]);
        let (got, skipped, _) = bodies(&mut p);
        assert!(got.is_empty());
        assert_eq!(skipped, 1, "oversized length-less part is dropped");
    }

    #[test]
    fn response_head_and_content_type() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=\"123abc\"\r\nX: y\r\n\r\n--123abc";
        for cut in 0..raw.len() - 8 {
            assert_eq!(parse_response_head(&raw[..cut]), Ok(None), "cut {cut}");
        }
        let h = parse_response_head(raw).expect("ok").expect("complete");
        assert_eq!(h.status, 200);
        assert_eq!(&raw[h.len..], b"--123abc");
        let ct = h.header("Content-Type").expect("ct");
        assert_eq!(boundary_from_content_type(ct), Ok("123abc".into()));
        assert!(boundary_from_content_type("image/jpeg").is_err());
        assert!(boundary_from_content_type("multipart/x-mixed-replace").is_err());
        assert!(parse_response_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_response_head(&[b'a'; MAX_HEAD + 10]).is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_http_url("http://cam.local:81/stream?x=1"),
            Ok(("cam.local".into(), 81, "/stream?x=1".into()))
        );
        assert_eq!(
            parse_http_url("http://10.0.0.2"),
            Ok(("10.0.0.2".into(), 80, "/".into()))
        );
        assert_eq!(
            parse_http_url("http://[::1]:8080/v"),
            Ok(("::1".into(), 8080, "/v".into()))
        );
        assert!(parse_http_url("http://u:p@cam/").is_err());
        assert!(parse_http_url("http://cam:xx/").is_err());
        assert!(parse_http_url("ftp://cam/").is_err());
    }
}
