//! The endpoint under `--web.config.file`: TLS with the exporter toolkit's
//! file, client certificates, basic auth, extra headers, and the file read
//! again when it changes.

mod common_web;

use std::time::Duration;

use common_web::{start, Pki, TargetSpec};
use dbss_exporter::sim::Simulator;

const LIMIT: Duration = Duration::from_secs(60);

/// A simulator with one project and a configuration polling it.
async fn setup(dir: &std::path::Path) -> (Simulator, String) {
    let sim = Simulator::start().await.unwrap();
    sim.add_token(common_web::TOKEN);
    sim.set_instances("p1", common_web::instances());
    let text = common_web::config(
        "",
        &[TargetSpec {
            project_id: "p1",
            endpoint: &sim.url(),
            extra: "",
        }],
    );
    let path = common_web::write(dir, "config.toml", &text);
    (sim, path.display().to_string())
}

/// Builds the exporter's arguments for `config` and `web`.
fn args(config: &str, web: &std::path::Path) -> Vec<String> {
    vec![
        format!("--config.file={config}"),
        format!("--web.config.file={}", web.display()),
    ]
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A client that trusts the test CA is served over TLS; one that trusts
/// only the public roots is refused at the handshake.
#[tokio::test]
async fn tls_from_the_toolkit_file_serves_clients_that_trust_the_ca() {
    tokio::time::timeout(LIMIT, async {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        pki.write(dir.path());
        let (_sim, config) = setup(dir.path()).await;
        // Relative names are read next to the web configuration file.
        let web = common_web::write(
            dir.path(),
            "web.yml",
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  min_version: TLS12\n  prefer_server_cipher_suites: true\nhttp_server_config:\n  http2: true\n",
        );
        let exporter = start(&refs(&args(&config, &web)), &[]);
        exporter
            .wait_log(&["message=\"web configuration loaded\"", "tls=true", "client_auth=NoClientCert"])
            .await;
        let url = format!("https://{}/metrics", exporter.addr);

        let r = pki.client(None).get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("dbss_exporter_build_info{"));

        let untrusting = reqwest::Client::builder().no_proxy().build().unwrap();
        let e = untrusting.get(&url).send().await.unwrap_err();
        assert!(e.is_connect(), "{e:?}");

        // Plain HTTP on the TLS port gets a 400 that says why.
        let plain = common_web::http().get(exporter.url("/metrics")).send().await.unwrap();
        assert_eq!(plain.status(), 400);
        assert_eq!(
            plain.text().await.unwrap(),
            "Client sent an HTTP request to an HTTPS server.\n"
        );
        // And the port still serves TLS afterwards.
        let r = pki.client(None).get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
    })
    .await
    .unwrap();
}

/// RequireAndVerifyClientCert: no certificate, or one no client CA signed,
/// fails the handshake; a certificate of the client CA gets in.
#[tokio::test]
async fn client_certificate_is_required_and_checked() {
    tokio::time::timeout(LIMIT, async {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        pki.write(dir.path());
        let (_sim, config) = setup(dir.path()).await;
        let web = common_web::write(
            dir.path(),
            "web.yml",
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client-ca.pem\n",
        );
        let exporter = start(&refs(&args(&config, &web)), &[]);
        let url = format!("https://{}/metrics", exporter.addr);

        assert!(pki.client(None).get(&url).send().await.is_err());
        assert!(pki
            .client(Some(&pki.stranger))
            .get(&url)
            .send()
            .await
            .is_err());
        let r = pki
            .client(Some(&pki.client))
            .get(&url)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    })
    .await
    .unwrap();
}

