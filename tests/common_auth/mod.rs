//! Helpers of the sign-in tests: start the real exporter with a chosen
//! environment (the `HUAWEICLOUD_SDK_*` variables of the test process are
//! never passed on), collect everything it writes, and read its metrics.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running exporter; killed when dropped.
pub struct Exporter {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    logs: Arc<Mutex<Vec<String>>>,
    /// The directory of its configuration file.
    pub dir: tempfile::TempDir,
}

impl Exporter {
    /// Starts the exporter on `config` with `args` and environment `env`.
    pub fn start(config: &str, args: &[&str], env: &[(&str, &str)]) -> Exporter {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, config).expect("write config");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbss-exporter"));
        cmd.arg(format!("--config.file={}", path.display()))
            .arg("--web.listen-address=127.0.0.1:0")
            .args(args);
        for (name, _) in std::env::vars() {
            if name.starts_with("HUAWEICLOUD_SDK_") {
                cmd.env_remove(name);
            }
        }
        cmd.envs(env.iter().copied());
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dbss-exporter");
        let logs = Arc::new(Mutex::new(Vec::new()));
        collect(child.stdout.take().expect("stdout"), logs.clone());
        collect(child.stderr.take().expect("stderr"), logs.clone());
        let addr = wait_address(&mut child, &logs);
        Exporter {
            child,
            addr,
            logs,
            dir,
        }
    }

    /// The configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    /// Everything the process wrote so far, stdout and stderr.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// The metrics page.
    pub async fn metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.addr);
        reqwest::get(url)
            .await
            .expect("GET")
            .text()
            .await
            .expect("body")
    }

    /// Waits until the metrics page satisfies `pred`, and returns it.
    pub async fn wait_metrics(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let page = self.metrics().await;
            if pred(&page) {
                return page;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; page:\n{page}\nlogs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the logs hold `text`.
    pub async fn wait_log(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(40);
        while !self.logs().contains(text) {
            assert!(
                Instant::now() < deadline,
                "no {text:?} in logs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends `signal` (a `kill` name such as HUP).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
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

fn wait_address(child: &mut Child, logs: &Mutex<Vec<String>>) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = logs.lock().unwrap().iter().find_map(|l| {
            let l = l.contains("dbss-exporter started").then_some(l)?;
            let rest = &l[l.find("address=")? + "address=".len()..];
            Some(
                rest.split_whitespace()
                    .next()?
                    .trim_matches('"')
                    .to_string(),
            )
        });
        if let Some(addr) = found {
            return addr;
        }
        let all = || logs.lock().unwrap().join("\n");
        if let Ok(Some(status)) = child.try_wait() {
            panic!("exporter exited with {status}: {}", all());
        }
        assert!(
            Instant::now() < deadline,
            "exporter did not start: {}",
            all()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The value of the sample `line_prefix` (a metric name with its labels).
pub fn value(page: &str, line_prefix: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(line_prefix)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// The sum of every sample of `family`.
pub fn total(page: &str, family: &str) -> f64 {
    page.lines()
        .filter(|l| {
            l.strip_prefix(family)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Writes `value` to `name` in `dir`, readable by its owner only.
pub fn secret_file(dir: &Path, name: &str, value: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("{value}\n")).expect("write secret");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

/// A `[[targets]]` entry.
pub fn target(project: &str, endpoint: &str, credentials: Option<&str>) -> String {
    let cred = credentials
        .map(|c| format!("credentials = \"{c}\"\n"))
        .unwrap_or_default();
    format!("\n[[targets]]\nproject_id = \"{project}\"\nregion = \"cn-north-4\"\nendpoint = \"{endpoint}\"\n{cred}")
}

/// Fails the test if `fut` takes longer than `secs`.
pub async fn within<T>(secs: u64, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .expect("test timed out")
}
