//! Rig of the cold-tier tests: serve flags that archive within seconds, events on past days,
//! and the archive as the API, `strata archive ls` and the disk show it.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::Value;

use super::{http::send, stderr, stdout, strata_cli};

pub(crate) use strata_types::time::DAY;

/// The start (UTC midnight, epoch micros) of the day `days_back` days before today.
pub(crate) fn day_start(days_back: i64) -> i64 {
    use strata_types::time::{day_of, day_start};
    day_start(day_of(super::now_micros()) - days_back)
}

/// `serve` flags that move events through every tier within seconds: what is older than a
/// second is flushed every 200 ms, and a day is archived once it ended a second ago, looked
/// for every `export_interval` (`1h` leaves it to `strata export`).
pub(crate) fn fast_tiering(export_interval: &str) -> [&str; 8] {
    [
        "--flush-interval",
        "200ms",
        "--hot-retention",
        "1s",
        "--export-after",
        "1s",
        "--export-interval",
        export_interval,
    ]
}

/// One archived partition: `(stream, date, rows, legal_hold)`.
pub(crate) type Partition = (String, String, u64, bool);

/// The partitions of a `{"tenant": ..., "partitions": [...]}` answer, which must be
/// `tenant`'s.
fn partitions(v: &Value, tenant: &str) -> Vec<Partition> {
    assert_eq!(v["tenant"], tenant);
    v["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| {
            (
                p["stream"].as_str().unwrap().to_owned(),
                p["date"].as_str().unwrap().to_owned(),
                p["rows"].as_u64().unwrap(),
                p["legal_hold"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// `GET /v1/archive/partitions?tenant=T`; `Err` describes any answer but 200.
pub(crate) async fn archive_partitions(
    client: &reqwest::Client,
    base: &str,
    tenant: &str,
) -> Result<Vec<Partition>, String> {
    let answer = send(
        client
            .get(format!("{base}/v1/archive/partitions"))
            .query(&[("tenant", tenant)]),
    )
    .await?;
    let v: Value = answer.ok_json()?;
    Ok(partitions(&v, tenant))
}

/// The partitions `strata archive ls --json` lists (the same endpoint, through the CLI).
pub(crate) fn archive_ls(server: &str, tenant: &str) -> Vec<Partition> {
    let out = strata_cli(
        &[
            "archive", "ls", "--server", server, "--tenant", tenant, "--json",
        ],
        &[],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "archive ls failed: {}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("archive ls --json printed {}: {e}", stdout(&out)));
    partitions(&v, tenant)
}

/// The Parquet files under `dir`, sorted (none when it does not exist yet).
pub(crate) fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}
