//! What the agent's and the bridge's listeners share (design §7: "TLS (rustls) on listeners when
//! a certificate is configured").
//!
//! # How it fits
//! - [`tls`] turns a certificate chain and a private key (PEM files) into an [`Acceptor`]: TLS
//!   1.3 and 1.2 with rustls and its `ring` provider, or plain TCP when no certificate is
//!   configured. It also builds the client configuration the agent's forwarder uses to reach a
//!   TLS bridge (a CA file, or the system's roots).
//! - [`Stream`] is what an accepted connection is, plain or TLS, so the MQTT session and the HTTP
//!   server read and write it the same way.
//! - [`http::serve`] is the HTTP/1.1 accept loop of the agent and the bridge: a TLS handshake
//!   within a bound, then hyper with a header-read timeout, so a client that opens a connection
//!   and stalls (slow loris) is disconnected; graceful shutdown on a cancellation token.
//!
//! # Invariants
//! - A handshake or a request head that does not arrive within its bound closes the connection;
//!   no connection waits on a silent client forever before its first request.
//! - One accept loop never waits on one client: handshakes run in the connection's own task.

pub mod http;
mod stream;
pub mod tls;

pub use stream::Stream;
pub use tls::{Acceptor, TlsError};
