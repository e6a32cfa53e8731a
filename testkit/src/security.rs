//! What the services' security tests share: a free address to listen on, a CA and a certificate
//! it signed (rcgen), slow clients that must be cut off, and a search of logs for secrets.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};

/// How much later than its bound a slow client may be cut off: the machine may be busy, and the
/// bound is what is tested, not the speed.
pub const SLACK: Duration = Duration::from_secs(5);

/// HTTP clients that stall before their request head is whole: (case, bytes sent first). Every
/// listener cuts them off after its header bound.
pub const SLOW_HEADS: [(&str, &[u8]); 2] = [
    ("nothing", b""),
    (
        "half a request head",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nAcc",
    ),
];

/// Clients of a TLS listener that stall in the handshake (the header bound covers it).
pub const SLOW_HANDSHAKES: [(&str, &[u8]); 2] = [
    ("nothing", b""),
    ("half a TLS record header", &[0x16, 0x03, 0x01]),
];

/// `127.0.0.1` and a port that is free right now.
pub fn free_address() -> SocketAddr {
    let port = crate::free_port().expect("no free port on 127.0.0.1");
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A CA and a certificate it signed for `localhost` and `127.0.0.1`, as PEM files.
#[derive(Debug, Clone)]
pub struct Certs {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Certs {
    /// Makes them in `dir` (`ca.pem`, `cert.pem`, `key.pem`).
    pub fn create(dir: &Path) -> Self {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        // A name of its own: with rcgen's default for both, the leaf would look self-signed.
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "emberline test CA");
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA certificate");
        let key = rcgen::KeyPair::generate().expect("key");
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let params = rcgen::CertificateParams::new(names).expect("certificate params");
        let cert = params.signed_by(&key, &ca).expect("certificate");
        let certs = Self {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        for (path, pem) in [
            (&certs.ca, ca.pem()),
            (&certs.cert, cert.pem()),
            (&certs.key, key.serialize_pem()),
        ] {
            std::fs::write(path, pem).expect("cannot write a PEM file");
        }
        certs
    }

    /// `--tls-cert` and `--tls-key` with these files, for a binary's command line.
    pub fn flags(&self) -> [String; 4] {
        let path = |p: &Path| p.to_str().expect("a UTF-8 path").to_owned();
        [
            "--tls-cert".into(),
            path(&self.cert),
            "--tls-key".into(),
            path(&self.key),
        ]
    }
}

/// `curl` with `options` (e.g. `--cacert ca.pem`, headers, a body) on `url`: the status code it
/// got, `000` when there was no HTTP answer at all (a refused certificate, a closed connection).
pub fn curl(options: &[&str], url: &str) -> String {
    let output = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(["--max-time", "10"])
        .args(options)
        .arg(url)
        .output()
        .expect("curl must be installed");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Panics if `text` (a log, a metrics page) holds any of `secrets`, naming `what` it is.
pub fn assert_no_secrets(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !text.contains(secret),
            "{what} contains the secret {secret:?}"
        );
    }
}

/// Sends `request` with `auth` as its `Authorization` header (none for `None`) and checks that
/// the answer is `expected`: one row of a table of credentials.
pub async fn assert_auth(request: reqwest::RequestBuilder, auth: Option<&str>, expected: u16) {
    let request = match auth {
        Some(auth) => request.header("authorization", auth),
        None => request,
    };
    let response = request.send().await.expect("no answer");
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(status, expected, "with {auth:?}: {body}");
}

/// What every security table ends with: `metrics` (the service's `/metrics` page, whose series
/// start with `family`) and `logs` (its whole debug-level log) hold none of `secrets`.
pub fn assert_secrets_kept(metrics: &str, family: &str, logs: &str, secrets: &[&str]) {
    assert!(
        metrics.contains(family),
        "not the service's metrics: {metrics}"
    );
    assert_no_secrets("/metrics", metrics, secrets);
    assert!(
        logs.contains("DEBUG"),
        "logs must be at debug level: {logs}"
    );
    assert_no_secrets("the debug log", logs, secrets);
}

/// A TLS listener at `address` serving `certs`: each of `paths` answers 200 to a client that
/// trusts the CA; one that does not, or speaks plain HTTP, gets no HTTP answer at all; one that
/// stalls in the handshake ([`SLOW_HANDSHAKES`]) is cut off after `bound`.
pub async fn assert_tls_listener(
    address: SocketAddr,
    certs: &Certs,
    paths: &[&str],
    bound: Duration,
) {
    let ca = certs.ca.to_str().expect("a UTF-8 path");
    let https = |path: &str| format!("https://localhost:{}{path}", address.port());
    for path in paths {
        assert_eq!(curl(&["--cacert", ca], &https(path)), "200", "{path}");
    }
    assert_eq!(
        curl(&[], &https(paths[0])),
        "000",
        "a CA the client does not trust"
    );
    let plain = format!("http://{address}{}", paths[0]);
    assert_eq!(curl(&[], &plain), "000", "plain HTTP on the TLS port");
    for (case, partial) in SLOW_HANDSHAKES {
        assert_cut_off(case, address, partial, bound).await;
    }
}

/// Reads until the peer closes (or resets); what it sent, or `None` if it is still open after
/// `within`.
pub async fn closed_within(
    stream: &mut (impl AsyncRead + Unpin),
    within: Duration,
) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(within, stream.read_to_end(&mut seen)).await;
    read.is_ok().then_some(seen)
}

