//! Black-box tests of failure behaviour: the exporter binary polls the
//! simulator while it throttles, fails, stalls and sends broken answers;
//! each test asserts exact metric lines and the requests the simulator got.

mod common_faults;

use std::time::Duration;

use common_faults::*;
use dbss_exporter::sim::{error_body, instance_json, Fault, Reply};
use serde_json::json;

const SLOW_POLL: &str = "interval = \"30s\"\ndeadline = \"12s\"\ntimeout = \"5s\"";

fn instances() -> Vec<serde_json::Value> {
    vec![instance_json("i-1", "25.07.21.163957", 2, None, 10)]
}

fn throttled(retry_after: &str) -> Reply {
    Reply::json(
        429,
        &error_body("APIGW.0308", "The throttling threshold has been reached"),
    )
    .with_header("Retry-After", retry_after)
}

fn unavailable() -> Reply {
    Reply::json(503, &error_body("DBSS.11000000", "Internal error"))
}

/// A 429 with `Retry-After: 2` is retried, but not before two seconds.
#[tokio::test]
async fn retry_after_is_waited_out_before_the_retry() {
    within(60, async {
        let sim = simulator().await;
        sim.set_instances("p", instances());
        sim.script("p", [throttled("2")]);
        let exp = Exporter::start(&config(SLOW_POLL, &sim.url(), &["p"]));

        let page = exp.wait_for_line(&line("dbss_up", "p", "", "1")).await;
        let at = arrivals(&sim, "p");
        assert_eq!(at.len(), 2);
        assert!(
            at[1] - at[0] >= Duration::from_secs(2),
            "{:?}",
            at[1] - at[0]
        );
        for want in [
            line("dbss_api_requests_total", "p", "code=\"200\"", "1"),
            line("dbss_api_requests_total", "p", "code=\"429\"", "1"),
            line("dbss_api_retries_total", "p", "", "1"),
            line("dbss_instances", "p", "", "1"),
        ] {
            assert!(has_line(&page, &want), "{want}\n{page}");
        }
        assert!(!page.contains("dbss_poll_errors_total{project_id=\"p\""));
    })
    .await;
}

/// A Retry-After (in seconds or as a date) that lands past the deadline
/// ends the poll at once as throttled, with the error code in the log.
#[tokio::test]
async fn retry_after_past_the_deadline_gives_up_for_this_cycle() {
    within(60, async {
        let sim = simulator().await;
        let date = httpdate_in(Duration::from_secs(60));
        sim.set_reply("secs", throttled("30"));
        sim.set_reply("date", throttled(&date));
        sim.set_reply("busy", unavailable().with_header("Retry-After", "30"));
        let exp = Exporter::start(&config(SLOW_POLL, &sim.url(), &["secs", "date", "busy"]));

        for p in ["secs", "date", "busy"] {
            let page = exp
                .wait_for_line(&line(
                    "dbss_poll_errors_total",
                    p,
                    "reason=\"throttled\"",
                    "1",
                ))
                .await;
            assert!(has_line(&page, &line("dbss_up", p, "", "0")));
            assert!(has_line(&page, &line("dbss_api_retries_total", p, "", "0")));
            assert_eq!(sim.request_count(p), 1, "{p}");
        }
        let log = exp.log();
        let warn = log
            .lines()
            .find(|l| l.contains("message=\"poll failed\"") && l.contains("project_id=secs"))
            .expect("warn line");
        assert!(warn.contains("reason=throttled"), "{warn}");
        assert!(warn.contains("status=429"), "{warn}");
        assert!(warn.contains("error_code=APIGW.0308"), "{warn}");
        assert!(
            warn.contains("Retry-After of 30 s passes the poll deadline"),
            "{warn}"
        );
    })
    .await;
}

