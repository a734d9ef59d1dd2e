//! The HTTP listener: hyper's HTTP/1 server on an accept loop of our own,
//! so that every client connection is bounded in time and in number (a
//! plain accept loop keeps idle and half-sent connections for ever, and
//! accepts until the process runs out of file descriptors):
//!
//! - a request head must arrive whole within `header_timeout` of its first
//!   byte;
//! - a request body within `body_timeout` of its head (the handler answers
//!   `408 body_timeout`), and a client must take our answer: a write that
//!   cannot progress for `body_timeout` closes the connection;
//! - a connection waits at most `idle_timeout` for its next request;
//! - at most `max_connections` are open. At the cap, the connection that
//!   has been waiting longest without a request in progress is closed to
//!   make room (as nginx reuses keep-alive connections); when every one is
//!   busy, new connections wait in the kernel's backlog, which costs no
//!   descriptor, so the dispatcher's database and WeChat connections are
//!   never starved of them.
//!
//! Stopping closes the listener, closes idle connections at once and lets
//! those with a request in progress finish it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use hongbao_core::config::ServerConfig;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, Sleep};

/// How long stopping waits for requests in progress: longer than the
/// longest `?wait` (60 s).
const DRAIN: Duration = Duration::from_secs(70);

/// The bounds of client connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// From a request head's first byte to its end.
    pub header_timeout: Duration,
    /// From a request head to the end of its body; and the longest a write
    /// to a client may stall.
    pub body_timeout: Duration,
    /// Between requests on a kept-alive connection (and before the first).
    pub idle_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

impl Limits {
    /// The limits `[server]` sets, with the connection cap derived from the
    /// open-file limit unless it is given.
    pub fn of(server: &ServerConfig) -> Limits {
        Limits {
            header_timeout: server.header_timeout,
            body_timeout: server.body_timeout,
            idle_timeout: server.idle_timeout,
            max_connections: server
                .max_connections
                .map_or_else(default_max_connections, |n| {
                    usize::try_from(n).unwrap_or(usize::MAX)
                }),
        }
    }
}

/// Half the process's open-file limit (at least 16, at most 65,536): the
/// other half stays for the database, WeChat and the embedded sandbox.
pub fn default_max_connections() -> usize {
    #[cfg(unix)]
    {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        match limit.current {
            Some(n) => usize::try_from(n / 2)
                .unwrap_or(usize::MAX)
                .clamp(16, 65_536),
            None => 65_536,
        }
    }
    #[cfg(not(unix))]
    {
        1_024
    }
}

/// Why the listener closed a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Closed {
    /// No request within `idle_timeout`.
    Idle,
    /// A request head begun but not finished within `header_timeout`.
    Header,
    /// The client did not take an answer within `body_timeout`.
    Send,
    /// Room was needed for a new connection.
    Evicted,
}

impl Closed {
    const ALL: [Closed; 4] = [Closed::Idle, Closed::Header, Closed::Send, Closed::Evicted];

    fn label(self) -> &'static str {
        match self {
            Closed::Idle => "idle",
            Closed::Header => "header_timeout",
            Closed::Send => "send_timeout",
            Closed::Evicted => "evicted",
        }
    }
}

/// What the listener counts, for `/metrics`.
#[derive(Debug, Default)]
pub struct HttpStats {
    accepted: AtomicU64,
    open: AtomicU64,
    closed: [AtomicU64; 4],
    body_timeouts: AtomicU64,
}

impl HttpStats {
    fn closed(&self, why: Closed) {
        let at = Closed::ALL.iter().position(|c| *c == why).unwrap_or(0);
        self.closed[at].fetch_add(1, Ordering::Relaxed);
    }

    /// The figures in Prometheus' text format.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP hongbao_http_connections Client connections open.\n# TYPE hongbao_http_connections gauge\nhongbao_http_connections {}",
            self.open.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP hongbao_http_connections_accepted Client connections accepted.\n# TYPE hongbao_http_connections_accepted counter\nhongbao_http_connections_accepted_total {}",
            self.accepted.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP hongbao_http_connections_closed Client connections closed by a limit, by reason.\n# TYPE hongbao_http_connections_closed counter"
        );
        for (why, count) in Closed::ALL.iter().zip(&self.closed) {
            let _ = writeln!(
                out,
                "hongbao_http_connections_closed_total{{reason=\"{}\"}} {}",
                why.label(),
                count.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP hongbao_http_body_timeouts Request bodies that did not arrive in time (answered 408).\n# TYPE hongbao_http_body_timeouts counter\nhongbao_http_body_timeouts_total {}",
            self.body_timeouts.load(Ordering::Relaxed)
        );
        out
    }
}

