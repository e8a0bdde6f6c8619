//! Turning SIGTERM and SIGINT into cancellation.

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Tokens cancelled by signals: `graceful` on the first SIGTERM/SIGINT, `force` on the
/// second (an operator who presses Ctrl-C twice wants out now).
#[derive(Debug, Clone, Default)]
pub struct Signals {
    /// Begin a graceful shutdown.
    pub graceful: CancellationToken,
    /// Abandon the graceful shutdown.
    pub force: CancellationToken,
}

impl Signals {
    /// Installs the signal handlers and spawns the task that watches them. Handlers are
    /// installed before this returns, so a signal that arrives right after is not lost.
    pub fn listen() -> std::io::Result<Self> {
        let signals = Self::default();
        let mut watcher = Watcher::install()?;
        let tokens = signals.clone();
        tokio::spawn(async move {
            let name = watcher.next().await;
            info!(signal = name, "shutdown requested");
            tokens.graceful.cancel();
            let name = watcher.next().await;
            warn!(
                signal = name,
                "second signal; exiting without finishing the shutdown"
            );
            tokens.force.cancel();
        });
        Ok(signals)
    }
}

#[cfg(unix)]
struct Watcher {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Watcher {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

#[cfg(not(unix))]
struct Watcher;

#[cfg(not(unix))]
impl Watcher {
    fn install() -> std::io::Result<Self> {
        Ok(Self)
    }

    async fn next(&mut self) -> &'static str {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "ctrl-c",
            // Without a handler there is nothing to wait for; never resolve.
            Err(_) => std::future::pending().await,
        }
    }
}
