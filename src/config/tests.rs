//! Tests of configuration loading: the accepted forms and the exact message
//! for each kind of bad configuration.

use super::*;

const GOOD: &str = r#"
[poll]
interval = "5m"
timeout = "30s"
concurrency = 8
stale_after = "15m"

[credentials.main]
type = "token"
token_file = "/run/secrets/token"

[[targets]]
project_id = "0123456789abcdef0123456789abcdef"
region = "cn-north-4"
credentials = "main"
labels = { env = "prod", team = "sec" }

[[targets]]
project_id = "fedcba9876543210fedcba9876543210"
region = "ap-southeast-1"
endpoint = "http://127.0.0.1:8080/"
credentials = "main"
"#;

fn errors(text: &str) -> String {
    load_str(text, "dbss.toml").unwrap_err().to_string()
}

#[test]
fn a_good_file_loads_with_defaults_filled_in() {
    let c = load_str(GOOD, "dbss.toml").unwrap();
    assert_eq!(c.poll.interval, Duration::from_secs(300));
    assert_eq!(c.poll.deadline, Duration::from_secs(120));
    assert_eq!(c.poll.retries, 2);
    assert_eq!(c.poll.max_body_bytes, 4 << 20);
    assert_eq!(
        c.targets[0].endpoint,
        "https://dbss.cn-north-4.myhuaweicloud.com"
    );
    assert_eq!(c.targets[1].endpoint, "http://127.0.0.1:8080");
    assert_eq!(
        c.targets[0].labels,
        [
            ("env".to_string(), "prod".to_string()),
            ("team".to_string(), "sec".to_string())
        ]
    );
    assert_eq!(
        c.credentials["main"],
        CredentialSpec::Token {
            token: SecretSource::File("/run/secrets/token".into())
        }
    );
}

#[test]
fn the_example_config_is_valid() {
    let text = include_str!("../../config.example.toml");
    let c = load_str(text, "config.example.toml").unwrap();
    assert!(!c.targets.is_empty());
}

#[test]
fn unknown_keys_are_refused_with_their_line() {
    let text = GOOD.replace("concurrency = 8", "concurency = 8");
    assert_eq!(errors(&text), "dbss.toml:5: poll.concurency: unknown key");
    let text = format!("{GOOD}\n[extra]\nx = 1\n");
    assert_eq!(errors(&text), "dbss.toml:24: extra: unknown key");
}

/// Keys TOML has to quote are named quoted: an empty one is still seen.
#[test]
fn quoted_unknown_keys_are_named_quoted() {
    let text = format!("''=''\n{GOOD}");
    assert_eq!(errors(&text), "dbss.toml:1: \"\": unknown key");
    let text = GOOD.replace("concurrency = 8", "\"con.currency\" = 8");
    assert_eq!(
        errors(&text),
        "dbss.toml:5: poll.\"con.currency\": unknown key"
    );
}

#[test]
fn bad_durations_say_why() {
    let text = GOOD.replace("interval = \"5m\"", "interval = \"5 parsecs\"");
    assert_eq!(
        errors(&text),
        "dbss.toml:3: poll.interval: invalid duration \"5 parsecs\": unknown time unit \"parsecs\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations)"
    );
    let text = GOOD.replace("timeout = \"30s\"", "timeout = 30");
    assert_eq!(
        errors(&text),
        "dbss.toml:4: poll.timeout: expected a string, found an integer"
    );
    let text = GOOD.replace("timeout = \"30s\"", "timeout = \"0s\"");
    assert_eq!(
        errors(&text),
        "dbss.toml:4: poll.timeout: must be longer than zero"
    );
}

#[test]
fn a_missing_project_id_is_refused_at_its_target() {
    let text = GOOD.replace("project_id = \"0123456789abcdef0123456789abcdef\"\n", "");
    assert_eq!(
        errors(&text),
        "dbss.toml:12: targets[0].project_id: missing (required)"
    );
}

