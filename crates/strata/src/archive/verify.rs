//! `strata archive verify`: the server recomputes every checksum and walks every manifest
//! chain of a tenant's archive while streaming its progress; this prints a summary and every
//! issue, and fails when the archive is not intact.

use std::{io::IsTerminal, time::Duration};

use indicatif::{ProgressBar, ProgressStyle};
use strata_api::{VerifyBody, VerifyLine};

use super::{ArchiveClient, VerifyArgs};
use crate::{Error, Result};

/// The report as people read it: what was checked, every issue, the verdict.
struct Report<'a>(&'a VerifyBody);

impl std::fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.0;
        writeln!(
            f,
            "tenant {}: {} partitions, {} manifest versions, {} files ({} bytes) checked",
            r.tenant, r.partitions, r.manifests, r.files_checked, r.bytes_checked
        )?;
        for (what, issues) in [
            ("altered", &r.altered),
            ("missing", &r.missing),
            ("extra", &r.extra),
            ("chain break", &r.chain_breaks),
        ] {
            for issue in issues {
                writeln!(f, "{what}: {}: {}", issue.key, issue.detail)?;
            }
        }
        if !r.superseded.is_empty() {
            writeln!(
                f,
                "{} superseded files awaiting cleanup (not an error)",
                r.superseded.len()
            )?;
        }
        let problems = r.altered.len() + r.missing.len() + r.extra.len() + r.chain_breaks.len();
        if r.ok {
            write!(f, "OK: the archive is intact")
        } else {
            write!(f, "FAILED: {problems} issues")
        }
    }
}

pub(super) async fn run(client: &ArchiveClient, args: &VerifyArgs) -> Result<()> {
    let response = client
        .send(
            true,
            "v1/archive/verify",
            &[("tenant", args.tenant.as_str()), ("progress", "true")],
        )
        .await?;
    let mut lines = crate::client::ndjson(response).allow_unterminated_last_line(true);
    let progress = progress_bar();
    let mut report = None;
    loop {
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                progress.finish_and_clear();
                return Err(Error::Archive(crate::client::describe(&e)));
            }
        };
        match serde_json::from_slice::<VerifyLine>(&line) {
            Ok(VerifyLine::Progress(p)) => {
                progress.set_length(p.total);
                progress.set_position(p.done);
            }
            Ok(VerifyLine::Report(r)) => report = Some(r),
            Err(e) => {
                progress.finish_and_clear();
                return Err(Error::Archive(format!(
                    "unexpected line in the verify answer: {e}"
                )));
            }
        }
    }
    progress.finish_and_clear();
    let report =
        report.ok_or_else(|| Error::Archive("the verify answer ended without a report".into()))?;
    println!("{}", Report(&report));
    if report.ok {
        Ok(())
    } else {
        Err(Error::ArchiveNotIntact {
            tenant: report.tenant,
        })
    }
}

fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {binary_bytes}/{binary_total_bytes} verified ({binary_bytes_per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lists_every_issue() {
        let line = br#"{"report":{"tenant":"acme","ok":false,"partitions":2,"manifests":3,
            "files_checked":4,"bytes_checked":1000,
            "altered":[{"key":"tenant=acme/stream=s/date=2026-01-01/part-1.parquet","detail":"sha256 differs"}],
            "missing":[],"extra":[{"key":"x.parquet","detail":"no manifest lists it"}],
            "chain_breaks":[],"superseded":[{"key":"old.parquet","detail":"superseded"}]}}"#;
        let VerifyLine::Report(r) = serde_json::from_slice(line).unwrap() else {
            panic!("not a report")
        };
        let text = Report(&r).to_string();
        assert!(
            text.contains(
                "altered: tenant=acme/stream=s/date=2026-01-01/part-1.parquet: sha256 differs"
            ),
            "{text}"
        );
        assert!(text.contains("extra: x.parquet"), "{text}");
        assert!(text.contains("1 superseded"), "{text}");
        assert!(text.ends_with("FAILED: 2 issues"), "{text}");
        let VerifyLine::Progress(p) =
            serde_json::from_slice(br#"{"progress":{"done":5,"total":10}}"#).unwrap()
        else {
            panic!("not progress")
        };
        assert_eq!((p.done, p.total), (5, 10));
    }
}
