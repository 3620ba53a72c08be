//! Black-box tests of the exporter's main job: the real binary polls the
//! simulator and serves exact series on /metrics.

mod common;

use std::time::{Duration, Instant};

use common::{config, series, token_file, within, Exporter};
use dbss_exporter::sim::{error_body, instance_json, Reply, Simulator};
use serde_json::json;

const P1: &str = "0123456789abcdef0123456789abcdef";
const P2: &str = "fedcba9876543210fedcba9876543210";
const P3: &str = "00112233445566778899aabbccddeeff";
const TOKEN: &str = "test-token-7f3a";

async fn sim() -> Simulator {
    let sim = Simulator::start().await.unwrap();
    sim.add_token(TOKEN);
    sim
}

/// The API page's example answer becomes exactly these series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_page_example_gives_exact_series() {
    within(60, async {
        let sim = sim().await;
        sim.set_instances(P1, vec![instance_json("5ac5856d-5c40-431d-98cc-1501eb7d8e11", "25.07.21.163957", 2, None, 1)]);
        let (_d, tf) = token_file(TOKEN);
        let exp = Exporter::start(&config("interval = \"1h\"", &tf, &[(P1, "cn-north-4", &sim.url(), "")]), &[]);
        exp.wait_ready().await;
        let page = exp.wait_metrics("instances", |p| p.contains("dbss_instances{")).await;
        let labels = format!("project_id=\"{P1}\",region=\"cn-north-4\"");
        let inst = "instance_id=\"5ac5856d-5c40-431d-98cc-1501eb7d8e11\"";
        assert_eq!(
            series(&page, "dbss_instance_upgrade_status"),
            [format!("dbss_instance_upgrade_status{{{labels},{inst},current_version=\"25.07.21.163957\",upgrade_version=\"\"}} 2")]
        );
        assert_eq!(series(&page, "dbss_instance_upgrade_capacity"), [format!("dbss_instance_upgrade_capacity{{{labels},{inst}}} 1")]);
        assert_eq!(series(&page, "dbss_instance_upgrade_steps"), [format!("dbss_instance_upgrade_steps{{{labels},{inst}}} 0")]);
        assert!(series(&page, "dbss_instance_upgrade_step_info").is_empty());
        assert_eq!(series(&page, "dbss_up"), [format!("dbss_up{{{labels}}} 1")]);
        assert_eq!(series(&page, "dbss_instances"), [format!("dbss_instances{{{labels}}} 1")]);
        assert_eq!(series(&page, "dbss_api_requests_total"), [format!("dbss_api_requests_total{{{labels},code=\"200\"}} 1")]);
        assert_eq!(series(&page, "dbss_api_retries_total"), [format!("dbss_api_retries_total{{{labels}}} 0")]);
        assert_eq!(series(&page, "dbss_last_poll_success_timestamp_seconds").len(), 1);
        assert_eq!(series(&page, "dbss_poll_duration_seconds").len(), 1);
        assert_eq!(page.matches("# TYPE dbss_instance_upgrade_status gauge\n").count(), 1);
        assert_eq!(page.matches("# TYPE dbss_api_requests_total counter\n").count(), 1);
        assert_eq!(series(&page, "dbss_exporter_build_info").len(), 1);
        assert!(page.contains("\nprocess_resident_memory_bytes "), "process metrics are there");

        let (status, ctype, _) = exp.get("/metrics").await;
        assert_eq!((status, ctype.as_str()), (200, "text/plain; version=0.0.4; charset=utf-8"));
        let req = &sim.requests()[0];
        assert_eq!(req.path, format!("/v1/{P1}/audit/upgrade/status"));
        assert_eq!(req.header("x-auth-token"), Some(TOKEN));
        assert_eq!(req.header("content-type"), Some("application/json"));
    })
    .await;
}

/// Projects in two regions carry their region and their target labels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_in_two_regions_carry_their_labels() {
    within(60, async {
        let sim = sim().await;
        sim.set_instances(P1, vec![instance_json("a", "1.0", 1, Some("1.1"), 2)]);
        sim.set_instances(P2, vec![instance_json("b", "2.0", 2, None, 3)]);
        let (_d, tf) = token_file(TOKEN);
        let targets = [
            (P1, "cn-north-4", sim.url(), "labels = { env = \"prod\", team = \"db\" }"),
            (P2, "ap-southeast-1", sim.url(), "labels = { env = \"staging\" }"),
        ];
        let targets: Vec<_> = targets.iter().map(|(p, r, u, l)| (*p, *r, u.as_str(), *l)).collect();
        let exp = Exporter::start(&config("interval = \"1h\"", &tf, &targets), &[]);
        exp.wait_ready().await;
        let page = exp.wait_metrics("both projects", |p| series(p, "dbss_instances").len() == 2).await;
        assert_eq!(
            series(&page, "dbss_instance_upgrade_status"),
            [
                format!("dbss_instance_upgrade_status{{project_id=\"{P1}\",region=\"cn-north-4\",instance_id=\"a\",current_version=\"1.0\",upgrade_version=\"1.1\",env=\"prod\",team=\"db\"}} 1"),
                format!("dbss_instance_upgrade_status{{project_id=\"{P2}\",region=\"ap-southeast-1\",instance_id=\"b\",current_version=\"2.0\",upgrade_version=\"\",env=\"staging\"}} 2"),
            ]
        );
        assert_eq!(
            series(&page, "dbss_up"),
            [
                format!("dbss_up{{project_id=\"{P1}\",region=\"cn-north-4\",env=\"prod\",team=\"db\"}} 1"),
                format!("dbss_up{{project_id=\"{P2}\",region=\"ap-southeast-1\",env=\"staging\"}} 1"),
            ]
        );
    })
    .await;
}

