//! `emberline-agent`: parse flags, start logging, run, report.

use std::io::Write as _;

use anyhow::{Context as _, Result};
use clap::Parser as _;
use emberline_agent::buffer::{Store, StoreConfig};
use emberline_agent::config::{BufferCommand, Cli, Command, LogFormat};
use emberline_core::AgentId;
use tracing_subscriber::filter::Targets;

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let format = match &cli.command {
        Command::Run(args) => args.log_format,
        Command::Buffer { .. } => LogFormat::Text,
    };
    init_logs(format);
    match cli.command {
        Command::Run(args) => emberline_agent::run::run(*args).await,
        Command::Buffer { command } => buffer(command),
    }
}

/// `RUST_LOG` as `target=level` pairs (e.g. `info,emberline_agent::forwarder=debug`); `Targets`
/// rather than `EnvFilter` keeps the regex engine out of the edge binary.
fn init_logs(format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let default = || Targets::new().with_default(tracing::Level::INFO);
    let filter = match std::env::var("RUST_LOG") {
        Ok(text) => text.parse::<Targets>().unwrap_or_else(|error| {
            eprintln!("RUST_LOG={text:?} is not understood ({error}); logging at info");
            default()
        }),
        Err(_) => default(),
    };
    let registry = tracing_subscriber::registry().with(filter);
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match format {
        LogFormat::Text => registry.with(layer).init(),
        LogFormat::Json => registry.with(layer.json()).init(),
    }
}

fn buffer(command: BufferCommand) -> Result<()> {
    let path = match &command {
        BufferCommand::Stats { path } | BufferCommand::Export { path, .. } => path.clone(),
    };
    if !path.exists() {
        anyhow::bail!("no buffer at {}", path.display());
    }
    let shown = path.display().to_string();
    let store = Store::inspect(StoreConfig {
        path,
        agent_id: AgentId::parse("inspect").map_err(anyhow::Error::msg)?,
        max_bytes: u64::MAX,
        durability: emberline_agent::buffer::Durability::Full,
        max_rejected_bytes: emberline_agent::buffer::DEFAULT_MAX_REJECTED_BYTES,
    })
    .with_context(|| {
        format!(
            "cannot read the buffer {shown} (a damaged one is set aside at the agent's next start; \
             `sqlite3 {shown} .recover` may get its readings out)"
        )
    })?;
    match command {
        BufferCommand::Stats { .. } => {
            let stats = store.stats()?;
            let oldest = stats
                .oldest_received_at
                .map(|t| t.to_string())
                .unwrap_or_else(|| "-".into());
            println!(
                "readings:    {}\nbytes:       {}\noldest:      {oldest}\nquarantined: {}\nrejected:    {}",
                stats.depth, stats.bytes, stats.quarantined, stats.rejected
            );
        }
        BufferCommand::Export {
            quarantined: true, ..
        } => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let quarantined = store.quarantined()?;
            for (seq, kept, reason) in &quarantined {
                out.write_all(&quarantined_line(*seq, kept, reason))?;
            }
            out.flush()?;
            eprintln!("exported {} quarantined readings", quarantined.len());
        }
        BufferCommand::Export { .. } => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let mut damaged = 0;
            let n = store.export(|stored| match stored.envelope() {
                Ok(envelope) => {
                    out.write_all(&envelope)?;
                    out.write_all(b"\n")
                }
                Err(error) => {
                    damaged += 1;
                    eprintln!("reading {} left out: {error}", stored.seq);
                    Ok(())
                }
            })?;
            out.flush()?;
            eprintln!("exported {} readings", n - damaged);
            if damaged > 0 {
                anyhow::bail!("{damaged} stored readings could not be read");
            }
        }
    }
    Ok(())
}

/// One quarantined reading as a JSON line: its envelope as JSON, or, when what was kept is not
/// JSON (a record too damaged to make an envelope of), its bytes as lowercase hex in `record`.
fn quarantined_line(seq: u64, kept: &[u8], reason: &str) -> Vec<u8> {
    let kept = match serde_json::from_slice::<serde_json::Value>(kept) {
        Ok(envelope) => ("envelope", envelope),
        Err(_) => (
            "record",
            serde_json::Value::String(kept.iter().map(|b| format!("{b:02x}")).collect()),
        ),
    };
    let mut line = serde_json::json!({ "seq": seq, "reason": reason });
    line[kept.0] = kept.1;
    let mut bytes = line.to_string().into_bytes();
    bytes.push(b'\n');
    bytes
}