#[test]
fn a_target_naming_unknown_credentials_is_refused() {
    let text = GOOD.replacen("credentials = \"main\"", "credentials = \"mian\"", 1);
    assert_eq!(
        errors(&text),
        "dbss.toml:15: targets[0].credentials: no [credentials.mian] is defined"
    );
}

#[test]
fn duplicate_targets_are_refused() {
    let text = GOOD
        .replace(
            "fedcba9876543210fedcba9876543210",
            "0123456789abcdef0123456789abcdef",
        )
        .replace("endpoint = \"http://127.0.0.1:8080/\"\n", "");
    let text = text.replace("region = \"ap-southeast-1\"", "region = \"cn-north-4\"");
    assert_eq!(
        errors(&text),
        "dbss.toml:19: targets[1].project_id: duplicate of targets[0]: same project_id \"0123456789abcdef0123456789abcdef\" and endpoint \"https://dbss.cn-north-4.myhuaweicloud.com\""
    );
}

/// The API path is appended to an endpoint: a query or fragment in it
/// would send every request elsewhere.
#[test]
fn endpoints_with_a_query_or_fragment_are_refused() {
    for endpoint in ["http://127.0.0.1:8080/?x=1", "http://127.0.0.1:8080#frag"] {
        let text = GOOD.replace("http://127.0.0.1:8080/", endpoint);
        assert_eq!(
            errors(&text),
            format!("dbss.toml:21: targets[1].endpoint: {endpoint:?} must not carry a query (?) or a fragment (#): the API path is appended to it")
        );
    }
}

