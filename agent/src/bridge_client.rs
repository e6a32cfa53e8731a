//! The forwarder's HTTP client for the bridge: HTTP/1.1, plain or TLS (rustls with the `ring`
//! provider, trusting `--bridge-ca-file` or the system's roots), one pooled connection reused
//! batch after batch, every request bounded in time.
//!
//! Why not reqwest: reqwest 0.13's rustls backend either brings aws-lc-rs (a C build, ~1.5 MB
//! more in this binary) or, without it, panics when any reqwest client in the same build is
//! created before a process-wide crypto provider is installed — which feature unification would
//! spread to every crate of the workspace. hyper-rustls takes a rustls configuration as it is.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use secrecy::{ExposeSecret as _, SecretString};

/// How long an unused connection to the bridge is kept.
const POOL_IDLE: Duration = Duration::from_secs(5);

/// Most bytes of a bridge answer read (answers are short JSON).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the bridge URL {0:?} is not an http:// or https:// URL")]
    Url(String),
    #[error(transparent)]
    Tls(#[from] emberline_listen::TlsError),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("request failed: {0}")]
    Request(String),
}

/// The bridge's answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

#[derive(Clone)]
pub struct BridgeClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
    token: Option<SecretString>,
    timeout: Duration,
}

impl std::fmt::Debug for BridgeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeClient")
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl BridgeClient {
    /// A client for the bridge at `base` (`http://…` or `https://…`, no trailing slash).
    pub fn new(
        base: &str,
        ca_file: Option<&Path>,
        token: Option<SecretString>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Url(base.to_owned()));
        }
        let tls = emberline_listen::tls::client_config(ca_file)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        // The bridge closes a connection idle for its header timeout (10 s by default); drop ours
        // first, so that a request is never sent on a connection the bridge is closing.
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(connector);
        Ok(Self {
            client,
            base: base.to_owned(),
            token,
            timeout,
        })
    }

    /// `POST {base}{path}` with the agent's bearer token; the whole exchange within the timeout.
    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        content_encoding: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Answer, ClientError> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}{path}", self.base))
            .header(CONTENT_TYPE, content_type);
        if let Some(encoding) = content_encoding {
            request = request.header(CONTENT_ENCODING, encoding);
        }
        if let Some(token) = &self.token {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
                .map_err(|_| {
                    ClientError::Request("the agent token is not a valid header".into())
                })?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|error| ClientError::Url(error.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|error| ClientError::Request(describe(&error)))?;
            let (parts, body) = response.into_parts();
            let bytes = Limited::new(body, MAX_ANSWER_BYTES)
                .collect()
                .await
                .map(|collected| collected.to_bytes())
                .unwrap_or_default();
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body: String::from_utf8_lossy(&bytes).into_owned(),
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout(self.timeout))?
    }
}

/// The error and its causes on one line (hyper's own message is only "client error (Connect)").
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