/// Where a connection is between and within requests.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Waiting for a request, since then.
    Idle(Instant),
    /// A request head has begun arriving, then.
    Head(Instant),
    /// Requests in progress (head read, answer not yet written).
    Busy(usize),
}

/// One connection's state, shared by its reader and its service.
#[derive(Debug)]
struct Conn {
    id: u64,
    phase: Mutex<Phase>,
    /// Told to close when room is needed.
    evict: Notify,
    /// Already told.
    evicting: AtomicBool,
    /// The request in progress has a body its handler has not read to the
    /// end.
    body_unread: AtomicBool,
}

impl Conn {
    fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bytes_arrived(&self) {
        let mut phase = self.phase();
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Head(Instant::now());
        }
    }

    fn request_began(&self) {
        let mut phase = self.phase();
        *phase = match *phase {
            Phase::Busy(n) => Phase::Busy(n + 1),
            _ => Phase::Busy(1),
        };
    }

    fn request_ended(&self) {
        let mut phase = self.phase();
        *phase = match *phase {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle(Instant::now()),
        };
    }

    /// When a read that is waiting must give up, and why; `None` while a
    /// request is in progress (its body has its own deadline). An answer
    /// still being written counts as activity until `last_write`.
    fn read_deadline(&self, limits: &Limits, last_write: Instant) -> Option<(Instant, Closed)> {
        match *self.phase() {
            Phase::Idle(since) => Some((since.max(last_write) + limits.idle_timeout, Closed::Idle)),
            Phase::Head(since) => Some((since + limits.header_timeout, Closed::Header)),
            Phase::Busy(_) => None,
        }
    }

    /// Since when it has been without a request in progress.
    fn waiting_since(&self) -> Option<Instant> {
        match *self.phase() {
            Phase::Idle(since) | Phase::Head(since) => Some(since),
            Phase::Busy(_) => None,
        }
    }
}

/// The open connections.
#[derive(Debug, Default)]
struct Open {
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
}

impl Open {
    fn conns(&self) -> MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self) -> Arc<Conn> {
        let conn = Arc::new(Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            phase: Mutex::new(Phase::Idle(Instant::now())),
            evict: Notify::new(),
            evicting: AtomicBool::new(false),
            body_unread: AtomicBool::new(false),
        });
        self.conns().insert(conn.id, conn.clone());
        conn
    }

    fn remove(&self, id: u64) {
        self.conns().remove(&id);
    }

    /// Tells the connection waiting longest without a request to close;
    /// false when every connection is busy.
    fn evict_longest_waiting(&self) -> bool {
        let conns = self.conns();
        let victim = conns
            .values()
            .filter(|c| !c.evicting.load(Ordering::Relaxed))
            .filter_map(|c| c.waiting_since().map(|since| (since, c)))
            .min_by_key(|(since, _)| *since)
            .map(|(_, c)| c.clone());
        drop(conns);
        match victim {
            Some(conn) => {
                conn.evicting.store(true, Ordering::Relaxed);
                conn.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Serves `router` on `listener` within `limits` until `stop` turns true,
/// then lets requests in progress finish (at most [`DRAIN`]).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stats: Arc<HttpStats>,
    mut stop: watch::Receiver<bool>,
) {
    let max =
        u32::try_from(limits.max_connections.clamp(1, Semaphore::MAX_PERMITS)).unwrap_or(u32::MAX);
    let permits = Arc::new(Semaphore::new(max as usize));
    let open = Arc::new(Open::default());
    let mut accept_errors = 0u64;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors or similar: say so now and then,
                // and back off instead of spinning.
                if accept_errors.is_multiple_of(100) {
                    tracing::warn!(error = %e, "cannot accept a connection");
                }
                accept_errors += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(permit) = admit(&permits, &open, &stats, &mut stop).await else {
            break;
        };
        let _ = stream.set_nodelay(true);
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        stats.open.fetch_add(1, Ordering::Relaxed);
        let conn = open.add();
        tokio::spawn(connection(
            stream,
            conn,
            permit,
            router.clone(),
            limits,
            stats.clone(),
            stop.clone(),
            open.clone(),
        ));
    }
    // New connections are refused from here on.
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, permits.acquire_many(max)).await;
}

