//! PostgreSQL at `DATABASE_URL`: is it there, and which server is it.

use sqlx::Connection as _;
use sqlx::postgres::PgConnection;

/// Connects once and returns the server's version string.
pub async fn check(database_url: &str) -> Result<String, sqlx::Error> {
    let mut connection = PgConnection::connect(database_url).await?;
    let (version,): (String,) = sqlx::query_as("SELECT version()")
        .fetch_one(&mut connection)
        .await?;
    connection.close().await?;
    Ok(version)
}
