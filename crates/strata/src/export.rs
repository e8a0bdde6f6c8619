//! `strata export`: one export pass and one maintenance pass (compaction, cleanup, Object
//! Lock) now, against the tiers a stopped `strata serve` would use, then exit.
//!
//! It opens the node's hot tier too, although it writes nothing there: rows this node
//! committed to warm but its hot tier has not released yet are still answered by hot once
//! the server runs again, so they must stay in warm (the exporter caps this node's rows at
//! hot's release mark). For the same reason it refuses a data directory without a hot tier
//! instead of exporting every committed row. The embedded files are locked by a running
//! server; that case gets its own message, since the server's exporter already does this
//! job every `--export-interval`.

use std::{path::PathBuf, sync::Arc};

use clap::Args;
use strata_core::hot::HotTier;
use strata_hot::HotConfig;
use strata_tiering::{CompactReport, ExportReport, Exporter, ExporterConfig};
use tracing::{info, warn};

use crate::{
    Error, Result,
    cold::ColdArgs,
    data_dir::{self, OpenMode, held_by_a_server},
    flags::{WarmArgs, parse_node_id},
};

/// Flags of `strata export`: the same tier flags as `serve`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The data directory of the (stopped) node whose tiers are exported; it must hold the
    /// node's hot tier (`<data-dir>/hot.redb`).
    #[arg(long, env = "STRATA_DATA_DIR", default_value = "storage")]
    pub data_dir: PathBuf,
    /// The warm tier.
    #[command(flatten)]
    pub warm: WarmArgs,
    /// The cold tier.
    #[command(flatten)]
    pub cold: ColdArgs,
    /// The node id `serve` runs this data directory under, if it was given one; it must
    /// match the id kept in the data directory.
    #[arg(long, env = "STRATA_NODE_ID", value_parser = parse_node_id)]
    pub node_id: Option<String>,
}

/// What `strata export` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// The export passes, summed.
    pub export: ExportReport,
    /// The maintenance pass.
    pub maintenance: CompactReport,
}

impl std::fmt::Display for ExportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (e, m) = (&self.export, &self.maintenance);
        writeln!(f, "exported: {} partitions, {} rows", e.partitions, e.rows)?;
        writeln!(
            f,
            "compacted: {} partitions ({} files merged)",
            m.compactions, m.merged_files
        )?;
        writeln!(f, "removed: {} objects", m.removed_objects)?;
        write!(f, "locked: {} objects", m.locked_objects)
    }
}

/// Runs `strata export` and prints what it did.
pub async fn run(args: ExportArgs) -> Result<()> {
    let summary = export(&args).await?;
    println!("{summary}");
    Ok(())
}

/// One export pass (repeated while partitions remain due) and one maintenance pass.
pub async fn export(args: &ExportArgs) -> Result<ExportSummary> {
    let dir = args.data_dir.clone();
    let Some(cold) = args.cold.open(&dir).await? else {
        return Err(Error::Export(
            "the cold tier is disabled (--cold none): there is nowhere to export to".into(),
        ));
    };
    let config = HotConfig::new(data_dir::hot_path(&dir));
    let (hot, node) =
        data_dir::open_hot(&dir, config, args.node_id.clone(), OpenMode::Existing).await?;
    let hot: Arc<dyn HotTier> = Arc::new(hot);
    let result = async {
        let config = args.warm.to_config(&dir, false);
        let url = &args.warm.warm;
        let warm = strata_warm::open_warm(url, &config)
            .await
            .map_err(|source| {
                if held_by_a_server(&source) {
                    Error::InUse { dir: dir.clone() }
                } else {
                    Error::OpenWarm {
                        target: url.redacted(),
                        source,
                    }
                }
            })?;
        let exporter = Exporter::new(
            Some(Arc::clone(&hot)),
            warm,
            cold,
            ExporterConfig {
                node: node.clone(),
                export_after: args.cold.export_after,
                ..ExporterConfig::default()
            },
        );
        info!(%node, export_after = %humantime::format_duration(args.cold.export_after), "exporting");
        let mut summary = ExportSummary::default();
        loop {
            let pass = exporter.export_due().await.map_err(Error::ExportFailed)?;
            summary.export.partitions += pass.partitions;
            summary.export.rows += pass.rows;
            // A pass that exported nothing although more were due would loop forever.
            if !pass.more_due || pass.partitions == 0 {
                break;
            }
        }
        summary.maintenance = exporter.maintain().await.map_err(Error::ExportFailed)?;
        Ok(summary)
    }
    .await;
    if let Err(e) = hot.shutdown().await {
        warn!(error = %e, "closing the hot tier");
    }
    result
}
