//! The demo's own PostgreSQL database on the server at `DATABASE_URL`.

use sqlx::Connection as _;
use sqlx::postgres::PgConnection;

/// `url` with its database name replaced by `name` (query parameters kept).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

/// Creates database `name` unless it exists (dropping it first when `fresh`); returns its URL.
pub async fn ensure(server_url: &str, name: &str, fresh: bool) -> Result<String, sqlx::Error> {
    let mut connection = PgConnection::connect(server_url).await?;
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    if fresh {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
            .execute(&mut connection)
            .await?;
    }
    let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut connection)
        .await?;
    if exists.is_none() {
        sqlx::query(&format!("CREATE DATABASE {quoted}"))
            .execute(&mut connection)
            .await?;
    }
    connection.close().await?;
    Ok(with_database(server_url, name))
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name() {
        let cases = [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/emberline",
            ),
            (
                "postgres://u:p@h/db?sslmode=disable",
                "postgres://u:p@h/emberline?sslmode=disable",
            ),
            ("postgres://h:5432", "postgres://h:5432/emberline"),
        ];
        for (url, expected) in cases {
            assert_eq!(with_database(url, "emberline"), expected);
        }
    }
}