/// A place for one more connection: a free one, or one made by closing
/// the connection waiting longest; `None` when stopping.
async fn admit(
    permits: &Arc<Semaphore>,
    open: &Open,
    stats: &HttpStats,
    stop: &mut watch::Receiver<bool>,
) -> Option<OwnedSemaphorePermit> {
    // Bounded by the connections there are: each round closes one or waits.
    loop {
        if let Ok(permit) = permits.clone().try_acquire_owned() {
            return Some(permit);
        }
        if open.evict_longest_waiting() {
            stats.closed(Closed::Evicted);
        }
        tokio::select! {
            permit = permits.clone().acquire_owned() => return permit.ok(),
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = stop.wait_for(|stop| *stop) => return None,
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn connection(
    stream: TcpStream,
    conn: Arc<Conn>,
    permit: OwnedSemaphorePermit,
    router: Router,
    limits: Limits,
    stats: Arc<HttpStats>,
    mut stop: watch::Receiver<bool>,
    open: Arc<Open>,
) {
    let io = Guarded {
        stream,
        conn: conn.clone(),
        limits,
        stats: stats.clone(),
        read_timer: None,
        write_timer: None,
        last_write: Instant::now(),
    };
    let service = {
        let (conn, stats) = (conn.clone(), stats.clone());
        hyper::service::service_fn(move |request| {
            Box::pin(handle(
                router.clone(),
                conn.clone(),
                limits,
                stats.clone(),
                request,
            ))
        })
    };
    let mut connection = hyper::server::conn::http1::Builder::new()
        // Our reader keeps the time (idle and head separately); hyper's
        // own head timeout would count the idle time too.
        .header_read_timeout(None)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service);
    let mut closing = false;
    let ended = loop {
        tokio::select! {
            ended = std::future::poll_fn(|cx| connection.poll_without_shutdown(cx)) => break ended,
            _ = stop.wait_for(|stop| *stop), if !closing => {
                closing = true;
                Pin::new(&mut connection).graceful_shutdown();
            }
            () = conn.evict.notified(), if !closing => {
                closing = true;
                Pin::new(&mut connection).graceful_shutdown();
            }
        }
    };
    if ended.is_ok() && !closing {
        linger(connection.into_parts().io.into_inner().stream).await;
    }
    open.remove(conn.id);
    stats.open.fetch_sub(1, Ordering::Relaxed);
    drop(permit);
}

/// The most a closing connection reads and throws away, and for how long.
const LINGER_BYTES: usize = 1024 * 1024;
const LINGER_TIME: Duration = Duration::from_secs(2);

/// Closes a connection that hyper is done with as nginx's lingering close
/// does: the answer is sent (write side shut), then what the client still
/// sends is read and dropped until it closes too, within bounds. Closing
/// with unread data would send a reset, and a client still sending a body
/// that was refused (a 413 answered from `Content-Length`) would lose the
/// answer to it.
async fn linger(mut stream: TcpStream) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    if stream.shutdown().await.is_err() {
        return;
    }
    let mut buf = vec![0; 16 * 1024];
    let mut read = 0;
    let _ = tokio::time::timeout(LINGER_TIME, async {
        while read < LINGER_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    })
    .await;
}

/// One request: marks the connection busy until its answer is written,
/// and gives the body its deadline.
async fn handle(
    mut router: Router,
    conn: Arc<Conn>,
    limits: Limits,
    stats: Arc<HttpStats>,
    request: hyper::Request<Incoming>,
) -> Result<hyper::Response<Answer>, Infallible> {
    let busy = Busy::new(conn.clone());
    let deadline = Instant::now() + limits.body_timeout;
    let request = request.map(|body| {
        conn.body_unread
            .store(!body.is_end_stream(), Ordering::Relaxed);
        axum::body::Body::new(TimedBody {
            body,
            conn: conn.clone(),
            deadline,
            timer: None,
            stats,
            seconds: limits.body_timeout.as_secs(),
        })
    });
    let mut response = tower_service::Service::call(&mut router, request).await?;
    // An answer given before the body was read (a 413 from
    // `Content-Length`, a 401, a 404) ends the connection, and says so.
    // hyper would end it too once it finds the body unread, but it may
    // have sent the head without `Connection: close` by then: the client
    // would keep the connection and send its next request into one that
    // is closing.
    if conn.body_unread.load(Ordering::Relaxed) {
        response.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
    }
    Ok(response.map(|body| Answer { body, _busy: busy }))
}

/// While it lives, the connection has a request in progress.
#[derive(Debug)]
struct Busy(Arc<Conn>);

impl Busy {
    fn new(conn: Arc<Conn>) -> Busy {
        conn.request_began();
        Busy(conn)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// An answer's body, holding the connection busy until hyper has taken
/// all of it.
struct Answer {
    body: axum::body::Body,
    _busy: Busy,
}

impl Body for Answer {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request body that fails with [`BodyTimedOut`] once its deadline has
/// passed.
struct TimedBody {
    body: Incoming,
    /// Told when the body has been read to its end.
    conn: Arc<Conn>,
    deadline: Instant,
    /// Set the first time the body is not ready.
    timer: Option<Pin<Box<Sleep>>>,
    stats: Arc<HttpStats>,
    seconds: u64,
}

/// The request body did not arrive within `body_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {seconds} s")]
pub struct BodyTimedOut {
    /// The limit, in seconds.
    pub seconds: u64,
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            if frame.is_none() || this.body.is_end_stream() {
                this.conn.body_unread.store(false, Ordering::Relaxed);
            }
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.as_mut().poll(cx).is_ready() {
            this.stats.body_timeouts.fetch_add(1, Ordering::Relaxed);
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut {
                seconds: this.seconds,
            }))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The socket, with the idle, head and send deadlines.
struct Guarded {
    stream: TcpStream,
    conn: Arc<Conn>,
    limits: Limits,
    stats: Arc<HttpStats>,
    read_timer: Option<Pin<Box<Sleep>>>,
    /// Set while a write cannot progress.
    write_timer: Option<Pin<Box<Sleep>>>,
    /// When a write last progressed: hyper takes an answer's body whole
    /// before the client has read it, and a slow reader is not idle.
    last_write: Instant,
}

impl Guarded {
    fn timed_out(&self, why: Closed) -> io::Error {
        self.stats.closed(why);
        tracing::debug!(reason = why.label(), "closing a client connection");
        io::Error::new(io::ErrorKind::TimedOut, why.label())
    }

    fn wrote(&mut self, result: &Poll<io::Result<usize>>) {
        self.write_timer = None;
        if matches!(result, Poll::Ready(Ok(n)) if *n > 0) {
            self.last_write = Instant::now();
        }
    }

    /// A write could not progress: fails once it has not for `body_timeout`.
    fn write_stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let limit = self.limits.body_timeout;
        let timer = self
            .write_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if timer.as_mut().poll(cx).is_ready() {
            Poll::Ready(self.timed_out(Closed::Send))
        } else {
            Poll::Pending
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.conn.bytes_arrived();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if this.write_timer.is_some() {
                    // An answer is waiting for the client: the send timeout
                    // decides.
                    return Poll::Pending;
                }
                let Some((deadline, why)) = this.conn.read_deadline(&this.limits, this.last_write)
                else {
                    return Poll::Pending;
                };
                let timer = this
                    .read_timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                if timer.as_mut().poll(cx).is_ready() {
                    Poll::Ready(Err(this.timed_out(why)))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.stream).poll_write(cx, buf) {
            Poll::Pending => self.write_stalled(cx).map(Err),
            ready => {
                self.wrote(&ready);
                ready
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.stream).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.write_stalled(cx).map(Err),
            ready => {
                self.wrote(&ready);
                ready
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
