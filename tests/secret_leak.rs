//! No secret reaches anything the exporter writes: it runs at trace level
//! through a failed sign-in, a 401 and a 429 from the API, temporary keys
//! and a bad configuration, and none of the secrets it used or saw appears
//! in its output or on `/metrics`.

mod common_auth;

use std::time::{Duration, SystemTime};

use common_auth::{secret_file, target, within, Exporter};
use dbss_exporter::sim::{error_body, instance_json, Reply, Simulator};

const GOOD_PW: &str = "pw-good-LEAKCHECK-1";
const BAD_PW: &str = "pw-bad-LEAKCHECK-2";
const SK: &str = "sk-LEAKCHECK-3";
const ST: &str = "st-LEAKCHECK-4";
const INLINE: &str = "inline-LEAKCHECK-5";
const P_TOKEN: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const P_REFUSED: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const P_SIGNED: &str = "cccccccccccccccccccccccccccccccc";
const P_ECS: &str = "dddddddddddddddddddddddddddddddd";

fn config(sim: &Simulator, dir: &std::path::Path) -> String {
    let good = secret_file(dir, "good", GOOD_PW);
    let bad = secret_file(dir, "bad", BAD_PW);
    let sk = secret_file(dir, "sk", SK);
    let st = secret_file(dir, "st", ST);
    let url = sim.url();
    format!(
        "[poll]\ninterval = \"1s\"\nretries = 0\n\n\
         [credentials.good]\ntype = \"password\"\ndomain = \"acme\"\nuser = \"ops\"\npassword_file = {good:?}\niam_endpoint = \"{url}\"\n\n\
         [credentials.bad]\ntype = \"password\"\ndomain = \"acme\"\nuser = \"ops\"\npassword_file = {bad:?}\niam_endpoint = \"{url}\"\n\n\
         [credentials.keys]\ntype = \"aksk\"\nak = \"AKLEAK\"\nsk_file = {sk:?}\nsecurity_token_file = {st:?}\n\n\
         [credentials.ecs]\ntype = \"ecs_metadata\"\nmetadata_endpoint = \"{url}\"\n{}{}{}{}",
        target(P_TOKEN, &url, Some("good")),
        target(P_REFUSED, &url, Some("bad")),
        target(P_SIGNED, &url, Some("keys")),
        target(P_ECS, &url, Some("ecs")),
    )
}

fn status_seen(sim: &Simulator, project: &str, status: u16) -> bool {
    sim.requests()
        .iter()
        .any(|r| r.project_id.as_deref() == Some(project) && r.status == status)
}

/// Every secret the exporter used or the simulator saw stays out of the
/// logs at trace level, out of `--config.check` and out of `/metrics`.
#[tokio::test]
async fn no_secret_is_written_at_trace_level() {
    within(90, async {
        let sim = Simulator::start().await.unwrap();
        for p in [P_TOKEN, P_REFUSED, P_SIGNED, P_ECS] {
            sim.set_instances(p, vec![instance_json("i-1", "25.1", 2, None, 1)]);
        }
        sim.add_iam_user("acme", "ops", GOOD_PW);
        let later = SystemTime::now() + Duration::from_secs(3600);
        sim.add_temporary_key("AKLEAK", SK, ST, later);
        sim.serve_metadata_keys(Duration::from_secs(3600));
        sim.script(
            P_SIGNED,
            [
                Reply::json(401, &error_body("DBSS.10020100", "Token authentication failed")),
                Reply::json(429, &error_body("APIGW.0308", "The throttling threshold has been reached")),
            ],
        );

        let dir = tempfile::tempdir().unwrap();
        let exp = Exporter::start(&config(&sim, dir.path()), &["--log.level=trace"], &[]);
        while !(status_seen(&sim, P_SIGNED, 401)
            && status_seen(&sim, P_SIGNED, 429)
            && status_seen(&sim, P_SIGNED, 200)
            && status_seen(&sim, P_TOKEN, 200)
            && status_seen(&sim, P_ECS, 200)
            && sim.iam_calls() >= 2)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // A bad configuration, holding a secret inline and a broken line
        // next to one, is refused on reload and by --config.check.
        let bad = format!("[credentials.x]\ntype = \"aksk\"\nak = \"AK\"\nsk = \"{INLINE}\"\n\n[[targets]]\nproject_id = \"{INLINE}\n");
        std::fs::write(exp.config_path(), &bad).unwrap();
        exp.signal("HUP");
        exp.wait_log("reload refused").await;
        let check = std::process::Command::new(env!("CARGO_BIN_EXE_dbss-exporter"))
            .arg(format!("--config.file={}", exp.config_path().display()))
            .args(["--config.check", "--log.level=trace"])
            .output()
            .unwrap();
        assert!(!check.status.success());

        let mut written = exp.logs();
        written.push_str(&String::from_utf8_lossy(&check.stdout));
        written.push_str(&String::from_utf8_lossy(&check.stderr));
        let page = exp.metrics().await;
        assert!(written.contains("level=trace") || written.contains("level=debug"));
        assert!(written.contains("The username or password is wrong."));

        let mut secrets: Vec<String> = [GOOD_PW, BAD_PW, SK, ST, INLINE].map(String::from).to_vec();
        secrets.extend(sim.seen_secrets());
        assert!(secrets.len() >= 9, "{secrets:?}");
        for s in &secrets {
            assert!(!written.contains(s.as_str()), "{s} was written:\n{written}");
            assert!(!page.contains(s.as_str()), "{s} is on /metrics");
        }
    })
    .await;
}
