//! Helpers of the web tests: the exporter binary on a loopback port, test
//! certificates made with rcgen, configuration files and a scraping client.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// The token the simulator accepts and the exporter sends.
pub const TOKEN: &str = "web-test-token-0123456789";

/// A running exporter; killed when dropped.
pub struct Exporter {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    logs: Arc<Mutex<Vec<String>>>,
}

/// Starts the exporter with `args` and extra environment variables; proxy
/// variables of the test's own environment are never passed on.
pub fn start(args: &[&str], env: &[(&str, &str)]) -> Exporter {
    let child = spawn(args, env);
    let (child, logs) = follow(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = logs
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains("message=\"dbss-exporter started\""))
            .and_then(|l| field(l, "address"));
        if let Some(addr) = found {
            return Exporter { child, addr, logs };
        }
        assert!(
            Instant::now() < deadline,
            "exporter did not start: {:?}",
            logs.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the exporter until it exits by itself; returns its code and stderr.
pub fn run_to_exit(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dbss-exporter"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn spawn(args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbss-exporter"));
    cmd.arg("--web.listen-address=127.0.0.1:0")
        .args(args)
        .env("DBSS_TEST_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for v in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
    ] {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn follow(mut child: Child) -> (Child, Arc<Mutex<Vec<String>>>) {
    let stderr = child.stderr.take().unwrap();
    let logs = Arc::new(Mutex::new(Vec::new()));
    let sink = logs.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            sink.lock().unwrap().push(line);
        }
    });
    (child, logs)
}

/// The value of `name=` in a logfmt line.
fn field(line: &str, name: &str) -> Option<String> {
    let start = line.find(&format!(" {name}="))? + name.len() + 2;
    let rest = &line[start..];
    let end = rest.find(' ').unwrap_or(rest.len());
    Some(rest[..end].trim_matches('"').to_string())
}

impl Exporter {
    /// Every log line so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Waits until a log line holds every one of `needles`.
    pub async fn wait_log(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let hit = self
                .logs()
                .into_iter()
                .find(|l| needles.iter().all(|n| l.contains(n)));
            if let Some(line) = hit {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needles:?}: {:#?}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGHUP.
    pub fn hangup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// `http://ADDR/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client for plain HTTP that ignores proxy variables.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// GETs `url` and returns the body of a 200.
pub async fn scrape(url: &str) -> String {
    let r = http().get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.text().await.unwrap()
}

/// Scrapes until a line of the page equals `line`; returns that page.
pub async fn wait_line(url: &str, line: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = scrape(url).await;
        if page.lines().any(|l| l == line) {
            return page;
        }
        assert!(Instant::now() < deadline, "no line {line:?} in:\n{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One target of a configuration file.
pub struct TargetSpec<'a> {
    /// The project id.
    pub project_id: &'a str,
    /// The endpoint.
    pub endpoint: &'a str,
    /// Extra lines of the target's table.
    pub extra: &'a str,
}

/// A configuration polling `targets` every second with the test token,
/// `poll_extra` added to `[poll]`.
pub fn config(poll_extra: &str, targets: &[TargetSpec]) -> String {
    let mut text = format!("[poll]\ninterval = \"1s\"\ndeadline = \"900ms\"\ntimeout = \"800ms\"\nconnect_timeout = \"500ms\"\nretries = 0\n{poll_extra}\n[credentials]\nmain = {{ type = \"token\", token_env = \"DBSS_TEST_TOKEN\" }}\n");
    for t in targets {
        text.push_str(&format!(
            "\n[[targets]]\nproject_id = \"{}\"\nregion = \"cn-north-4\"\nendpoint = \"{}\"\ncredentials = \"main\"\n{}\n",
            t.project_id, t.endpoint, t.extra
        ));
    }
    text
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// An instance with an upgrade available, as the simulator serves it.
pub fn instances() -> Vec<serde_json::Value> {
    vec![dbss_exporter::sim::instance_json(
        "inst-1",
        "23.02.27.1",
        0,
        Some("24.06.13.1"),
        10,
    )]
}

/// A private CA, a server certificate for 127.0.0.1 and localhost signed by
/// it, a second CA for clients with a client certificate, and a client
/// certificate no CA signed.
pub struct Pki {
    /// The server CA, PEM.
    pub ca: String,
    /// The server certificate, PEM.
    pub server_cert: String,
    /// The server key, PEM.
    pub server_key: String,
    /// The client CA, PEM.
    pub client_ca: String,
    /// A client certificate and key signed by the client CA, PEM.
    pub client: String,
    /// A self-signed client certificate and key, PEM.
    pub stranger: String,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
    issuer: Option<&CertifiedIssuer<'static, KeyPair>>,
) -> (String, String) {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut p = CertificateParams::new(names).unwrap();
    p.distinguished_name.push(DnType::CommonName, "test");
    p.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = match issuer {
        Some(ca) => p.signed_by(&key, ca).unwrap(),
        None => p.self_signed(&key).unwrap(),
    };
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    /// Makes every certificate afresh.
    pub fn new() -> Pki {
        let server_ca = ca("dbss test server CA");
        let client_ca = ca("dbss test client CA");
        let (server_cert, server_key) = leaf(
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
            Some(&server_ca),
        );
        let (c, k) = leaf(
            &["scraper.test"],
            ExtendedKeyUsagePurpose::ClientAuth,
            Some(&client_ca),
        );
        let (sc, sk) = leaf(
            &["stranger.test"],
            ExtendedKeyUsagePurpose::ClientAuth,
            None,
        );
        Pki {
            ca: server_ca.pem(),
            server_cert,
            server_key,
            client_ca: client_ca.pem(),
            client: format!("{c}{k}"),
            stranger: format!("{sc}{sk}"),
        }
    }

    /// Writes every file into `dir`: ca.pem, server.pem, server.key,
    /// client-ca.pem.
    pub fn write(&self, dir: &Path) {
        write(dir, "ca.pem", &self.ca);
        write(dir, "server.pem", &self.server_cert);
        write(dir, "server.key", &self.server_key);
        write(dir, "client-ca.pem", &self.client_ca);
    }

    /// An HTTPS client that trusts only the test CA, with `identity` as its
    /// client certificate when given.
    pub fn client(&self, identity: Option<&str>) -> reqwest::Client {
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca.as_bytes()).unwrap())
            .timeout(Duration::from_secs(10));
        if let Some(pem) = identity {
            b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        b.build().unwrap()
    }
}
