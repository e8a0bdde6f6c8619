//! [`TestServer`]: a real `strata serve` process on a temporary data directory that outlives
//! restarts, started, killed and stopped the way an operator (or a crash) would.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

use serde_json::Value;

use super::cli::serve_command;

/// How long a start may take before the test gives up (a debug build opening a large redb
/// file after a crash is slow on a busy two-core machine).
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// No extra `serve` flags: a server with the defaults (and the embedded tiers).
pub(crate) const DEFAULTS: [&str; 0] = [];

/// A `strata serve` process on a data directory that outlives restarts.
pub(crate) struct TestServer {
    child: Option<Child>,
    data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    http_addr: SocketAddr,
    grpc_addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    starts: usize,
}

fn owned<S: AsRef<str>>(args: &[S]) -> Vec<String> {
    args.iter().map(|s| s.as_ref().to_owned()).collect()
}

impl TestServer {
    /// Starts a server on a fresh temporary data directory.
    pub(crate) fn spawn() -> Self {
        Self::spawn_with(&DEFAULTS)
    }

    /// Starts a server on a fresh temporary data directory with extra `serve` flags.
    pub(crate) fn spawn_with<S: AsRef<str>>(args: &[S]) -> Self {
        Self::spawn_with_env(args, &[])
    }

    /// Starts a server on a fresh temporary data directory with extra `serve` flags and
    /// environment variables (kept for every restart).
    pub(crate) fn spawn_with_env<S: AsRef<str>>(args: &[S], envs: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("data");
        let mut server = Self {
            child: None,
            data_dir,
            _tmp: Some(tmp),
            args: owned(args),
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            http_addr: ([127, 0, 0, 1], 0).into(),
            grpc_addr: ([127, 0, 0, 1], 0).into(),
            log: Arc::default(),
            starts: 0,
        };
        server.start();
        server
    }

    /// [`TestServer::spawn_with`] off the async workers (a start blocks until `listening`).
    pub(crate) async fn spawn_async<S: AsRef<str>>(args: &[S]) -> Self {
        Self::spawn_async_with_env(args, &[]).await
    }

    /// [`TestServer::spawn_with_env`] off the async workers.
    pub(crate) async fn spawn_async_with_env<S: AsRef<str>>(
        args: &[S],
        envs: &[(&str, &str)],
    ) -> Self {
        let args = owned(args);
        let envs: Vec<(String, String)> = envs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        tokio::task::spawn_blocking(move || {
            let envs: Vec<(&str, &str)> =
                envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            Self::spawn_with_env(&args, &envs)
        })
        .await
        .unwrap()
    }

    /// Runs `step` (starting, restarting or stopping the server: calls that block until the
    /// process answers) off the async workers and hands the server back.
    pub(crate) async fn blocking(
        mut self,
        step: impl FnOnce(&mut TestServer) + Send + 'static,
    ) -> Self {
        tokio::task::spawn_blocking(move || {
            step(&mut self);
            self
        })
        .await
        .unwrap()
    }

    /// Stops the server gracefully and starts it again with the extra `serve` flags `args`,
    /// off the async workers.
    pub(crate) async fn restart_with(self, args: Vec<String>) -> Self {
        self.blocking(move |s| {
            s.stop_gracefully(Duration::from_secs(60));
            s.set_args(&args);
            s.start();
        })
        .await
    }

    /// Replaces the extra `serve` flags used by the next start.
    pub(crate) fn set_args<S: AsRef<str>>(&mut self, args: &[S]) {
        self.args = owned(args);
    }

    /// Starts the server (it must not be running) and waits for `listening`.
    pub(crate) fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut cmd = serve_command(&self.data_dir, &self.args);
        cmd.envs(self.envs.iter().map(|(k, v)| (k, v)));
        self.starts += 1;
        self.log
            .lock()
            .unwrap()
            .push(format!("---- start #{} ----", self.starts));
        let (child, http, grpc) = spawn_and_wait_listening(cmd, self.log.clone());
        self.child = Some(child);
        self.http_addr = http;
        self.grpc_addr = grpc;
    }

    /// `http://127.0.0.1:PORT` of the REST API.
    pub(crate) fn http_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// Address of the gRPC API.
    pub(crate) fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The data directory (kept across restarts).
    pub(crate) fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Process id of the running server.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("server not running").id()
    }

    /// SIGKILL (on Unix, `Child::kill` sends SIGKILL) and reap the process.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM (a graceful shutdown request).
    pub(crate) fn terminate(&self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.pid()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    }

    /// Waits for the process to exit on its own; `None` if it is still running at `timeout`.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut().expect("server not running");
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then waits for a clean exit (status 0) within `timeout`.
    pub(crate) fn stop_gracefully(&mut self, timeout: Duration) {
        self.terminate();
        let status = self
            .wait_exit(timeout)
            .unwrap_or_else(|| panic!("the server did not exit within {timeout:?} of SIGTERM"));
        assert!(status.success(), "graceful shutdown failed: {status:?}");
    }

    /// Kills the server if it runs and starts it again on the same data directory (with new
    /// ports).
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.start();
    }

    /// Everything the server logged so far, over all starts.
    pub(crate) fn logs(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log.lock().unwrap();
            let tail = log.len().saturating_sub(300);
            eprintln!("---- strata server log (last lines) ----");
            for line in &log[tail..] {
                eprintln!("{line}");
            }
        }
    }
}

/// Spawns `cmd` with standard error captured and waits for its `listening` log line
/// (JSON log format); returns the child and the HTTP and gRPC addresses it reported. Every
/// line is appended to `log`. Panics with the log if the process exits first.
pub(crate) fn spawn_and_wait_listening(
    mut cmd: Command,
    log: Arc<Mutex<Vec<String>>>,
) -> (Child, SocketAddr, SocketAddr) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn strata");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    // The pipe must be drained for the whole life of the process, or a chatty server
    // blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(addrs) = listening_addrs(&line) {
                let _ = tx.send(addrs);
            }
            log.lock().unwrap().push(line);
        }
    });
    match rx.recv_timeout(START_TIMEOUT) {
        Ok((http, grpc)) => (child, http, grpc),
        Err(e) => {
            let _ = child.kill();
            let status = child.wait();
            panic!("strata did not report `listening` ({e}); exit: {status:?}");
        }
    }
}

/// The addresses of a JSON `listening` log line.
fn listening_addrs(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let v: Value = serde_json::from_str(line).ok()?;
    // Fields are flattened to the top level; also accept the nested `fields` form.
    let fields = if v.get("message").is_some() {
        &v
    } else {
        v.get("fields")?
    };
    if fields.get("message")?.as_str()? != "listening" {
        return None;
    }
    let http = fields.get("http_addr")?.as_str()?.parse().ok()?;
    let grpc = fields.get("grpc_addr")?.as_str()?.parse().ok()?;
    Some((http, grpc))
}