/// An upgrade in progress exports its steps, their results and times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_in_progress_exports_its_steps() {
    within(60, async {
        let sim = sim().await;
        let mut inst = instance_json("i-1", "25.07.21.163957", 0, Some("25.09.01.100000"), 1);
        inst["steps"] = json!([
            {"step_name": "check_environment", "result_code": "SUCCESS", "msg": "ok", "time": "2025-12-03T10:00:00Z"},
            {"step_name": "upload \"package\"", "result_code": "RUNNING", "msg": "50%", "time": "1764756060000"},
            {"step_name": "install", "result_code": "", "msg": "", "time": null}
        ]);
        sim.set_instances(P1, vec![inst]);
        let (_d, tf) = token_file(TOKEN);
        let exp = Exporter::start(&config("interval = \"1h\"", &tf, &[(P1, "cn-north-4", &sim.url(), "")]), &[]);
        let page = exp.wait_metrics("steps", |p| p.contains("dbss_instance_upgrade_step_info{")).await;
        let l = format!("project_id=\"{P1}\",region=\"cn-north-4\",instance_id=\"i-1\"");
        assert_eq!(
            series(&page, "dbss_instance_upgrade_status"),
            [format!("dbss_instance_upgrade_status{{{l},current_version=\"25.07.21.163957\",upgrade_version=\"25.09.01.100000\"}} 0")]
        );
        assert_eq!(series(&page, "dbss_instance_upgrade_steps"), [format!("dbss_instance_upgrade_steps{{{l}}} 3")]);
        assert_eq!(
            series(&page, "dbss_instance_upgrade_step_info"),
            [
                format!("dbss_instance_upgrade_step_info{{{l},step=\"1\",step_name=\"check_environment\",result_code=\"SUCCESS\"}} 1"),
                format!("dbss_instance_upgrade_step_info{{{l},step=\"2\",step_name=\"upload \\\"package\\\"\",result_code=\"RUNNING\"}} 1"),
                format!("dbss_instance_upgrade_step_info{{{l},step=\"3\",step_name=\"install\",result_code=\"\"}} 1"),
            ]
        );
        assert_eq!(
            series(&page, "dbss_instance_upgrade_step_timestamp_seconds"),
            [
                format!("dbss_instance_upgrade_step_timestamp_seconds{{{l},step=\"1\",step_name=\"check_environment\"}} 1764756000"),
                format!("dbss_instance_upgrade_step_timestamp_seconds{{{l},step=\"2\",step_name=\"upload \\\"package\\\"\"}} 1764756060"),
            ]
        );
        assert!(!page.contains("50%"), "step messages are not labels");
    })
    .await;
}

/// A new version replaces the old series; a vanished instance leaves none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_change_and_vanished_instance_leave_no_old_series() {
    within(60, async {
        let sim = sim().await;
        sim.set_instances(P1, vec![instance_json("a", "1.0", 1, Some("1.1"), 1), instance_json("gone", "1.0", 2, None, 1)]);
        let (_d, tf) = token_file(TOKEN);
        let exp = Exporter::start(&config("interval = \"1s\"", &tf, &[(P1, "cn-north-4", &sim.url(), "")]), &[]);
        exp.wait_metrics("first answer", |p| series(p, "dbss_instance_upgrade_status").len() == 2).await;

        sim.set_instances(P1, vec![instance_json("a", "1.1", 2, None, 1)]);
        let page = exp.wait_metrics("second answer", |p| p.contains("current_version=\"1.1\"")).await;
        assert_eq!(
            series(&page, "dbss_instance_upgrade_status"),
            [format!("dbss_instance_upgrade_status{{project_id=\"{P1}\",region=\"cn-north-4\",instance_id=\"a\",current_version=\"1.1\",upgrade_version=\"\"}} 2")]
        );
        assert!(!page.contains("instance_id=\"gone\""));
        assert_eq!(series(&page, "dbss_instances"), [format!("dbss_instances{{project_id=\"{P1}\",region=\"cn-north-4\"}} 1")]);
    })
    .await;
}

