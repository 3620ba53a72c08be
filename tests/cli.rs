//! Black-box tests of the command line: `--config.check`, exit codes, help.

mod common;

use std::process::Command;

fn check(config: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(common::binary())
        .arg("--config.check")
        .arg(format!("--config.file={}", path.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr)
        .unwrap()
        .replace(&path.display().to_string(), "FILE");
    let stdout = String::from_utf8(out.stdout)
        .unwrap()
        .replace(&path.display().to_string(), "FILE");
    (out.status.code().unwrap(), stdout, stderr)
}

/// Runs the exporter on `config` with `args` until it exits; its exit code
/// and stderr, with the file's path written FILE.
fn run(config: &str, args: &[String]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(common::binary())
        .arg(format!("--config.file={}", path.display()))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr)
        .unwrap()
        .replace(&path.display().to_string(), "FILE");
    (out.status.code(), stderr)
}

/// A configuration that loads, whose only credential reads an unset variable.
const LOADS: &str = "[[targets]]\nproject_id = \"p\"\nregion = \"r\"\ncredentials = \"t\"\n[credentials.t]\ntype = \"token\"\ntoken_env = \"X\"\n";

/// A bad file: every problem on stderr, and exit code 78.
#[test]
fn config_check_lists_every_problem_and_exits_78() {
    let (code, _, stderr) = check(
        "[poll]\ninterval = \"soon\"\nconcurrency = -1\n\n[[targets]]\nregion = \"cn-north-4\"\ncredentials = \"nope\"\ncolour = \"blue\"\n",
    );
    assert_eq!(code, 78);
    assert_eq!(
        stderr.trim_end(),
        [
            "FILE:2: poll.interval: invalid duration \"soon\": expected number at 0",
            "FILE:3: poll.concurrency: -1 is out of range (1 to 100000)",
            "FILE:5: targets[0].project_id: missing (required)",
            "FILE:7: targets[0].credentials: no [credentials.nope] is defined",
            "FILE:8: targets[0].colour: unknown key",
        ]
        .join("\n")
    );
}

/// The example configuration passes the check.
#[test]
fn config_check_accepts_the_example() {
    let (code, stdout, _) = check(include_str!("../config.example.toml"));
    assert_eq!(code, 0);
    assert_eq!(stdout.trim_end(), "FILE: OK (2 targets, 1 credentials)");
}

/// A missing file is a configuration error too.
#[test]
fn a_missing_config_file_exits_78() {
    let out = Command::new(common::binary())
        .args([
            "--config.file=/nonexistent/dbss.toml",
            "--web.listen-address=127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap().trim_end(),
        "/nonexistent/dbss.toml: (file): cannot read: No such file or directory (os error 2)"
    );
}

/// A port in use is a runtime failure: exit code 1.
#[test]
fn a_busy_listen_address_exits_1() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let (code, stderr) = run(LOADS, &[format!("--web.listen-address={addr}")]);
    assert_eq!(code, Some(1));
    // Said once, as a log line, not again as a bare message.
    assert_eq!(
        stderr.matches(&format!("cannot listen on {addr}")).count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.lines().any(|l| l.contains("level=error")
            && l.contains("dbss-exporter stopped")
            && l.contains(&format!("cannot listen on {addr}"))),
        "{stderr}"
    );
}

/// With `--log.format=json` each line is one flat JSON object: the event's
/// fields sit beside `level` and `message`, not nested under `fields`.
#[test]
fn json_logs_are_flat_objects() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let args = [
        format!("--web.listen-address={addr}"),
        "--log.format=json".into(),
    ];
    let (code, stderr) = run(LOADS, &args);
    assert_eq!(code, Some(1));
    let last: serde_json::Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "ERROR", "{stderr}");
    assert_eq!(last["message"], "dbss-exporter stopped", "{stderr}");
    assert!(
        last["error"]
            .as_str()
            .unwrap()
            .starts_with(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(last.get("fields").is_none(), "{stderr}");
}

/// Under `--log.format=json`, a configuration refused at start is one JSON
/// record holding every problem, and the exit code is still 78.
#[test]
fn a_refused_config_is_a_json_record_under_json_logs() {
    let args = [
        "--web.listen-address=127.0.0.1:0".into(),
        "--log.format=json".into(),
    ];
    let (code, stderr) = run("[poll]\ninterval = \"soon\"\n", &args);
    assert_eq!(code, Some(78));
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    let record: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(record["level"], "ERROR", "{stderr}");
    assert_eq!(record["message"], "configuration refused", "{stderr}");
    assert_eq!(
        record["error"],
        "FILE:2: poll.interval: invalid duration \"soon\": expected number at 0\nFILE: targets: at least one [[targets]] entry is required",
        "{stderr}"
    );
}

/// Every dotted flag of the exporters' style is known.
#[test]
fn help_lists_the_dotted_flags() {
    let out = Command::new(common::binary())
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--config.file",
        "--config.check",
        "--web.listen-address",
        "--web.telemetry-path",
        "--web.config.file",
        "--web.enable-lifecycle",
        "--log.level",
        "--log.format",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}

/// A telemetry path that is relative, carries a query or takes one of the
/// exporter's own endpoints is a usage error.
#[test]
fn a_bad_telemetry_path_is_refused() {
    for (path, reason) in [
        ("metrics", "must start with '/'"),
        (
            "/metrics?x=1",
            "must be a plain path, without '?', '#' or spaces",
        ),
        ("/-/ready", "/-/ready is served by the exporter itself"),
    ] {
        let out = Command::new(common::binary())
            .args(["demo", &format!("--web.telemetry-path={path}")])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{path}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.contains(&format!(
                "invalid value '{path}' for '--web.telemetry-path <PATH>': {reason}"
            )),
            "{stderr}"
        );
    }
}

/// `--version` names the version, the revision and the compiler.
#[test]
fn version_names_the_revision() {
    let out = Command::new(common::binary())
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let want = format!("dbss-exporter {} (revision: ", env!("CARGO_PKG_VERSION"));
    assert!(text.starts_with(&want), "{text}");
    assert!(text.contains(", rustc: "), "{text}");
}

/// A demo poll interval under a second is refused like a usage error.
#[test]
fn a_demo_poll_interval_under_a_second_is_refused() {
    let out = Command::new(common::binary())
        .args(["demo", "--demo.poll-interval=0s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("must be at least 1s"));
}

/// A missing CA file is a configuration error, at check and at start.
#[test]
fn a_missing_ca_file_is_refused_with_exit_78() {
    let cfg = "[poll]\nca_file = \"/nonexistent/ca.pem\"\n\n[credentials.t]\ntype = \"token\"\ntoken_env = \"X\"\n\n[[targets]]\nproject_id = \"p\"\nregion = \"r\"\ncredentials = \"t\"\n";
    let (code, _, stderr) = check(cfg);
    assert_eq!(code, 78);
    assert_eq!(
        stderr.trim_end(),
        "FILE:2: poll.ca_file: cannot read \"/nonexistent/ca.pem\": No such file or directory (os error 2)"
    );
}
