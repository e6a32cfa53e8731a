//! What every Emberline listener shares — the agent's, the bridge's, the hub roles' and the
//! dashboard's (design §7: "TLS (rustls) on listeners when
//! a certificate is configured").
//!
//! # How it fits
//! - [`tls`] turns a certificate chain and a private key (PEM files) into an [`Acceptor`]: TLS
//!   1.3 and 1.2 with rustls and its `ring` provider, or plain TCP when no certificate is
//!   configured. It also builds the client configuration the agent's forwarder uses to reach a
//!   TLS bridge (a CA file, or the system's roots).
//! - [`Stream`] is what an accepted connection is, plain or TLS, so the MQTT session and the HTTP
//!   server read and write it the same way.
//! - [`http::serve`] is the HTTP/1.1 accept loop of every service: a TLS handshake within a
//!   bound, then hyper with a header-read timeout, and a deadline on each request's body, so a
//!   client that opens a connection and stalls (slow loris), before or after its request head,
//!   is disconnected; graceful shutdown on a cancellation token.
//!
//! # Invariants
//! - A handshake, a request head or a request body that does not arrive within its bound closes
//!   the connection (a body past its bound is answered 408 first); no connection waits on a
//!   silent client forever. Responses are not bounded: a long-lived stream is the server's
//!   choice, not the client's.
//! - One accept loop never waits on one client: handshakes run in the connection's own task.

pub mod http;
mod stream;
pub mod tls;

pub use stream::Stream;
pub use tls::{Acceptor, TlsError};
