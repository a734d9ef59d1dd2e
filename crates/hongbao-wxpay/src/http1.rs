//! A lean HTTP/1.1 client for one base URL: the task that makes a call
//! writes the request and reads the answer itself, on a pooled keep-alive
//! connection. No connection task, no hand-off between tasks or threads,
//! no URL parsing and no header maps per call.
//!
//! What it must keep exact is where a failure lies: until the first byte of
//! a request is written on a new connection the call is
//! [`CallError::NotSent`]; from then on it is [`CallError::NoAnswer`]. A
//! pooled connection the server is seen to have closed while it was idle is
//! dropped before anything is written on it; one that fails once the
//! request is written is `NoAnswer`, and never retried.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::outcome::CallError;

/// The longest answer head read, and the longest line of a chunked body.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The most header fields read in an answer head (or trailer fields after
/// a chunked body).
const MAX_HEADERS: usize = 64;
/// Interim (1xx) answers skipped before the real one.
const MAX_INTERIM: usize = 4;
/// How long a connection is kept idle: less than the minute after which
/// servers commonly close idle keep-alive connections.
const IDLE_TIMEOUT: Duration = Duration::from_secs(50);
/// The most idle connections kept: one for each call in flight at once,
/// up to this.
const MAX_IDLE: usize = 256;
/// Room made in the read buffer before each read: a whole TLS record.
const READ_SIZE: usize = 16 * 1024;
/// The read buffer an idle connection keeps, so that one large answer does
/// not hold memory on every pooled connection.
const KEPT_BUFFER: usize = 32 * 1024;

/// What a client is built with besides its base URL.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    /// How long to wait for a new connection and its TLS handshake.
    pub(crate) connect_timeout: Duration,
    /// How long a whole call may take, connecting and the answer included.
    pub(crate) request_timeout: Duration,
    /// The `Content-Type` of every request.
    pub(crate) content_type: &'static str,
    /// The longest answer body read; a longer one is
    /// [`CallError::Unparseable`].
    pub(crate) max_body: usize,
}

/// An answer read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

/// The parts of a base URL `http[s]://host[:port][/prefix]`.
#[derive(Debug, PartialEq, Eq)]
struct Base<'a> {
    tls: bool,
    /// A name or an IP address, without the brackets of IPv6.
    host: &'a str,
    port: u16,
    /// The `Host` header: the authority as written, less a default port.
    authority: &'a str,
    /// A path the request paths go under, `""` for none.
    prefix: &'a str,
}