fn httpdate_in(d: Duration) -> String {
    let at = chrono::Utc::now() + chrono::Duration::from_std(d).unwrap();
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Three 503s then a 200, with `poll.retries = 3`: the poll succeeds, and
/// every retry carries credentials.
#[tokio::test]
async fn three_503s_then_200_within_the_budget_is_up() {
    within(60, async {
        let sim = simulator().await;
        sim.set_instances("p", instances());
        sim.fail_first("p", 3, unavailable());
        let poll = format!("{SLOW_POLL}\nretries = 3");
        let exp = Exporter::start(&config(&poll, &sim.url(), &["p"]));

        let page = exp.wait_for_line(&line("dbss_up", "p", "", "1")).await;
        for want in [
            line("dbss_api_requests_total", "p", "code=\"200\"", "1"),
            line("dbss_api_requests_total", "p", "code=\"503\"", "3"),
            line("dbss_api_retries_total", "p", "", "3"),
        ] {
            assert!(has_line(&page, &want), "{want}\n{page}");
        }
        assert!(!page.contains("dbss_poll_errors_total{project_id=\"p\""));
        let requests = sim.requests();
        assert_eq!(requests.len(), 4);
        assert!(requests
            .iter()
            .all(|r| r.header("x-auth-token") == Some(TOKEN)));
    })
    .await;
}

/// More 503s than the budget allows: `poll.retries + 1` requests, then the
/// poll fails as http_5xx.
#[tokio::test]
async fn failures_past_the_budget_fail_the_poll() {
    within(60, async {
        let sim = simulator().await;
        sim.set_instances("p", instances());
        sim.fail_first("p", 5, unavailable());
        let poll = format!("{SLOW_POLL}\nretries = 2");
        let exp = Exporter::start(&config(&poll, &sim.url(), &["p"]));

        let page = exp
            .wait_for_line(&line(
                "dbss_poll_errors_total",
                "p",
                "reason=\"http_5xx\"",
                "1",
            ))
            .await;
        assert!(has_line(&page, &line("dbss_up", "p", "", "0")));
        assert!(has_line(
            &page,
            &line("dbss_api_retries_total", "p", "", "2")
        ));
        assert!(has_line(
            &page,
            &line("dbss_api_requests_total", "p", "code=\"503\"", "3")
        ));
        assert_eq!(sim.request_count("p"), 3);
    })
    .await;
}

/// 400, 403, 404 and 401 (a token-only credential cannot renew) are each
/// asked once.
#[tokio::test]
async fn client_errors_are_asked_once() {
    within(60, async {
        let sim = simulator().await;
        sim.set_reply(
            "bad",
            Reply::json(400, &error_body("DBSS.10000001", "Invalid request")),
        );
        sim.set_reply(
            "denied",
            Reply::json(
                403,
                &json!({"error": {"error_code": "DBSS.10000002", "error_msg": "Forbidden"}}),
            ),
        );
        sim.set_reply(
            "expired",
            Reply::json(
                401,
                &error_body("DBSS.10020100", "Token authentication failed"),
            ),
        );
        let projects = ["bad", "denied", "expired", "unknown"];
        let exp = Exporter::start(&config(SLOW_POLL, &sim.url(), &projects));

        let cases = [
            ("bad", "http_4xx", "400"),
            ("denied", "http_4xx", "403"),
            ("expired", "auth", "401"),
            ("unknown", "http_4xx", "404"),
        ];
        for (p, reason, code) in cases {
            let want = line(
                "dbss_poll_errors_total",
                p,
                &format!("reason=\"{reason}\""),
                "1",
            );
            let page = exp.wait_for_line(&want).await;
            let code_line = line(
                "dbss_api_requests_total",
                p,
                &format!("code=\"{code}\""),
                "1",
            );
            assert!(has_line(&page, &code_line), "{code_line}\n{page}");
            assert!(has_line(&page, &line("dbss_api_retries_total", p, "", "0")));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        for p in projects {
            assert_eq!(sim.request_count(p), 1, "{p}");
        }
        let log = exp.log();
        for (p, code) in [
            ("bad", "DBSS.10000001"),
            ("denied", "DBSS.10000002"),
            ("unknown", "DBSS.10021004"),
        ] {
            let warn = log
                .lines()
                .find(|l| {
                    l.contains("message=\"poll failed\"") && l.contains(&format!("project_id={p} "))
                })
                .unwrap_or_else(|| panic!("no warn line for {p}\n{log}"));
            assert!(warn.contains(&format!("error_code={code}")), "{warn}");
        }
    })
    .await;
}

/// An API that never answers ends each poll at the deadline, and the next
/// cycle still starts one interval after the last.
#[tokio::test]
async fn a_stalled_api_ends_at_the_deadline_and_the_next_cycle_starts_on_time() {
    within(60, async {
        let sim = simulator().await;
        sim.set_reply("p", Reply::raw(200, "{}").after(Duration::from_secs(600)));
        let poll = "interval = \"3s\"\ndeadline = \"1s\"\ntimeout = \"1s\"\nretries = 0";
        let exp = Exporter::start(&config(poll, &sim.url(), &["p"]));

        let page = exp
            .wait_for_line(&line(
                "dbss_poll_errors_total",
                "p",
                "reason=\"timeout\"",
                "3",
            ))
            .await;
        assert!(has_line(&page, &line("dbss_up", "p", "", "0")));
        let took = value_of(
            &page,
            &format!("dbss_poll_duration_seconds{{project_id=\"p\",region=\"{REGION}\"}}"),
        );
        assert!((0.9..2.0).contains(&took), "poll took {took} s");

        let at = arrivals(&sim, "p");
        assert!(at.len() >= 3, "{at:?}");
        for pair in at.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap >= Duration::from_millis(2900),
                "cycle started early: {gap:?}"
            );
            assert!(
                gap <= Duration::from_millis(4500),
                "cycle started late: {gap:?}"
            );
        }
    })
    .await;
}

