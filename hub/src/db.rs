//! PostgreSQL: the pool and the embedded migrations (`hub/migrations`).

use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;

/// The hub's schema, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How long a statement may wait for a connection before the batch is retried.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// A PostgreSQL URL; its `Debug` hides it, since it may hold a password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseUrl(<redacted>)")
    }
}

impl From<&str> for DatabaseUrl {
    fn from(url: &str) -> Self {
        Self(url.to_owned())
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;
    fn from_str(url: &str) -> Result<Self, Self::Err> {
        Ok(Self::from(url))
    }
}

/// A pool that connects lazily: the writer starts (and reports not ready) with PostgreSQL down.
pub fn pool(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_lazy(url)
}

/// Applies the migrations not applied yet.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await?;
    tracing::info!(
        migrations = MIGRATOR.iter().count(),
        "database schema up to date"
    );
    Ok(())
}

/// What a database error means for the batch that met it (a pure decision; timing comes from
/// the backoff).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The database is away, restarting, overloaded or the transaction lost a race: retry.
    Transient,
    /// The database refuses the data itself: retrying the same rows cannot help.
    Permanent,
}

/// Classifies an error by its SQLSTATE class; anything that is not a refusal of the data is
/// treated as transient, so a doubtful case pauses rather than skips.
pub fn failure(error: &sqlx::Error) -> Failure {
    let Some(code) = error.as_database_error().and_then(|e| e.code()) else {
        return Failure::Transient;
    };
    match code.get(..2) {
        // data exception (invalid text representation among them), integrity constraint
        // violation, program limit exceeded (a value too large for an index row, say)
        Some("22" | "23" | "54") => Failure::Permanent,
        _ => Failure::Transient,
    }
}