/// A password in a URL would be sent with every request and shown in
/// messages; the value is refused without being repeated.
#[test]
fn urls_with_a_user_or_password_are_refused_unshown() {
    let text = GOOD.replace(
        "http://127.0.0.1:8080/",
        "https://user:url-secret@127.0.0.1:8080",
    );
    let message = errors(&text);
    assert_eq!(
        message,
        "dbss.toml:21: targets[1].endpoint: must not carry a user name or password (user:password@); credentials go in [credentials], and the value is not shown"
    );
    let text = GOOD.replace(
        "type = \"token\"\ntoken_file = \"/run/secrets/token\"",
        "type = \"password\"\ndomain = \"d\"\nuser = \"u\"\npassword_file = \"/run/secrets/p\"\niam_endpoint = \"https://admin:iam-secret@iam.example.com\"",
    );
    let message = errors(&text);
    assert!(!message.contains("iam-secret"), "{message}");
    assert!(
        message.contains("credentials.main.iam_endpoint: must not carry a user name or password"),
        "{message}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = GOOD
        .replace("concurrency = 8", "concurrency = 0")
        .replace("type = \"token\"", "type = \"tokn\"")
        .replace("region = \"ap-southeast-1\"", "region = \"ap southeast\"")
        .replace("team = \"sec\"", "__team = \"sec\"");
    assert_eq!(
        errors(&text),
        [
            "dbss.toml:5: poll.concurrency: 0 is out of range (1 to 100000)",
            "dbss.toml:9: credentials.main.type: unknown credential type \"tokn\" (expected token, aksk, password, ecs_metadata or sdk_env)",
            "dbss.toml:16: targets[0].labels.__team: label names starting with __ are reserved by Prometheus",
            "dbss.toml:20: targets[1].region: must be a region name such as cn-north-4",
        ]
        .join("\n")
    );
}

#[test]
fn syntax_errors_name_the_line() {
    let text = GOOD.replace("[poll]", "[poll");
    let msg = errors(&text);
    assert!(msg.starts_with("dbss.toml:2: (syntax): "), "{msg}");
}

#[test]
fn secrets_are_not_taken_inline() {
    let text = GOOD.replace("token_file = \"/run/secrets/token\"", "token = \"abc\"");
    assert_eq!(
        errors(&text),
        "dbss.toml:10: credentials.main.token: secrets are not read from the config file; use token_file or token_env"
    );
    assert!(!errors(&text).contains("abc"));
}

#[test]
fn a_secret_needs_a_source() {
    let text = GOOD.replace("token_file = \"/run/secrets/token\"", "");
    assert_eq!(
        errors(&text),
        "dbss.toml:8: credentials.main.token_file: missing: set token_file or token_env"
    );
    let text = GOOD.replace(
        "token_file = \"/run/secrets/token\"",
        "token_file = \"/a\"\ntoken_env = \"T\"",
    );
    assert_eq!(
        errors(&text),
        "dbss.toml:11: credentials.main.token_env: give token_file or token_env, not both"
    );
}

#[test]
fn reserved_and_invalid_label_names_are_refused() {
    let text = GOOD.replace("team = \"sec\"", "region = \"x\", \"9lives\" = \"y\"");
    assert_eq!(
        errors(&text),
        [
            "dbss.toml:16: targets[0].labels.9lives: not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)",
            "dbss.toml:16: targets[0].labels.region: region is a label the exporter sets itself",
        ]
        .join("\n")
    );
}

#[test]
fn deadline_and_timeout_must_fit_the_interval() {
    let text = GOOD.replace("timeout = \"30s\"", "timeout = \"30s\"\ndeadline = \"10m\"");
    assert_eq!(
        errors(&text),
        "dbss.toml:5: poll.deadline: must be shorter than poll.interval"
    );
    let text = GOOD.replace("timeout = \"30s\"", "timeout = \"3m\"");
    assert_eq!(
        errors(&text),
        "dbss.toml:4: poll.timeout: must not be longer than poll.deadline"
    );
}

#[test]
fn sizes_and_rates_accept_their_usual_forms() {
    let text = GOOD.replace(
        "stale_after = \"15m\"",
        "stale_after = \"15m\"\nmax_body_size = \"512KiB\"\nrate_limit = 2.5",
    );
    let c = load_str(&text, "dbss.toml").unwrap();
    assert_eq!(c.poll.max_body_bytes, 512 * 1024);
    assert_eq!(c.poll.rate_limit, Some(2.5));
    let text = GOOD.replace("stale_after = \"15m\"", "max_body_size = \"lots\"");
    assert_eq!(
        errors(&text),
        "dbss.toml:6: poll.max_body_size: invalid size \"lots\" (examples: 1048576, \"4MiB\")"
    );
    let text = GOOD.replace("stale_after = \"15m\"", "max_body_size = \"0\"");
    assert_eq!(
        errors(&text),
        "dbss.toml:6: poll.max_body_size: must be larger than zero"
    );
    let text = GOOD.replace("stale_after = \"15m\"", "max_body_size = \"1000000GiB\"");
    assert_eq!(
        errors(&text),
        "dbss.toml:6: poll.max_body_size: must be at most 1GiB: an answer is held in memory while it is read"
    );
    let text = GOOD.replace("stale_after = \"15m\"", "max_body_size = -5");
    assert_eq!(
        errors(&text),
        "dbss.toml:6: poll.max_body_size: invalid size -5 (examples: 1048576, \"4MiB\")"
    );
}

#[test]
fn a_file_without_targets_is_refused() {
    assert_eq!(
        errors(""),
        "dbss.toml: targets: at least one [[targets]] entry is required"
    );
}

#[test]
fn an_unreadable_file_names_the_file() {
    let err = load_file(Path::new("/nonexistent/dbss.toml")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/nonexistent/dbss.toml: (file): cannot read: No such file or directory (os error 2)"
    );
}

#[test]
fn every_problem_of_one_credentials_table_is_reported() {
    let text = GOOD.replace(
        "type = \"token\"\ntoken_file = \"/run/secrets/token\"",
        "type = \"aksk\"\nak = \"\"\nsk = \"inline-sk\"\nsecurity_token = \"inline-st\"",
    );
    let msg = errors(&text);
    assert_eq!(
        msg,
        [
            "dbss.toml:10: credentials.main.ak: must not be empty",
            "dbss.toml:11: credentials.main.sk: secrets are not read from the config file; use sk_file or sk_env",
            "dbss.toml:12: credentials.main.security_token: secrets are not read from the config file; use security_token_file or security_token_env",
        ]
        .join("\n")
    );
    assert!(!msg.contains("inline-sk") && !msg.contains("inline-st"));

    let text = GOOD.replace(
        "type = \"token\"\ntoken_file = \"/run/secrets/token\"",
        "type = \"password\"\npassword_env = \"PW\"",
    );
    assert_eq!(
        errors(&text),
        "dbss.toml:8: credentials.main.domain: missing (required)\ndbss.toml:8: credentials.main.user: missing (required)"
    );
}

#[test]
fn a_secret_pasted_as_a_variable_name_is_refused_without_showing_it() {
    let text = GOOD.replace(
        "token_file = \"/run/secrets/token\"",
        "token_env = \"s3cr3t p@ss\"",
    );
    let msg = errors(&text);
    assert_eq!(
        msg,
        "dbss.toml:10: credentials.main.token_env: is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*); the value is not shown in case it is the secret itself"
    );
    assert!(!msg.contains("s3cr3t"));
    let text = GOOD.replace("token_file = \"/run/secrets/token\"", "token_file = \"\"");
    assert_eq!(
        errors(&text),
        "dbss.toml:10: credentials.main.token_file: must not be empty"
    );
}

#[test]
fn targets_whose_series_would_collide_are_refused() {
    // Another spelling of the same endpoint: host case and the default port.
    let second = "[[targets]]\nproject_id = \"0123456789abcdef0123456789abcdef\"\nregion = \"cn-north-4\"\nendpoint = \"https://DBSS.cn-north-4.myhuaweicloud.com:443/\"\ncredentials = \"main\"\nlabels = { env = \"prod\", team = \"sec\" }\n";
    let text = format!("{GOOD}\n{second}");
    assert_eq!(
        errors(&text),
        "dbss.toml:25: targets[2].project_id: duplicate of targets[0]: same project_id \"0123456789abcdef0123456789abcdef\" and endpoint \"https://dbss.cn-north-4.myhuaweicloud.com\""
    );
    // Another endpoint, but the same labels on every series.
    let text = format!(
        "{GOOD}\n{}",
        second.replace(
            "https://DBSS.cn-north-4.myhuaweicloud.com:443/",
            "http://127.0.0.1:9"
        )
    );
    assert_eq!(
        errors(&text),
        "dbss.toml:29: targets[2].labels: targets[0] has the same project_id, region and labels: their series would collide; tell them apart with a label"
    );
}

#[test]
fn ca_files_must_be_readable_and_hold_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let text = GOOD.replace(
        "stale_after = \"15m\"",
        &format!(
            "stale_after = \"15m\"\nca_file = {:?}",
            empty.display().to_string()
        ),
    );
    assert_eq!(
        errors(&text),
        format!(
            "dbss.toml:7: poll.ca_file: {:?} holds no PEM certificate",
            empty.display().to_string()
        )
    );
    let text = GOOD.replace(
        "stale_after = \"15m\"",
        "stale_after = \"15m\"\nca_file = \"/nonexistent/ca.pem\"",
    );
    assert_eq!(
        errors(&text),
        "dbss.toml:7: poll.ca_file: cannot read \"/nonexistent/ca.pem\": No such file or directory (os error 2)"
    );
}

#[test]
fn durations_are_bounded() {
    let text = GOOD.replace("interval = \"5m\"", "interval = \"500ms\"");
    assert_eq!(
        errors(&text),
        "dbss.toml:3: poll.interval: must be at least 1s\ndbss.toml:4: poll.timeout: must not be longer than poll.deadline"
    );
    let text = GOOD.replace(
        "stale_after = \"15m\"",
        "stale_after = \"18446744073709551615s\"",
    );
    assert_eq!(
        errors(&text),
        "dbss.toml:6: poll.stale_after: must be at most 30 days"
    );
}