fn value_of(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{page}"))
}

/// A request that times out is retried while the deadline allows.
#[tokio::test]
async fn a_timed_out_request_is_retried() {
    within(60, async {
        let sim = simulator().await;
        sim.set_instances("p", instances());
        sim.script("p", [Reply::raw(200, "{}").after(Duration::from_secs(30))]);
        let poll = "interval = \"30s\"\ndeadline = \"10s\"\ntimeout = \"1s\"";
        let exp = Exporter::start(&config(poll, &sim.url(), &["p"]));

        let page = exp.wait_for_line(&line("dbss_up", "p", "", "1")).await;
        for want in [
            line("dbss_api_requests_total", "p", "code=\"200\"", "1"),
            line("dbss_api_requests_total", "p", "code=\"error\"", "1"),
            line("dbss_api_retries_total", "p", "", "1"),
        ] {
            assert!(has_line(&page, &want), "{want}\n{page}");
        }
        assert_eq!(sim.request_count("p"), 2);
    })
    .await;
}

/// A body that comes too slowly for the request timeout is a timeout.
#[tokio::test]
async fn a_slow_body_times_out() {
    within(60, async {
        let sim = simulator().await;
        let slow = Fault::SlowBody {
            chunk: 4,
            pause: Duration::from_millis(800),
        };
        sim.set_reply(
            "p",
            Reply::raw(200, "{\"audit_upgrade_infos\": []}").with_fault(slow),
        );
        let poll = "interval = \"30s\"\ndeadline = \"10s\"\ntimeout = \"1s\"\nretries = 0";
        let exp = Exporter::start(&config(poll, &sim.url(), &["p"]));

        let page = exp
            .wait_for_line(&line(
                "dbss_poll_errors_total",
                "p",
                "reason=\"timeout\"",
                "1",
            ))
            .await;
        // The headers came, so the request counts under its status.
        assert!(has_line(
            &page,
            &line("dbss_api_requests_total", "p", "code=\"200\"", "1")
        ));
        assert_eq!(sim.request_count("p"), 1);
    })
    .await;
}

/// A dropped connection and a cut-off body are connection failures, and
/// are retried.
#[tokio::test]
async fn dropped_and_truncated_answers_are_retried() {
    within(60, async {
        let sim = simulator().await;
        for p in ["dropped", "truncated"] {
            sim.set_instances(p, instances());
        }
        sim.fail_first("dropped", 1, Reply::raw(200, "{}").with_fault(Fault::Drop));
        let cut = Reply::raw(200, "{\"audit_upgrade_infos\": [{\"instance_id\": \"x\"}]}");
        sim.fail_first("truncated", 1, cut.with_fault(Fault::Truncate { sent: 10 }));
        let exp = Exporter::start(&config(SLOW_POLL, &sim.url(), &["dropped", "truncated"]));

        for p in ["dropped", "truncated"] {
            let page = exp.wait_for_line(&line("dbss_up", p, "", "1")).await;
            assert!(
                has_line(&page, &line("dbss_api_retries_total", p, "", "1")),
                "{p}\n{page}"
            );
            assert!(
                has_line(&page, &line("dbss_instances", p, "", "1")),
                "{p}\n{page}"
            );
            assert_eq!(sim.request_count(p), 2, "{p}");
        }
    })
    .await;
}

