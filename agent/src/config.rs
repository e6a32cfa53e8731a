//! Command line and environment (12-factor): every flag has an `EMBERLINE_*` twin.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::buffer::Durability;

#[derive(Debug, Parser)]
#[command(
    name = "emberline-agent",
    version,
    about = "Emberline edge agent: durable HTTP/MQTT ingest, store and forward to the bridge"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent.
    Run(Box<RunArgs>),
    /// Look at the buffer without running the agent (stop it first: one process owns the file).
    Buffer {
        #[command(subcommand)]
        command: BufferCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum BufferCommand {
    /// Depth, size, oldest reading, quarantined and rejected counts.
    Stats {
        #[arg(
            long,
            env = "EMBERLINE_BUFFER_PATH",
            default_value = "emberline-buffer.db"
        )]
        path: PathBuf,
    },
    /// Every buffered envelope as NDJSON on standard output, oldest first.
    Export {
        #[arg(
            long,
            env = "EMBERLINE_BUFFER_PATH",
            default_value = "emberline-buffer.db"
        )]
        path: PathBuf,
        /// The quarantined readings instead (those the bridge refused, and records too damaged
        /// to read), each with why: `{"seq":…,"reason":"…","envelope":{…}}` per line, or
        /// `"record":"<hex>"` in place of the envelope for a damaged record.
        #[arg(long)]
        quarantined: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// This agent's identity: letters, digits, '.', '_', '-' (a node name works).
    #[arg(long, env = "EMBERLINE_AGENT_ID")]
    pub agent_id: String,
    /// HTTP ingest and service endpoints.
    #[arg(long, env = "EMBERLINE_HTTP_LISTEN", default_value = "127.0.0.1:8080")]
    pub http_listen: SocketAddr,
    #[arg(
        long,
        env = "EMBERLINE_BUFFER_PATH",
        default_value = "emberline-buffer.db"
    )]
    pub buffer_path: PathBuf,
    /// Most bytes of readings held while the bridge is away; past it ingest answers 503.
    #[arg(long, env = "EMBERLINE_BUFFER_MAX_BYTES", default_value_t = 1 << 30)]
    pub buffer_max_bytes: u64,
    /// Most bytes of invalid MQTT payloads kept in the buffer's rejected table for an operator
    /// (payload, topic and reason); past it the oldest are dropped and counted. Apart from the
    /// readings' cap: invalid publishes never take room from readings.
    #[arg(long, env = "EMBERLINE_REJECTED_MAX_BYTES", default_value_t = crate::buffer::DEFAULT_MAX_REJECTED_BYTES)]
    pub rejected_max_bytes: u64,
    /// `full`: fsync every commit. `normal`: fsync at checkpoints (less flash wear; a power cut
    /// can lose the last acknowledged readings).
    #[arg(
        long,
        env = "EMBERLINE_BUFFER_DURABILITY",
        value_enum,
        default_value = "full"
    )]
    pub buffer_durability: Durability,
    /// Device tokens, one `name token` per line; without it every device is accepted.
    #[arg(long, env = "EMBERLINE_DEVICE_TOKENS_FILE")]
    pub device_tokens_file: Option<PathBuf>,
    /// PEM certificate chain (leaf first) for TLS on the HTTP and the MQTT ingest listeners; with
    /// --tls-key. Without both, both listeners speak plain TCP. The alert bus stays plain (it is
    /// meant for the node's own network).
    #[arg(long, env = "EMBERLINE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, env = "EMBERLINE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Seconds a client has to send a whole HTTP request head (and, with TLS, to finish the
    /// handshake) before the connection is closed: slow clients cannot hold connections.
    #[arg(long, env = "EMBERLINE_HTTP_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub http_header_timeout_secs: u64,
    /// Seconds a client has, once its request head is in, to send the whole body (however it
    /// trickles); past it the answer is 408 and the connection is closed. An 8 MiB batch needs
    /// 280 KB/s to make 30 s: raise it for devices that send large batches over slow links.
    #[arg(long, env = "EMBERLINE_HTTP_BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub http_body_timeout_secs: u64,
    /// MQTT ingest listener (publish-only, MQTT 3.1.1 and 5).
    #[arg(long, env = "EMBERLINE_MQTT_LISTEN", default_value = "127.0.0.1:1883")]
    pub mqtt_listen: SocketAddr,
    /// The local alert bus (embedded MQTT broker for sirens, cameras, laptops on the node).
    #[arg(
        long,
        env = "EMBERLINE_ALERTS_LISTEN",
        default_value = "127.0.0.1:1884"
    )]
    pub alerts_listen: SocketAddr,
    /// Run without the local alert bus.
    #[arg(long, env = "EMBERLINE_NO_ALERTS")]
    pub no_alerts: bool,
    /// Run without the MQTT ingest listener.
    #[arg(long, env = "EMBERLINE_NO_MQTT")]
    pub no_mqtt: bool,
    /// Seconds a new MQTT connection has to finish its TLS handshake and send CONNECT.
    #[arg(
        long,
        env = "EMBERLINE_MQTT_CONNECT_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub mqtt_connect_timeout_secs: u64,
    /// Seconds an MQTT packet may take to arrive whole once its first byte is in, whatever the
    /// keep-alive: a client stalling halfway through a packet is disconnected. Also how long an
    /// answer may wait to be written: a client that stops reading is dropped.
    #[arg(long, env = "EMBERLINE_MQTT_PACKET_TIMEOUT_SECS", default_value_t = 10)]
    pub mqtt_packet_timeout_secs: u64,
    /// Seconds an MQTT connection that asked for keep-alive 0 may stay silent before it is
    /// closed (it reconnects to publish again); 0: never, as keep-alive 0 asks. Connections with
    /// a keep-alive are closed after 1.5 × theirs, as the protocol says.
    #[arg(long, env = "EMBERLINE_MQTT_IDLE_TIMEOUT_SECS", default_value_t = 3600)]
    pub mqtt_idle_timeout_secs: u64,
    /// Largest MQTT packet accepted, fixed header included; larger ones close the connection
    /// (MQTT 5: advertised as the maximum packet size, DISCONNECT 0x95).
    #[arg(long, env = "EMBERLINE_MQTT_MAX_PACKET_BYTES", default_value_t = 64 * 1024)]
    pub mqtt_max_packet_bytes: usize,
    /// Most unacknowledged QoS 1 publishes read from one connection (MQTT 5: advertised as the
    /// receive maximum, at most 65,535).
    #[arg(long, env = "EMBERLINE_MQTT_MAX_INFLIGHT", default_value_t = 100)]
    pub mqtt_max_inflight: usize,
    /// Largest reading, in bytes: a `POST /ingest` body (larger: 413) and each item of a batch
    /// (larger: that item is rejected as `too_large`).
    #[arg(long, env = "EMBERLINE_MAX_READING_BYTES", default_value_t = 64 * 1024)]
    pub max_reading_bytes: usize,
    /// Largest `POST /v1/readings` body, in bytes (larger: 413).
    #[arg(long, env = "EMBERLINE_MAX_BATCH_BYTES", default_value_t = 8 << 20)]
    pub max_batch_bytes: usize,
    /// Most readings in one `POST /v1/readings` (more: 413 `too_many_items`); bounds the memory
    /// one request takes whatever its items are.
    #[arg(long, env = "EMBERLINE_MAX_BATCH_ITEMS", default_value_t = 10_000)]
    pub max_batch_items: usize,
    /// The bridge's base URL: `http://…`, or `https://…` for a bridge with TLS.
    #[arg(
        long,
        env = "EMBERLINE_BRIDGE_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub bridge_url: String,
    /// PEM file of the CA (or self-signed certificate) to trust for an `https://` bridge URL;
    /// without it, the system's CA certificates.
    #[arg(long, env = "EMBERLINE_BRIDGE_CA_FILE")]
    pub bridge_ca_file: Option<PathBuf>,
    /// File holding this agent's token for the bridge (or set EMBERLINE_AGENT_TOKEN).
    #[arg(long, env = "EMBERLINE_AGENT_TOKEN_FILE")]
    pub agent_token_file: Option<PathBuf>,
    #[arg(long, env = "EMBERLINE_FORWARD_MAX_READINGS", default_value_t = 5000)]
    pub forward_max_readings: usize,
    #[arg(long, env = "EMBERLINE_FORWARD_MAX_BYTES", default_value_t = 4 << 20)]
    pub forward_max_bytes: usize,
    /// Milliseconds to let a batch fill before sending it.
    #[arg(long, env = "EMBERLINE_FORWARD_LINGER_MS", default_value_t = 100)]
    pub forward_linger_ms: u64,
    #[arg(long, env = "EMBERLINE_HEARTBEAT_SECS", default_value_t = 10)]
    pub heartbeat_secs: u64,
    /// Seconds to finish in-flight work after SIGTERM before exiting anyway.
    #[arg(long, env = "EMBERLINE_SHUTDOWN_SECS", default_value_t = 10)]
    pub shutdown_secs: u64,
    #[arg(long, env = "EMBERLINE_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl RunArgs {
    pub fn linger(&self) -> Duration {
        Duration::from_millis(self.forward_linger_ms)
    }
}
