//! Client connections are bounded: idle, slow-header and unfinished-body
//! connections are closed within their timeouts, a body declared too
//! large is refused before it is sent, and at the connection cap the API
//! still answers.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{App, TOKEN, closed_within, figure, openid, read_answer, send};
use tokio::io::AsyncWriteExt;

/// Short timeouts, so that the test sees them pass.
const SHORT: &str =
    "header_timeout_seconds = 1\nbody_timeout_seconds = 2\nidle_timeout_seconds = 2";

/// Long enough that no connection reaches a timeout during a test.
const PATIENT: &str =
    "header_timeout_seconds = 600\nbody_timeout_seconds = 600\nidle_timeout_seconds = 600";

/// Far more than any of the timeouts above: a connection still open then
/// is never closed.
const BOUND: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_slow_header_and_kept_alive_connections_are_closed_within_their_timeouts() {
    let mut app = App::start(SHORT).await;

    // Connects and sends nothing.
    let mut idle = app.connect().await;
    // Sends a head a byte every 200 ms, for ever: within the header
    // timeout of its first byte it is closed all the same.
    let slow = app.connect().await;
    let (mut slow_reader, mut slow_writer) = slow.into_split();
    let trickle = tokio::spawn(async move {
        let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";
        if slow_writer.write_all(head).await.is_err() {
            return;
        }
        for _ in 0..300 {
            if slow_writer.write_all(b"a").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    // Kept alive after an answer, then silent.
    let mut kept = app.connect().await;
    send(&mut kept, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(read_answer(&mut kept, BOUND).await.status, 200);

    assert!(
        closed_within(&mut idle, BOUND).await,
        "an idle connection is still open"
    );
    assert!(
        closed_within(&mut kept, BOUND).await,
        "a kept-alive connection is still open"
    );
    let mut closed = false;
    let mut chunk = [0u8; 64];
    if let Ok(result) = tokio::time::timeout(BOUND, async {
        use tokio::io::AsyncReadExt;
        slow_reader.read(&mut chunk).await
    })
    .await
    {
        closed = matches!(result, Ok(0) | Err(_));
    }
    assert!(closed, "a connection sending its head slowly is still open");
    trickle.abort();

    let metrics = app.metrics().await;
    assert!(
        figure(
            &metrics,
            "hongbao_http_connections_closed_total{reason=\"idle\"}"
        ) >= 2,
        "{metrics}"
    );
    assert!(
        figure(
            &metrics,
            "hongbao_http_connections_closed_total{reason=\"header_timeout\"}"
        ) >= 1,
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_body_is_answered_408_and_nothing_is_stored() {
    let mut app = App::start(SHORT).await;
    let mut stream = app.connect().await;
    let head = format!(
        "POST /v1/redpacks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"re_openid\": "
    );
    send(&mut stream, head.as_bytes()).await;
    let answer = read_answer(&mut stream, BOUND).await;
    assert_eq!(answer.status, 408, "{answer:?}");
    assert_eq!(answer.json()["error"]["code"], "body_timeout", "{answer:?}");
    assert!(
        closed_within(&mut stream, BOUND).await,
        "the connection stays open after its body timed out"
    );
    let (_, list) = app.get(Some(TOKEN), "/v1/redpacks").await;
    assert_eq!(list["meta"]["total_count"], 0);
    let metrics = app.metrics().await;
    assert_eq!(figure(&metrics, "hongbao_http_body_timeouts_total"), 1);
    app.stop().await;
}

/// A campaign whose report is some 7 MB, more than the socket buffers
/// hold; its merchant is paused, so the report stays as it is. Returns the
/// request for the report.
async fn big_report(app: &App) -> String {
    let (status, _) = app
        .post(Some(TOKEN), "/v1/merchants/main/pause", &json!({}))
        .await;
    assert_eq!(status, 200);
    let mut csv = String::from("openid,amount\n");
    for n in 0..60_000 {
        csv.push_str(&format!("{},1.00\n", openid(n)));
    }
    let upload = app
        .http
        .post(format!("{}/v1/campaigns?name=big-report", app.base))
        .bearer_auth(TOKEN)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let (status, campaign) = support::answer(upload).await;
    assert_eq!(status, 201, "{campaign}");
    format!(
        "GET /v1/campaigns/{}/report.csv HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n",
        campaign["id"].as_str().unwrap()
    )
}

/// A connection whose receive window is `window` bytes.
async fn narrow(app: &App, window: u32) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(window).unwrap();
    socket.connect(app.addr).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_take_its_answer_is_disconnected() {
    let mut app = App::start(SHORT).await;
    let request = big_report(&app).await;
    // Asks for it, with a small receive window, and never reads.
    let mut stream = narrow(&app, 4096).await;
    send(&mut stream, request.as_bytes()).await;
    let series = "hongbao_http_connections_closed_total{reason=\"send_timeout\"}";
    let mut disconnected = false;
    for _ in 0..(BOUND.as_millis() / 250) {
        let metrics = app.metrics().await;
        if figure(&metrics, series) >= 1 {
            disconnected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(disconnected, "a client that reads nothing is still served");
    drop(stream);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_of_a_long_answer_gets_all_of_it() {
    // The answer takes several times the idle timeout to take: the
    // connection is busy writing, not idle. (The send timeout is long: the
    // kernel wakes a writer only once a third of its buffer is free.)
    let mut app = App::start(
        "header_timeout_seconds = 1\nbody_timeout_seconds = 30\nidle_timeout_seconds = 2",
    )
    .await;
    let request = big_report(&app).await;
    let mut stream = narrow(&app, 64 * 1024).await;
    send(&mut stream, request.as_bytes()).await;
    let mut received = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let complete = loop {
        use tokio::io::AsyncReadExt;
        let n = tokio::time::timeout(BOUND, stream.read(&mut chunk))
            .await
            .expect("the answer stalled")
            .unwrap_or(0);
        if n == 0 {
            break false;
        }
        received.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&received[..received.len().min(1024)]).to_string();
        if let Some((head, _)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .expect("a Content-Length");
            if received.len() >= head.len() + 4 + length {
                break true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        complete,
        "the answer was cut off after {} bytes",
        received.len()
    );
    assert!(received.starts_with(b"HTTP/1.1 200"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_declared_too_large_is_refused_before_it_is_sent() {
    let mut app = App::start(PATIENT).await;
    for (path, length, limit) in [
        ("/v1/redpacks", "10000000000", "65536"),
        ("/v1/activities", "65537", "65536"),
        ("/v1/campaigns?name=big", "40000000", "33554432"),
    ] {
        // Without the body: the answer must not wait for it.
        let mut stream = app.connect().await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        );
        send(&mut stream, head.as_bytes()).await;
        let answer = read_answer(&mut stream, BOUND).await;
        assert_eq!(answer.status, 413, "{path}: {answer:?}");
        let error = answer.json();
        assert_eq!(error["error"]["code"], "body_too_large", "{path}");
        assert!(
            error["error"]["message"].as_str().unwrap().contains(limit),
            "{path}: {error}"
        );
        assert!(!error["error"]["zh_message"].as_str().unwrap().is_empty());
    }
    // A client that asks first (Expect: 100-continue) is told 413 instead
    // of being invited to send.
    let mut stream = app.connect().await;
    let head = format!(
        "POST /v1/redpacks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Expect: 100-continue\r\nContent-Length: 10000000000\r\n\r\n"
    );
    send(&mut stream, head.as_bytes()).await;
    let answer = read_answer(&mut stream, BOUND).await;
    assert_eq!(answer.status, 413, "{answer:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_still_sending_a_refused_body_gets_the_413() {
    let mut app = App::start(PATIENT).await;
    let mut stream = app.connect().await;
    let length = 300_000;
    let head = format!(
        "POST /v1/redpacks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    );
    send(&mut stream, head.as_bytes()).await;
    // The 413 is answered from the head; the client, not reading yet, goes
    // on sending the body it declared. Closed at once, the server's socket
    // would answer those bytes with a reset, and the reset would throw away
    // the 413 waiting in the client's buffer.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for chunk in vec![b'x'; length].chunks(16 * 1024) {
        send(&mut stream, chunk).await;
    }
    let answer = read_answer(&mut stream, BOUND).await;
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(answer.json()["error"]["code"], "body_too_large");
    app.stop().await;
}

/// Whether an answer's head says `Connection: close`.
fn says_close(head: &str) -> bool {
    head.lines().any(|l| {
        l.split_once(':').is_some_and(|(name, value)| {
            name.eq_ignore_ascii_case("connection") && value.trim().eq_ignore_ascii_case("close")
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_given_before_the_body_is_read_says_the_connection_closes() {
    let mut app = App::start(PATIENT).await;
    // Part of a body is on the way when the answer is given: the server
    // ends the connection after it, so the answer must say so, or the
    // client sends its next request into a closing connection.
    for (what, head) in [
        (
            "413 from Content-Length",
            format!(
                "POST /v1/redpacks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
                 Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
            ),
        ),
        (
            "401 without a key",
            "POST /v1/redpacks HTTP/1.1\r\nHost: x\r\n\
             Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n"
                .to_owned(),
        ),
    ] {
        let mut stream = app.connect().await;
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&[b' '; 2000]);
        send(&mut stream, &bytes).await;
        let answer = read_answer(&mut stream, BOUND).await;
        assert!(matches!(answer.status, 401 | 413), "{what}: {answer:?}");
        assert!(says_close(&answer.head), "{what}: {}", answer.head);
        assert!(
            closed_within(&mut stream, BOUND).await,
            "{what}: still open"
        );
    }
    // A body read to its end keeps the connection for the next request.
    let mut stream = app.connect().await;
    let body = format!(r#"{{"re_openid": "{}", "total_amount": 0}}"#, openid(1));
    let request = format!(
        "POST /v1/redpacks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    send(&mut stream, request.as_bytes()).await;
    let answer = read_answer(&mut stream, BOUND).await;
    assert_eq!(answer.status, 422, "{answer:?}");
    assert!(!says_close(&answer.head), "{}", answer.head);
    send(&mut stream, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(read_answer(&mut stream, BOUND).await.status, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_idle_connections_make_room_and_payouts_go_on() {
    let mut app = App::start(&format!("{PATIENT}\nmax_connections = 8")).await;
    // Five times the cap of connections that never send a thing, each
    // made to wait until the server has taken it.
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(app.connect().await);
    }
    let (status, health) = app.get(None, "/healthz").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    let (status, record) = app
        .post(
            Some(TOKEN),
            "/v1/redpacks?wait=20",
            &json!({"re_openid": openid(1), "total_amount": 188}),
        )
        .await;
    assert_eq!(status, 201, "{record}");
    assert_eq!(record["status"], "sent", "{record}");

    let metrics = app.metrics().await;
    assert!(
        figure(&metrics, "hongbao_http_connections") <= 8,
        "{metrics}"
    );
    assert!(
        figure(
            &metrics,
            "hongbao_http_connections_closed_total{reason=\"evicted\"}"
        ) >= 32,
        "{metrics}"
    );
    // The idle connections were closed to make room, oldest first.
    let mut closed = 0;
    for stream in &mut idle[..20] {
        if closed_within(stream, Duration::from_secs(5)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 20, "the oldest idle connections were not closed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_lets_a_request_in_progress_finish_and_closes_idle_connections() {
    let mut app = App::start_with(PATIENT, |sandbox| {
        sandbox.faults.latency = hongbao_sandbox::Probability::ALWAYS;
        sandbox.faults.latency_ms = 1_500;
    })
    .await;
    let mut idle = app.connect().await;
    let http = app.http.clone();
    let url = format!("{}/v1/redpacks?wait=20", app.base);
    let request = tokio::spawn(async move {
        let response = http
            .post(url)
            .bearer_auth(TOKEN)
            .json(&json!({"re_openid": openid(2), "total_amount": 188}))
            .send()
            .await
            .unwrap();
        support::answer(response).await
    });
    // Stop once WeChat has the call.
    for _ in 0..200 {
        let calls: u64 = app.sandbox.with(|s| s.counters()).requests.values().sum();
        if calls > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    app.stop().await;
    let (status, record) = request.await.unwrap();
    assert_eq!(status, 201, "{record}");
    assert_eq!(record["status"], "sent", "{record}");
    assert!(
        closed_within(&mut idle, Duration::from_secs(5)).await,
        "an idle connection outlived the stop"
    );
}