/// A slow client: connects to `address`, sends `partial` and goes quiet. The server must close
/// the connection once `bound` has passed — not before nine tenths of it, and no later than
/// [`SLACK`] after it. Returns what the server wrote before closing.
pub async fn assert_cut_off(
    case: &str,
    address: SocketAddr,
    partial: &[u8],
    bound: Duration,
) -> Vec<u8> {
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .unwrap_or_else(|error| panic!("{case}: cannot connect to {address}: {error}"));
    stream
        .write_all(partial)
        .await
        .unwrap_or_else(|error| panic!("{case}: cannot send: {error}"));
    let seen = closed_within(&mut stream, bound + SLACK).await;
    let seen =
        seen.unwrap_or_else(|| panic!("{case}: still connected {:?} after its bound", SLACK));
    let elapsed = started.elapsed();
    assert!(
        elapsed >= bound.mul_f64(0.9),
        "{case}: closed after {elapsed:?}, before its bound of {bound:?}"
    );
    seen
}

/// Every slow HTTP client is cut off: each of [`SLOW_HEADS`] after `head_bound`, and one that
/// sends a whole request head and then `half_body` (the head and part of its body) after
/// `body_bound`, answered 408 `body_timeout`.
pub async fn assert_slow_http_clients_cut_off(
    address: SocketAddr,
    (head_bound, body_bound): (Duration, Duration),
    half_body: &[u8],
) {
    for (case, partial) in SLOW_HEADS {
        assert_cut_off(case, address, partial, head_bound).await;
    }
    let case = "a request head, then half its body";
    let answer = assert_cut_off(case, address, half_body, body_bound).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{case}: {answer}");
    assert!(answer.contains("body_timeout"), "{case}: {answer}");
}

/// Connects to `address` and sends `head`, then `body` in three pieces 200 ms apart: a slow
/// client that still finishes well within a bound of a second or more. Returns the stream, for
/// the answer.
pub async fn trickle(address: SocketAddr, head: &[u8], body: &[u8]) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {address}: {error}"));
    stream.write_all(head).await.expect("cannot send the head");
    for piece in body.chunks(body.len().div_ceil(3).max(1)) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        stream.write_all(piece).await.expect("cannot send the body");
    }
    stream
}

/// The first bytes the peer answers (one read, within [`SLACK`] and then some).
pub async fn first_answer(stream: &mut (impl AsyncRead + Unpin)) -> String {
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(SLACK * 6, stream.read(&mut answer));
    let n = read
        .await
        .expect("no answer")
        .expect("cannot read the answer");
    String::from_utf8_lossy(&answer[..n]).into_owned()
}