/// A connection that keeps dropping fails the poll as connect.
#[tokio::test]
async fn a_connection_that_always_drops_is_a_connect_failure() {
    within(60, async {
        let sim = simulator().await;
        sim.set_reply("p", Reply::raw(200, "{}").with_fault(Fault::Drop));
        let poll = format!("{SLOW_POLL}\nretries = 1");
        let exp = Exporter::start(&config(&poll, &sim.url(), &["p"]));

        let page = exp
            .wait_for_line(&line(
                "dbss_poll_errors_total",
                "p",
                "reason=\"connect\"",
                "1",
            ))
            .await;
        assert!(has_line(
            &page,
            &line("dbss_api_requests_total", "p", "code=\"error\"", "2")
        ));
        assert!(has_line(
            &page,
            &line("dbss_api_retries_total", "p", "", "1")
        ));
        assert_eq!(sim.request_count("p"), 2);
    })
    .await;
}

/// An HTTPS endpoint that accepts TCP but never answers the TLS handshake
/// makes no connection within `connect_timeout`: a connect failure, not a
/// request that timed out.
#[tokio::test]
async fn a_tls_handshake_that_never_ends_is_a_connect_failure() {
    within(60, async {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("https://{}", silent.local_addr().unwrap());
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((conn, _)) = silent.accept().await {
                open.push(conn);
            }
        });
        let poll = format!("{SLOW_POLL}\nconnect_timeout = \"500ms\"\nretries = 0");
        let exp = Exporter::start(&config(&poll, &endpoint, &["p"]));

        let page = exp
            .wait_for_line(&line(
                "dbss_poll_errors_total",
                "p",
                "reason=\"connect\"",
                "1",
            ))
            .await;
        assert!(!page.contains("reason=\"timeout\""), "{page}");
        assert!(
            exp.log()
                .contains("cannot connect: no connection within connect_timeout"),
            "{}",
            exp.log()
        );
        held.abort();
    })
    .await;
}

/// A body over `poll.max_body_size` fails as too_large, whether its length
/// is announced or not, and is not retried.
#[tokio::test]
async fn a_huge_body_is_too_large() {
    within(60, async {
        let sim = simulator().await;
        for (p, announce) in [("announced", true), ("chunked", false)] {
            let huge = Fault::Huge {
                bytes: 8 << 20,
                announce,
            };
            sim.set_reply(p, Reply::raw(200, "").with_fault(huge));
        }
        let poll = format!("{SLOW_POLL}\nmax_body_size = \"64KiB\"");
        let exp = Exporter::start(&config(&poll, &sim.url(), &["announced", "chunked"]));

        for p in ["announced", "chunked"] {
            let page = exp
                .wait_for_line(&line(
                    "dbss_poll_errors_total",
                    p,
                    "reason=\"too_large\"",
                    "1",
                ))
                .await;
            assert!(has_line(&page, &line("dbss_up", p, "", "0")));
            assert_eq!(sim.request_count(p), 1, "{p}");
        }
        assert!(exp
            .log()
            .contains("error=\"answer is larger than 65536 bytes\""));
    })
    .await;
}