/// A failing project keeps its last good answer until stale_after, then
/// drops its instance series; the other project is untouched throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_project_keeps_last_answer_until_stale() {
    within(60, async {
        let sim = sim().await;
        sim.set_instances(P1, vec![instance_json("a", "1.0", 1, Some("1.1"), 1)]);
        sim.set_instances(P2, vec![instance_json("b", "2.0", 2, None, 1)]);
        let (_d, tf) = token_file(TOKEN);
        let poll = "interval = \"1s\"\nstale_after = \"4s\"";
        let exp = Exporter::start(&config(poll, &tf, &[(P1, "cn-north-4", &sim.url(), ""), (P2, "cn-north-4", &sim.url(), "")]), &[]);
        let before = exp.wait_metrics("both up", |p| series(p, "dbss_up").iter().filter(|l| l.ends_with(" 1")).count() == 2).await;
        let p1_status = |page: &str| series(page, "dbss_instance_upgrade_status").into_iter().filter(|l| l.contains(P1)).collect::<Vec<_>>();

        let broke_at = Instant::now();
        sim.set_reply(P2, Reply::json(500, &error_body("DBSS.11000000", "internal error")));
        let failing = exp.wait_metrics("P2 down", |p| p.contains(&format!("dbss_up{{project_id=\"{P2}\",region=\"cn-north-4\"}} 0"))).await;
        if broke_at.elapsed() < Duration::from_secs(3) {
            assert!(failing.contains("instance_id=\"b\""), "last good answer is kept while fresh");
        }
        assert!(failing.contains(&format!("dbss_poll_errors_total{{project_id=\"{P2}\",region=\"cn-north-4\",reason=\"http_5xx\"}}")));

        let stale = exp.wait_metrics("P2 dropped", |p| !p.contains("instance_id=\"b\"")).await;
        assert!(broke_at.elapsed() >= Duration::from_secs(3), "dropped no earlier than stale_after allows");
        assert_eq!(series(&stale, "dbss_up").iter().filter(|l| l.contains(P2)).count(), 1, "dbss_up stays");
        assert!(!stale.contains(&format!("dbss_instances{{project_id=\"{P2}\"")));
        assert_eq!(p1_status(&stale), p1_status(&before), "the healthy project is untouched");
        assert!(exp.logs().contains("DBSS.11000000"), "the warn line carries the error code");
    })
    .await;
}

/// An exporter with `args` polling P1, which has one instance, once an
/// hour; the simulator and the token file's directory must outlive it.
async fn one_instance_polled_hourly(args: &[&str]) -> (Simulator, tempfile::TempDir, Exporter) {
    let sim = sim().await;
    sim.set_instances(P1, vec![instance_json("a", "1.0", 1, Some("1.1"), 1)]);
    let (dir, tf) = token_file(TOKEN);
    let exp = Exporter::start(
        &config(
            "interval = \"1h\"",
            &tf,
            &[(P1, "cn-north-4", &sim.url(), "")],
        ),
        args,
    );
    (sim, dir, exp)
}

/// Scrapes never reach the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_scrapes_make_no_api_request() {
    within(60, async {
        let (sim, _d, exp) = one_instance_polled_hourly(&[]).await;
        exp.wait_ready().await;
        let before = sim.requests().len();
        assert_eq!(before, 1);
        for _ in 0..100 {
            let (status, _, body) = exp.get("/metrics").await;
            assert_eq!(status, 200);
            assert!(body.contains("dbss_up{"));
        }
        assert_eq!(sim.requests().len(), before);
        let page = exp.metrics().await;
        assert!(
            page.contains("\ndbss_exporter_scrapes_total 101\n"),
            "the scrape counter counts every scrape"
        );
    })
    .await;
}

/// HEAD answers with the page's headers and counts no scrape; a wrong method
/// gets 405 with the `Allow` header naming the right ones, and an unknown
/// path 404 whatever the method.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_counts_no_scrape_and_405_names_the_allowed_methods() {
    within(60, async {
        let (_sim, _d, exp) = one_instance_polled_hourly(&["--web.enable-lifecycle"]).await;
        exp.wait_ready().await;
        let http = reqwest::Client::new();
        for _ in 0..3 {
            let head = http.head(exp.url("/metrics")).send().await.unwrap();
            assert_eq!(head.status(), 200);
            assert!(head.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4"));
        }
        let post = http.post(exp.url("/metrics")).send().await.unwrap();
        assert_eq!(post.status(), 405);
        assert_eq!(post.headers()["allow"], "GET, HEAD");
        let get_reload = http.get(exp.url("/-/reload")).send().await.unwrap();
        assert_eq!(get_reload.status(), 405);
        assert_eq!(get_reload.headers()["allow"], "POST, PUT");
        // An unknown path is not there for any method.
        let post_unknown = http.post(exp.url("/nope")).send().await.unwrap();
        assert_eq!(post_unknown.status(), 404);
        let page = exp.metrics().await;
        assert!(
            page.contains("\ndbss_exporter_scrapes_total 1\n"),
            "three HEADs and a POST are not scrapes: {page}"
        );
    })
    .await;
}

