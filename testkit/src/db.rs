//! A throwaway PostgreSQL database per test.

use emberline_stack::DEFAULT_DATABASE_URL;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions as _, Connection as _, Executor as _};

/// A database created for one test on the server at `DATABASE_URL` and dropped (with its
/// connections) when this value is dropped.
#[derive(Debug)]
pub struct TestDb {
    pub name: String,
    /// Connection URL of the new database, for components under test.
    pub url: String,
    pub pool: PgPool,
    admin: PgConnectOptions,
}

impl TestDb {
    pub async fn create() -> Self {
        crate::init_logs();
        let server = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.into());
        let admin: PgConnectOptions = server.parse().unwrap_or_else(|error| {
            panic!("DATABASE_URL {server:?} is not a PostgreSQL URL: {error}")
        });
        let name = crate::unique_name("emberline_test").replace('-', "_");
        let mut connection = admin
            .connect()
            .await
            .unwrap_or_else(|error| panic!("cannot reach PostgreSQL at DATABASE_URL: {error}"));
        connection
            .execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .unwrap_or_else(|error| panic!("cannot create test database {name}: {error}"));
        let _ = connection.close().await;
        let options = admin.clone().database(&name);
        let url = options.to_url_lossy().to_string();
        let pool = PgPoolOptions::new()
            .max_connections(5)
            .connect_with(options)
            .await
            .unwrap_or_else(|error| panic!("cannot connect to test database {name}: {error}"));
        Self {
            name,
            url,
            pool,
            admin,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop cannot await, and may run inside a runtime whose thread this blocks: use a thread
        // with its own runtime, and let FORCE end the pool's sessions server-side (closing the
        // pool here could wait on the blocked runtime).
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                let mut connection = admin.connect().await.ok()?;
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                connection.execute(sql.as_str()).await.ok()?;
                Some(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            tracing::warn!(database = %self.name, "could not drop test database");
        }
    }
}
