//! `strata archive get`: the archived events of a range as NDJSON, to standard output or a
//! file, with a progress counter on standard error.

use std::{
    io::{IsTerminal, Write},
    path::{Path, PathBuf},
    time::Duration,
};

use indicatif::{ProgressBar, ProgressStyle};
use strata_types::time::format_rfc3339;
use tokio::sync::mpsc;

use super::{ArchiveClient, GetArgs};
use crate::{Error, Result};

/// Lines handed to the writer thread at once, and batches queued for it: bounds memory
/// when the output is slower than the server.
const BATCH_LINES: usize = 1024;
const QUEUED_BATCHES: usize = 8;

pub(super) async fn run(client: &ArchiveClient, args: &GetArgs) -> Result<()> {
    let (from, to) = (format_rfc3339(args.from), format_rfc3339(args.to));
    let mut params = vec![
        ("tenant", args.tenant.as_str()),
        ("from", from.as_str()),
        ("to", to.as_str()),
    ];
    if let Some(stream) = &args.stream {
        params.push(("stream", stream.as_str()));
    }
    let response = client.send(false, "v1/archive/events", &params).await?;
    // An archive answer may end without a final newline; every line is still whole.
    let mut lines = crate::client::ndjson(response).allow_unterminated_last_line(true);
    let progress = progress_bar();

    // Writing is blocking IO (a slow pipe, a disk): it runs on its own thread, fed through
    // a bounded channel.
    let (tx, rx) = mpsc::channel::<Vec<Vec<u8>>>(QUEUED_BATCHES);
    let output = args.output.clone();
    let writer = tokio::task::spawn_blocking(move || write_all(output.as_deref(), rx));

    let read = async {
        let mut events = 0u64;
        let mut batch = Vec::with_capacity(BATCH_LINES);
        while let Some(line) = lines
            .next_line()
            .await
            .map_err(|e| Error::Archive(crate::client::describe(&e)))?
        {
            batch.push(line.to_vec());
            events += 1;
            if batch.len() == BATCH_LINES {
                progress.inc(BATCH_LINES as u64);
                if tx.send(std::mem::take(&mut batch)).await.is_err() {
                    // The writer stopped; its error is reported below.
                    return Ok(events);
                }
            }
        }
        progress.inc(batch.len() as u64);
        if !batch.is_empty() {
            let _ = tx.send(batch).await;
        }
        Ok(events)
    }
    .await;
    drop(tx);
    let written = writer.await.map_err(|source| Error::Task {
        task: "archive output",
        source,
    });
    progress.finish_and_clear();
    let partial = args.output.as_deref().map(partial_path);
    let events = match (read, written) {
        (Ok(events), Ok(Ok(()))) => events,
        // A read error wins: the writer may only have stopped because of it.
        (Err(e), _) | (Ok(_), Err(e) | Ok(Err(e))) => {
            if let Some(partial) = &partial {
                let _ = tokio::fs::remove_file(partial).await;
            }
            return Err(e);
        }
    };
    if let (Some(partial), Some(output)) = (&partial, &args.output) {
        tokio::fs::rename(partial, output)
            .await
            .map_err(|source| Error::Output {
                path: output.clone(),
                source,
            })?;
        eprintln!("{events} events written to {}", output.display());
    } else {
        eprintln!("{events} events");
    }
    Ok(())
}

/// Where a file output is written until the read completed: next to it, so the final
/// rename stays on one file system.
fn partial_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    output.with_file_name(name)
}

/// Writes every batch received, one line each, to `output`'s partial file or standard
/// output. Blocking.
fn write_all(output: Option<&Path>, mut rx: mpsc::Receiver<Vec<Vec<u8>>>) -> Result<()> {
    let (sink, path): (Box<dyn Write>, PathBuf) = match output {
        Some(output) => {
            let path = partial_path(output);
            let file = std::fs::File::create(&path).map_err(|source| Error::Output {
                path: path.clone(),
                source,
            })?;
            (Box::new(file), path)
        }
        None => (
            Box::new(std::io::stdout().lock()),
            PathBuf::from("standard output"),
        ),
    };
    let fail = |source| Error::Output {
        path: path.clone(),
        source,
    };
    let mut sink = std::io::BufWriter::with_capacity(1 << 20, sink);
    while let Some(batch) = rx.blocking_recv() {
        for line in batch {
            sink.write_all(&line).map_err(fail)?;
            sink.write_all(b"\n").map_err(fail)?;
        }
    }
    sink.flush().map_err(fail)?;
    let file = sink.into_inner().map_err(|e| fail(e.into_error()))?;
    drop(file);
    Ok(())
}

fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {human_pos} events ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