impl<'a> Base<'a> {
    /// `None` unless `base` is an http(s) URL of a host, without user,
    /// query, fragment, spaces or anything a request line cannot carry.
    fn parse(base: &'a str) -> Option<Base<'a>> {
        let (tls, rest) = match base.strip_prefix("https://") {
            Some(rest) => (true, rest),
            None => (false, base.strip_prefix("http://")?),
        };
        let unusable = |b: u8| matches!(b, b'?' | b'#' | b'@' | b'\\') || !b.is_ascii_graphic();
        if rest.bytes().any(unusable) {
            return None;
        }
        let (authority, prefix) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = match authority.strip_prefix('[') {
            Some(bracketed) => bracketed.split_once(']')?,
            None => authority.split_at(authority.find(':').unwrap_or(authority.len())),
        };
        let default_port = if tls { 443 } else { 80 };
        let port_number = match port {
            "" => default_port,
            _ => port.strip_prefix(':')?.parse().ok()?,
        };
        if host.is_empty() || port_number == 0 {
            return None;
        }
        let authority = if port_number == default_port {
            &authority[..authority.len() - port.len()]
        } else {
            authority
        };
        Some(Base {
            tls,
            host,
            port: port_number,
            authority,
            prefix: prefix.trim_end_matches('/'),
        })
    }
}

/// A client for one base URL, with its pool of idle connections.
pub(crate) struct Http1 {
    host: String,
    port: u16,
    /// For https: the connector and the name the server's certificate must
    /// carry (an IP address for the sandbox).
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// `host:port`, for messages.
    authority: String,
    /// `POST {prefix}`: the request line up to the call's path.
    head_start: String,
    /// From the space after the path to `Content-Length: `, built once.
    head_rest: String,
    settings: Settings,
    /// Idle keep-alive connections, oldest first, each with when it was
    /// put back.
    idle: Mutex<Vec<(Conn, Instant)>>,
}

impl fmt::Debug for Http1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http1")
            .field("authority", &self.authority)
            .field("tls", &self.tls.is_some())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Http1 {
    /// A client for `base` (`https://host[:port][/prefix]`, or `http://`
    /// for a local test server); `None` if `base` is not such a URL. `tls`
    /// is used for https only.
    pub(crate) fn new(base: &str, tls: ClientConfig, settings: Settings) -> Option<Http1> {
        let base = Base::parse(base)?;
        let tls = if base.tls {
            let name = ServerName::try_from(base.host.to_owned()).ok()?;
            Some((TlsConnector::from(Arc::new(tls)), name))
        } else {
            None
        };
        let head_rest = format!(
            " HTTP/1.1\r\nHost: {}\r\nUser-Agent: hongbao-wxpay/{}\r\nContent-Type: {}\r\nAccept: */*\r\nContent-Length: ",
            base.authority,
            env!("CARGO_PKG_VERSION"),
            settings.content_type,
        );
        Some(Http1 {
            host: base.host.to_owned(),
            port: base.port,
            tls,
            authority: if base.host.contains(':') {
                format!("[{}]:{}", base.host, base.port)
            } else {
                format!("{}:{}", base.host, base.port)
            },
            head_start: format!("POST {}", base.prefix),
            head_rest,
            settings,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Posts `body` to `path` (under the base's prefix) and reads the
    /// answer whole. Never retries.
    pub(crate) async fn post(&self, path: &str, body: &[u8]) -> Result<Answer, CallError> {
        debug_assert!(path.starts_with('/') && !path.bytes().any(|b| !b.is_ascii_graphic()));
        let deadline = Instant::now() + self.settings.request_timeout;
        let request = self.request(path, body);
        let mut conn = match self.take_idle() {
            Some(conn) => conn,
            None => {
                let connect = timeout(self.settings.connect_timeout, self.connect());
                match timeout_at(deadline, connect).await {
                    Ok(Ok(connected)) => connected?,
                    // Nothing is written before the handshake is done.
                    Ok(Err(_)) | Err(_) => {
                        return Err(CallError::NotSent(format!(
                            "timed out connecting to {}",
                            self.authority
                        )));
                    }
                }
            }
        };
        // From here on the request may have reached the server. Should the
        // caller give up on this future, the connection goes with it.
        match timeout_at(deadline, conn.exchange(&request, self.settings.max_body)).await {
            Err(_) => Err(CallError::NoAnswer(format!(
                "timed out after {:?} without a whole answer",
                self.settings.request_timeout
            ))),
            Ok(Err(e)) => Err(e),
            Ok(Ok((answer, reusable))) => {
                if reusable {
                    self.put_idle(conn);
                }
                Ok(answer)
            }
        }
    }

    /// The request's head and body, to be written at once.
    fn request(&self, path: &str, body: &[u8]) -> Vec<u8> {
        let length = body.len().to_string();
        let mut request = Vec::with_capacity(
            self.head_start.len()
                + path.len()
                + self.head_rest.len()
                + length.len()
                + 4
                + body.len(),
        );
        for part in [&self.head_start, path, &self.head_rest, &length, "\r\n\r\n"] {
            request.extend_from_slice(part.as_bytes());
        }
        request.extend_from_slice(body);
        request
    }

    async fn connect(&self) -> Result<Conn, CallError> {
        let not_sent = |what: &str, e: &io::Error| {
            CallError::NotSent(format!("{what} {}: {e}", self.authority))
        };
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| not_sent("cannot connect to", &e))?;
        // A request is written whole: waiting to coalesce it only adds delay.
        tcp.set_nodelay(true)
            .map_err(|e| not_sent("cannot set TCP_NODELAY to", &e))?;
        let stream = match &self.tls {
            None => Stream::Plain(tcp),
            Some((connector, name)) => Stream::Tls(Box::new(
                connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| not_sent("TLS handshake with", &e))?,
            )),
        };
        Ok(Conn {
            stream,
            buf: Vec::new(),
            pos: 0,
        })
    }

    fn lock_idle(&self) -> MutexGuard<'_, Vec<(Conn, Instant)>> {
        // The pool is a plain list: a panic elsewhere cannot leave it half-changed.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently used idle connection that is still open, if any.
    fn take_idle(&self) -> Option<Conn> {
        // Bounded: each turn takes a connection out of at most MAX_IDLE.
        for _ in 0..=MAX_IDLE {
            let (expired, latest) = {
                let mut idle = self.lock_idle();
                let now = Instant::now();
                let fresh = idle.partition_point(|(_, since)| now - *since >= IDLE_TIMEOUT);
                let expired: Vec<_> = idle.drain(..fresh).collect();
                (expired, idle.pop())
            };
            // Closing sockets is I/O: done with the pool unlocked.
            drop(expired);
            let (mut conn, _) = latest?;
            if conn.is_open_and_silent() {
                return Some(conn);
            }
        }
        None
    }

    fn put_idle(&self, mut conn: Conn) {
        conn.buf.clear();
        conn.buf.shrink_to(KEPT_BUFFER);
        conn.pos = 0;
        let oldest = {
            let mut idle = self.lock_idle();
            let oldest = (idle.len() >= MAX_IDLE).then(|| idle.remove(0));
            idle.push((conn, Instant::now()));
            oldest
        };
        drop(oldest);
    }
}

/// A TCP connection, in TLS or (for local test servers) plain.
enum Stream {
    Plain(TcpStream),
    // Boxed: a TLS session is large, and connections move in and out of the pool.
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// One connection and what has been read from it.
struct Conn {
    stream: Stream,
    /// Bytes read and not yet parsed are `buf[pos..]`; the allocation is
    /// kept from one request to the next.
    buf: Vec<u8>,
    pos: usize,
}

/// How an answer's body ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    /// Neither length nor chunks: the body runs to the end of the connection.
    UntilClose,
}

/// What the head of an answer says.
#[derive(Debug)]
struct Head {
    status: u16,
    framing: Framing,
    /// HTTP/1.1 and no `Connection: close`.
    keep_alive: bool,
}

fn malformed(what: &str) -> CallError {
    CallError::NoAnswer(format!("malformed answer: {what}"))
}

fn too_long(max: usize) -> CallError {
    CallError::Unparseable(format!("answer longer than {max} bytes"))
}

impl Head {
    fn read(response: &httparse::Response<'_, '_>) -> Result<Head, CallError> {
        let status = response.code.unwrap_or_default();
        let mut keep_alive = response.version == Some(1);
        let mut chunked = None;
        let mut length = None;
        for field in response.headers.iter() {
            let value = field.value.trim_ascii();
            if field.name.eq_ignore_ascii_case("transfer-encoding") {
                // Chunked only if it is the last coding applied.
                let last = value.rsplit(|b| *b == b',').next().unwrap_or_default();
                chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if field.name.eq_ignore_ascii_case("content-length") {
                let n = std::str::from_utf8(value)
                    .ok()
                    .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .ok_or_else(|| malformed("bad Content-Length"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(malformed("two different Content-Lengths"));
                }
                length = Some(n);
            } else if field.name.eq_ignore_ascii_case("connection")
                && value
                    .split(|b| *b == b',')
                    .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"))
            {
                keep_alive = false;
            }
        }
        let framing = match (status, chunked, length) {
            (100..=199 | 204 | 304, _, _) => Framing::Length(0),
            // Transfer-Encoding overrides Content-Length.
            (_, Some(true), _) => Framing::Chunked,
            (_, Some(false), _) | (_, None, None) => Framing::UntilClose,
            (_, None, Some(n)) => Framing::Length(n),
        };
        Ok(Head {
            status,
            framing,
            keep_alive,
        })
    }
}

impl Conn {
    /// Writes `request` and reads its answer; the flag says whether the
    /// connection can carry another request.
    async fn exchange(
        &mut self,
        request: &[u8],
        max_body: usize,
    ) -> Result<(Answer, bool), CallError> {
        let written = match self.stream.write_all(request).await {
            Ok(()) => self.stream.flush().await,
            Err(e) => Err(e),
        };
        written.map_err(|e| CallError::NoAnswer(format!("writing the request: {e}")))?;
        let head = self.read_final_head().await?;
        let body = match head.framing {
            Framing::Length(n) if n > max_body => return Err(too_long(max_body)),
            Framing::Length(n) => {
                let mut body = Vec::with_capacity(n);
                self.take_into(&mut body, n).await?;
                body
            }
            Framing::Chunked => self.read_chunked(max_body).await?,
            Framing::UntilClose => self.read_to_end(max_body).await?,
        };
        // Bytes after the answer were never asked for: the connection is
        // out of step and must not carry another request.
        let reusable =
            head.keep_alive && head.framing != Framing::UntilClose && self.pos == self.buf.len();
        let answer = Answer {
            status: head.status,
            body,
        };
        Ok((answer, reusable))
    }

    fn unread(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads more after what is buffered; 0 at the end of the stream.
    async fn fill(&mut self) -> Result<usize, CallError> {
        self.buf.drain(..self.pos);
        self.pos = 0;
        self.buf.reserve(READ_SIZE);
        self.stream
            .read_buf(&mut self.buf)
            .await
            .map_err(|e| CallError::NoAnswer(format!("reading the answer: {e}")))
    }

    /// As [`Conn::fill`], the end of the stream being an error.
    async fn fill_more(&mut self) -> Result<(), CallError> {
        match self.fill().await? {
            0 => Err(CallError::NoAnswer(
                "connection closed before the whole answer".into(),
            )),
            _ => Ok(()),
        }
    }

    /// The head of the answer, interim (1xx) answers skipped.
    async fn read_final_head(&mut self) -> Result<Head, CallError> {
        for _ in 0..=MAX_INTERIM {
            let head = self.read_head().await?;
            // 101 would switch protocols, which was never asked for.
            if !(100..=199).contains(&head.status) || head.status == 101 {
                return Ok(head);
            }
        }
        Err(malformed("too many interim answers"))
    }

    async fn read_head(&mut self) -> Result<Head, CallError> {
        // Bounded: each turn reads at least a byte of a head of at most
        // MAX_HEAD_BYTES, or fails.
        loop {
            let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut fields);
            match response.parse(self.unread()) {
                Ok(httparse::Status::Complete(len)) => {
                    let head = Head::read(&response)?;
                    self.pos += len;
                    return Ok(head);
                }
                Ok(httparse::Status::Partial) if self.unread().len() >= MAX_HEAD_BYTES => {
                    return Err(malformed("head too long"));
                }
                Ok(httparse::Status::Partial) => self.fill_more().await?,
                Err(e) => return Err(malformed(&e.to_string())),
            }
        }
    }

    /// Moves the next `n` bytes of the answer into `out`, reading as needed.
    async fn take_into(&mut self, out: &mut Vec<u8>, mut n: usize) -> Result<(), CallError> {
        // Bounded: each turn takes at least a byte of `n`, or fails.
        loop {
            let have = self.unread().len().min(n);
            out.extend_from_slice(&self.unread()[..have]);
            self.pos += have;
            n -= have;
            if n == 0 {
                return Ok(());
            }
            self.fill_more().await?;
        }
    }

    /// The length of the next line, which is consumed with its CRLF.
    async fn line(&mut self) -> Result<usize, CallError> {
        // Bounded: a line is at most MAX_HEAD_BYTES.
        loop {
            if let Some(end) = self.unread().windows(2).position(|w| w == b"\r\n") {
                self.pos += end + 2;
                return Ok(end);
            }
            if self.unread().len() >= MAX_HEAD_BYTES {
                return Err(malformed("line too long"));
            }
            self.fill_more().await?;
        }
    }

    async fn read_chunked(&mut self, max_body: usize) -> Result<Vec<u8>, CallError> {
        let mut body = Vec::new();
        // Bounded: every chunk but the last adds at least a byte to a body
        // of at most max_body.
        loop {
            let size = self.chunk_size().await?;
            if size == 0 {
                break;
            }
            let size = usize::try_from(size)
                .ok()
                .filter(|size| *size <= max_body - body.len())
                .ok_or_else(|| too_long(max_body))?;
            self.take_into(&mut body, size).await?;
            if self.line().await? != 0 {
                return Err(malformed("chunk longer than its size"));
            }
        }
        // Trailer fields, read and ignored, up to the empty line.
        for _ in 0..=MAX_HEADERS {
            if self.line().await? == 0 {
                return Ok(body);
            }
        }
        Err(malformed("too many trailer fields"))
    }

    async fn chunk_size(&mut self) -> Result<u64, CallError> {
        // Bounded: a chunk-size line is at most MAX_HEAD_BYTES.
        loop {
            let unread = self.unread();
            if unread.first().is_some_and(|b| !b.is_ascii_hexdigit()) {
                return Err(malformed("bad chunk size"));
            }
            match httparse::parse_chunk_size(unread) {
                Ok(httparse::Status::Complete((len, size))) => {
                    self.pos += len;
                    return Ok(size);
                }
                Ok(httparse::Status::Partial) if unread.len() >= MAX_HEAD_BYTES => {
                    return Err(malformed("chunk size line too long"));
                }
                Ok(httparse::Status::Partial) => self.fill_more().await?,
                Err(_) => return Err(malformed("bad chunk size")),
            }
        }
    }

    async fn read_to_end(&mut self, max_body: usize) -> Result<Vec<u8>, CallError> {
        // Bounded: each turn reads at least a byte of at most max_body, or ends.
        loop {
            if self.unread().len() > max_body {
                return Err(too_long(max_body));
            }
            if self.fill().await? == 0 {
                return Ok(self.unread().to_vec());
            }
        }
    }

    /// Whether the server has neither closed nor written to this idle
    /// connection: one poll that never waits. Nothing has been written on
    /// it for this call, so dropping it is no retry.
    fn is_open_and_silent(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let mut byte = [0u8; 1];
        let mut probe = ReadBuf::new(&mut byte);
        Pin::new(&mut self.stream)
            .poll_read(&mut cx, &mut probe)
            .is_pending()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::net::TcpListener;
    use tokio::sync::Notify;

    use super::*;

    #[test]
    fn base_urls_are_split_once() {
        let base = Base::parse("https://api.mch.weixin.qq.com").unwrap();
        assert_eq!(
            base,
            Base {
                tls: true,
                host: "api.mch.weixin.qq.com",
                port: 443,
                authority: "api.mch.weixin.qq.com",
                prefix: "",
            }
        );
        let base = Base::parse("https://127.0.0.1:8443/wx/").unwrap();
        assert_eq!((base.host, base.port), ("127.0.0.1", 8443));
        assert_eq!((base.authority, base.prefix), ("127.0.0.1:8443", "/wx"));
        let base = Base::parse("http://[::1]:80").unwrap();
        assert_eq!((base.tls, base.host, base.port), (false, "::1", 80));
        assert_eq!(base.authority, "[::1]");
        for bad in [
            "ftp://host",
            "https://",
            "https://:443",
            "https://host:x",
            "https://host:0",
            "https://host:70000",
            "https://user@host",
            "https://host/a b",
            "https://host/?token=1",
            "https://host\r\nX: y",
        ] {
            assert_eq!(Base::parse(bad), None, "{bad}");
        }
    }

    /// What the test server does after writing an answer.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum After {
        KeepOpen,
        Close,
    }

    /// The test server's reply to one request: raw bytes, written in pieces.
    struct Reply {
        pieces: Vec<&'static [u8]>,
        after: After,
    }

    fn reply(answer: &'static [u8]) -> Reply {
        Reply {
            pieces: vec![answer],
            after: After::KeepOpen,
        }
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    /// A plain HTTP server on 127.0.0.1 that answers the requests it reads,
    /// in the order they come, with the next of its replies (and closes a
    /// connection when it has none left).
    struct Server {
        addr: SocketAddr,
        connections: Arc<AtomicUsize>,
        /// Every request read, head and body.
        requests: Arc<Mutex<Vec<Vec<u8>>>>,
        /// Notified each time the server closes a connection.
        closed: Arc<Notify>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl Server {
        async fn start(replies: Vec<Reply>) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let connections = Arc::new(AtomicUsize::new(0));
            let requests = Arc::new(Mutex::new(Vec::new()));
            let closed = Arc::new(Notify::new());
            let replies = Arc::new(Mutex::new(VecDeque::from(replies)));
            let (c, r, n) = (connections.clone(), requests.clone(), closed.clone());
            let task = tokio::spawn(async move {
                for _ in 0..100 {
                    let Ok((tcp, _)) = listener.accept().await else {
                        return;
                    };
                    c.fetch_add(1, Ordering::SeqCst);
                    let (r, n, replies) = (r.clone(), n.clone(), replies.clone());
                    tokio::spawn(async move {
                        serve(tcp, &r, &replies).await;
                        n.notify_one();
                    });
                }
            });
            Server {
                addr,
                connections,
                requests,
                closed,
                task,
            }
        }

        fn client(&self, max_body: usize) -> Http1 {
            let settings = Settings {
                connect_timeout: Duration::from_secs(2),
                request_timeout: Duration::from_secs(5),
                content_type: "text/xml; charset=utf-8",
                max_body,
            };
            let tls = crate::transport::tls_client_config(None, &[]).unwrap();
            Http1::new(&format!("http://{}/base", self.addr), tls, settings).unwrap()
        }

        fn connections(&self) -> usize {
            self.connections.load(Ordering::SeqCst)
        }

        fn requests(&self) -> usize {
            self.requests.lock().unwrap().len()
        }
    }

    async fn serve(
        mut tcp: TcpStream,
        seen: &Mutex<Vec<Vec<u8>>>,
        replies: &Mutex<VecDeque<Reply>>,
    ) {
        let mut buf = Vec::new();
        // Bounded: at most 100 requests a connection in any test.
        for _ in 0..100 {
            let Some(request) = read_request(&mut tcp, &mut buf).await else {
                return;
            };
            seen.lock().unwrap().push(request);
            let Some(reply) = replies.lock().unwrap().pop_front() else {
                return;
            };
            for piece in reply.pieces {
                if tcp.write_all(piece).await.is_err() {
                    return;
                }
                // Let the client read each piece on its own.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            if reply.after == After::Close {
                return;
            }
        }
    }

    async fn read_request(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
        // Bounded: requests in these tests are a few hundred bytes.
        for _ in 0..1_000 {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + length {
                    return Some(buf.drain(..end + 4 + length).collect());
                }
            }
            let mut chunk = [0u8; 4096];
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        None
    }

    #[tokio::test]
    async fn the_request_is_one_head_and_the_body_as_given() {
        let server = Server::start(vec![reply(OK)]).await;
        let client = server.client(1024);
        let answer = client
            .post("/mmpaymkttransfers/sendredpack", b"<xml>1</xml>")
            .await
            .unwrap();
        assert_eq!((answer.status, answer.body.as_slice()), (200, &b"ok"[..]));
        let expected = format!(
            "POST /base/mmpaymkttransfers/sendredpack HTTP/1.1\r\nHost: {}\r\nUser-Agent: hongbao-wxpay/{}\r\nContent-Type: text/xml; charset=utf-8\r\nAccept: */*\r\nContent-Length: 12\r\n\r\n<xml>1</xml>",
            server.addr,
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(
            String::from_utf8_lossy(&server.requests.lock().unwrap()[0]),
            expected
        );
    }

    #[tokio::test]
    async fn a_chunked_answer_read_in_pieces_is_decoded_and_its_connection_reused() {
        let chunked = Reply {
            pieces: vec![
                b"HTTP/1.1 200 OK\r\nTransfer-Enc",
                b"oding: gzip, chunked\r\n\r\n5;name=value\r\n<xml>\r",
                b"\n6\r\n</x",
                b"ml>\r\n0\r\nX-Trailer: 1\r\n",
                b"\r\n",
            ],
            after: After::KeepOpen,
        };
        let server = Server::start(vec![chunked, reply(OK)]).await;
        let client = server.client(1024);
        let answer = client.post("/a", b"1").await.unwrap();
        assert_eq!(answer.body, b"<xml></xml>");
        let answer = client.post("/a", b"2").await.unwrap();
        assert_eq!(answer.body, b"ok");
        assert_eq!(server.connections(), 1);
    }

    #[tokio::test]
    async fn interim_answers_are_skipped_and_statuses_kept() {
        let server = Server::start(vec![reply(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 502 Bad Gateway\r\ncontent-length: 3\r\n\r\nbad",
        )])
        .await;
        let answer = server.client(1024).post("/a", b"1").await.unwrap();
        assert_eq!((answer.status, answer.body.as_slice()), (502, &b"bad"[..]));
    }

    #[tokio::test]
    async fn an_answer_saying_connection_close_is_not_reused() {
        let server = Server::start(vec![
            reply(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"),
            reply(OK),
        ])
        .await;
        let client = server.client(1024);
        client.post("/a", b"1").await.unwrap();
        client.post("/a", b"2").await.unwrap();
        assert_eq!(server.connections(), 2);
    }

    #[tokio::test]
    async fn a_body_without_length_runs_to_the_close_and_the_connection_is_not_reused() {
        let server = Server::start(vec![
            Reply {
                pieces: vec![b"HTTP/1.1 200 OK\r\n\r\n<xml>", b"</xml>"],
                after: After::Close,
            },
            reply(OK),
        ])
        .await;
        let client = server.client(1024);
        assert_eq!(client.post("/a", b"1").await.unwrap().body, b"<xml></xml>");
        client.post("/a", b"2").await.unwrap();
        assert_eq!(server.connections(), 2);
    }

    #[tokio::test]
    async fn answers_over_the_cap_are_unparseable_however_they_are_framed() {
        let server = Server::start(vec![
            reply(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n123456789"),
            reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n1234\r\n5\r\n56789\r\n0\r\n\r\n"),
            Reply {
                pieces: vec![b"HTTP/1.1 200 OK\r\n\r\n12345", b"6789"],
                after: After::Close,
            },
        ])
        .await;
        let client = server.client(8);
        for _ in 0..3 {
            assert_eq!(
                client.post("/a", b"1").await.unwrap_err(),
                CallError::Unparseable("answer longer than 8 bytes".into())
            );
        }
        // A body of exactly the cap is read.
        let server = Server::start(vec![reply(
            b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n12345678",
        )])
        .await;
        assert_eq!(
            server.client(8).post("/a", b"1").await.unwrap().body,
            b"12345678"
        );
    }

    #[tokio::test]
    async fn a_malformed_or_cut_answer_is_no_answer() {
        for answer in [
            &b"HTTP/1.1 abc\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\ncut",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\ncut",
            b"HTTP/1.1 200",
        ] {
            let server = Server::start(vec![Reply {
                pieces: vec![answer],
                after: After::Close,
            }])
            .await;
            let result = server.client(1024).post("/a", b"1").await;
            assert!(
                matches!(result, Err(CallError::NoAnswer(_))),
                "{:?}: {result:?}",
                String::from_utf8_lossy(answer)
            );
        }
    }

    #[tokio::test]
    async fn a_pooled_connection_the_server_closed_while_idle_is_left_unused() {
        let server = Server::start(vec![
            Reply {
                pieces: vec![OK],
                after: After::Close,
            },
            reply(OK),
        ])
        .await;
        let client = server.client(1024);
        client.post("/a", b"1").await.unwrap();
        server.closed.notified().await;
        // Long enough for the runtime to see the close.
        tokio::time::sleep(Duration::from_millis(20)).await;
        client.post("/a", b"2").await.unwrap();
        assert_eq!((server.connections(), server.requests()), (2, 2));
    }

    #[tokio::test]
    async fn a_pooled_connection_lost_after_writing_is_no_answer_and_never_retried() {
        let lost = Reply {
            pieces: Vec::new(),
            after: After::Close,
        };
        let server = Server::start(vec![reply(OK), lost, reply(OK)]).await;
        let client = server.client(1024);
        client.post("/a", b"1").await.unwrap();
        // The server reads the second request on the same connection and
        // closes it without an answer.
        let result = client.post("/a", b"2").await;
        assert!(matches!(result, Err(CallError::NoAnswer(_))), "{result:?}");
        assert_eq!((server.connections(), server.requests()), (1, 2));
        // The lost connection is not pooled: the next call connects anew.
        client.post("/a", b"3").await.unwrap();
        assert_eq!((server.connections(), server.requests()), (2, 3));
    }

    #[tokio::test]
    async fn a_server_that_never_finishes_the_tls_handshake_was_not_sent() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let settings = Settings {
            connect_timeout: Duration::from_millis(100),
            request_timeout: Duration::from_secs(5),
            content_type: "text/xml",
            max_body: 1024,
        };
        let tls = crate::transport::tls_client_config(None, &[]).unwrap();
        let client = Http1::new(&format!("https://{addr}"), tls, settings).unwrap();
        let result = client.post("/a", b"1").await;
        assert!(matches!(result, Err(CallError::NotSent(_))), "{result:?}");
        drop(listener);
    }
}
