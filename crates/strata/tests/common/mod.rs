//! Shared helpers of the black-box tests: run the real `strata` binary on a temporary data
//! directory and talk to it like a client.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub(crate) mod cold;
pub(crate) mod postgres;
pub(crate) mod warm;

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

use chrono::{SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, value::RawValue};

/// The binary under test.
pub(crate) const STRATA: &str = env!("CARGO_BIN_EXE_strata");

/// How long a start may take before the test gives up (a debug build opening a large redb
/// file after a crash is slow on a busy two-core machine).
const START_TIMEOUT: Duration = Duration::from_secs(90);

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

impl TestServer {
    /// Starts a server on a fresh temporary data directory.
    pub(crate) fn spawn() -> Self {
        Self::spawn_with(&[])
    }

    /// Starts a server on a fresh temporary data directory with extra `serve` flags.
    pub(crate) fn spawn_with(args: &[&str]) -> Self {
        Self::spawn_with_env(args, &[])
    }

    /// Starts a server on a fresh temporary data directory with extra `serve` flags and
    /// environment variables (kept for every restart).
    pub(crate) fn spawn_with_env(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("data");
        let mut server = Self {
            child: None,
            data_dir,
            _tmp: Some(tmp),
            args: args.iter().map(|s| s.to_string()).collect(),
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

    /// Replaces the extra `serve` flags used by the next start.
    pub(crate) fn set_args(&mut self, args: &[&str]) {
        self.args = args.iter().map(|s| s.to_string()).collect();
    }

    /// Starts the server (it must not be running) and waits for `listening`.
    pub(crate) fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut cmd = Command::new(STRATA);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"])
            .args(["--log-format", "json", "--log-level", "info"])
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)));
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

/// An event as a test sends it; `payload` is JSON text sent and expected back byte for byte.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TestEvent {
    pub(crate) tenant: String,
    pub(crate) stream: String,
    pub(crate) key: String,
    pub(crate) id: String,
    /// RFC 3339 with microseconds, as the server formats it.
    pub(crate) ts: String,
    pub(crate) value: f64,
    pub(crate) attrs: BTreeMap<String, String>,
    pub(crate) payload: String,
}

impl TestEvent {
    /// A valid event stamped now.
    pub(crate) fn new(tenant: &str, id: String, n: u64) -> Self {
        Self {
            tenant: tenant.into(),
            stream: ["click", "view", "purchase"][(n % 3) as usize].into(),
            key: format!("user-{}", n % 97),
            id,
            ts: now_rfc3339(),
            value: (n % 1000) as f64 / 4.0,
            attrs: [
                (
                    "region".to_string(),
                    ["eu", "us"][(n % 2) as usize].to_string(),
                ),
                (
                    "device".to_string(),
                    ["web", "ios", "android"][(n % 3) as usize].to_string(),
                ),
            ]
            .into(),
            // Odd spacing and key order: a server that re-serialises the payload fails.
            payload: format!(
                r#"{{"n": {n},  "tags":["a", "b"] ,"nested":{{"z":1,"a":[true,null]}}}}"#
            ),
        }
    }

    /// The public event JSON.
    pub(crate) fn to_json(&self) -> String {
        format!(
            r#"{{"tenant":{},"stream":{},"key":{},"id":{},"ts":{},"value":{},"attrs":{},"payload":{}}}"#,
            Value::from(self.tenant.as_str()),
            Value::from(self.stream.as_str()),
            Value::from(self.key.as_str()),
            Value::from(self.id.as_str()),
            Value::from(self.ts.as_str()),
            Value::from(self.value),
            serde_json::to_string(&self.attrs).unwrap(),
            self.payload
        )
    }
}

/// Now as RFC 3339 UTC with microseconds.
pub(crate) fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A JSON array body of `events`.
pub(crate) fn json_body(events: &[TestEvent]) -> String {
    let parts: Vec<String> = events.iter().map(TestEvent::to_json).collect();
    format!("[{}]", parts.join(","))
}

