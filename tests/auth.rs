//! Black-box tests of signing in: the real exporter against the simulator
//! with each credential type, its renewals and its failures.

mod common_auth;

use std::time::{Duration, SystemTime};

use common_auth::{secret_file, target, total, value, within, Exporter};
use dbss_exporter::sim::{instance_json, Simulator};

const P1: &str = "11111111111111111111111111111111";
const P2: &str = "22222222222222222222222222222222";

async fn sim_with(projects: &[&str]) -> Simulator {
    let sim = Simulator::start().await.unwrap();
    for p in projects {
        sim.set_instances(p, vec![instance_json("i-1", "25.1", 2, None, 1)]);
    }
    sim
}

fn up(project: &str) -> String {
    format!("dbss_up{{project_id=\"{project}\",region=\"cn-north-4\"}}")
}

fn status_count(sim: &Simulator, project: &str, status: u16) -> usize {
    let reqs = sim.requests();
    let of_project = reqs
        .iter()
        .filter(|r| r.project_id.as_deref() == Some(project));
    of_project.filter(|r| r.status == status).count()
}

/// Requests signed with a permanent key pair, and with temporary keys and
/// their security token, are accepted and carry every signing header.
#[tokio::test]
async fn aksk_with_and_without_security_token_succeeds() {
    within(60, async {
        let sim = sim_with(&[P1, P2]).await;
        sim.add_access_key("AKPERM", "sk-perm-value");
        let later = SystemTime::now() + Duration::from_secs(3600);
        sim.add_temporary_key("AKTEMP", "sk-temp-value", "st-temp-value", later);
        let dir = tempfile::tempdir().unwrap();
        let sk = secret_file(dir.path(), "sk", "sk-perm-value");
        let tsk = secret_file(dir.path(), "tsk", "sk-temp-value");
        let st = secret_file(dir.path(), "st", "st-temp-value");
        let config = format!(
            "[poll]\ninterval = \"1s\"\n\n[credentials.perm]\ntype = \"aksk\"\nak = \"AKPERM\"\nsk_file = {sk:?}\n\n[credentials.temp]\ntype = \"aksk\"\nak = \"AKTEMP\"\nsk_file = {tsk:?}\nsecurity_token_file = {st:?}\n{}{}",
            target(P1, &sim.url(), Some("perm")),
            target(P2, &sim.url(), Some("temp")),
        );
        let exp = Exporter::start(&config, &[], &[]);
        exp.wait_metrics("both up", |p| {
            value(p, &up(P1)) == Some(1.0) && value(p, &up(P2)) == Some(1.0)
        })
        .await;

        let reqs = sim.requests();
        let first = |p: &str| reqs.iter().find(|r| r.project_id.as_deref() == Some(p)).unwrap().clone();
        let (r1, r2) = (first(P1), first(P2));
        assert_eq!(r1.header("x-project-id"), Some(P1));
        assert!(r1.header("x-sdk-date").is_some_and(|d| d.len() == 16));
        assert!(r1.header("authorization").unwrap().starts_with("SDK-HMAC-SHA256 Access=AKPERM, SignedHeaders=content-type;host;x-project-id;x-sdk-date, Signature="));
        assert_eq!(r1.header("x-security-token"), None);
        assert_eq!(r2.header("x-security-token"), Some("st-temp-value"));
        assert!(r2.header("authorization").unwrap().contains("x-sdk-date;x-security-token"));
        assert_eq!(status_count(&sim, P1, 401) + status_count(&sim, P2, 401), 0);
    })
    .await;
}

/// A wrong secret key: `dbss_up` 0, and a warning naming the project and
/// the gateway's code, with no secret in it.
#[tokio::test]
async fn wrong_sk_gives_up_zero_and_a_warning_with_the_code() {
    within(60, async {
        let sim = sim_with(&[P1]).await;
        sim.add_access_key("AKPERM", "sk-right-value");
        let dir = tempfile::tempdir().unwrap();
        let sk = secret_file(dir.path(), "sk", "sk-wrong-value");
        let config = format!(
            "[poll]\ninterval = \"1s\"\n\n[credentials.perm]\ntype = \"aksk\"\nak = \"AKPERM\"\nsk_file = {sk:?}\n{}",
            target(P1, &sim.url(), Some("perm")),
        );
        let exp = Exporter::start(&config, &[], &[]);
        exp.wait_metrics("down", |p| value(p, &up(P1)) == Some(0.0)).await;
        exp.wait_log("error_code=APIGW.0303").await;

        let logs = exp.logs();
        let line = logs.lines().find(|l| l.contains("error_code=APIGW.0303")).unwrap();
        assert!(line.contains("level=warn"), "{line}");
        assert!(line.contains(&format!("project_id={P1}")), "{line}");
        assert!(line.contains("reason=auth"), "{line}");
        assert!(!logs.contains("sk-wrong-value") && !logs.contains("sk-right-value"));
        for secret in sim.seen_secrets() {
            assert!(!logs.contains(&secret));
        }
        // An AK/SK refusal is not retried: one request per poll.
        let polls = total(&exp.metrics().await, "dbss_poll_errors_total") as usize;
        assert!(status_count(&sim, P1, 401) <= polls + 1);
    })
    .await;
}

