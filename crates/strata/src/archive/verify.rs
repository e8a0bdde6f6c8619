//! `strata archive verify`: the server recomputes every checksum and walks every manifest
//! chain of a tenant's archive while streaming its progress; this prints a summary and every
//! issue, and fails when the archive is not intact.

use std::{io::IsTerminal, time::Duration};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;

use super::{
    ArchiveClient, VerifyArgs,
    client::{NdjsonLines, error_line},
};
use crate::{Error, Result};

/// One line of the streamed answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum VerifyLine {
    Progress(ProgressView),
    Report(ReportView),
}

#[derive(Debug, Deserialize)]
struct ProgressView {
    done: u64,
    total: u64,
}

/// The verification report as the server sends it.
#[derive(Debug, Deserialize)]
pub(crate) struct ReportView {
    pub(crate) tenant: String,
    pub(crate) ok: bool,
    pub(crate) partitions: u64,
    pub(crate) manifests: u64,
    pub(crate) files_checked: u64,
    pub(crate) bytes_checked: u64,
    #[serde(default)]
    pub(crate) altered: Vec<IssueView>,
    #[serde(default)]
    pub(crate) missing: Vec<IssueView>,
    #[serde(default)]
    pub(crate) extra: Vec<IssueView>,
    #[serde(default)]
    pub(crate) chain_breaks: Vec<IssueView>,
    #[serde(default)]
    pub(crate) superseded: Vec<IssueView>,
}

/// One issue.
#[derive(Debug, Deserialize)]
pub(crate) struct IssueView {
    pub(crate) key: String,
    pub(crate) detail: String,
}

impl std::fmt::Display for ReportView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "tenant {}: {} partitions, {} manifest versions, {} files ({} bytes) checked",
            self.tenant, self.partitions, self.manifests, self.files_checked, self.bytes_checked
        )?;
        for (what, issues) in [
            ("altered", &self.altered),
            ("missing", &self.missing),
            ("extra", &self.extra),
            ("chain break", &self.chain_breaks),
        ] {
            for issue in issues {
                writeln!(f, "{what}: {}: {}", issue.key, issue.detail)?;
            }
        }
        if !self.superseded.is_empty() {
            writeln!(
                f,
                "{} superseded files awaiting cleanup (not an error)",
                self.superseded.len()
            )?;
        }
        let problems =
            self.altered.len() + self.missing.len() + self.extra.len() + self.chain_breaks.len();
        if self.ok {
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
    let mut lines = NdjsonLines::new(response);
    let progress = progress_bar();
    let mut report = None;
    while let Some(line) = lines.next_line().await? {
        if let Some(e) = error_line(&line) {
            progress.finish_and_clear();
            return Err(e);
        }
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
    println!("{report}");
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
        let text = r.to_string();
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