/// /-/ready is 503 until every target was polled once, then 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_waits_for_the_first_poll_of_every_target() {
    within(60, async {
        let sim = sim().await;
        sim.set_instances(P1, vec![]);
        sim.set_instances(P2, vec![]);
        sim.script(
            P2,
            [Reply::json(200, &json!({"audit_upgrade_infos": []})).after(Duration::from_secs(3))],
        );
        let (_d, tf) = token_file(TOKEN);
        let exp = Exporter::start(
            &config(
                "interval = \"1h\"",
                &tf,
                &[(P1, "r1", &sim.url(), ""), (P2, "r1", &sim.url(), "")],
            ),
            &[],
        );
        let (status, _, body) = exp.get("/-/ready").await;
        assert_eq!(status, 503);
        assert!(body.starts_with("Not ready: "), "{body}");
        exp.wait_ready().await;
        assert_eq!(exp.get("/-/ready").await.0, 200);
        assert_eq!(exp.get("/-/healthy").await.0, 200);
        let (status, ctype, html) = exp.get("/").await;
        assert_eq!((status, ctype.as_str()), (200, "text/html; charset=utf-8"));
        assert!(html.contains("<a href=\"/metrics\">"));
        assert_eq!(exp.get("/nope").await.0, 404);
    })
    .await;
}

/// SIGTERM during a poll that hangs ends the process with 0 within 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_slow_poll_exits_promptly() {
    within(60, async {
        let sim = sim().await;
        sim.set_reply(
            P1,
            Reply::json(200, &json!({"audit_upgrade_infos": []})).after(Duration::from_secs(30)),
        );
        let (_d, tf) = token_file(TOKEN);
        let mut exp = Exporter::start(
            &config(
                "interval = \"1h\"\ntimeout = \"50s\"\ndeadline=\"55s\"",
                &tf,
                &[(P1, "r1", &sim.url(), "")],
            ),
            &[],
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while sim.request_count(P1) == 0 {
            assert!(Instant::now() < deadline, "the poll never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let sent = Instant::now();
        exp.signal("TERM");
        let status = exp.wait_exit(Duration::from_secs(5)).expect("exited");
        assert!(
            sent.elapsed() < Duration::from_secs(2),
            "took {:?}",
            sent.elapsed()
        );
        assert!(status.success(), "{status}");
    })
    .await;
}

/// An unknown project is a 404 from the API: that project is down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_project_and_bad_token_mark_the_project_down() {
    within(60, async {
        let sim = sim().await;
        sim.set_instances(P1, vec![]);
        let (_d, tf) = token_file(TOKEN);
        let (_d2, wrong) = token_file("not-the-token");
        let mut cfg = config("interval = \"1h\"", &tf, &[(P1, "r1", &sim.url(), ""), (P3, "r1", &sim.url(), "")]);
        cfg.push_str(&format!(
            "\n[credentials.wrong]\ntype = \"token\"\ntoken_file = \"{}\"\n\n[[targets]]\nproject_id = \"{P2}\"\nregion = \"r1\"\nendpoint = \"{}\"\ncredentials = \"wrong\"\n",
            wrong.display(),
            sim.url()
        ));
        sim.set_instances(P2, vec![]);
        let exp = Exporter::start(&cfg, &[]);
        exp.wait_ready().await;
        let page = exp.wait_metrics("all polled", |p| series(p, "dbss_up").len() == 3).await;
        assert_eq!(
            series(&page, "dbss_up"),
            [
                format!("dbss_up{{project_id=\"{P1}\",region=\"r1\"}} 1"),
                format!("dbss_up{{project_id=\"{P3}\",region=\"r1\"}} 0"),
                format!("dbss_up{{project_id=\"{P2}\",region=\"r1\"}} 0"),
            ]
        );
        assert!(page.contains(&format!("dbss_poll_errors_total{{project_id=\"{P3}\",region=\"r1\",reason=\"http_4xx\"}} 1")));
        assert!(page.contains(&format!("dbss_poll_errors_total{{project_id=\"{P2}\",region=\"r1\",reason=\"auth\"}} 1")));
        let logs = exp.logs();
        assert!(logs.contains("DBSS.10021004"), "{logs}");
        assert!(logs.contains("DBSS.10020100"), "{logs}");
        assert!(!logs.contains(TOKEN) && !logs.contains("not-the-token"), "no token in the logs");
    })
    .await;
}
