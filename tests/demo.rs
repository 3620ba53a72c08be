//! Black-box tests of `dbss-exporter demo`: the real binary with its
//! embedded simulator.

mod common;

use common::{series, within, Exporter};

/// The page holds the API page's example instance exactly, and every one of
/// the four projects of the default demo fleet is up.
fn assert_demo_fleet_is_served(page: &str) {
    assert!(
        series(page, "dbss_instance_upgrade_status").iter().any(|l| l
        == "dbss_instance_upgrade_status{project_id=\"0db55000000000009e3779b97f4a7c15\",region=\"cn-north-4\",instance_id=\"5ac5856d-5c40-431d-98cc-1501eb7d8e11\",current_version=\"25.07.21.163957\",upgrade_version=\"\",env=\"prod\"} 2"),
        "{page}"
    );
    let up = series(page, "dbss_up");
    assert_eq!(up.len(), 4, "{page}");
    assert!(up.iter().all(|l| l.ends_with(" 1")), "{page}");
}

/// The demo serves the API page's example instance exactly, and every demo
/// project is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_the_api_pages_example() {
    within(60, async {
        let exp = Exporter::demo(&["--demo.poll-interval=1h"]);
        exp.wait_ready().await;
        let page = exp.metrics().await;
        assert_demo_fleet_is_served(&page);
    })
    .await;
}

/// Proxy variables meant for the real cloud do not carry the demo's
/// requests to its loopback simulator, for polls nor for sign-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_ignores_proxy_variables() {
    within(60, async {
        // Port 9 (discard) on loopback: nothing listens, every connection
        // through this "proxy" would be refused.
        let dead = "http://127.0.0.1:9";
        let exp = Exporter::demo_with_env(
            &["--demo.poll-interval=1h", "--demo.credentials=password"],
            &[
                ("HTTP_PROXY", dead),
                ("HTTPS_PROXY", dead),
                ("ALL_PROXY", dead),
                ("http_proxy", dead),
            ],
        );
        exp.wait_ready().await;
        let page = exp.metrics().await;
        let up = series(&page, "dbss_up");
        assert_eq!(up.len(), 4, "{page}");
        assert!(up.iter().all(|l| l.ends_with(" 1")), "{page}");
    })
    .await;
}

/// Kills the child process when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `dbss-exporter simulator` writes a configuration that an exporter in
/// another process loads as it is, here signing every request with the
/// access key pair whose secret key it wrote to a private file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standalone_simulator_writes_a_config_the_exporter_runs_on() {
    within(60, async {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_dir = dir.path().join("sim");
        let sim = std::process::Command::new(common::binary())
            .arg("simulator")
            .arg(format!("--simulator.config-dir={}", config_dir.display()))
            .args(["--demo.credentials=aksk", "--demo.poll-interval=1h"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn the simulator");
        let _sim = KillOnDrop(sim);
        let config_path = config_dir.join("config.toml");
        while !config_path.exists() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let config = std::fs::read_to_string(&config_path).expect("read config");
        assert!(config.contains("type = \"aksk\""), "{config}");
        assert!(config.contains("sk_file = "), "{config}");

        let exp = Exporter::start(&config, &[]);
        exp.wait_ready().await;
        let page = exp.metrics().await;
        assert_demo_fleet_is_served(&page);
    })
    .await;
}
