//! Tests of answer and error-body decoding.

use super::*;
use serde_json::json;

#[test]
fn the_api_pages_example_decodes() {
    let body = br#"{
      "audit_upgrade_infos" : [ {
        "instance_id" : "5ac5856d-5c40-431d-98cc-1501eb7d8e11",
        "current_version" : "25.07.21.163957",
        "status" : 2,
        "total" : 1
      } ]
    }"#;
    let got = decode(body).unwrap();
    assert_eq!(
        got.instances,
        [Instance {
            instance_id: "5ac5856d-5c40-431d-98cc-1501eb7d8e11".into(),
            current_version: "25.07.21.163957".into(),
            upgrade_version: String::new(),
            status: Some(2.0),
            total: Some(1.0),
            steps: Vec::new(),
        }]
    );
    assert!(got.warnings.is_empty());
}

#[test]
fn steps_keep_their_order_and_times_in_every_format() {
    let body = br#"{"audit_upgrade_infos":[{"instance_id":"i","status":0,"steps":[
        {"step_name":"a","result_code":"SUCCESS","msg":"ok","time":"2025-12-03T10:00:00Z"},
        {"step_name":"b","result_code":"SUCCESS","time":"1764756000000"},
        {"step_name":"c","result_code":"RUNNING","time":1764756000},
        {"step_name":"d","result_code":"RUNNING","time":"2025-12-03 10:00:00"},
        {"step_name":"e","result_code":"RUNNING","time":"yesterday"}]}]}"#;
    let steps = &decode(body).unwrap().instances[0].steps;
    let names: Vec<&str> = steps.iter().map(|s| s.step_name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
    let times: Vec<Option<f64>> = steps.iter().map(|s| s.time).collect();
    let t = Some(1_764_756_000.0);
    assert_eq!(times, [t, t, t, t, None]);
}

