//! Property tests: arbitrary bytes, arbitrary JSON and arbitrary strings go
//! through decoding and rendering; nothing panics, and every page parses
//! under the text exposition rules with a parser written here, apart from
//! the renderer, that also gives back every label value for comparison.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use dbss_exporter::api;
use dbss_exporter::config::Target;
use dbss_exporter::project::{ProjectState, Reason};
use dbss_exporter::render;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// One parsed sample: name, labels (unescaped), value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Parses an exposition page: HELP and TYPE once per family, before its
/// samples; the samples of one family together; names and label names
/// valid; label values with only `\\`, `\"` and `\n` escapes.
fn parse_page(page: &str) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    let mut typed = BTreeMap::new();
    let mut finished: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    if !page.is_empty() && !page.ends_with('\n') {
        return Err("page does not end with a newline".into());
    }
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or("TYPE without a kind")?;
            if !["gauge", "counter"].contains(&kind) || typed.insert(name.to_string(), ()).is_some()
            {
                return Err(format!("bad or repeated TYPE line {line:?}"));
            }
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let sample = parse_sample(line)?;
        if !typed.contains_key(&sample.0) {
            return Err(format!("sample before its TYPE: {line:?}"));
        }
        if current.as_deref() != Some(sample.0.as_str()) {
            if finished.contains(&sample.0) {
                return Err(format!("family {} is split", sample.0));
            }
            finished.extend(current.take());
            current = Some(sample.0.clone());
        }
        samples.push(sample);
    }
    Ok(samples)
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| format!("no value: {line:?}"))?;
    let name = &line[..name_end];
    if !valid_name(name, true) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(inner) = rest.strip_prefix('{') {
        rest = parse_labels(inner, &mut labels)?;
    }
    let value = rest
        .strip_prefix(' ')
        .ok_or_else(|| format!("no space: {line:?}"))?;
    let value = match value {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().map_err(|_| format!("bad value {v:?}"))?,
    };
    Ok((name.to_string(), labels, value))
}

/// Reads `name="value",...}` and returns what follows the `}`.
fn parse_labels<'a>(mut s: &'a str, out: &mut BTreeMap<String, String>) -> Result<&'a str, String> {
    loop {
        let eq = s.find('=').ok_or("label without =")?;
        let name = &s[..eq];
        if !valid_name(name, false) {
            return Err(format!("bad label name {name:?}"));
        }
        let mut chars = s[eq + 1..]
            .strip_prefix('"')
            .ok_or("unquoted value")?
            .char_indices();
        let mut value = String::new();
        let end = loop {
            match chars.next().ok_or("unterminated value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    c => return Err(format!("bad escape \\{c}")),
                },
                (_, '\n') => return Err("raw newline in a value".into()),
                (_, c) => value.push(c),
            }
        };
        if out.insert(name.to_string(), value).is_some() {
            return Err(format!("label {name} repeated"));
        }
        s = &s[eq + 2 + end + 1..];
        match s.strip_prefix(',') {
            Some(more) => s = more,
            None => {
                return s
                    .strip_prefix('}')
                    .ok_or_else(|| "labels not closed".into())
            }
        }
    }
}

fn valid_name(name: &str, colon: bool) -> bool {
    let ok = |c: char, first: bool| {
        c.is_ascii_alphabetic() || c == '_' || (colon && c == ':') || (!first && c.is_ascii_digit())
    };
    let mut chars = name.chars();
    chars.next().is_some_and(|c| ok(c, true)) && chars.all(|c| ok(c, false))
}

fn target(project_id: &str, region: &str, extra: Vec<(String, String)>) -> Target {
    Target {
        project_id: project_id.into(),
        region: region.into(),
        endpoint: "http://127.0.0.1:1".into(),
        credentials: None,
        labels: extra,
        ca_file: None,
        insecure_skip_verify: false,
    }
}

/// Renders one project that got `answer`, and one that keeps failing.
fn page_of(state_target: &Target, answer: &api::UpgradeStatus) -> String {
    let mut ok = ProjectState::new(state_target);
    ok.count_request("200");
    ok.record_success(
        SystemTime::now(),
        Duration::from_millis(5),
        answer.instances.clone(),
    );
    let mut failing = ProjectState::new(&target("other", "r", Vec::new()));
    failing.count_request("error");
    failing.record_failure(Duration::from_secs(1), Reason::Timeout);
    render::render_page(0, |family, out| {
        ok.write_family(family, out);
        failing.write_family(family, out);
    })
}

fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("instance_id".to_string()),
        Just("status".to_string()),
        Just("total".to_string()),
        Just("steps".to_string()),
        Just("current_version".to_string()),
        Just("upgrade_version".to_string()),
        Just("step_name".to_string()),
        Just("result_code".to_string()),
        Just("time".to_string()),
        Just("audit_upgrade_infos".to_string()),
        any::<String>(),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<String>().prop_map(Value::String),
        "[0-9 .eE+-]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = api::decode(&body);
        let _ = api::decode_error_body(&body);
    }

    #[test]
    fn arbitrary_json_decodes_or_fails_and_renders_a_valid_page(v in arb_json()) {
        for body in [v.clone(), json!({ "audit_upgrade_infos": [v.clone()] }), json!({ "audit_upgrade_infos": v })] {
            let Ok(answer) = api::decode(body.to_string().as_bytes()) else { continue };
            let page = page_of(&target("p", "r", Vec::new()), &answer);
            let samples = parse_page(&page).map_err(|e| TestCaseError::fail(format!("{e}\n{page}")))?;
            let ids: std::collections::BTreeSet<_> = samples
                .iter()
                .filter(|s| s.0 == "dbss_instance_upgrade_steps")
                .map(|s| s.1["instance_id"].clone())
                .collect();
            let want: std::collections::BTreeSet<_> =
                answer.instances.iter().map(|i| i.instance_id.clone()).collect();
            prop_assert_eq!(ids, want);
        }
    }

    #[test]
    fn arbitrary_strings_round_trip_through_labels(
        id in any::<String>().prop_filter("an id", |s| !s.is_empty()),
        version in any::<String>(),
        step in any::<String>(),
        project in any::<String>(),
        region in any::<String>(),
        env in any::<String>(),
        status in prop::option::of(-5i64..5),
    ) {
        let body = json!({"audit_upgrade_infos": [{
            "instance_id": id, "current_version": version, "status": status,
            "steps": [{"step_name": step, "result_code": "0", "time": 1764790000}],
        }]});
        let answer = api::decode(body.to_string().as_bytes()).expect("valid JSON decodes");
        let t = target(&project, &region, vec![("env".into(), env.clone())]);
        let page = page_of(&t, &answer);
        let samples = parse_page(&page).map_err(|e| TestCaseError::fail(format!("{e}\n{page}")))?;

        let info = samples
            .iter()
            .find(|s| s.0 == "dbss_instance_upgrade_step_info")
            .expect("a step series");
        prop_assert_eq!(&info.1["project_id"], &project);
        prop_assert_eq!(&info.1["region"], &region);
        prop_assert_eq!(&info.1["env"], &env);
        prop_assert_eq!(&info.1["instance_id"], &id);
        prop_assert_eq!(&info.1["step_name"], &step);
        let status_series = samples.iter().find(|s| s.0 == "dbss_instance_upgrade_status");
        match status {
            Some(n) => {
                let s = status_series.expect("a status series");
                prop_assert_eq!(&s.1["current_version"], &version);
                prop_assert_eq!(s.2, n as f64);
            }
            None => prop_assert!(status_series.is_none()),
        }
    }
}

/// The checker itself refuses what the exposition rules refuse.
#[test]
fn the_checker_refuses_broken_pages() {
    let bad = [
        "x 1\n",
        "# TYPE x gauge\nx{a=\"1\\t\"} 1\n",
        "# TYPE x gauge\nx{a=\"1} 1\n",
        "# TYPE x gauge\nx{1a=\"1\"} 1\n",
        "# TYPE x gauge\nx{a=\"1\",a=\"2\"} 1\n",
        "# TYPE x gauge\nx 1one\n",
        "# TYPE x gauge\n# TYPE y gauge\nx 1\ny 1\nx 2\n",
        "# TYPE x gauge\nx 1",
    ];
    for page in bad {
        assert!(parse_page(page).is_err(), "{page:?}");
    }
    let good = "# HELP x h\n# TYPE x gauge\nx{a=\"q\\\"\\\\\\n,}=\"} -Inf\nx 2.5\n";
    let samples = parse_page(good).unwrap();
    assert_eq!(samples[0].1["a"], "q\"\\\n,}=");
}

/// The page of a plain answer also reads with the `prometheus-parse` crate.
#[test]
fn a_plain_page_reads_with_prometheus_parse() {
    let body = json!({"audit_upgrade_infos": [
        {"instance_id": "i-1", "current_version": "1", "status": 1, "total": 5},
    ]});
    let answer = api::decode(body.to_string().as_bytes()).unwrap();
    let page = page_of(&target("p", "r", Vec::new()), &answer);
    let lines = page.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    let ours = parse_page(&page).unwrap();
    assert_eq!(scrape.samples.len(), ours.len());
    let up = scrape
        .samples
        .iter()
        .find(|s| s.metric == "dbss_up")
        .unwrap();
    assert_eq!(up.value, prometheus_parse::Value::Gauge(1.0));
}
