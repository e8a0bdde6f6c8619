//! PostgreSQL for the black-box tests: the shared server `scripts/test` starts (named by
//! `STRATA_TEST_POSTGRES_URL`), a fresh database per test on it, and private clusters a test
//! can stop and start at will.

use std::{
    collections::HashSet,
    net::TcpListener,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub(crate) use strata_warm::testing::server_url;
use strata_warm::testing::{connect, try_connect};

/// Creates a fresh database on the server at `server` and returns its URL, so tests never
/// see each other's rows.
pub(crate) async fn fresh_database(server: &str) -> String {
    strata_warm::testing::fresh_database(server, "strata")
        .await
        .url
}

/// `count(*)` and `count(DISTINCT (tenant, id))` of the warm `events` table.
pub(crate) async fn event_counts(db: &str) -> Result<(u64, u64), tokio_postgres::Error> {
    let row = try_connect(db)
        .await?
        .query_one(
            "SELECT count(*), count(DISTINCT (tenant, id)) FROM events",
            &[],
        )
        .await?;
    let all: i64 = row.get(0);
    let distinct: i64 = row.get(1);
    Ok((all as u64, distinct as u64))
}

/// Every `(tenant, id)` in the warm `events` table.
pub(crate) async fn event_ids(db: &str) -> HashSet<(String, String)> {
    connect(db)
        .await
        .query("SELECT tenant, id FROM events", &[])
        .await
        .expect("select ids")
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Whether the server at `url` has timescaledb preloaded (so the hypertable layout works).
pub(crate) async fn timescale_preloaded(url: &str) -> bool {
    let row = connect(url)
        .await
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') \
             AND COALESCE(current_setting('shared_preload_libraries', true), '') \
                 LIKE '%timescaledb%'",
            &[],
        )
        .await
        .expect("query extensions");
    row.get(0)
}

/// The directory with PostgreSQL's server binaries: `STRATA_TEST_PG_BINDIR` (set by
/// `scripts/test`), else `pg_config --bindir`, else the newest `/usr/lib/postgresql/*/bin`.
pub(crate) fn bindir() -> PathBuf {
    let usable = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Ok(dir) = std::env::var("STRATA_TEST_PG_BINDIR") {
        let dir = PathBuf::from(dir);
        assert!(
            usable(&dir),
            "STRATA_TEST_PG_BINDIR={} has no initdb/postgres",
            dir.display()
        );
        return dir;
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && usable(&dir) {
            return dir;
        }
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let dir = e.path().join("bin");
            usable(&dir).then_some((version, dir))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, d)| d).unwrap_or_else(|| {
        panic!(
            "no PostgreSQL server binaries (initdb, postgres): install postgresql-15 or set \
             STRATA_TEST_PG_BINDIR"
        )
    })
}

/// A PostgreSQL cluster of its own for one test: initdb into a temporary directory, a free
/// loopback port, trust authentication, started and stopped by the test. As root, the
/// cluster belongs to the `postgres` user (PostgreSQL refuses to run as root).
pub(crate) struct PgCluster {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    port: u16,
    owner: Option<(u32, u32)>,
    server: Option<Child>,
}

impl PgCluster {
    /// Creates the cluster (not started).
    pub(crate) fn init() -> Self {
        let bindir = bindir();
        let dir = tempfile::tempdir().expect("tempdir");
        let owner = if nix::unistd::geteuid().is_root() {
            let user = nix::unistd::User::from_name("postgres")
                .expect("look up the postgres user")
                .expect("running as root, but there is no postgres user to own the cluster");
            let (uid, gid) = (user.uid.as_raw(), user.gid.as_raw());
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown");
            Some((uid, gid))
        } else {
            None
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let cluster = Self {
            dir,
            bindir,
            port,
            owner,
            server: None,
        };
        let out = cluster
            .command("initdb")
            .arg("-D")
            .arg(cluster.data())
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// A command running `tool` from the server binaries as the cluster's owner.
    fn command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(self.bindir.join(tool));
        cmd.current_dir(self.dir.path());
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    /// A cluster of its own, started, with a fresh database (see [`fresh_database`]);
    /// returns both.
    pub(crate) async fn running_with_database() -> (Self, String) {
        let cluster = tokio::task::spawn_blocking(|| {
            let mut c = Self::init();
            c.start();
            c
        })
        .await
        .unwrap();
        let db = fresh_database(&cluster.url()).await;
        (cluster, db)
    }

    /// Runs `step` (a start or stop: calls that block until the server answers or is gone)
    /// off the async workers and hands the cluster back.
    pub(crate) async fn blocking(mut self, step: impl FnOnce(&mut Self) + Send + 'static) -> Self {
        tokio::task::spawn_blocking(move || {
            step(&mut self);
            self
        })
        .await
        .unwrap()
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server and waits until it accepts connections.
    pub(crate) fn start(&mut self) {
        assert!(self.server.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open postgres log");
        let server = self
            .command("postgres")
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string()])
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn postgres");
        self.server = Some(server);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = Command::new(self.bindir.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-U", "postgres"])
                .args(["-p", &self.port.to_string()])
                .status()
                .expect("run pg_isready");
            if ready.success() {
                return;
            }
            if let Some(status) = self
                .server
                .as_mut()
                .and_then(|s| s.try_wait().ok().flatten())
            {
                self.server = None;
                panic!("postgres exited ({status}); log:\n{}", self.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "postgres not ready within 60 s; log:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `pg_ctl stop -m immediate`: the server quits without a shutdown checkpoint, like a
    /// crash, and recovers on the next start.
    pub(crate) fn stop_immediate(&mut self) {
        self.stop("immediate");
    }

    fn stop(&mut self, mode: &str) {
        let Some(mut server) = self.server.take() else {
            return;
        };
        let out = self
            .command("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(self.data())
            .args(["-m", mode, "-w", "-t", "30"])
            .output();
        if !matches!(&out, Ok(o) if o.status.success()) {
            // pg_ctl could not do it: make sure this test's server, and only it, is gone.
            let _ = server.kill();
        }
        let _ = server.wait();
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- private postgres log ----\n{}", self.log_tail());
        }
        self.stop("fast");
    }
}
