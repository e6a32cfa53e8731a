//! The rules in use and their hot reload.
//!
//! With `--rules FILE` the file is loaded at start (a bad file stops the start, with the reason)
//! and then watched: its content is compared every `--rules-poll`, and SIGHUP forces a reload.
//! A changed file is validated first ([`decide`]); a bad one keeps the rules in use, says why in
//! a warning and sets `emberline_hub_rules_file_valid` to 0 and counts a refused reload.
//!
//! # Invariants
//! - The detector always has a valid profile; readers take an `Arc` snapshot per batch, so a
//!   reload applies from the next batch on and never mid-batch.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use emberline_core::{Profile, RulesError};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Why the rules cannot be loaded at start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read the rules file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the rules file {path} is not valid: {error}")]
    Invalid { path: PathBuf, error: RulesError },
    #[error("{0}")]
    Builtin(RulesError),
}

/// The profile in use, shared by the detector loop and the watcher.
#[derive(Debug, Clone)]
pub struct SharedRules(Arc<RwLock<Arc<Profile>>>);

impl SharedRules {
    pub fn new(profile: Profile) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(profile))))
    }

    /// A snapshot of the rules in use.
    pub fn current(&self) -> Arc<Profile> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, profile: Profile) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(profile);
    }
}

/// Loads the rules at start: the file when given, otherwise the built-in `profile`.
pub fn load(file: Option<&Path>, builtin: &str) -> Result<Profile, LoadError> {
    let Some(path) = file else {
        return Profile::builtin(builtin).map_err(LoadError::Builtin);
    };
    let text = std::fs::read_to_string(path).map_err(|error| LoadError::Read {
        path: path.to_owned(),
        error,
    })?;
    Profile::from_toml(&text).map_err(|error| LoadError::Invalid {
        path: path.to_owned(),
        error,
    })
}

/// What to do with the file's current text.
#[derive(Debug)]
pub enum Reload {
    Unchanged,
    Apply(Profile),
    Refuse(RulesError),
}

/// Pure: compares `text` with what was last seen and validates it when it changed (or when
/// `forced`, on SIGHUP).
pub fn decide(last_seen: Option<&str>, text: &str, forced: bool) -> Reload {
    if !forced && last_seen == Some(text) {
        return Reload::Unchanged;
    }
    match Profile::from_toml(text) {
        Ok(profile) => Reload::Apply(profile),
        Err(error) => Reload::Refuse(error),
    }
}

/// Listens for SIGHUP from now on (without a handler, SIGHUP would end the process); `None`,
/// with a warning, when it cannot.
pub fn hangups() -> Option<Signal> {
    signal(SignalKind::hangup())
        .inspect_err(
            |error| tracing::warn!(%error, "cannot watch SIGHUP; polling the rules file only"),
        )
        .ok()
}

/// Watches `path` until `token` is cancelled, checking it every `every` and on each of
/// `hangup`'s signals; see the module documentation.
pub async fn watch(
    path: PathBuf,
    rules: SharedRules,
    metrics: Arc<Metrics>,
    (every, mut hangup): (Duration, Option<Signal>),
    token: CancellationToken,
) {
    let mut last_seen = std::fs::read_to_string(&path).ok();
    loop {
        let forced = tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(every) => false,
            Some(()) = hangup_recv(&mut hangup) => true,
        };
        let text = match tokio::fs::read_to_string(&path).await {
            Ok(text) => text,
            Err(error) => {
                if last_seen.take().is_some() || forced {
                    refused(&metrics, &rules, &path, &error.to_string());
                }
                continue;
            }
        };
        match decide(last_seen.as_deref(), &text, forced) {
            Reload::Unchanged => {}
            Reload::Apply(profile) => applied(&metrics, &rules, &path, profile),
            Reload::Refuse(error) => refused(&metrics, &rules, &path, &error.to_string()),
        }
        last_seen = Some(text);
    }
}

async fn hangup_recv(hangup: &mut Option<Signal>) -> Option<()> {
    match hangup {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

fn applied(metrics: &Metrics, rules: &SharedRules, path: &Path, profile: Profile) {
    let previous = rules.current().version.clone();
    tracing::info!(path = %path.display(), version = %profile.version, %previous, "rules reloaded");
    metrics.rules_version(&profile.version);
    metrics.rules_file_valid.set(1);
    metrics.reload("applied");
    rules.set(profile);
}

fn refused(metrics: &Metrics, rules: &SharedRules, path: &Path, reason: &str) {
    let keeping = rules.current().version.clone();
    tracing::warn!(path = %path.display(), error = %reason, %keeping, "rules file refused; keeping the rules in use");
    metrics.rules_file_valid.set(0);
    metrics.reload("refused");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_changed_valid_file_is_applied() {
        let good = Profile::builtin_toml("seed-compat").unwrap();
        assert!(matches!(decide(Some(good), good, false), Reload::Unchanged));
        assert!(matches!(decide(Some(good), good, true), Reload::Apply(_)));
        assert!(matches!(decide(None, good, false), Reload::Apply(_)));
        let broken = good.replace("mode = \"fixed\"", "mode = \"guess\"");
        assert!(matches!(
            decide(Some(good), &broken, false),
            Reload::Refuse(_)
        ));
    }

    #[test]
    fn a_bad_file_at_start_names_the_file() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "name = ").unwrap();
        let error = load(Some(file.path()), "default").unwrap_err().to_string();
        assert!(
            error.contains(&file.path().display().to_string()),
            "{error}"
        );
        assert_eq!(load(None, "seed-compat").unwrap().name, "seed-compat");
        assert!(load(None, "nope").is_err());
    }
}
