//! Signals: the first SIGTERM or Ctrl-C cancels the process's token (graceful shutdown); a second
//! one exits at once.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Exit status when a second signal cuts the graceful shutdown short.
pub const FORCED_EXIT_CODE: i32 = 130;

/// Watches for SIGTERM and SIGINT in the background and cancels `token` on the first.
pub fn cancel_on_signals(token: CancellationToken) -> std::io::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM: shutting down gracefully"),
            _ = interrupt.recv() => tracing::info!("interrupted: shutting down gracefully"),
        }
        token.cancel();
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::warn!("second signal: exiting without finishing the work in hand");
        std::process::exit(FORCED_EXIT_CODE);
    });
    Ok(())
}
