//! The rules in use and their hot reload.
//!
//! With `--rules FILE` the file is loaded at start (a bad file stops the start, with the reason)
//! and then watched: its content is compared every `--rules-poll`, and SIGHUP forces a reload.
//! A changed file is applied only once two polls in a row read the same text ([`Watch`]), so a
//! file caught while an editor or `kubectl cp` is still writing it is never applied half-written
//! (SIGHUP applies at once: the operator says the file is done). It is validated first; a bad
//! one keeps the rules in use, says why in a warning, sets `emberline_hub_rules_file_valid` to 0
//! and counts a refused reload.
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

/// Loads the rules at start: the file when given (with the text it was read from, which the
/// watcher starts from), otherwise the built-in `profile`.
pub fn load(file: Option<&Path>, builtin: &str) -> Result<(Profile, Option<String>), LoadError> {
    let Some(path) = file else {
        let profile = Profile::builtin(builtin).map_err(LoadError::Builtin)?;
        return Ok((profile, None));
    };
    let text = std::fs::read_to_string(path).map_err(|error| LoadError::Read {
        path: path.to_owned(),
        error,
    })?;
    let profile = Profile::from_toml(&text).map_err(|error| LoadError::Invalid {
        path: path.to_owned(),
        error,
    })?;
    Ok((profile, Some(text)))
}

/// What to do with the file's current text.
#[derive(Debug)]
pub enum Reload {
    Unchanged,
    /// Changed since the last poll: applied once the next poll reads the same.
    Settling,
    Apply(Profile),
    Refuse(RulesError),
}

/// What the watcher has seen of the file; [`Watch::next`] is pure.
#[derive(Debug, Default)]
pub struct Watch {
    /// The text last applied or refused.
    decided: Option<String>,
    /// A changed text seen once, waiting for the next poll to read it again.
    settling: Option<String>,
}

impl Watch {
    /// Starts from the text the rules in use were loaded from.
    pub fn new(loaded: Option<String>) -> Self {
        Self {
            decided: loaded,
            settling: None,
        }
    }

    /// Judges the text just read: unchanged, still settling, or (read the same twice, or
    /// `forced` by SIGHUP) applied when valid and refused when not.
    pub fn next(&mut self, text: String, forced: bool) -> Reload {
        if !forced && self.decided.as_ref() == Some(&text) {
            self.settling = None;
            return Reload::Unchanged;
        }
        if !forced && self.settling.as_ref() != Some(&text) {
            self.settling = Some(text);
            return Reload::Settling;
        }
        self.settling = None;
        let reload = match Profile::from_toml(&text) {
            Ok(profile) => Reload::Apply(profile),
            Err(error) => Reload::Refuse(error),
        };
        self.decided = Some(text);
        reload
    }

    /// The file could not be read: the next text read is judged as new.
    fn unreadable(&mut self) -> bool {
        self.settling = None;
        self.decided.take().is_some()
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
    (path, loaded): (PathBuf, Option<String>),
    rules: SharedRules,
    metrics: Arc<Metrics>,
    (every, mut hangup): (Duration, Option<Signal>),
    token: CancellationToken,
) {
    let mut watch = Watch::new(loaded);
    loop {
        let forced = tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(every) => false,
            Some(()) = hangup_recv(&mut hangup) => true,
        };
        let text = match tokio::fs::read_to_string(&path).await {
            Ok(text) => text,
            Err(error) => {
                if watch.unreadable() || forced {
                    refused(&metrics, &rules, &path, &error.to_string());
                }
                continue;
            }
        };
        match watch.next(text, forced) {
            Reload::Unchanged | Reload::Settling => {}
            Reload::Apply(profile) => applied(&metrics, &rules, &path, profile),
            Reload::Refuse(error) => refused(&metrics, &rules, &path, &error.to_string()),
        }
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
    fn only_a_changed_valid_file_is_applied_once_it_reads_the_same_twice() {
        let good = Profile::builtin_toml("seed-compat").unwrap().to_owned();
        let mut watch = Watch::new(Some(good.clone()));
        assert!(matches!(watch.next(good.clone(), false), Reload::Unchanged));
        assert!(matches!(watch.next(good.clone(), true), Reload::Apply(_)));
        let broken = good.replace("mode = \"fixed\"", "mode = \"guess\"");
        assert!(matches!(
            watch.next(broken.clone(), false),
            Reload::Settling
        ));
        assert!(matches!(
            watch.next(broken.clone(), false),
            Reload::Refuse(_)
        ));
        assert!(matches!(watch.next(broken, false), Reload::Unchanged));

        // A file caught while it is written: each poll reads more of it; only the whole file,
        // read twice, is applied.
        let mut watch = Watch::new(Some(good.clone()));
        let edited = good.replace("seed-compat", "seed-compat-2");
        for cut in [edited.len() / 3, edited.len() / 2, edited.len() - 1] {
            let partial = edited[..cut].to_owned();
            assert!(
                matches!(watch.next(partial, false), Reload::Settling),
                "{cut}"
            );
        }
        assert!(matches!(
            watch.next(edited.clone(), false),
            Reload::Settling
        ));
        assert!(matches!(watch.next(edited, false), Reload::Apply(p) if p.name == "seed-compat-2"));

        let mut watch = Watch::new(None);
        assert!(matches!(watch.next(good.clone(), false), Reload::Settling));
        assert!(matches!(watch.next(good, false), Reload::Apply(_)));
    }

    #[test]
    fn a_file_cut_between_its_rules_is_refused() {
        let good = Profile::builtin_toml("default").unwrap();
        let head = &good[..good.find("[[rule]]").unwrap()];
        assert!(matches!(
            Profile::from_toml(head),
            Err(RulesError::Invalid(_))
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
        assert_eq!(load(None, "seed-compat").unwrap().0.name, "seed-compat");
        assert!(load(None, "nope").is_err());
    }
}
