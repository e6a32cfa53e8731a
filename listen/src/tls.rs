//! Certificates and keys into rustls configurations (the `ring` provider; TLS 1.3 and 1.2).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::Stream;

/// A TLS configuration that cannot be built; the message names the file and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read certificates from {path}: {reason}")]
    Certificates { path: PathBuf, reason: String },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("cannot read a private key from {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("the certificate {cert} and the key {key} do not make a TLS configuration: {reason}")]
    Server {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error("cannot build the TLS client configuration: {0}")]
    Client(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate of a PEM file (a chain: the leaf first, then intermediates).
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let error = |reason: String| TlsError::Certificates {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// A server configuration from a PEM certificate chain and its PEM private key (PKCS#8, PKCS#1
/// or SEC1). `alpn` lists the protocols offered (`http/1.1` for HTTP, none for MQTT).
pub fn server_config(cert: &Path, key: &Path, alpn: &[&[u8]]) -> Result<ServerConfig, TlsError> {
    let chain = certificates(cert)?;
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_owned(),
        reason: e.to_string(),
    })?;
    let server = |reason: String| TlsError::Server {
        cert: cert.to_owned(),
        key: key.to_owned(),
        reason,
    };
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| server(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| server(e.to_string()))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// A client configuration trusting the certificates of `ca` (PEM), or, without one, the
/// system's roots (what `update-ca-certificates` manages).
pub fn client_config(ca: Option<&Path>) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(path) => {
            for cert in certificates(path)? {
                roots.add(cert).map_err(|e| TlsError::Certificates {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            if let Some(error) = found.errors.first() {
                tracing::debug!(%error, "some system CA certificates could not be read");
            }
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            tracing::debug!(added, ignored, "system CA certificates");
        }
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Client(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// How a listener turns an accepted TCP connection into a [`Stream`].
#[derive(Clone)]
pub enum Acceptor {
    /// No certificate configured: plain TCP.
    Plain,
    Tls(TlsAcceptor),
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_tls() {
            "Acceptor::Tls"
        } else {
            "Acceptor::Plain"
        })
    }
}

impl Acceptor {
    /// TLS with `cert` and `key` when both are given, plain TCP when neither is.
    pub fn new(files: Option<(&Path, &Path)>, alpn: &[&[u8]]) -> Result<Self, TlsError> {
        let Some((cert, key)) = files else {
            return Ok(Self::Plain);
        };
        let config = server_config(cert, key, alpn)?;
        Ok(Self::Tls(TlsAcceptor::from(Arc::new(config))))
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Self::Tls(_))
    }

    /// The connection as this listener serves it; a TLS handshake must finish within
    /// `handshake_timeout` (a client that connects and says nothing is dropped).
    pub async fn accept(
        &self,
        tcp: TcpStream,
        handshake_timeout: Duration,
    ) -> std::io::Result<Stream> {
        match self {
            Self::Plain => Ok(Stream::Plain(tcp)),
            Self::Tls(acceptor) => {
                let stream = tokio::time::timeout(handshake_timeout, acceptor.accept(tcp))
                    .await
                    .map_err(|_| {
                        std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "no TLS handshake in time",
                        )
                    })??;
                Ok(Stream::Tls(Box::new(stream)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let error = Acceptor::new(Some((&missing, &missing)), &[]).unwrap_err();
        assert!(error.to_string().contains("missing.pem"), "{error}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let error = Acceptor::new(Some((&empty, &empty)), &[]).unwrap_err();
        assert!(matches!(error, TlsError::NoCertificate { .. }), "{error}");
        assert!(client_config(Some(&empty)).is_err());

        assert!(!Acceptor::new(None, &[]).unwrap().is_tls());
        assert!(client_config(None).is_ok(), "the system's roots");
    }
}
