//! `Accept-Encoding: gzip` gets the same page compressed, with the header
//! once; without it the page is plain. The Content-Type is the text format's
//! either way.

mod common_web;

use std::io::Read;
use std::time::Duration;

use common_web::{start, TargetSpec};
use dbss_exporter::sim::Simulator;

/// The page without the scrape counter, which moves between two scrapes.
fn steady(page: &str) -> Vec<&str> {
    page.lines()
        .filter(|l| !l.starts_with("dbss_exporter_scrapes_total "))
        .filter(|l| !l.starts_with("process_"))
        .collect()
}

#[tokio::test]
async fn gzip_body_equals_the_plain_page() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let sim = Simulator::start().await.unwrap();
        sim.add_token(common_web::TOKEN);
        sim.set_instances("p1", common_web::instances());
        let dir = tempfile::tempdir().unwrap();
        let text = common_web::config(
            "interval = \"1h\"\ndeadline = \"50s\"\ntimeout = \"40s\"\n",
            &[TargetSpec {
                project_id: "p1",
                endpoint: &sim.url(),
                extra: "",
            }],
        )
        .replace(
            "interval = \"1s\"\ndeadline = \"900ms\"\ntimeout = \"800ms\"\n",
            "",
        );
        let config = common_web::write(dir.path(), "config.toml", &text);
        let exporter = start(&[&format!("--config.file={}", config.display())], &[]);
        let url = exporter.url("/metrics");
        let up = "dbss_up{project_id=\"p1\",region=\"cn-north-4\"} 1";
        common_web::wait_line(&url, up).await;

        let client = common_web::http();
        let plain = client.get(&url).send().await.unwrap();
        let ct = "text/plain; version=0.0.4; charset=utf-8";
        assert_eq!(plain.headers()["content-type"], ct);
        assert!(plain.headers().get("content-encoding").is_none());
        let plain = plain.text().await.unwrap();

        let zipped = client
            .get(&url)
            .header("Accept-Encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(zipped.headers()["content-type"], ct);
        let encodings: Vec<_> = zipped
            .headers()
            .get_all("content-encoding")
            .iter()
            .collect();
        assert_eq!(encodings, ["gzip"]);
        let body = zipped.bytes().await.unwrap();
        let mut unzipped = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut unzipped)
            .unwrap();

        assert_eq!(steady(&unzipped), steady(&plain));
        assert!(unzipped.lines().any(|l| l == up));
        assert!(unzipped
            .lines()
            .any(|l| l.starts_with("dbss_exporter_scrapes_total ")));
        assert_eq!(
            sim.request_count("p1"),
            1,
            "one poll an hour, whatever the scrapes"
        );
    })
    .await
    .unwrap();
}