/// Basic auth: the right password gets 200, a wrong one or none 401 with
/// `WWW-Authenticate: Basic`; the configured headers are on every answer.
#[tokio::test]
async fn basic_auth_lets_in_only_the_right_password() {
    tokio::time::timeout(LIMIT, async {
        let dir = tempfile::tempdir().unwrap();
        let (_sim, config) = setup(dir.path()).await;
        let hash = bcrypt::hash("correct horse", 4).unwrap();
        let text = format!("basic_auth_users:\n  prometheus: {hash}\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n    X-Content-Type-Options: nosniff\n");
        let web = common_web::write(dir.path(), "web.yml", &text);
        let exporter = start(&refs(&args(&config, &web)), &[]);
        let url = exporter.url("/metrics");
        let client = common_web::http();

        let ok = client
            .get(&url)
            .basic_auth("prometheus", Some("correct horse"))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.headers()["x-frame-options"], "deny");
        assert_eq!(ok.headers()["x-content-type-options"], "nosniff");

        let wrong = client
            .get(&url)
            .basic_auth("prometheus", Some("battery staple"))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        assert_eq!(wrong.headers()["www-authenticate"], "Basic realm=\"dbss-exporter\"");
        assert_eq!(wrong.headers()["x-frame-options"], "deny");

        let stranger = client
            .get(&url)
            .basic_auth("root", Some("correct horse"))
            .send()
            .await
            .unwrap();
        assert_eq!(stranger.status(), 401);

        let none = client.get(&url).send().await.unwrap();
        assert_eq!(none.status(), 401);
        assert_eq!(none.headers()["www-authenticate"], "Basic realm=\"dbss-exporter\"");

        // Neither the password nor its hash is ever logged.
        let logs = exporter.logs().join("\n");
        assert!(!logs.contains("correct horse") && !logs.contains(&hash));
    })
    .await
    .unwrap();
}

/// The file is read again when it changes; a broken new file is logged and
/// the previous configuration stays in force.
#[tokio::test]
async fn a_changed_web_file_takes_effect_and_a_broken_one_does_not() {
    tokio::time::timeout(LIMIT, async {
        let dir = tempfile::tempdir().unwrap();
        let (_sim, config) = setup(dir.path()).await;
        let first = bcrypt::hash("first", 4).unwrap();
        let web = common_web::write(
            dir.path(),
            "web.yml",
            &format!("basic_auth_users:\n  prometheus: {first}\n"),
        );
        let exporter = start(&refs(&args(&config, &web)), &[]);
        let url = exporter.url("/metrics");
        let client = common_web::http();
        let status = |password: &'static str| {
            let req = client.get(&url).basic_auth("prometheus", Some(password));
            async move { req.send().await.unwrap().status().as_u16() }
        };
        assert_eq!(status("first").await, 200);

        let second = bcrypt::hash("second", 4).unwrap();
        let longer = format!("# rotated\nbasic_auth_users:\n  prometheus: {second}\n");
        std::fs::write(&web, longer).unwrap();
        assert_eq!(status("second").await, 200);
        assert_eq!(status("first").await, 401);
        exporter
            .wait_log(&["message=\"web configuration reloaded\"", "basic_auth=true"])
            .await;

        std::fs::write(&web, "basic_auth_users:\n  prometheus: not-a-hash\n").unwrap();
        assert_eq!(status("second").await, 200);
        exporter
            .wait_log(&[
                "level=error",
                "web configuration refused, the previous one stays in force",
                "the password of \\\"prometheus\\\" is not a bcrypt hash",
            ])
            .await;
    })
    .await
    .unwrap();
}

/// A web configuration file with an unknown key stops the exporter at start
/// with exit code 78 and the key named.
#[test]
fn an_unknown_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = common_web::write(
        dir.path(),
        "config.toml",
        &common_web::config(
            "",
            &[TargetSpec {
                project_id: "p1",
                endpoint: "http://127.0.0.1:9",
                extra: "",
            }],
        ),
    );
    let web = common_web::write(dir.path(), "web.yml", "basic_auth_user:\n  a: b\n");
    let (code, stderr) = common_web::run_to_exit(&[
        "--web.listen-address=127.0.0.1:0",
        &format!("--config.file={}", config.display()),
        &format!("--web.config.file={}", web.display()),
    ]);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains("unknown field `basic_auth_user`, expected one of `tls_server_config`"),
        "{stderr}"
    );
}
