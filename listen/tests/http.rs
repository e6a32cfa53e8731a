//! The shared HTTP accept loop on a real socket: a request body that stalls is answered 408 and
//! its connection closed within the body bound; one that keeps coming within the bound is served;
//! a long response (what the dashboard's live stream is) outlives both bounds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest as _, Request};
use axum::http::StatusCode;
use axum::routing::{get, post};
use emberline_listen::Acceptor;
use emberline_listen::http::{HttpOptions, is_body_timeout, serve};
use emberline_testkit::{assert_cut_off, closed_within};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

/// The header-read and body bounds of the server under test.
const BOUND: Duration = Duration::from_secs(2);
/// An answer far larger than the socket buffers on both sides.
const LARGE: usize = 64 << 20;

/// A handler that reads the body itself and names a timeout in its own words.
async fn own(request: Request) -> (StatusCode, String) {
    match Bytes::from_request(request, &()).await {
        Ok(body) => (StatusCode::OK, body.len().to_string()),
        Err(rejection) if is_body_timeout(&rejection) => {
            (StatusCode::REQUEST_TIMEOUT, "own answer".into())
        }
        Err(rejection) => (StatusCode::BAD_REQUEST, rejection.to_string()),
    }
}

/// Four chunks a second apart: a response that lasts twice the bounds.
async fn slow_stream() -> Body {
    let chunks = futures_util::stream::unfold(0, |n| async move {
        if n == 4 {
            return None;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        Some((Ok::<_, std::io::Error>(format!("chunk-{n};")), n + 1))
    });
    Body::from_stream(chunks)
}

async fn server() -> (SocketAddr, CancellationToken) {
    emberline_testkit::init_logs();
    let router = Router::new()
        .route(
            "/echo",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .route("/own", post(own))
        .route("/stream", get(slow_stream))
        .route("/large", get(|| async { vec![b'x'; LARGE] }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let options = HttpOptions::new(BOUND, BOUND);
    tokio::spawn(serve(
        listener,
        router,
        Acceptor::Plain,
        options,
        shutdown.clone(),
    ));
    (address, shutdown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_answered_408_and_the_connection_closed() {
    let (address, _shutdown) = server().await;
    let length = "Host: x\r\nContent-Length: 100\r\n\r\n0123456789";
    let chunked = "Host: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel";
    // (case, request sent before stalling, text the answer must hold)
    let table = [
        (
            "axum's Bytes extractor",
            format!("POST /echo HTTP/1.1\r\n{length}"),
            "body_timeout",
        ),
        (
            "a chunked body",
            format!("POST /echo HTTP/1.1\r\n{chunked}"),
            "body_timeout",
        ),
        (
            "a handler's own 408",
            format!("POST /own HTTP/1.1\r\n{length}"),
            "own answer",
        ),
    ];
    for (case, partial, says) in table {
        let answer = assert_cut_off(case, address, partial.as_bytes(), BOUND).await;
        let answer = String::from_utf8_lossy(&answer).to_lowercase();
        assert!(answer.starts_with("http/1.1 408"), "{case}: {answer}");
        assert!(answer.contains("connection: close"), "{case}: {answer}");
        assert!(answer.contains(says), "{case}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_keeps_coming_within_the_bound_is_served() {
    let (address, _shutdown) = server().await;
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    for round in 0..2 {
        stream
            .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\n")
            .await
            .unwrap();
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            stream.write_all(b"0123456789").await.unwrap();
        }
        let mut answer = Vec::new();
        while !answer.ends_with(b"\r\n\r\n30") {
            let read = stream.read_buf(&mut answer);
            let n = tokio::time::timeout(BOUND * 5, read)
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&answer));
        }
        let answer = String::from_utf8_lossy(&answer).to_lowercase();
        assert!(
            answer.starts_with("http/1.1 200"),
            "round {round}: {answer}"
        );
        assert!(
            !answer.contains("connection: close"),
            "kept alive: {answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_response_outlives_both_bounds() {
    let (address, _shutdown) = server().await;
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = closed_within(&mut stream, Duration::from_secs(30))
        .await
        .expect("the response ends");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    for n in 0..4 {
        assert!(
            answer.contains(&format!("chunk-{n};")),
            "chunk {n}: {answer}"
        );
    }
}

/// A client that asks and never reads: once nothing of the answer has gone through for the
/// bound, the connection is closed (it was held for ever, and with it a graceful shutdown).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_cut_off() {
    let (address, _shutdown) = server().await;
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /large HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(BOUND * 2).await;
    // Closed by now: what is read is what the buffers held, then the end (or a reset).
    let mut read = 0usize;
    let mut chunk = vec![0; 1 << 16];
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => read += n,
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the connection was still open after {read} bytes"
    );
    assert!(read < LARGE, "the whole answer went through ({read} bytes)");
}