fn password_config(sim: &Simulator, pw: &std::path::Path, projects: &[&str]) -> String {
    let mut c = format!(
        "[poll]\ninterval = \"1s\"\n\n[credentials.iam]\ntype = \"password\"\ndomain = \"acme\"\nuser = \"ops\"\npassword_file = {pw:?}\niam_endpoint = \"{}\"\n",
        sim.url()
    );
    for p in projects {
        c.push_str(&target(p, &sim.url(), Some("iam")));
    }
    c
}

/// Tokens that live 3 seconds are renewed ahead of their death: several
/// renewals, no failed poll, and the expiry is exported.
#[tokio::test]
async fn password_tokens_are_renewed_before_they_die() {
    within(60, async {
        let sim = sim_with(&[P1]).await;
        sim.add_iam_user("acme", "ops", "pw-right-value");
        sim.set_token_lifetime(Duration::from_secs(3));
        let dir = tempfile::tempdir().unwrap();
        let pw = secret_file(dir.path(), "pw", "pw-right-value");
        let exp = Exporter::start(&password_config(&sim, &pw, &[P1]), &[], &[]);

        exp.wait_metrics("up", |p| value(p, &up(P1)) == Some(1.0)).await;
        while sim.iam_calls() < 3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let page = exp.wait_metrics("a later poll", |p| {
            value(p, "dbss_api_requests_total{project_id=\"11111111111111111111111111111111\",region=\"cn-north-4\",code=\"200\"}")
                .is_some_and(|n| n >= 7.0)
        })
        .await;
        assert_eq!(total(&page, "dbss_poll_errors_total"), 0.0, "{page}");
        assert_eq!(value(&page, &up(P1)), Some(1.0));
        let expiry = value(&page, "dbss_credentials_expiry_timestamp_seconds{project_id=\"11111111111111111111111111111111\",region=\"cn-north-4\"}").unwrap();
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64();
        assert!(expiry > now - 5.0 && expiry < now + 5.0, "{expiry} vs {now}");
        assert!(value(&page, "dbss_auth_requests_total{kind=\"iam\",outcome=\"success\"}").unwrap() >= 3.0);
    })
    .await;
}

/// A token revoked early makes one 401, one renewal and one retry; no poll
/// fails.
#[tokio::test]
async fn early_401_recovers_with_one_renewal() {
    within(60, async {
        let sim = sim_with(&[P1]).await;
        sim.add_iam_user("acme", "ops", "pw-right-value");
        let dir = tempfile::tempdir().unwrap();
        let pw = secret_file(dir.path(), "pw", "pw-right-value");
        let exp = Exporter::start(&password_config(&sim, &pw, &[P1]), &[], &[]);
        exp.wait_metrics("up", |p| value(p, &up(P1)) == Some(1.0))
            .await;
        assert_eq!(sim.iam_calls(), 1);

        sim.revoke_tokens();
        let ok_before = status_count(&sim, P1, 200);
        while status_count(&sim, P1, 200) < ok_before + 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(sim.iam_calls(), 2);
        assert_eq!(status_count(&sim, P1, 401), 1);
        let page = exp.metrics().await;
        assert_eq!(total(&page, "dbss_poll_errors_total"), 0.0, "{page}");
    })
    .await;
}

/// A wrong password costs one IAM call per project per poll cycle, and
/// never reaches the API.
#[tokio::test]
async fn wrong_password_makes_one_iam_call_per_cycle() {
    within(60, async {
        let sim = sim_with(&[P1, P2]).await;
        sim.add_iam_user("acme", "ops", "pw-right-value");
        let dir = tempfile::tempdir().unwrap();
        let pw = secret_file(dir.path(), "pw", "pw-wrong-value");
        let exp = Exporter::start(&password_config(&sim, &pw, &[P1, P2]), &[], &[]);
        let page = exp
            .wait_metrics("four failed polls", |p| {
                total(p, "dbss_poll_errors_total") >= 6.0
            })
            .await;
        let calls = sim.iam_calls() as f64;
        let failed = total(&page, "dbss_poll_errors_total");
        assert!(
            calls >= failed && calls <= failed + 2.0,
            "{calls} iam calls for {failed} failed polls"
        );
        assert_eq!(sim.request_count(P1) + sim.request_count(P2), 0);
        let failures = value(
            &page,
            "dbss_auth_requests_total{kind=\"iam\",outcome=\"failure\"}",
        )
        .unwrap();
        assert!(failures >= failed && failures <= failed + 2.0, "{page}");
        assert!(exp.logs().contains("The username or password is wrong."));
    })
    .await;
}

