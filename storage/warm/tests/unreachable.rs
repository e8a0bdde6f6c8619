//! Opening a warm tier whose server cannot be reached fails as `Unavailable`, quickly; the
//! embedded store opens under the data directory.

use std::time::{Duration, Instant};

use strata_core::Error;
use strata_warm::{WarmConfig, WarmUrl, open_warm};

fn url(s: &str) -> WarmUrl {
    s.parse().expect("a warm URL")
}

#[tokio::test]
async fn unreachable_postgres_is_unavailable() {
    // Port 1 on loopback: nothing listens there, so the connection is refused.
    let mut config = WarmConfig::new("unused");
    config.connect_timeout = Duration::from_secs(3);
    for target in [
        "postgres://strata@127.0.0.1:1/strata",
        "host=127.0.0.1 port=1 user=strata password=secret dbname=strata",
    ] {
        let started = Instant::now();
        let err = open_warm(&url(target), &config)
            .await
            .expect_err("nothing listens on port 1");
        assert!(
            matches!(err, Error::Unavailable { .. }),
            "expected Unavailable, got {err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(30));
        let err = strata_warm::migrate(&url(target), &config)
            .await
            .expect_err("nothing listens on port 1");
        assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
        let err = strata_warm::status(&url(target), &config)
            .await
            .expect_err("nothing listens on port 1");
        assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    }
}

#[test]
fn unknown_schemes_are_refused() {
    let err = "mysql://x@h/db".parse::<WarmUrl>().unwrap_err();
    assert!(err.to_string().contains("embedded"), "{err}");
}

#[tokio::test]
async fn embedded_opens_under_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let config = WarmConfig::new(dir.path().join("nested"));
    let warm = open_warm(&WarmUrl::embedded(), &config).await.unwrap();
    assert_eq!(warm.mode(), strata_core::warm::WarmMode::Embedded);
    warm.health().await.unwrap();
    assert!(warm.cold_partitions(None, None).await.unwrap().is_empty());
    assert!(
        dir.path()
            .join("nested")
            .join(strata_warm::EMBEDDED_FILE)
            .exists()
    );
    let report = strata_warm::migrate(&WarmUrl::embedded(), &config)
        .await
        .unwrap();
    assert!(report.applied.is_empty());
    let status = strata_warm::status(&WarmUrl::embedded(), &config)
        .await
        .unwrap();
    assert!(status.pending.is_empty());
}

#[cfg(not(feature = "tls"))]
#[tokio::test]
async fn required_tls_without_the_feature_is_refused_clearly() {
    let config = WarmConfig::new("unused");
    let err = open_warm(
        &url("postgres://strata@127.0.0.1:1/strata?sslmode=require"),
        &config,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("`tls` feature"), "{err}");
}