/// The answer to `POST /v1/events`.
#[derive(Debug, Deserialize)]
pub(crate) struct WriteAnswer {
    pub(crate) accepted: u64,
    #[serde(default)]
    pub(crate) rejected: Vec<Value>,
}

/// An HTTP client for tests.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Posts `events`; `Ok` only for a 200 answer (the acknowledgement).
pub(crate) async fn post_events(
    client: &reqwest::Client,
    base: &str,
    events: &[TestEvent],
) -> Result<WriteAnswer, String> {
    let response = client
        .post(format!("{base}/v1/events"))
        .header("content-type", "application/json")
        .body(json_body(events))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let text = response.text().await.map_err(|e| e.to_string())?;
    if status != reqwest::StatusCode::OK {
        return Err(format!("HTTP {status}: {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("bad answer {text}: {e}"))
}

/// A stored event as `GET /v1/events/{id}` returns it, with the payload kept as raw text.
#[derive(Debug, Deserialize)]
pub(crate) struct StoredView {
    pub(crate) tenant: String,
    pub(crate) stream: String,
    pub(crate) key: String,
    pub(crate) id: String,
    pub(crate) ts: String,
    pub(crate) value: Option<f64>,
    #[serde(default)]
    pub(crate) attrs: BTreeMap<String, String>,
    pub(crate) payload: Option<Box<RawValue>>,
}

/// `GET /v1/events/{id}?tenant=T`: `Ok(None)` on 404.
pub(crate) async fn get_event(
    client: &reqwest::Client,
    base: &str,
    tenant: &str,
    id: &str,
) -> Result<Option<StoredView>, String> {
    let response = client
        .get(format!("{base}/v1/events/{id}"))
        .query(&[("tenant", tenant)])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let text = response.text().await.map_err(|e| e.to_string())?;
    match status.as_u16() {
        200 => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("bad event {text}: {e}")),
        404 => Ok(None),
        _ => Err(format!("HTTP {status}: {text}")),
    }
}

/// Checks that the stored event has exactly the fields that were sent.
pub(crate) fn assert_same(sent: &TestEvent, got: &StoredView) {
    assert_eq!(got.tenant, sent.tenant, "tenant of {}", sent.id);
    assert_eq!(got.stream, sent.stream, "stream of {}", sent.id);
    assert_eq!(got.key, sent.key, "key of {}", sent.id);
    assert_eq!(got.id, sent.id);
    assert_eq!(got.ts, sent.ts, "ts of {}", sent.id);
    assert_eq!(got.value, Some(sent.value), "value of {}", sent.id);
    assert_eq!(got.attrs, sent.attrs, "attrs of {}", sent.id);
    assert_eq!(
        got.payload.as_ref().map(|p| p.get()),
        Some(sent.payload.as_str()),
        "payload of {} must come back byte for byte",
        sent.id
    );
}

/// Events of `tenant` counted by `/v1/query/aggregate` over `[from, to)`.
pub(crate) async fn count(
    client: &reqwest::Client,
    base: &str,
    tenant: &str,
    from: &str,
    to: &str,
) -> Result<u64, String> {
    let response = client
        .get(format!("{base}/v1/query/aggregate"))
        .query(&[
            ("tenant", tenant),
            ("from", from),
            ("to", to),
            ("bucket", "1h"),
            ("agg", "count"),
        ])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let text = response.text().await.map_err(|e| e.to_string())?;
    if status != reqwest::StatusCode::OK {
        return Err(format!("HTTP {status}: {text}"));
    }
    let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let buckets = v["buckets"]
        .as_array()
        .ok_or_else(|| format!("no buckets in {text}"))?;
    buckets
        .iter()
        .map(|b| {
            b["value"]
                .as_f64()
                .map(|c| c as u64)
                .ok_or_else(|| format!("bucket without a count in {text}"))
        })
        .sum()
}

/// RFC 3339 of now plus `offset` (negative to go back).
pub(crate) fn rfc3339_from_now(offset: chrono::Duration) -> String {
    (Utc::now() + offset).to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Runs `cmd` to its exit (killing it after `timeout`); returns its status and standard error.
pub(crate) fn run_to_exit(mut cmd: Command, timeout: Duration) -> (ExitStatus, String) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn strata");
    let mut stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the process did not exit within {timeout:?}; stderr:\n{}",
                reader.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, reader.join().unwrap_or_default())
}

/// A `strata serve` command on `data_dir` with free ports, JSON logs and `args`.
pub(crate) fn serve_command(data_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(STRATA);
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"])
        .args(["--log-format", "json", "--log-level", "info"])
        .args(args);
    cmd
}

/// Epoch microseconds as RFC 3339 UTC with microseconds, as the server formats times.
pub(crate) fn rfc3339_micros(micros: i64) -> String {
    chrono::DateTime::<Utc>::from_timestamp_micros(micros)
        .expect("time in range")
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// RFC 3339 to epoch microseconds.
pub(crate) fn parse_micros(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("bad time {rfc3339}: {e}"))
        .timestamp_micros()
}

/// Now, epoch microseconds.
pub(crate) fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

impl TestEvent {
    /// A valid event with event time `ts` (epoch micros).
    pub(crate) fn at(tenant: &str, id: String, n: u64, ts: i64) -> Self {
        Self {
            ts: rfc3339_micros(ts),
            ..Self::new(tenant, id, n)
        }
    }
}

/// What `POST /v1/events` answered.
#[derive(Debug)]
pub(crate) enum PostOutcome {
    /// 200: acknowledged.
    Acked(WriteAnswer),
    /// 503 with the `Retry-After` the server asked for.
    Busy(Duration),
    /// Anything else (including a connection error), with a description.
    Failed(String),
}

/// Posts `events` once and classifies the answer.
pub(crate) async fn try_post_events(
    client: &reqwest::Client,
    base: &str,
    events: &[TestEvent],
) -> PostOutcome {
    let response = match client
        .post(format!("{base}/v1/events"))
        .header("content-type", "application/json")
        .body(json_body(events))
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return PostOutcome::Failed(e.to_string()),
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let text = match response.text().await {
        Ok(t) => t,
        Err(e) => return PostOutcome::Failed(e.to_string()),
    };
    match status.as_u16() {
        200 => match serde_json::from_str(&text) {
            Ok(answer) => PostOutcome::Acked(answer),
            Err(e) => PostOutcome::Failed(format!("bad answer {text}: {e}")),
        },
        503 => {
            let secs = retry_after.unwrap_or_else(|| panic!("503 without Retry-After: {text}"));
            PostOutcome::Busy(Duration::from_secs(secs))
        }
        _ => PostOutcome::Failed(format!("HTTP {status}: {text}")),
    }
}

/// One bucket of an aggregate answer.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BucketView {
    pub(crate) start: String,
    pub(crate) group: Option<String>,
    pub(crate) value: Option<f64>,
}

/// An aggregate answer.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AggregateView {
    pub(crate) buckets: Vec<BucketView>,
    pub(crate) tiers: Vec<String>,
}

/// `GET /v1/query/aggregate`; `Err((status, body))` unless 200.
pub(crate) async fn aggregate(
    client: &reqwest::Client,
    base: &str,
    params: &[(&str, &str)],
) -> Result<AggregateView, (u16, String)> {
    let response = client
        .get(format!("{base}/v1/query/aggregate"))
        .query(params)
        .send()
        .await
        .map_err(|e| (0, e.to_string()))?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| (0, e.to_string()))?;
    if status != 200 {
        return Err((status, text));
    }
    serde_json::from_str(&text).map_err(|e| (status, format!("bad answer {text}: {e}")))
}

/// The sum of every series of the metric `name` on `/metrics` (0 when absent).
pub(crate) async fn metric(client: &reqwest::Client, base: &str, name: &str) -> f64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let series_name = series.split('{').next()?;
            (series_name == name).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}
