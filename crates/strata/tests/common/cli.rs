//! One-shot runs of the `strata` binary: every command the tests build starts from
//! [`strata_command`], so the environment the tests run in never changes what the binary
//! sees, and runs to its exit under a deadline in [`run_to_exit`].

use std::{
    ffi::OsStr,
    io::Read,
    path::Path,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

/// The binary under test.
pub(crate) const STRATA: &str = env!("CARGO_BIN_EXE_strata");

/// How long a one-shot command against a test server may run.
pub(crate) const CLI_TIMEOUT: Duration = Duration::from_secs(120);

/// `strata ARGS` with the test's own `STRATA_*` and `RUST_LOG` variables removed.
pub(crate) fn strata_command<S: AsRef<OsStr>>(args: &[S]) -> Command {
    let mut cmd = Command::new(STRATA);
    cmd.args(args);
    for (k, _) in std::env::vars_os() {
        let name = k.to_string_lossy();
        if name.starts_with("STRATA_") || name == "RUST_LOG" {
            cmd.env_remove(&k);
        }
    }
    cmd
}

/// `strata serve` on `data_dir` with free ports, JSON logs at `info` and `args`.
pub(crate) fn serve_command<S: AsRef<OsStr>>(data_dir: &Path, args: &[S]) -> Command {
    let mut cmd = strata_command(&["serve"]);
    cmd.arg("--data-dir")
        .arg(data_dir)
        .args(["--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"])
        .args(["--log-format", "json", "--log-level", "info"])
        .args(args);
    cmd
}

/// Runs `cmd` to its exit with standard output and error captured; kills it and panics
/// (with what it wrote to standard error) if it is still running at `timeout`.
pub(crate) fn run_to_exit(mut cmd: Command, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let what = format!("{cmd:?}");
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    // Both pipes are drained while the process runs, or a chatty one blocks on a full pipe.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr.join().unwrap_or_default();
            panic!(
                "{what} did not exit within {timeout:?}; stderr:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// `strata serve ARGS` on a fresh temporary data directory, run off the async workers to
/// the exit a refused configuration ends in (within a minute).
pub(crate) async fn serve_to_exit<S: AsRef<str>>(args: &[S]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.as_ref().to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let data = tempfile::tempdir().expect("tempdir");
        run_to_exit(serve_command(data.path(), &args), Duration::from_secs(60))
    })
    .await
    .unwrap()
}

/// Runs `strata ARGS` with `envs` to its exit (see [`run_to_exit`]).
pub(crate) fn strata_cli(args: &[&str], envs: &[(&str, &str)], timeout: Duration) -> Output {
    let mut cmd = strata_command(args);
    cmd.envs(envs.iter().copied());
    run_to_exit(cmd, timeout)
}

/// Standard output as text.
pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Standard error as text.
pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Checks that `help` lists every one of `flags` as `--FLAG` together with its environment
/// variable, `env_prefix` plus the flag in upper snake case.
pub(crate) fn assert_help_lists(help: &str, env_prefix: &str, flags: &[&str]) {
    for flag in flags {
        assert!(
            help.contains(&format!("--{flag}")),
            "--{flag} missing:\n{help}"
        );
        let env = format!("{env_prefix}{}", flag.to_uppercase().replace('-', "_"));
        assert!(help.contains(&env), "{env} missing:\n{help}");
    }
}