/// An HTML page instead of JSON: a 200 fails as decode, a 502 as http_5xx
/// with the body summarised by its size.
#[tokio::test]
async fn html_pages_are_decode_or_status_failures() {
    within(60, async {
        let sim = simulator().await;
        let html = "<html><body><h1>502 Bad Gateway</h1></body></html>";
        sim.set_reply("ok-html", Reply::raw(200, html));
        sim.set_reply("bad-gateway", Reply::raw(502, html));
        let poll = format!("{SLOW_POLL}\nretries = 0");
        let exp = Exporter::start(&config(&poll, &sim.url(), &["ok-html", "bad-gateway"]));

        exp.wait_for_line(&line(
            "dbss_poll_errors_total",
            "ok-html",
            "reason=\"decode\"",
            "1",
        ))
        .await;
        exp.wait_for_line(&line(
            "dbss_poll_errors_total",
            "bad-gateway",
            "reason=\"http_5xx\"",
            "1",
        ))
        .await;
        let log = exp.log();
        assert!(
            log.contains(
                "error=\"answer is not JSON (50 bytes): expected value at line 1 column 1\""
            ),
            "{log}"
        );
        assert!(
            log.contains("error=\"HTTP 502 with a 50-byte body that is not a known error shape\""),
            "{log}"
        );
        assert_eq!(sim.request_count("ok-html"), 1);
    })
    .await;
}

/// While one project fails on every poll, another's series stay exactly
/// what its own answers say.
#[tokio::test]
async fn a_failing_project_never_changes_another_projects_series() {
    within(60, async {
        let sim = simulator().await;
        sim.set_instances("good", instances());
        sim.set_reply("bad", Reply::raw(500, "<html>oops</html>"));
        let poll = "interval = \"2s\"\ndeadline = \"1500ms\"\ntimeout = \"1s\"\nretries = 1";
        let exp = Exporter::start(&config(poll, &sim.url(), &["good", "bad"]));

        exp.wait_for_line(&line(
            "dbss_poll_errors_total",
            "bad",
            "reason=\"http_5xx\"",
            "3",
        ))
        .await;
        // "good" goes on being polled, and its page is published up to a
        // second after each answer: take a page that has caught up with the
        // simulator's count, between two polls.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let (page, polls) = loop {
            let before = sim.request_count("good").to_string();
            let page = exp.metrics().await;
            let count = line("dbss_api_requests_total", "good", "code=\"200\"", &before);
            if has_line(&page, &count) && sim.request_count("good").to_string() == before {
                break (page, before);
            }
            assert!(std::time::Instant::now() < deadline, "{page}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let stable: Vec<String> = project_lines(&page, "good")
            .into_iter()
            .filter(|l| !l.starts_with("dbss_poll_duration") && !l.starts_with("dbss_last_poll"))
            .collect();
        let id = "instance_id=\"i-1\"";
        assert_eq!(
            stable,
            [
                line(
                    "dbss_instance_upgrade_status",
                    "good",
                    &format!("{id},current_version=\"25.07.21.163957\",upgrade_version=\"\""),
                    "2"
                ),
                line("dbss_instance_upgrade_capacity", "good", id, "10"),
                line("dbss_instance_upgrade_steps", "good", id, "0"),
                line("dbss_up", "good", "", "1"),
                line("dbss_instances", "good", "", "1"),
                line("dbss_api_requests_total", "good", "code=\"200\"", &polls),
                line("dbss_api_retries_total", "good", "", "0"),
            ]
        );
    })
    .await;
}

/// `poll.rate_limit` spaces the requests of all projects on one endpoint.
#[tokio::test]
async fn the_rate_limit_spaces_requests_to_one_endpoint() {
    within(60, async {
        let sim = simulator().await;
        let projects = ["p1", "p2", "p3", "p4", "p5", "p6"];
        for p in projects {
            sim.set_instances(p, instances());
        }
        let poll = format!("{SLOW_POLL}\nrate_limit = 4");
        let exp = Exporter::start(&config(&poll, &sim.url(), &projects));

        for p in projects {
            exp.wait_for_line(&line("dbss_up", p, "", "1")).await;
        }
        let mut at: Vec<_> = sim.requests().into_iter().map(|r| r.at).collect();
        at.sort();
        assert_eq!(at.len(), 6);
        for pair in at.windows(2) {
            assert!(
                pair[1] - pair[0] >= Duration::from_millis(200),
                "{:?}",
                pair[1] - pair[0]
            );
        }
        assert!(at[5] - at[0] >= Duration::from_millis(1200));
    })
    .await;
}
