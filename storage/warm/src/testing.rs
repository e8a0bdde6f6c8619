//! What tests and benches of PostgreSQL need, in one place for every crate that runs them:
//! the server the test script started, plain clients of it, and a fresh database per
//! scenario. Behind the `test-support` feature; nothing in a running node uses it.
//!
//! Every function panics rather than returning an error where the caller is a test that
//! cannot go on without the server: under `server-tests` a missing server is a failure,
//! never a skip.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::WarmUrl;

/// The variable naming the test server: a role that may create databases.
pub const SERVER_URL_VAR: &str = "STRATA_TEST_POSTGRES_URL";

/// The server's URL, [`SERVER_URL_VAR`]. Panics when it is unset.
pub fn server_url() -> String {
    std::env::var(SERVER_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{SERVER_URL_VAR} is not set: these tests need a PostgreSQL server \
             (scripts/test starts one)"
        )
    })
}

/// `url` (a `postgres://` URL) with its database name replaced by `db`, query kept.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{db}{query}", &base[..host_end])
}

/// A plain client of `url`; its connection runs on the current runtime.
pub async fn try_connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// A plain client of `url`; panics (naming the server, password hidden) when it cannot
/// connect.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    try_connect(url).await.unwrap_or_else(|e| {
        let server = url
            .parse::<WarmUrl>()
            .map_or_else(|_| "the test server".to_owned(), |u| u.redacted());
        panic!("connect to {server}: {e}")
    })
}

/// A database [`fresh_database`] created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestDatabase {
    /// Its name, for dropping it.
    pub name: String,
    /// The server's URL naming it.
    pub url: String,
}

static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// Creates an empty database on the server at `server` (a URL), named `<prefix>_…` and
/// unique to this process and call, so tests never see each other's rows.
pub async fn fresh_database(server: &str, prefix: &str) -> TestDatabase {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = format!(
        "{prefix}_{}_{nanos:x}_{}",
        std::process::id(),
        DATABASES.fetch_add(1, Ordering::Relaxed)
    );
    connect(server)
        .await
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    TestDatabase {
        url: with_database(server, &name),
        name,
    }
}

/// Drops database `name` of the server at `server`, closing its connections first.
pub async fn drop_database(server: &str, name: &str) -> Result<(), tokio_postgres::Error> {
    try_connect(server)
        .await?
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn with_database_replaces_only_the_database() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "t1"),
            "postgres://u:p@h:5432/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "t2"), "postgres://h/t2");
    }
}
