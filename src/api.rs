//! The DBSS upgrade-status API: its answer, read leniently, and its error
//! bodies, read for their error code.
//!
//! The API page documents every field, but in practice any of them may be
//! missing, null, a number sent as a string or a float where an integer is
//! meant. Decoding keeps every instance it can make sense of, and reports
//! what it had to skip or bend as [`DecodeWarning`]s; only an answer that is
//! not a JSON object at all fails as a whole.

use serde_json::{Map, Value};

/// The path of the upgrade-status call for `project_id`.
pub fn upgrade_status_path(project_id: &str) -> String {
    format!("/v1/{project_id}/audit/upgrade/status")
}

/// One audit instance's upgrade state, as exported.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// The audit instance id.
    pub instance_id: String,
    /// The running version; empty when the API left it out.
    pub current_version: String,
    /// The version it can move to; empty when there is none.
    pub upgrade_version: String,
    /// 0 upgrading, 1 can be upgraded and is not, 2 does not meet the
    /// conditions; other values are kept as they come.
    pub status: Option<f64>,
    /// The `total` field, documented as "Capacity".
    pub total: Option<f64>,
    /// The upgrade steps, in the order listed.
    pub steps: Vec<Step>,
}

/// One step of an upgrade.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The step's name.
    pub step_name: String,
    /// The step's result code.
    pub result_code: String,
    /// Free text; logged at debug, never a label.
    pub msg: String,
    /// The step's time in Unix seconds, where `time` could be read.
    pub time: Option<f64>,
}

/// Something decoding had to skip or bend; logged at warn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeWarning {
    /// An entry that is not an object, or has no usable instance_id.
    InstanceSkipped {
        /// Its position in `audit_upgrade_infos`.
        index: usize,
        /// Why it was skipped.
        reason: String,
    },
    /// The same instance_id appeared again; the first entry is kept.
    DuplicateInstance {
        /// The repeated id.
        instance_id: String,
    },
    /// A status outside 0, 1 and 2, exported as it is.
    UnknownStatus {
        /// The instance.
        instance_id: String,
        /// The value received.
        status: String,
    },
    /// A field of the wrong type, ignored.
    FieldIgnored {
        /// The instance.
        instance_id: String,
        /// The field.
        field: &'static str,
    },
}

impl std::fmt::Display for DecodeWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeWarning::InstanceSkipped { index, reason } => {
                write!(f, "audit_upgrade_infos[{index}] skipped: {reason}")
            }
            DecodeWarning::DuplicateInstance { instance_id } => {
                write!(
                    f,
                    "instance {instance_id} listed twice; the first entry is kept"
                )
            }
            DecodeWarning::UnknownStatus {
                instance_id,
                status,
            } => write!(
                f,
                "instance {instance_id} has status {status}, not 0, 1 or 2; exported as it is"
            ),
            DecodeWarning::FieldIgnored { instance_id, field } => {
                write!(
                    f,
                    "instance {instance_id}: field {field} has the wrong type; ignored"
                )
            }
        }
    }
}

/// Why an answer could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The body is not JSON.
    #[error("answer is not JSON ({bytes} bytes): {reason}")]
    NotJson {
        /// The body size.
        bytes: usize,
        /// The parser's message.
        reason: String,
    },
    /// The body is JSON, but not an object with a list of instances.
    #[error("answer has the wrong shape: {0}")]
    Shape(String),
}

/// A decoded answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpgradeStatus {
    /// The instances, duplicates removed, in the order first seen.
    pub instances: Vec<Instance>,
    /// What decoding skipped or bent.
    pub warnings: Vec<DecodeWarning>,
}

/// Decodes a 200 answer's body.
pub fn decode(body: &[u8]) -> Result<UpgradeStatus, DecodeError> {
    // Some proxies put a UTF-8 byte order mark before the JSON.
    let json = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let value: Value = serde_json::from_slice(json).map_err(|e| DecodeError::NotJson {
        bytes: body.len(),
        reason: e.to_string(),
    })?;
    let Value::Object(top) = value else {
        return Err(DecodeError::Shape(format!(
            "expected an object, found {}",
            kind(&value)
        )));
    };

    // A Java backend that omits empty lists answers `{}` for a project
    // without instances, so a missing or null list reads as an empty one.
    let list = match top.get("audit_upgrade_infos") {
        None | Some(Value::Null) => return Ok(UpgradeStatus::default()),
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Err(DecodeError::Shape(format!(
                "audit_upgrade_infos is {}, not an array",
                kind(other)
            )))
        }
    };

    let mut out = UpgradeStatus::default();
    let mut seen = std::collections::HashSet::new();
    for (index, entry) in list.iter().enumerate() {
        let Some(instance) = decode_instance(index, entry, &mut out.warnings) else {
            continue;
        };
        if !seen.insert(instance.instance_id.clone()) {
            out.warnings.push(DecodeWarning::DuplicateInstance {
                instance_id: instance.instance_id,
            });
            continue;
        }
        out.instances.push(instance);
    }
    Ok(out)
}

