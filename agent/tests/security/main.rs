//! The agent's security table (issue 8, `docs/security.md`), one module per role: [`http`]
//! (tokens, hostile input, slow HTTP clients), [`mqtt`] (credentials, slow MQTT clients) and
//! [`tls`] (both listeners over TLS, the forwarder reaching a TLS bridge). Tokens and passwords
//! never reach the logs (debug level) or `/metrics`. The real binary runs as a process with
//! `RUST_LOG=debug`, its stderr kept.
//!
//! Each table is one row per case with its expected answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod http;
mod mqtt;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use emberline_testkit::{Process, free_address};

const DEVICE: &str = "ridge-7";
/// The device's token: it must never appear in a log line or in `/metrics`.
const DEVICE_TOKEN: &str = "dev-5ecret-ridge7-Q9xv";
/// A guess an attacker sends: not to be logged either.
const WRONG_TOKEN: &str = "guess-5ecret-zz81";
/// The agent's token for the bridge.
const AGENT_TOKEN: &str = "agent-5ecret-edge-Lm42";
const SECRETS: [&str; 3] = [DEVICE_TOKEN, WRONG_TOKEN, AGENT_TOKEN];

/// The agent's bound on a request head and on a CONNECT (with TLS, the handshake included).
const HEAD_BOUND: Duration = Duration::from_secs(1);
/// The agent's bound on a request body and on an MQTT packet once begun.
const BODY_BOUND: Duration = Duration::from_secs(2);
/// How long the agent lets an MQTT connection with keep-alive 0 stay silent, where a test sets
/// it (`--mqtt-idle-timeout-secs`; otherwise the default hour).
const IDLE_BOUND: Duration = Duration::from_secs(3);

/// The agent binary, running with device tokens, debug logs into a file, and short timeouts.
struct Agent {
    process: Process,
    http: SocketAddr,
    mqtt: SocketAddr,
    buffer: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    async fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, extra).await
    }

    async fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Self {
        let tokens = dir.path().join("devices.txt");
        std::fs::write(&tokens, format!("{DEVICE} {DEVICE_TOKEN}\n")).unwrap();
        let (http, mqtt) = (free_address(), free_address());
        let buffer = dir.path().join("buffer.db");
        let secs = |bound: Duration| bound.as_secs().to_string();
        let mut command = Command::new(env!("CARGO_BIN_EXE_emberline-agent"));
        command
            .args(["run", "--agent-id", "edge-sec", "--no-alerts"])
            .args(["--http-listen", &http.to_string()])
            .args(["--mqtt-listen", &mqtt.to_string()])
            .arg("--buffer-path")
            .arg(&buffer)
            .arg("--device-tokens-file")
            .arg(&tokens)
            .args(["--http-header-timeout-secs", &secs(HEAD_BOUND)])
            .args(["--mqtt-connect-timeout-secs", &secs(HEAD_BOUND)])
            .args(["--http-body-timeout-secs", &secs(BODY_BOUND)])
            .args(["--mqtt-packet-timeout-secs", &secs(BODY_BOUND)])
            .args(["--heartbeat-secs", "1"])
            .args(extra)
            .env("EMBERLINE_AGENT_TOKEN", AGENT_TOKEN);
        let mut process = Process::spawn(&mut command, &dir.path().join("agent.log"));
        process.wait_listening(&[http, mqtt]).await;
        Self {
            process,
            http,
            mqtt,
            buffer,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    fn logs(&self) -> String {
        self.process.logs()
    }

    /// Stops the agent (SIGKILL: what is acknowledged is committed) and returns its logs.
    fn stop(&mut self) -> String {
        self.process.stop()
    }

    /// The `source_name` of every buffered reading (the agent must be stopped).
    fn buffered_sources(&self) -> Vec<String> {
        let output = Command::new(env!("CARGO_BIN_EXE_emberline-agent"))
            .args(["buffer", "export", "--path"])
            .arg(&self.buffer)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| {
                let envelope: serde_json::Value = serde_json::from_str(line).unwrap();
                envelope["reading"]["source_name"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no source_name in {line}"))
                    .to_owned()
            })
            .collect()
    }
}

fn reading(source: &str) -> String {
    format!(
        r#"{{"timestamp":"2025-05-24T18:03:11Z","latitude":34.05,"longitude":-118.25,"temperature":42.7,"humidity":12,"wind_speed":18.4,"wind_direction":270,"vegetation_density":0.82,"air_quality_index":160,"source_name":{}}}"#,
        serde_json::to_string(source).unwrap()
    )
}

fn assert_no_secrets(what: &str, text: &str) {
    emberline_testkit::assert_no_secrets(what, text, &SECRETS);
}
