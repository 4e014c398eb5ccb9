//! The launcher: writes a config, spawns `freshtap serve`, learns the bound address from the
//! startup line "freshtap is listening" (the config binds port 0, so there is no port race),
//! waits for health, signals or kills it, and keeps everything it wrote to stderr.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_freshtap");

/// A config file in a directory of its own; `start` runs the relay on it, any number of times.
pub struct Relay {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Relay {
    /// `config` is the whole TOML file. It must bind `127.0.0.1:0` and log the startup line
    /// (JSON, `freshtap::startup` at info or finer, e.g. `level = "warn,freshtap::startup=info"`).
    /// `{dir}` in it is replaced by the relay's directory.
    pub fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("freshtap.toml");
        let text = config.replace("{dir}", &dir.path().display().to_string());
        std::fs::write(&path, text).expect("write config");
        Self { dir, config: path }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .current_dir(self.dir.path())
            .env_remove("FRESHTAP_CONFIG")
            .stdin(Stdio::null());
        command
    }

    /// A CLI command to completion (`dead-letters list`, `check-config`, …).
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("binary runs")
    }

    /// `freshtap serve`, once it has said where it listens.
    pub fn start(&self) -> Running {
        let mut child = self
            .command(&["serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let (found, address) = mpsc::channel();
        let collected = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = listening_addr(&line) {
                    let _ = found.send(addr);
                }
                eprintln!("{line}");
                collected.lock().expect("lock").push(line);
            }
        });
        let mut running = Running {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            lines,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(addr) = address.recv_timeout(Duration::from_millis(50)) {
                running.addr = addr;
                return running;
            }
            if let Some(status) = running.child.try_wait().expect("try_wait") {
                panic!(
                    "the relay exited ({status}) before listening:\n{}",
                    running.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the relay did not log \"freshtap is listening\" within 30 s:\n{}",
                running.stderr()
            );
        }
    }
}

/// The `addr` field of the JSON startup line.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let event: Value = serde_json::from_str(line).ok()?;
    let fields = event.get("fields").unwrap_or(&event);
    if fields["message"] != "freshtap is listening" {
        return None;
    }
    fields["addr"].as_str()?.parse().ok()
}

/// A running `freshtap serve`; killed (SIGKILL) and reaped on drop, panics included.
pub struct Running {
    child: Child,
    addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Running {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Everything the process wrote to stderr so far, one log line per line.
    pub fn stderr(&self) -> String {
        self.lines.lock().expect("lock").join("\n")
    }

    /// The stderr lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lock").clone()
    }

    /// Sends a signal by name (`TERM`, `INT`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// SIGKILL now, and reap.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "the relay did not exit in time");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, and a clean exit within `within`.
    pub fn stop(&mut self, within: Duration) {
        self.signal("TERM");
        let status = self.wait_exit(within);
        assert!(status.success(), "exit status {status:?}");
    }

    /// Fails the test if the process died on its own.
    pub fn assert_running(&mut self) {
        let status = self.child.try_wait().expect("try_wait");
        assert!(status.is_none(), "the relay exited early: {status:?}");
    }

    pub async fn wait_healthy(&self) {
        let client = reqwest::Client::new();
        for _ in 0..250 {
            if client
                .get(self.url("/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the relay did not become healthy within 5 s");
    }

    /// Waits until `/readyz` answers `want` (bounded), returning its body.
    pub async fn wait_ready(&self, client: &reqwest::Client, want: u16, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        let mut last = String::from("no answer");
        loop {
            if let Ok(response) = client.get(self.url("/readyz")).send().await {
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                if status == want {
                    return body;
                }
                last = format!("{status} {body}");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "/readyz did not answer {want} within {within:?} (last: {last})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Any other child process of a test (nginx), SIGKILLed and reaped on drop.
pub struct KillOnDrop(pub Child);

impl KillOnDrop {
    pub fn assert_running(&mut self, name: &str) {
        let status = self.0.try_wait().expect("try_wait");
        assert!(status.is_none(), "{name} exited early: {status:?}");
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
