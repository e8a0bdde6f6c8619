//! Connecting: the URL (or libpq key=value string) turned into a client configuration, TLS
//! when the build has it, and the deadpool pool every operation takes its connection from.
//!
//! Failing to get a connection is [`Error::Unavailable`] whatever the reason (refused, timed
//! out, pool exhausted): the caller cannot tell a down server from a slow one, and both are
//! worth retrying. A URL that asks for TLS in a build without it is refused before any
//! connection, with a message naming the feature, instead of a failed handshake.

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use strata_core::{Error, Result, Tier};

use super::round_trip::PgError;
use crate::WarmConfig;

/// A pool of at most `max_size` connections to `url`, none opened yet.
pub(super) fn pool(url: &str, config: &WarmConfig, max_size: usize) -> Result<Pool> {
    Pool::builder(manager(pg_config(url, config)?)?)
        .max_size(max_size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(config.connect_timeout))
        .create_timeout(Some(config.connect_timeout))
        .recycle_timeout(Some(config.connect_timeout))
        .build()
        .map_err(|e| Error::storage(Tier::Warm, "open", e))
}

/// A connection from `pool`, for `op`.
pub(super) async fn get(pool: &Pool, op: &'static str) -> Result<Object> {
    pool.get().await.map_err(|e| match e {
        PoolError::Backend(source) => PgError::new(op, source).into(),
        other => Error::Unavailable {
            tier: Tier::Warm,
            op,
            message: other.to_string(),
        },
    })
}

/// One connection of its own, outside the backend's pool: migrations hold a session-level
/// advisory lock on it, and `strata migrate` needs no pool. Closed when dropped.
pub(super) async fn single(url: &str, config: &WarmConfig) -> Result<Object> {
    get(&pool(url, config, 1)?, "connect").await
}

fn pg_config(url: &str, config: &WarmConfig) -> Result<tokio_postgres::Config> {
    let mut pg = url.parse::<tokio_postgres::Config>().map_err(|e| {
        Error::storage(
            Tier::Warm,
            "open",
            format!("not a PostgreSQL connection URL: {e}"),
        )
    })?;
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(config.connect_timeout);
    }
    if pg.get_application_name().is_none() {
        pg.application_name("strata");
    }
    Ok(pg)
}

/// Refuses a URL that requires TLS when this build cannot do TLS, with a clear message
/// instead of a failed handshake.
fn check_tls(pg: &tokio_postgres::Config) -> Result<()> {
    let required = matches!(pg.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
    if required && !cfg!(feature = "tls") {
        return Err(Error::storage(
            Tier::Warm,
            "open",
            "the URL requires TLS (sslmode=require) but this build has no TLS support \
             (build strata-warm with the `tls` feature)",
        ));
    }
    Ok(())
}

/// The TLS connector: rustls with the system's root certificates. With `sslmode=prefer`
/// (the default) a server without TLS is still reached in plain text.
#[cfg(feature = "tls")]
fn tls_connector() -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A certificate the store cannot parse is skipped like other TLS clients do.
        let _ = roots.add(cert);
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::storage(Tier::Warm, "open", e))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// A pool manager over `pg`, with TLS when built with the `tls` feature.
fn manager(pg: tokio_postgres::Config) -> Result<Manager> {
    check_tls(&pg)?;
    let config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    #[cfg(feature = "tls")]
    let manager = Manager::from_config(pg, tls_connector()?, config);
    #[cfg(not(feature = "tls"))]
    let manager = Manager::from_config(pg, tokio_postgres::NoTls, config);
    Ok(manager)
}