/// Temporary keys from the metadata service that live 3 seconds are
/// fetched again before they die: no poll fails.
#[tokio::test]
async fn metadata_keys_are_fetched_again_before_they_expire() {
    within(60, async {
        let sim = sim_with(&[P1]).await;
        sim.serve_metadata_keys(Duration::from_secs(3));
        let config = format!(
            "[poll]\ninterval = \"1s\"\n\n[credentials.ecs]\ntype = \"ecs_metadata\"\nmetadata_endpoint = \"{}\"\n{}",
            sim.url(),
            target(P1, &sim.url(), Some("ecs")),
        );
        let exp = Exporter::start(&config, &[], &[]);
        exp.wait_metrics("up", |p| value(p, &up(P1)) == Some(1.0)).await;
        while sim.securitykey_calls() < 3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let page = exp.metrics().await;
        assert_eq!(total(&page, "dbss_poll_errors_total"), 0.0, "{page}");
        let reqs = sim.requests();
        let signed = reqs.iter().filter(|r| r.project_id.is_some());
        assert!(signed.clone().all(|r| r.header("x-security-token").is_some()));
        let keys: std::collections::HashSet<_> = signed
            .filter_map(|r| r.header("authorization").map(|a| a.split(',').next().unwrap().to_string()))
            .collect();
        assert!(keys.len() >= 2, "one key pair used throughout: {keys:?}");
        assert!(value(&page, "dbss_auth_requests_total{kind=\"metadata\",outcome=\"success\"}").unwrap() >= 6.0);
    })
    .await;
}

/// A clock 20 minutes off is named as such in the log, and not retried.
#[tokio::test]
async fn clock_skew_is_reported_as_a_clock_problem() {
    within(60, async {
        let sim = sim_with(&[P1]).await;
        sim.add_access_key("AKPERM", "sk-perm-value");
        sim.set_clock_offset(20 * 60);
        let dir = tempfile::tempdir().unwrap();
        let sk = secret_file(dir.path(), "sk", "sk-perm-value");
        let config = format!(
            "[poll]\ninterval = \"1s\"\n\n[credentials.perm]\ntype = \"aksk\"\nak = \"AKPERM\"\nsk_file = {sk:?}\n{}",
            target(P1, &sim.url(), Some("perm")),
        );
        let exp = Exporter::start(&config, &[], &[]);
        exp.wait_metrics("down", |p| value(p, &up(P1)) == Some(0.0)).await;
        exp.wait_log("error_code=APIGW.0304").await;
        let logs = exp.logs();
        let line = logs.lines().find(|l| l.contains("APIGW.0304")).unwrap();
        assert!(line.contains("clock skew: the local clock is more than 15 minutes off the cloud clock; sync it with NTP"), "{line}");
    })
    .await;
}

/// `sdk_env` and the default chain read the SDK variables; `project_id`
/// comes from `HUAWEICLOUD_SDK_PROJECT_ID` where the target gives none.
#[tokio::test]
async fn sdk_environment_variables_sign_requests() {
    within(60, async {
        let sim = sim_with(&[P1, P2]).await;
        sim.add_access_key("AKENV", "sk-env-value");
        let config = format!(
            "[poll]\ninterval = \"1s\"\n\n[credentials.env]\ntype = \"sdk_env\"\n\n[[targets]]\nregion = \"cn-north-4\"\nendpoint = \"{}\"\ncredentials = \"env\"\n{}",
            sim.url(),
            target(P2, &sim.url(), None),
        );
        let env = [
            ("HUAWEICLOUD_SDK_AK", "AKENV"),
            ("HUAWEICLOUD_SDK_SK", "sk-env-value"),
            ("HUAWEICLOUD_SDK_PROJECT_ID", P1),
        ];
        let exp = Exporter::start(&config, &[], &env);
        exp.wait_metrics("both up", |p| {
            value(p, &up(P1)) == Some(1.0) && value(p, &up(P2)) == Some(1.0)
        })
        .await;
        assert!(!exp.logs().contains("sk-env-value"));
    })
    .await;
}

/// With no variables and no metadata service, the default chain fails the
/// poll with reason auth and says what it tried.
#[tokio::test]
async fn default_chain_says_what_it_tried() {
    within(90, async {
        let sim = sim_with(&[P1]).await;
        let config = format!("[poll]\ninterval = \"60s\"\n{}", target(P1, &sim.url(), None));
        let exp = Exporter::start(&config, &[], &[]);
        exp.wait_metrics("down", |p| value(p, &up(P1)) == Some(0.0)).await;
        let logs = exp.logs();
        assert!(
            logs.contains("no credentials found: HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK are not set, and the metadata service at http://169.254.169.254 failed"),
            "{logs}"
        );
        assert!(logs.contains("reason=auth"));
        assert_eq!(sim.request_count(P1), 0);
    })
    .await;
}