#[test]
fn an_unknown_status_is_kept_with_a_warning() {
    let got = decode(br#"{"audit_upgrade_infos":[{"instance_id":"i","status":7}]}"#).unwrap();
    assert_eq!(got.instances[0].status, Some(7.0));
    assert_eq!(
        got.warnings,
        [DecodeWarning::UnknownStatus {
            instance_id: "i".into(),
            status: "7".into()
        }]
    );
}

#[test]
fn a_missing_or_null_list_is_an_empty_fleet() {
    assert!(decode(b"{}").unwrap().instances.is_empty());
    assert!(decode(br#"{"audit_upgrade_infos":null}"#)
        .unwrap()
        .instances
        .is_empty());
}

#[test]
fn answers_of_the_wrong_shape_fail_with_a_reason() {
    assert_eq!(
        decode(b"[]").unwrap_err().to_string(),
        "answer has the wrong shape: expected an object, found an array"
    );
    assert_eq!(
        decode(br#"{"audit_upgrade_infos":"x"}"#)
            .unwrap_err()
            .to_string(),
        "answer has the wrong shape: audit_upgrade_infos is a string, not an array"
    );
    let err = decode(b"<html>Bad Gateway</html>").unwrap_err().to_string();
    assert!(err.starts_with("answer is not JSON (24 bytes): "), "{err}");
}

#[test]
fn long_messages_are_shortened_on_a_character_boundary() {
    assert_eq!(shorten("ééééé", 3), "ééé…");
    assert_eq!(shorten("abc", 3), "abc");
}

fn decode_json(v: Value) -> UpgradeStatus {
    decode(v.to_string().as_bytes()).expect("decodes")
}

fn one(v: Value) -> (Instance, Vec<DecodeWarning>) {
    let out = decode_json(json!({ "audit_upgrade_infos": [v] }));
    assert_eq!(out.instances.len(), 1, "{out:?}");
    (out.instances[0].clone(), out.warnings)
}

#[test]
fn a_body_that_is_not_json_fails_with_its_size() {
    let cases: [(&[u8], &str); 5] = [
        (
            b"hello",
            "answer is not JSON (5 bytes): expected value at line 1 column 1",
        ),
        (
            b"",
            "answer is not JSON (0 bytes): EOF while parsing a value at line 1 column 0",
        ),
        (
            b"<html><body><h1>502 Bad Gateway</h1></body></html>",
            "answer is not JSON (50 bytes): expected value at line 1 column 1",
        ),
        (
            b"{\"audit_upgrade_infos\": [",
            "answer is not JSON (25 bytes): EOF while parsing a list at line 1 column 25",
        ),
        (
            b"\xff\xfe{}",
            "answer is not JSON (4 bytes): expected value at line 1 column 1",
        ),
    ];
    for (body, want) in cases {
        let err = decode(body).unwrap_err();
        assert!(matches!(err, DecodeError::NotJson { .. }));
        assert_eq!(err.to_string(), want);
    }
}

#[test]
fn json_of_the_wrong_shape_fails_and_says_what_it_found() {
    let cases = [
        (
            json!(null),
            "answer has the wrong shape: expected an object, found null",
        ),
        (
            json!([]),
            "answer has the wrong shape: expected an object, found an array",
        ),
        (
            json!("x"),
            "answer has the wrong shape: expected an object, found a string",
        ),
        (
            json!({"audit_upgrade_infos": {}}),
            "answer has the wrong shape: audit_upgrade_infos is an object, not an array",
        ),
        (
            json!({"audit_upgrade_infos": 3}),
            "answer has the wrong shape: audit_upgrade_infos is a number, not an array",
        ),
    ];
    for (v, want) in cases {
        let err = decode(v.to_string().as_bytes()).unwrap_err();
        assert_eq!(err.to_string(), want);
    }
}

#[test]
fn an_empty_object_or_null_list_is_an_empty_fleet() {
    for body in [
        json!({}),
        json!({"audit_upgrade_infos": null}),
        json!({"audit_upgrade_infos": []}),
    ] {
        assert_eq!(decode_json(body), UpgradeStatus::default());
    }
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let out = decode(b"\xef\xbb\xbf{\"audit_upgrade_infos\":[{\"instance_id\":\"a\"}]}").unwrap();
    assert_eq!(out.instances[0].instance_id, "a");
}

#[test]
fn null_fields_read_as_absent() {
    let (i, warnings) = one(json!({
        "instance_id": "a", "current_version": null, "upgrade_version": null,
        "status": null, "total": null, "steps": null
    }));
    assert_eq!(
        i,
        Instance {
            instance_id: "a".into(),
            current_version: String::new(),
            upgrade_version: String::new(),
            status: None,
            total: None,
            steps: Vec::new(),
        }
    );
    assert!(warnings.is_empty());
}

#[test]
fn numbers_sent_as_strings_and_floats_are_read() {
    let (i, warnings) = one(json!({
        "instance_id": 42, "current_version": 25.07, "status": " 1 ", "total": "2048"
    }));
    assert_eq!(i.instance_id, "42");
    assert_eq!(i.current_version, "25.07");
    assert_eq!((i.status, i.total), (Some(1.0), Some(2048.0)));
    assert!(warnings.is_empty());

    let (i, warnings) = one(json!({"instance_id": "a", "status": 2.0, "total": 12.5}));
    assert_eq!((i.status, i.total), (Some(2.0), Some(12.5)));
    assert!(warnings.is_empty());
}

#[test]
fn fields_of_the_wrong_type_are_ignored_with_a_warning() {
    let (i, warnings) = one(json!({
        "instance_id": "a", "status": true, "total": "lots", "steps": "none"
    }));
    assert_eq!((i.status, i.total, i.steps.len()), (None, None, 0));
    let fields: Vec<_> = warnings
        .iter()
        .map(|w| match w {
            DecodeWarning::FieldIgnored { field, .. } => *field,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(fields, ["status", "total", "steps"]);
}

#[test]
fn unknown_fields_are_ignored_silently() {
    let (i, warnings) = one(json!({
        "instance_id": "a", "status": 1, "colour": "blue", "nested": {"x": [1, 2]}
    }));
    assert_eq!(i.status, Some(1.0));
    assert!(warnings.is_empty());
}

#[test]
fn unknown_status_values_are_kept_with_a_warning() {
    for (status, want) in [(json!(7), 7.0), (json!("-1"), -1.0), (json!(1.5), 1.5)] {
        let (i, warnings) = one(json!({"instance_id": "a", "status": status}));
        assert_eq!(i.status, Some(want));
        assert_eq!(
            warnings,
            [DecodeWarning::UnknownStatus {
                instance_id: "a".into(),
                status: want.to_string()
            }]
        );
    }
}

#[test]
fn non_finite_numbers_are_not_numbers() {
    for text in ["NaN", "inf", "-Infinity", "1e999"] {
        let (i, _) = one(json!({"instance_id": "a", "total": text}));
        assert_eq!(i.total, None, "{text}");
    }
}

#[test]
fn duplicate_instances_keep_the_first_and_warn() {
    let out = decode_json(json!({"audit_upgrade_infos": [
        {"instance_id": "a", "status": 1},
        {"instance_id": "b", "status": 2},
        {"instance_id": "a", "status": 0},
    ]}));
    let got: Vec<_> = out
        .instances
        .iter()
        .map(|i| (i.instance_id.as_str(), i.status))
        .collect();
    assert_eq!(got, [("a", Some(1.0)), ("b", Some(2.0))]);
    assert_eq!(
        out.warnings,
        [DecodeWarning::DuplicateInstance {
            instance_id: "a".into()
        }]
    );
}

#[test]
fn one_bad_instance_never_hides_the_good_ones() {
    let out = decode_json(json!({"audit_upgrade_infos": [
        "junk", null, {"status": 1}, {"instance_id": ""}, {"instance_id": {"x": 1}},
        {"instance_id": "good", "status": 1, "steps": [1, {"step_name": "s"}]},
    ]}));
    assert_eq!(out.instances.len(), 1);
    assert_eq!(out.instances[0].instance_id, "good");
    assert_eq!(out.instances[0].steps.len(), 1);
    let skipped: Vec<_> = out
        .warnings
        .iter()
        .map(|w| match w {
            DecodeWarning::InstanceSkipped { index, reason } => (*index, reason.as_str()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        skipped,
        [
            (0, "entry is a string, not an object"),
            (1, "entry is null, not an object"),
            (2, "no instance_id"),
            (3, "no instance_id"),
            (4, "no instance_id"),
        ]
    );
}

#[test]
fn strings_keep_quotes_backslashes_newlines_and_any_unicode() {
    let id = "a\"b\\c\nd\re\tf\u{0}g é 日本 🦀 \u{200b}";
    let (i, warnings) = one(json!({
        "instance_id": id, "current_version": id,
        "steps": [{"step_name": id, "result_code": id, "msg": id, "time": "x"}]
    }));
    assert_eq!(i.instance_id, id);
    assert_eq!(i.current_version, id);
    assert_eq!(i.steps[0].step_name, id);
    assert_eq!(i.steps[0].time, None);
    assert!(warnings.is_empty());
}

#[test]
fn invalid_unicode_escapes_fail_the_answer_as_not_json() {
    let err = decode(br#"{"audit_upgrade_infos":[{"instance_id":"\ud800"}]}"#).unwrap_err();
    assert!(matches!(err, DecodeError::NotJson { .. }), "{err}");
}

#[test]
fn deep_nesting_fails_without_a_stack_overflow() {
    let body = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let err = decode(body.as_bytes()).unwrap_err();
    assert!(
        err.to_string().contains("recursion limit exceeded"),
        "{err}"
    );
}

#[test]
fn step_times_read_seconds_milliseconds_and_dates() {
    let cases = [
        (json!(1764790000), Some(1764790000.0)),
        (json!("1764790000123"), Some(1764790000.123)),
        (json!("2025-12-03T19:26:40Z"), Some(1764790000.0)),
        (json!("2025-12-03 19:26:40"), Some(1764790000.0)),
        (json!("2025/12/03 19:26:40"), Some(1764790000.0)),
        (json!("yesterday"), None),
        (json!(null), None),
    ];
    for (v, want) in cases {
        assert_eq!(parse_time(&v), want, "{v}");
    }
}

#[test]
fn error_bodies_of_all_three_shapes_give_their_code() {
    let cases = [
        (
            json!({"error_code": "DBSS.10000001", "error_msg": "bad", "details": []}),
            "DBSS.10000001",
            "bad",
        ),
        (
            json!({"error": {"error_code": "DBSS.11000000", "error_msg": "boom"}}),
            "DBSS.11000000",
            "boom",
        ),
        (
            json!({"error_code": "APIGW.0301", "error_msg": "no token"}),
            "APIGW.0301",
            "no token",
        ),
        (
            json!({"error": {"code": 401, "message": "expired", "title": "Unauthorized"}}),
            "401",
            "expired",
        ),
    ];
    for (body, code, message) in cases {
        let got = decode_error_body(body.to_string().as_bytes()).expect("known shape");
        assert_eq!((got.code.as_str(), got.message.as_str()), (code, message));
    }
    for body in [
        &b"<html>502</html>"[..],
        b"",
        b"{}",
        b"{\"error\": 3}",
        b"[]",
    ] {
        assert_eq!(decode_error_body(body), None);
    }
}

#[test]
fn long_error_messages_are_shortened_on_a_char_boundary() {
    let long = "é".repeat(300);
    let body = json!({"error_code": "X", "error_msg": long}).to_string();
    let got = decode_error_body(body.as_bytes()).unwrap();
    assert_eq!(got.message.chars().count(), 201);
    assert!(got.message.ends_with('…'));
}

/// Warnings read as sentences in the logs, not as Rust structs.
#[test]
fn warnings_display_as_sentences() {
    let shown: Vec<String> = [
        DecodeWarning::InstanceSkipped {
            index: 3,
            reason: "no instance_id".into(),
        },
        DecodeWarning::DuplicateInstance {
            instance_id: "a".into(),
        },
        DecodeWarning::UnknownStatus {
            instance_id: "b".into(),
            status: "7".into(),
        },
        DecodeWarning::FieldIgnored {
            instance_id: "c".into(),
            field: "total",
        },
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(
        shown,
        [
            "audit_upgrade_infos[3] skipped: no instance_id",
            "instance a listed twice; the first entry is kept",
            "instance b has status 7, not 0, 1 or 2; exported as it is",
            "instance c: field total has the wrong type; ignored",
        ]
    );
}
