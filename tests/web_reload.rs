//! Live reload, by SIGHUP and by `POST /-/reload`: a good file takes
//! effect, a bad one is refused with the reason in the log and the old one
//! keeps running; the reload metrics say how it went; removed targets stop
//! and lose their series, changed ones lose their old series at once, and
//! no poll loop is ever left running twice.

mod common_web;

use std::path::Path;
use std::time::{Duration, Instant};

use common_web::{start, Exporter, TargetSpec};
use dbss_exporter::sim::{Reply, Simulator};

const LIMIT: Duration = Duration::from_secs(90);

async fn sim() -> Simulator {
    let sim = Simulator::start().await.unwrap();
    sim.add_token(common_web::TOKEN);
    for p in ["p1", "p2", "p3"] {
        sim.set_instances(p, common_web::instances());
    }
    sim
}

fn target<'a>(project_id: &'a str, endpoint: &'a str, extra: &'a str) -> TargetSpec<'a> {
    TargetSpec {
        project_id,
        endpoint,
        extra,
    }
}

fn value(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
}

const OK: &str = "dbss_exporter_config_last_reload_successful";
const WHEN: &str = "dbss_exporter_config_last_reload_success_timestamp_seconds";

async fn post_reload(exporter: &Exporter) -> (u16, String) {
    let r = common_web::http()
        .post(exporter.url("/-/reload"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn up(project: &str, labels: &str) -> String {
    format!("dbss_up{{project_id=\"{project}\",region=\"cn-north-4\"{labels}}} 1")
}

/// SIGHUP with a good file: the removed target stops being polled and
/// loses its series, the unchanged one keeps polling; then a bad file is
/// refused, the reason is logged and the metrics say so.
#[tokio::test]
async fn sighup_applies_a_good_file_and_refuses_a_bad_one() {
    tokio::time::timeout(LIMIT, async {
        let sim = sim().await;
        let dir = tempfile::tempdir().unwrap();
        let url = sim.url();
        let both = common_web::config("", &[target("p1", &url, ""), target("p3", &url, "")]);
        let path = common_web::write(dir.path(), "config.toml", &both);
        let exporter = start(&[&format!("--config.file={}", path.display())], &[]);
        let metrics = exporter.url("/metrics");
        common_web::wait_line(&metrics, &up("p3", "")).await;
        let page = common_web::wait_line(&metrics, &up("p1", "")).await;
        assert_eq!(value(&page, OK), Some(1.0));
        let first = value(&page, WHEN).unwrap();

        std::fs::write(&path, common_web::config("", &[target("p1", &url, "")])).unwrap();
        exporter.hangup();
        exporter
            .wait_log(&["message=\"configuration reloaded\"", "targets=1"])
            .await;
        // The page is republished at most once a second.
        let mut page = common_web::scrape(&metrics).await;
        for _ in 0..50 {
            if !page.contains("project_id=\"p3\"") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            page = common_web::scrape(&metrics).await;
        }
        assert!(!page.contains("project_id=\"p3\""), "{page}");
        assert!(page.lines().any(|l| l == up("p1", "")));
        assert!(value(&page, WHEN).unwrap() >= first);

        // p3 is polled no more; p1 goes on.
        let (p1, p3) = (sim.request_count("p1"), sim.request_count("p3"));
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(sim.request_count("p3"), p3);
        assert!(sim.request_count("p1") > p1);

        std::fs::write(&path, "[[targets]]\nproject_id = \"p1\"\n").unwrap();
        exporter.hangup();
        let line = exporter
            .wait_log(&[
                "level=error",
                "reload refused, the previous configuration keeps running",
            ])
            .await;
        assert!(
            line.contains("targets[0].region: is required") || line.contains("region"),
            "{line}"
        );
        let page = common_web::scrape(&metrics).await;
        assert_eq!(value(&page, OK), Some(0.0));
        let p1 = sim.request_count("p1");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(
            sim.request_count("p1") > p1,
            "the old configuration keeps polling"
        );
    })
    .await
    .unwrap();
}

/// `POST /-/reload` answers with the outcome: 200 for a good file, 500 with
/// the reason for a bad one (here a CA file that does not exist).
#[tokio::test]
async fn http_reload_reports_the_outcome() {
    tokio::time::timeout(LIMIT, async {
        let sim = sim().await;
        let dir = tempfile::tempdir().unwrap();
        let url = sim.url();
        let text = common_web::config("", &[target("p1", &url, "")]);
        let path = common_web::write(dir.path(), "config.toml", &text);
        let config_arg = format!("--config.file={}", path.display());
        let exporter = start(&[&config_arg, "--web.enable-lifecycle"], &[]);
        let metrics = exporter.url("/metrics");
        common_web::wait_line(&metrics, &up("p1", "")).await;

        let (status, body) = post_reload(&exporter).await;
        assert_eq!((status, body.as_str()), (200, "configuration reloaded\n"));

        let missing = dir.path().join("missing-ca.pem");
        let extra = format!("ca_file = {:?}", missing.display().to_string());
        let bad = common_web::config("", &[target("p1", &url, &extra)]);
        std::fs::write(&path, bad).unwrap();
        let (status, body) = post_reload(&exporter).await;
        assert_eq!(status, 500);
        let reason = format!(
            "targets[0].ca_file: cannot read {:?}:",
            missing.display().to_string()
        );
        assert!(body.starts_with("failed to reload config: "), "{body}");
        assert!(body.contains(&reason), "{body}");
        let page = common_web::scrape(&metrics).await;
        assert_eq!(value(&page, OK), Some(0.0));
        exporter
            .wait_log(&[
                "reload refused, the previous configuration keeps running",
                "missing-ca.pem",
            ])
            .await;

        std::fs::write(&path, &text).unwrap();
        let (status, _) = post_reload(&exporter).await;
        assert_eq!(status, 200);
        let page = common_web::scrape(&metrics).await;
        assert_eq!(value(&page, OK), Some(1.0));
    })
    .await
    .unwrap();
}

/// Without `--web.enable-lifecycle` the reload endpoint is refused.
#[tokio::test]
async fn http_reload_needs_the_lifecycle_flag() {
    tokio::time::timeout(LIMIT, async {
        let dir = tempfile::tempdir().unwrap();
        let text = common_web::config("", &[target("p1", "http://127.0.0.1:9", "")]);
        let path = common_web::write(dir.path(), "config.toml", &text);
        let exporter = start(&[&format!("--config.file={}", path.display())], &[]);
        let (status, _) = post_reload(&exporter).await;
        assert_eq!(status, 403);
    })
    .await
    .unwrap();
}

fn write_labels(path: &Path, url: &str, env: &str) {
    let labels = format!("labels = {{ env = \"{env}\" }}");
    let text = common_web::config(
        "interval = \"10s\"\ndeadline = \"8s\"\ntimeout = \"7s\"\n",
        &[target("p1", url, ""), target("p2", url, &labels)],
    )
    .replace(
        "interval = \"1s\"\ndeadline = \"900ms\"\ntimeout = \"800ms\"\n",
        "",
    );
    std::fs::write(path, text).unwrap();
}

/// A target whose labels change loses its old series at the reload, not at
/// its next answer, which may be slow to come.
#[tokio::test]
async fn changed_labels_drop_the_old_series_at_once() {
    tokio::time::timeout(LIMIT, async {
        let sim = sim().await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        write_labels(&path, &sim.url(), "a");
        let exporter = start(&[&format!("--config.file={}", path.display())], &[]);
        let metrics = exporter.url("/metrics");
        let old = up("p2", ",env=\"a\"");
        common_web::wait_line(&metrics, &old).await;

        let slow = Reply::json(200, &serde_json::json!({"audit_upgrade_infos": []}))
            .after(Duration::from_secs(5));
        sim.script("p2", [slow]);
        write_labels(&path, &sim.url(), "b");
        exporter.hangup();
        exporter
            .wait_log(&["message=\"configuration reloaded\""])
            .await;

        let reloaded = Instant::now();
        loop {
            let page = common_web::scrape(&metrics).await;
            if !page.contains("env=\"a\"") {
                assert!(
                    !page.contains("env=\"b\""),
                    "the new series came first:\n{page}"
                );
                break;
            }
            assert!(
                reloaded.elapsed() < Duration::from_secs(4),
                "old series kept:\n{page}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(common_web::scrape(&metrics).await.contains(&up("p1", "")));
    })
    .await
    .unwrap();
}

/// After many reloads, each target is polled by exactly one loop: over a
/// window of seconds, at most one poll per second per project.
#[tokio::test]
async fn reloads_never_leave_two_poll_loops() {
    tokio::time::timeout(LIMIT, async {
        let sim = sim().await;
        let dir = tempfile::tempdir().unwrap();
        let url = sim.url();
        let path = dir.path().join("config.toml");
        let write = |env: &str| {
            let labels = format!("labels = {{ env = \"{env}\" }}");
            let text =
                common_web::config("", &[target("p1", &url, ""), target("p2", &url, &labels)]);
            std::fs::write(&path, text).unwrap();
        };
        write("a");
        let config_arg = format!("--config.file={}", path.display());
        let exporter = start(&[&config_arg, "--web.enable-lifecycle"], &[]);
        common_web::wait_line(&exporter.url("/metrics"), &up("p1", "")).await;

        for i in 0..6 {
            // Unchanged, then changed labels, in turn.
            if i % 2 == 1 {
                write(if i % 4 == 1 { "b" } else { "a" });
            }
            if i % 3 == 0 {
                exporter.hangup();
            } else {
                assert_eq!(post_reload(&exporter).await.0, 200);
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;

        let started = Instant::now();
        let (p1, p2) = (sim.request_count("p1"), sim.request_count("p2"));
        tokio::time::sleep(Duration::from_secs(5)).await;
        let window = started.elapsed().as_secs_f64();
        let (d1, d2) = (sim.request_count("p1") - p1, sim.request_count("p2") - p2);
        let most = window.ceil() as usize + 1;
        assert!(
            d1 <= most && d2 <= most,
            "p1 {d1}, p2 {d2} polls in {window:.1}s"
        );
        assert!(d1 >= 1 && d2 >= 1, "p1 {d1}, p2 {d2} polls in {window:.1}s");
    })
    .await
    .unwrap();
}

/// A configuration polling p1 and p2 once an hour, with `extra` in `[poll]`.
fn hourly(url: &str, extra: &str) -> String {
    let mut text = format!("[poll]\ninterval = \"1h\"\n{extra}\n[credentials]\nmain = {{ type = \"token\", token_env = \"DBSS_TEST_TOKEN\" }}\n");
    for p in ["p1", "p2"] {
        text.push_str(&format!("\n[[targets]]\nproject_id = \"{p}\"\nregion = \"cn-north-4\"\nendpoint = \"{url}\"\ncredentials = \"main\"\n"));
    }
    text
}

/// A reload that changes only the poll settings restarts every task but
/// keeps every series and counter on the page while the new tasks make
/// their first poll.
#[tokio::test]
async fn a_changed_poll_setting_keeps_every_series() {
    tokio::time::timeout(LIMIT, async {
        let sim = sim().await;
        let dir = tempfile::tempdir().unwrap();
        let path = common_web::write(dir.path(), "config.toml", &hourly(&sim.url(), ""));
        let exporter = start(&[&format!("--config.file={}", path.display())], &[]);
        let metrics = exporter.url("/metrics");
        common_web::wait_line(&metrics, &up("p1", "")).await;
        common_web::wait_line(&metrics, &up("p2", "")).await;

        // The new tasks' first polls take seconds: the page must not wait.
        for p in ["p1", "p2"] {
            let answer = serde_json::json!({"audit_upgrade_infos": common_web::instances()});
            sim.script(p, [Reply::json(200, &answer).after(Duration::from_secs(5))]);
        }
        std::fs::write(&path, hourly(&sim.url(), "retries = 1")).unwrap();
        exporter.hangup();
        exporter
            .wait_log(&["message=\"configuration reloaded\""])
            .await;

        let reloaded = Instant::now();
        while reloaded.elapsed() < Duration::from_millis(2500) {
            let page = common_web::scrape(&metrics).await;
            for p in ["p1", "p2"] {
                assert!(page.lines().any(|l| l == up(p, "")), "{page}");
                let requests = format!(
                    "dbss_api_requests_total{{project_id=\"{p}\",region=\"cn-north-4\",code=\"200\"}} 1"
                );
                assert!(page.lines().any(|l| l == requests), "{page}");
                let status = format!("dbss_instance_upgrade_status{{project_id=\"{p}\"");
                assert!(page.contains(&status), "{page}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap();
}
