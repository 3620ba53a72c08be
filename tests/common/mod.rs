//! Shared helpers of the black-box tests: start the real `dbss-exporter`
//! binary on port 0, read the address it logs, and talk HTTP to it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running exporter process; killed when dropped.
pub struct Exporter {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    logs: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
    /// Where its configuration file is.
    pub config_path: PathBuf,
}

/// The exporter binary built by cargo for these tests.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_dbss-exporter")
}

impl Exporter {
    /// Starts the exporter with `config` as its file and extra `args`.
    pub fn start(config: &str, args: &[&str]) -> Exporter {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, config).expect("write config");
        let mut cmd = Command::new(binary());
        cmd.arg(format!("--config.file={}", config_path.display()))
            .arg("--web.listen-address=127.0.0.1:0")
            .args(args);
        Self::spawn(cmd, dir, config_path)
    }

    /// Starts `dbss-exporter demo` with extra `args`.
    pub fn demo(args: &[&str]) -> Exporter {
        Self::demo_with_env(args, &[])
    }

    /// Starts `dbss-exporter demo` with extra `args` and environment.
    pub fn demo_with_env(args: &[&str], env: &[(&str, &str)]) -> Exporter {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cmd = Command::new(binary());
        cmd.arg("demo")
            .arg("--web.listen-address=127.0.0.1:0")
            .args(args)
            .envs(env.iter().copied());
        let path = dir.path().join("unused.toml");
        Self::spawn(cmd, dir, path)
    }

    fn spawn(mut cmd: Command, dir: tempfile::TempDir, config_path: PathBuf) -> Exporter {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dbss-exporter");
        let logs = Arc::new(Mutex::new(Vec::new()));
        collect(child.stdout.take().expect("stdout"), logs.clone());
        collect(child.stderr.take().expect("stderr"), logs.clone());

        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = loop {
            if let Some(addr) = find_address(&logs.lock().unwrap()) {
                break addr;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "exporter exited with {status}: {}",
                    logs.lock().unwrap().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "exporter did not start: {}",
                logs.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Exporter {
            child,
            addr,
            logs,
            _dir: dir,
            config_path,
        }
    }

    /// The URL of `path` on this exporter.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Everything the process wrote so far, stdout and stderr.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// GETs `path`: status, content type and body.
    pub async fn get(&self, path: &str) -> (u16, String, String) {
        let resp = reqwest::get(self.url(path)).await.expect("GET");
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, ctype, resp.text().await.expect("body"))
    }

    /// The metrics page.
    pub async fn metrics(&self) -> String {
        self.get("/metrics").await.2
    }

    /// Waits until the metrics page satisfies `pred`, and returns it.
    pub async fn wait_metrics(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let page = self.metrics().await;
            if pred(&page) {
                return page;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last page:\n{page}\nlogs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `/-/ready` answers 200.
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.get("/-/ready").await.0 != 200 {
            assert!(
                Instant::now() < deadline,
                "never ready; logs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends `signal` (a `kill` name such as TERM or HUP).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(stream: impl std::io::Read + Send + 'static, logs: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            logs.lock().unwrap().push(line);
        }
    });
}

fn find_address(lines: &[String]) -> Option<String> {
    let line = lines.iter().find(|l| l.contains("dbss-exporter started"))?;
    let start = line.find("address=")? + "address=".len();
    let rest = &line[start..];
    Some(
        rest.split_whitespace()
            .next()?
            .trim_matches('"')
            .to_string(),
    )
}

/// The sample lines of `family` on `page` (no HELP/TYPE lines).
pub fn series(page: &str, family: &str) -> Vec<String> {
    page.lines()
        .filter(|l| {
            l.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .map(str::to_string)
        .collect()
}

/// A configuration with one token credential and the given targets, each
/// `(project_id, region, endpoint, extra lines)`.
pub fn config(
    poll: &str,
    token_file: &std::path::Path,
    targets: &[(&str, &str, &str, &str)],
) -> String {
    let mut c = format!(
        "[poll]\n{poll}\n\n[credentials.main]\ntype = \"token\"\ntoken_file = \"{}\"\n",
        token_file.display()
    );
    for (project, region, endpoint, extra) in targets {
        c.push_str(&format!(
            "\n[[targets]]\nproject_id = \"{project}\"\nregion = \"{region}\"\nendpoint = \"{endpoint}\"\ncredentials = \"main\"\n{extra}\n"
        ));
    }
    c
}

/// Writes `token` to a file in a fresh directory; keep the directory alive.
pub fn token_file(token: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("token");
    std::fs::write(&path, format!("{token}\n")).expect("write token");
    (dir, path)
}

/// Fails the test if `fut` takes longer than `secs`.
pub async fn within<T>(secs: u64, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .expect("test timed out")
}
