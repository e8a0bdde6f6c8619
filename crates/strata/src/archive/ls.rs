//! `strata archive ls`.

use strata_api::PartitionsBody;

use super::{ArchiveClient, LsArgs};
use crate::Result;

pub(super) async fn run(client: &ArchiveClient, args: &LsArgs) -> Result<()> {
    let answer: PartitionsBody = client
        .json(
            false,
            "v1/archive/partitions",
            &[("tenant", args.tenant.as_str())],
        )
        .await?;
    if args.json {
        // Re-serialised from the parsed answer: the output is one line of the documented
        // shape even if the server pretty-prints.
        let text = serde_json::to_string(&answer)
            .map_err(|e| crate::Error::Archive(format!("printing the answer: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", table(&answer));
    }
    Ok(())
}

/// The partitions as an aligned table with a total line.
fn table(answer: &PartitionsBody) -> String {
    let header = [
        "STREAM", "DATE", "VERSION", "FILES", "ROWS", "BYTES", "MIN_TS", "MAX_TS", "HOLD",
    ];
    let mut rows: Vec<[String; 9]> = answer
        .partitions
        .iter()
        .map(|p| {
            [
                p.stream.clone(),
                p.date.clone(),
                p.version.to_string(),
                p.files.to_string(),
                p.rows.to_string(),
                p.bytes.to_string(),
                p.min_ts.clone(),
                p.max_ts.clone(),
                if p.legal_hold { "on" } else { "-" }.to_owned(),
            ]
        })
        .collect();
    rows.insert(0, header.map(str::to_owned));
    let mut widths = [0usize; 9];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    let (files, rows_total, bytes) = answer.partitions.iter().fold((0u64, 0u64, 0u64), |acc, p| {
        (acc.0 + p.files, acc.1 + p.rows, acc.2 + p.bytes)
    });
    out.push_str(&format!(
        "{} partitions of tenant {}, {files} files, {rows_total} rows, {bytes} bytes\n",
        answer.partitions.len(),
        answer.tenant
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_and_totals() {
        let answer: PartitionsBody = serde_json::from_str(
            r#"{"tenant":"acme","partitions":[
                {"stream":"click","date":"2026-01-02","version":3,"files":2,"rows":10,"bytes":900,
                 "min_ts":"2026-01-02T00:00:00.000000Z","max_ts":"2026-01-02T23:00:00.000000Z","legal_hold":true},
                {"stream":"view","date":"2026-01-02","version":1,"files":1,"rows":5,"bytes":400,
                 "min_ts":"2026-01-02T01:00:00.000000Z","max_ts":"2026-01-02T02:00:00.000000Z","legal_hold":false}]}"#,
        )
        .unwrap();
        let text = table(&answer);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("STREAM  DATE"), "{text}");
        assert!(lines[1].starts_with("click   2026-01-02  3"), "{text}");
        assert!(lines[1].ends_with("on"), "{text}");
        assert_eq!(
            lines[3],
            "2 partitions of tenant acme, 3 files, 15 rows, 1300 bytes"
        );
    }
}
