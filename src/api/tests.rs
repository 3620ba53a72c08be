//! Tests of answer and error-body decoding.

use super::*;

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
fn error_bodies_of_all_three_shapes_give_their_code() {
    let flat =
        br#"{"error_code":"DBSS.10020100","error_msg":"token authentication failed","details":[]}"#;
    let nested = br#"{"error":{"error_code":"DBSS.11000000","error_msg":"internal error"}}"#;
    let gateway =
        br#"{"error_code":"APIGW.0301","error_msg":"incorrect IAM authentication information"}"#;
    let iam = br#"{"error":{"code":401,"message":"The request you have made requires authentication.","title":"Unauthorized"}}"#;
    let codes: Vec<String> = [&flat[..], nested, gateway, iam]
        .iter()
        .map(|b| decode_error_body(b).unwrap().code)
        .collect();
    assert_eq!(
        codes,
        ["DBSS.10020100", "DBSS.11000000", "APIGW.0301", "401"]
    );
    assert_eq!(decode_error_body(b"<html/>"), None);
    assert_eq!(decode_error_body(br#"{"message":"x"}"#), None);
}

#[test]
fn long_messages_are_shortened_on_a_character_boundary() {
    assert_eq!(shorten("ééééé", 3), "ééé…");
    assert_eq!(shorten("abc", 3), "abc");
}
