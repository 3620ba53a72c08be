//! Benchmarks of the hot paths: rendering a fleet's series, building and
//! serving a page, decoding a large answer, and signing a request.
//!
//! Run with `cargo bench`; figures are in the README's performance section.

use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dbss_exporter::api::{self, Instance, Step};
use dbss_exporter::config::Target;
use dbss_exporter::project::ProjectState;
use dbss_exporter::render::render_page;
use dbss_exporter::selfmetrics::SelfMetrics;
use dbss_exporter::signer::{self, SignableRequest};
use dbss_exporter::snapshot::Page;

const PROJECTS: usize = 1_000;
const INSTANCES: usize = 10;

fn target(p: usize) -> Target {
    Target {
        project_id: format!("{p:032x}"),
        region: if p % 2 == 0 {
            "cn-north-4"
        } else {
            "ap-southeast-1"
        }
        .into(),
        endpoint: "https://dbss.cn-north-4.myhuaweicloud.com".into(),
        credentials: None,
        labels: vec![("env".into(), "prod".into())],
        ca_file: None,
        insecure_skip_verify: false,
    }
}

fn instance(p: usize, i: usize) -> Instance {
    let upgrading = i % 5 == 0;
    Instance {
        instance_id: format!("{p:08x}-5c40-431d-98cc-{i:012x}"),
        current_version: "25.07.21.163957".into(),
        upgrade_version: if i % 2 == 0 {
            "25.09.01.100000".into()
        } else {
            String::new()
        },
        status: Some((i % 3) as f64),
        total: Some(1.0),
        steps: if upgrading {
            (0..3)
                .map(|s| Step {
                    step_name: format!("step_{s}"),
                    result_code: "SUCCESS".into(),
                    msg: String::new(),
                    time: Some(1_764_756_000.0 + s as f64),
                })
                .collect()
        } else {
            Vec::new()
        },
    }
}

/// A fleet of 1,000 projects of 10 instances: 10,000 upgrade-status series.
fn fleet() -> Vec<ProjectState> {
    (0..PROJECTS)
        .map(|p| {
            let mut s = ProjectState::new(&target(p));
            let instances = (0..INSTANCES).map(|i| instance(p, i)).collect();
            s.record_success(SystemTime::now(), Duration::from_millis(80), instances);
            s.count_request("200");
            s
        })
        .collect()
}

fn rendering(c: &mut Criterion) {
    let states = fleet();
    let render = || {
        render_page(0, |family, out| {
            for p in &states {
                p.write_family(family, out);
            }
        })
    };
    let plain = render().into_bytes();
    let page = Page::from_plain(plain.clone());
    let metrics = SelfMetrics::new();

    let mut g = c.benchmark_group("10k_series");
    g.throughput(Throughput::Bytes(plain.len() as u64));
    g.bench_function("render_page", |b| b.iter(|| render().len()));
    g.bench_function("publish_page_with_deflate", |b| {
        b.iter_batched(
            || plain.clone(),
            |p| Page::from_plain(p).deflate.len(),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("scrape_plain", |b| {
        b.iter(|| page.plain.clone().len() + metrics.render_scrape().len())
    });
    g.bench_function("scrape_gzip", |b| {
        b.iter(|| {
            page.gzip_with(&metrics.render_scrape())
                .iter()
                .map(|p| p.len())
                .sum::<usize>()
        })
    });
    g.finish();
}

fn decoding(c: &mut Criterion) {
    let list: Vec<serde_json::Value> = (0..10_000)
        .map(|i| {
            serde_json::json!({
                "instance_id": format!("5ac5856d-5c40-431d-98cc-{i:012x}"),
                "current_version": "25.07.21.163957",
                "upgrade_version": "25.09.01.100000",
                "status": 0, "total": 1,
                "steps": [{"step_name": "install", "result_code": "RUNNING", "msg": "", "time": "2025-12-03T10:00:00Z"}]
            })
        })
        .collect();
    let body = serde_json::to_vec(&serde_json::json!({ "audit_upgrade_infos": list })).unwrap();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("answer_of_10k_instances", |b| {
        b.iter(|| api::decode(&body).unwrap().instances.len())
    });
    g.finish();
}

fn signing(c: &mut Criterion) {
    let headers = [
        ("Content-Type".to_string(), "application/json".to_string()),
        (
            "X-Project-Id".to_string(),
            "a4c123b1612dd272d1371c17149d4395".to_string(),
        ),
        ("X-Sdk-Date".to_string(), "20250209T154442Z".to_string()),
    ];
    let req = SignableRequest {
        method: "GET",
        host: "dbss.cn-north-4.myhuaweicloud.com",
        path: "/v1/a4c123b1612dd272d1371c17149d4395/audit/upgrade/status",
        query: &[],
        headers: &headers,
        body: b"",
    };
    c.bench_function("sign_upgrade_status_request", |b| {
        b.iter(|| {
            signer::sign(
                &req,
                "MXG9EDN581U33XTPLPFT",
                b"HF4vUCsMehGAkWvj7FAc9QeWJKY40uvSwMFLZDe1",
            )
            .unwrap()
            .authorization
            .len()
        })
    });
}

criterion_group!(benches, rendering, decoding, signing);
criterion_main!(benches);
