//! Outbound: the proxy variables are honoured (checked with a small local
//! proxy that records what it carries), NO_PROXY bypasses it, and a private
//! CA is trusted per target or globally, with `insecure_skip_verify` as the
//! logged way out.

mod common_web;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common_web::{start, Pki, TargetSpec};
use dbss_exporter::sim::Simulator;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LIMIT: Duration = Duration::from_secs(60);

/// A forward proxy on loopback: CONNECT tunnels and absolute-form requests,
/// each connection's first line recorded.
struct Proxy {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(relay(stream, log.clone()));
            }
        });
        Proxy { url, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

async fn relay(mut client: TcpStream, log: Arc<Mutex<Vec<String>>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let first = text.lines().next().unwrap_or("").to_string();
    log.lock().unwrap().push(first.clone());
    let mut parts = first.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let authority = match method {
        "CONNECT" => target.to_string(),
        _ => target
            .strip_prefix("http://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or("")
            .to_string(),
    };
    let Ok(mut upstream) = TcpStream::connect(&authority).await else {
        return;
    };
    if method == "CONNECT" {
        let ok = b"HTTP/1.1 200 Connection Established\r\n\r\n";
        if client.write_all(ok).await.is_err() {
            return;
        }
    } else if upstream.write_all(&head).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

fn up(project: &str, value: u8) -> String {
    format!("dbss_up{{project_id=\"{project}\",region=\"cn-north-4\"}} {value}")
}

fn target<'a>(project_id: &'a str, endpoint: &'a str, extra: &'a str) -> TargetSpec<'a> {
    TargetSpec {
        project_id,
        endpoint,
        extra,
    }
}

async fn plain_sim() -> Simulator {
    let sim = Simulator::start().await.unwrap();
    sim.add_token(common_web::TOKEN);
    sim.set_instances("p1", common_web::instances());
    sim
}

/// HTTP_PROXY carries requests to an http:// endpoint, in absolute form.
#[tokio::test]
async fn http_proxy_carries_plain_requests() {
    tokio::time::timeout(LIMIT, async {
        let sim = plain_sim().await;
        let proxy = Proxy::start().await;
        let dir = tempfile::tempdir().unwrap();
        let text = common_web::config("", &[target("p1", &sim.url(), "")]);
        let path = common_web::write(dir.path(), "config.toml", &text);
        let arg = format!("--config.file={}", path.display());
        let exporter = start(&[&arg], &[("HTTP_PROXY", &proxy.url)]);
        common_web::wait_line(&exporter.url("/metrics"), &up("p1", 1)).await;

        let want = format!("GET {}/v1/p1/audit/upgrade/status HTTP/1.1", sim.url());
        assert!(proxy.seen().contains(&want), "{:?}", proxy.seen());
    })
    .await
    .unwrap();
}

/// HTTPS_PROXY tunnels to an https:// endpoint with CONNECT, and the
/// target's private CA is trusted through the tunnel.
#[tokio::test]
async fn https_proxy_tunnels_to_a_private_ca_endpoint() {
    tokio::time::timeout(LIMIT, async {
        let pki = Pki::new();
        let sim = Simulator::start_tls(&pki.server_cert, &pki.server_key)
            .await
            .unwrap();
        sim.add_token(common_web::TOKEN);
        sim.set_instances("p1", common_web::instances());
        let proxy = Proxy::start().await;
        let dir = tempfile::tempdir().unwrap();
        pki.write(dir.path());
        let ca = format!(
            "ca_file = {:?}",
            dir.path().join("ca.pem").display().to_string()
        );
        let text = common_web::config("", &[target("p1", &sim.url(), &ca)]);
        let path = common_web::write(dir.path(), "config.toml", &text);
        let arg = format!("--config.file={}", path.display());
        let exporter = start(&[&arg], &[("HTTPS_PROXY", &proxy.url)]);
        common_web::wait_line(&exporter.url("/metrics"), &up("p1", 1)).await;

        let authority = sim.url().trim_start_matches("https://").to_string();
        let want = format!("CONNECT {authority} HTTP/1.1");
        assert!(proxy.seen().contains(&want), "{:?}", proxy.seen());
    })
    .await
    .unwrap();
}

/// NO_PROXY names hosts reached directly: the proxy sees nothing.
#[tokio::test]
async fn no_proxy_bypasses_the_proxy() {
    tokio::time::timeout(LIMIT, async {
        let sim = plain_sim().await;
        let proxy = Proxy::start().await;
        let dir = tempfile::tempdir().unwrap();
        let text = common_web::config("", &[target("p1", &sim.url(), "")]);
        let path = common_web::write(dir.path(), "config.toml", &text);
        let arg = format!("--config.file={}", path.display());
        let env = [
            ("HTTP_PROXY", proxy.url.as_str()),
            ("HTTPS_PROXY", proxy.url.as_str()),
            ("NO_PROXY", "127.0.0.1"),
        ];
        let exporter = start(&[&arg], &env);
        common_web::wait_line(&exporter.url("/metrics"), &up("p1", 1)).await;
        assert!(proxy.seen().is_empty(), "{:?}", proxy.seen());
        assert!(sim.request_count("p1") >= 1);
    })
    .await
    .unwrap();
}

/// Against an endpoint with a private CA: the target with `ca_file`
/// succeeds, the one without fails with reason connect and a log line that
/// says why, and the one with `insecure_skip_verify` succeeds with a warning.
#[tokio::test]
async fn private_ca_is_trusted_only_where_configured() {
    tokio::time::timeout(LIMIT, async {
        let pki = Pki::new();
        let sim = Simulator::start_tls(&pki.server_cert, &pki.server_key)
            .await
            .unwrap();
        sim.add_token(common_web::TOKEN);
        for p in ["p1", "p2", "p3"] {
            sim.set_instances(p, common_web::instances());
        }
        let dir = tempfile::tempdir().unwrap();
        pki.write(dir.path());
        let ca = format!(
            "ca_file = {:?}",
            dir.path().join("ca.pem").display().to_string()
        );
        let url = sim.url();
        let text = common_web::config(
            "",
            &[
                target("p1", &url, &ca),
                target("p2", &url, ""),
                target("p3", &url, "insecure_skip_verify = true"),
            ],
        );
        let path = common_web::write(dir.path(), "config.toml", &text);
        let exporter = start(&[&format!("--config.file={}", path.display())], &[]);
        let metrics = exporter.url("/metrics");
        common_web::wait_line(&metrics, &up("p1", 1)).await;
        common_web::wait_line(&metrics, &up("p3", 1)).await;
        let page = common_web::wait_line(&metrics, &up("p2", 0)).await;

        let errors =
            "dbss_poll_errors_total{project_id=\"p2\",region=\"cn-north-4\",reason=\"connect\"} ";
        assert!(page.lines().any(|l| l.starts_with(errors)), "{page}");
        assert_eq!(
            sim.request_count("p2"),
            0,
            "no request passed the handshake"
        );
        exporter
            .wait_log(&[
                "level=warn",
                "poll failed",
                "project_id=p2",
                "reason=connect",
                "certificate",
            ])
            .await;
        exporter
            .wait_log(&["level=warn", "insecure_skip_verify is on", "project_id=p3"])
            .await;
        assert!(!exporter
            .logs()
            .iter()
            .any(|l| l.contains("insecure_skip_verify is on") && l.contains("project_id=p1")));
    })
    .await
    .unwrap();
}

/// `poll.ca_file` is trusted for every target.
#[tokio::test]
async fn global_ca_file_applies_to_every_target() {
    tokio::time::timeout(LIMIT, async {
        let pki = Pki::new();
        let sim = Simulator::start_tls(&pki.server_cert, &pki.server_key)
            .await
            .unwrap();
        sim.add_token(common_web::TOKEN);
        sim.set_instances("p1", common_web::instances());
        let dir = tempfile::tempdir().unwrap();
        pki.write(dir.path());
        let ca = format!(
            "ca_file = {:?}",
            dir.path().join("ca.pem").display().to_string()
        );
        let text = common_web::config(&ca, &[target("p1", &sim.url(), "")]);
        let path = common_web::write(dir.path(), "config.toml", &text);
        let exporter = start(&[&format!("--config.file={}", path.display())], &[]);
        common_web::wait_line(&exporter.url("/metrics"), &up("p1", 1)).await;
    })
    .await
    .unwrap();
}

/// IAM behind the same private CA: password sign-in trusts the target's
/// `ca_file` too, not only the DBSS request.
#[tokio::test]
async fn password_sign_in_trusts_the_targets_ca_file() {
    tokio::time::timeout(LIMIT, async {
        let pki = Pki::new();
        let sim = Simulator::start_tls(&pki.server_cert, &pki.server_key)
            .await
            .unwrap();
        sim.add_iam_user("acme", "monitor", "iam-secret-pw");
        sim.set_instances("p1", common_web::instances());
        let dir = tempfile::tempdir().unwrap();
        pki.write(dir.path());
        let ca = dir.path().join("ca.pem").display().to_string();
        let url = sim.url();
        let text = format!(
            "[poll]\ninterval = \"1s\"\n\n[credentials.iam]\ntype = \"password\"\ndomain = \"acme\"\nuser = \"monitor\"\npassword_env = \"DBSS_TEST_PASSWORD\"\niam_endpoint = \"{url}\"\n\n[[targets]]\nproject_id = \"p1\"\nregion = \"cn-north-4\"\nendpoint = \"{url}\"\ncredentials = \"iam\"\nca_file = {ca:?}\n"
        );
        let path = common_web::write(dir.path(), "config.toml", &text);
        let exporter = start(
            &[&format!("--config.file={}", path.display())],
            &[("DBSS_TEST_PASSWORD", "iam-secret-pw")],
        );
        let page = common_web::wait_line(&exporter.url("/metrics"), &up("p1", 1)).await;
        assert!(page.contains("dbss_auth_requests_total{kind=\"iam\",outcome=\"success\"} 1"), "{page}");
    })
    .await
    .unwrap();
}
