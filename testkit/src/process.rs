//! A service binary run as a process the way the security tests want it: debug-level JSON logs
//! kept in a file (to read back, and to search for secrets), killed when dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a binary may take to open its listeners.
const START_WITHIN: Duration = Duration::from_secs(20);

/// A running binary whose stderr (`RUST_LOG=debug`, `EMBERLINE_LOG_FORMAT=json`) goes to a file.
#[derive(Debug)]
pub struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `command` with debug-level JSON logs written to `log`; stdout is dropped.
    pub fn spawn(command: &mut Command, log: &Path) -> Self {
        let stderr = std::fs::File::create(log)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", log.display()));
        let child = command
            .env("RUST_LOG", "debug")
            .env("EMBERLINE_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
        Self {
            child,
            log: log.to_owned(),
        }
    }

    /// Waits until every one of `addresses` accepts a TCP connection; panics with the logs if
    /// the process does not get there (or exits first).
    pub async fn wait_listening(&mut self, addresses: &[SocketAddr]) {
        let deadline = Instant::now() + START_WITHIN;
        for address in addresses {
            while tokio::net::TcpStream::connect(address).await.is_err() {
                if let Ok(Some(status)) = self.child.try_wait() {
                    panic!("exited with {status} before listening: {}", self.logs());
                }
                assert!(
                    Instant::now() < deadline,
                    "not listening on {address} after {START_WITHIN:?}: {}",
                    self.logs()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Everything the process has logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, then the whole log.
    pub fn stop(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.logs()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
