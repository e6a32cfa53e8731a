//! Readiness: a service is ready when `GET /readyz` answers 200.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::DemoError;
use super::child::Child;

/// Whether `GET {path}` on `address` answers with status 200 right now.
pub fn answers_ok(address: SocketAddr, path: &str) -> bool {
    let attempt = || -> std::io::Result<bool> {
        let timeout = Duration::from_secs(2);
        let mut stream = TcpStream::connect_timeout(&address, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
        )?;
        let mut head = [0u8; 16];
        let mut read = 0;
        while read < head.len() {
            match stream.read(&mut head[read..])? {
                0 => break,
                n => read += n,
            }
        }
        Ok(head[..read].starts_with(b"HTTP/1.1 200") || head[..read].starts_with(b"HTTP/1.0 200"))
    };
    attempt().unwrap_or(false)
}

/// Waits up to `patience` for `child` to answer `/readyz` on `address`; fails at once if it exits.
pub fn wait_ready(
    child: &mut Child,
    address: SocketAddr,
    patience: Duration,
) -> Result<(), DemoError> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.exited() {
            return Err(DemoError::Died {
                name: child.name().to_owned(),
                status: status.to_string(),
                log: child.log().to_owned(),
            });
        }
        if answers_ok(address, "/readyz") {
            return Ok(());
        }
        if started.elapsed() > patience {
            return Err(DemoError::NotReady {
                name: child.name().to_owned(),
                address,
                waited: patience,
                log: child.log().to_owned(),
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