fn decode_instance(
    index: usize,
    entry: &Value,
    warnings: &mut Vec<DecodeWarning>,
) -> Option<Instance> {
    let skip = |reason: &str| DecodeWarning::InstanceSkipped {
        index,
        reason: reason.to_string(),
    };
    let Value::Object(obj) = entry else {
        warnings.push(skip(&format!("entry is {}, not an object", kind(entry))));
        return None;
    };
    let instance_id = match text(obj, "instance_id") {
        Some(id) if !id.is_empty() => id,
        _ => {
            warnings.push(skip("no instance_id"));
            return None;
        }
    };

    let mut ignored = |field: &'static str| {
        warnings.push(DecodeWarning::FieldIgnored {
            instance_id: instance_id.clone(),
            field,
        })
    };
    let status = number_field(obj, "status", &mut ignored);
    let total = number_field(obj, "total", &mut ignored);
    let steps = match obj.get("steps") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().filter_map(decode_step).collect(),
        Some(_) => {
            ignored("steps");
            Vec::new()
        }
    };
    let current_version = text(obj, "current_version").unwrap_or_default();
    let upgrade_version = text(obj, "upgrade_version").unwrap_or_default();

    if let Some(s) = status.filter(|s| ![0.0, 1.0, 2.0].contains(s)) {
        warnings.push(DecodeWarning::UnknownStatus {
            instance_id: instance_id.clone(),
            status: s.to_string(),
        });
    }
    Some(Instance {
        instance_id,
        current_version,
        upgrade_version,
        status,
        total,
        steps,
    })
}

fn number_field(
    obj: &Map<String, Value>,
    field: &'static str,
    ignored: &mut impl FnMut(&'static str),
) -> Option<f64> {
    match obj.get(field) {
        None | Some(Value::Null) => None,
        Some(v) => {
            let n = number(v);
            if n.is_none() {
                ignored(field);
            }
            n
        }
    }
}

fn decode_step(entry: &Value) -> Option<Step> {
    let Value::Object(obj) = entry else {
        return None;
    };
    Some(Step {
        step_name: text(obj, "step_name").unwrap_or_default(),
        result_code: text(obj, "result_code").unwrap_or_default(),
        msg: text(obj, "msg").unwrap_or_default(),
        time: obj.get("time").and_then(parse_time),
    })
}

/// A string field; numbers and booleans are accepted as their text.
fn text(obj: &Map<String, Value>, field: &str) -> Option<String> {
    match obj.get(field)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A finite number, or a string holding one.
fn number(v: &Value) -> Option<f64> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    n.filter(|n| n.is_finite())
}

/// Reads a step time: epoch seconds or milliseconds (as a number or a
/// string), or a date-time string with or without a zone (UTC assumed).
pub fn parse_time(v: &Value) -> Option<f64> {
    if let Some(n) = number(v) {
        return Some(epoch_seconds(n));
    }
    let s = v.as_str()?.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis() as f64 / 1000.0);
    }
    const NAIVE: &[&str] = &[
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y/%m/%d %H:%M:%S",
    ];
    NAIVE.iter().find_map(|f| {
        chrono::NaiveDateTime::parse_from_str(s, f)
            .ok()
            .map(|t| t.and_utc().timestamp_millis() as f64 / 1000.0)
    })
}

/// Numbers past the year 33658 in seconds are taken to be milliseconds.
fn epoch_seconds(n: f64) -> f64 {
    if n.abs() >= 1e12 {
        n / 1000.0
    } else {
        n
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The error code and message of an error answer, in any of the three
/// shapes DBSS and its gateway use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiErrorBody {
    /// `DBSS.10020100`, `APIGW.0301`, or an IAM numeric code as text.
    pub code: String,
    /// The message, cut to a length fit for a log line.
    pub message: String,
}

/// Reads an error body; `None` when it is not one of the known shapes.
pub fn decode_error_body(body: &[u8]) -> Option<ApiErrorBody> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let obj = value.as_object()?;
    let (code, message) = match obj.get("error") {
        Some(Value::Object(inner)) => (
            text(inner, "error_code").or_else(|| text(inner, "code")),
            text(inner, "error_msg").or_else(|| text(inner, "message")),
        ),
        _ => (text(obj, "error_code"), text(obj, "error_msg")),
    };
    Some(ApiErrorBody {
        code: code?,
        message: shorten(&message.unwrap_or_default(), 200),
    })
}

/// Cuts `s` to at most `max` characters, marking the cut.
pub fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests;
