//! A small harness for the black-box fault tests: the real exporter binary
//! on a free port, its configuration in a temporary file, its log kept for
//! reading, and helpers to read `/metrics` until a line shows up.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dbss_exporter::sim::Simulator;

/// The token every simulator in these tests accepts.
pub const TOKEN: &str = "faults-test-token";
/// The region of every target.
pub const REGION: &str = "cn-north-4";

/// A running exporter; killed when dropped.
pub struct Exporter {
    child: Child,
    /// `127.0.0.1:PORT` it serves on.
    pub addr: String,
    log: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A simulator that accepts [`TOKEN`].
pub async fn simulator() -> Simulator {
    let sim = Simulator::start().await.expect("simulator starts");
    sim.add_token(TOKEN);
    sim
}

/// The configuration text: `poll` lines, then one target per project id.
pub fn config(poll: &str, endpoint: &str, projects: &[&str]) -> String {
    let mut text = format!(
        "[poll]\n{poll}\n\n[credentials]\nt = {{ type = \"token\", token_env = \"DBSS_TEST_TOKEN\" }}\n"
    );
    for p in projects {
        text.push_str(&format!(
            "\n[[targets]]\nproject_id = \"{p}\"\nregion = \"{REGION}\"\nendpoint = \"{endpoint}\"\ncredentials = \"t\"\n"
        ));
    }
    text
}

impl Exporter {
    /// Starts the exporter with `config` and waits for its start line.
    pub fn start(config: &str) -> Exporter {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, config).expect("config written");
        let mut child = Command::new(env!("CARGO_BIN_EXE_dbss-exporter"))
            .arg(format!("--config.file={}", path.display()))
            .arg("--web.listen-address=127.0.0.1:0")
            .env("DBSS_TEST_TOKEN", TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("exporter starts");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("stderr piped");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("message=\"dbss-exporter started\"") {
                    let _ = tx.send(address_of(&line));
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no start line; log:\n{}", log.lock().unwrap()));
        Exporter {
            child,
            addr,
            log,
            _dir: dir,
        }
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The `/metrics` page.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.addr))
            .await
            .expect("scrape answers")
            .text()
            .await
            .expect("scrape body")
    }

    /// Scrapes until `line` is on the page (up to 40 s) and returns the page.
    pub async fn wait_for_line(&self, line: &str) -> String {
        let until = Instant::now() + Duration::from_secs(40);
        loop {
            let page = self.metrics().await;
            if has_line(&page, line) {
                return page;
            }
            assert!(
                Instant::now() < until,
                "never saw {line}\npage:\n{page}\nlog:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn address_of(line: &str) -> String {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix("address="))
        .expect("start line has an address")
        .trim_matches('"')
        .to_string()
}

/// Whether `page` has exactly this line.
pub fn has_line(page: &str, line: &str) -> bool {
    page.lines().any(|l| l == line)
}

/// The series lines of `project_id` (no comments), in page order.
pub fn project_lines(page: &str, project_id: &str) -> Vec<String> {
    let needle = format!("{{project_id=\"{project_id}\",");
    page.lines()
        .filter(|l| !l.starts_with('#') && l.contains(&needle))
        .map(str::to_string)
        .collect()
}

/// A series line of `family` for `project_id` with extra `labels`.
pub fn line(family: &str, project_id: &str, labels: &str, value: &str) -> String {
    let extra = if labels.is_empty() {
        String::new()
    } else {
        format!(",{labels}")
    };
    format!("{family}{{project_id=\"{project_id}\",region=\"{REGION}\"{extra}}} {value}")
}

/// The arrival times of the upgrade-status requests for `project_id`.
pub fn arrivals(sim: &Simulator, project_id: &str) -> Vec<Instant> {
    sim.requests()
        .into_iter()
        .filter(|r| r.project_id.as_deref() == Some(project_id))
        .map(|r| r.at)
        .collect()
}

/// Runs a test body under a time limit.
pub async fn within<F: std::future::Future<Output = ()>>(secs: u64, body: F) {
    tokio::time::timeout(Duration::from_secs(secs), body)
        .await
        .expect("test finished in time");
}
