//! Reading typed values out of a spanned TOML table, recording a
//! [`Problem`](super::Problem) for every value that is missing, of the wrong
//! type, out of range, or not expected at all.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::Duration;

use super::raw::{LineIndex, Located, Node, Table};
use super::{ConfigError, Problem};
use crate::secret::SecretSource;

/// Every problem found so far, with what is needed to turn offsets into lines.
pub struct Problems {
    file: String,
    lines: LineIndex,
    list: RefCell<Vec<Problem>>,
}

impl Problems {
    pub fn new(file: &str, text: &str) -> Self {
        Problems {
            file: file.to_string(),
            lines: LineIndex::new(text),
            list: RefCell::new(Vec::new()),
        }
    }

    pub fn add(&self, offset: Option<usize>, key: &str, reason: String) {
        let line = offset.map(|o| self.lines.line(o));
        self.list.borrow_mut().push(Problem {
            line,
            key: key.to_string(),
            reason,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.list.borrow().is_empty()
    }

    pub fn into_error(self) -> ConfigError {
        ConfigError {
            file: self.file,
            problems: self.list.into_inner(),
        }
    }
}

/// A view of one table at a dotted path, which remembers the keys it was
/// asked for so that [`TableReader::finish`] can report the others.
pub struct TableReader<'a> {
    problems: &'a Problems,
    path: String,
    table: &'a Table,
    at: Option<usize>,
    used: RefCell<BTreeSet<String>>,
}

impl<'a> TableReader<'a> {
    pub fn root(problems: &'a Problems, table: &'a Table) -> Self {
        Self::new(problems, String::new(), table, None)
    }

    fn new(problems: &'a Problems, path: String, table: &'a Table, at: Option<usize>) -> Self {
        TableReader {
            problems,
            path,
            table,
            at,
            used: RefCell::new(BTreeSet::new()),
        }
    }

    fn key(&self, name: &str) -> String {
        // A name TOML would have to quote (empty, or with dots, spaces and
        // the like) is shown quoted, so that the message names it visibly.
        let bare = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let name = if bare {
            name.to_string()
        } else {
            format!("{name:?}")
        };
        match self.path.is_empty() {
            true => name,
            false => format!("{}.{name}", self.path),
        }
    }

    /// Records a problem at `name`, on its line if present, else the table's.
    pub fn problem(&self, name: &str, reason: &str) {
        let at = self.table.get(name).and_then(|v| v.at).or(self.at);
        self.problems.add(at, &self.key(name), reason.to_string());
    }

    /// Records that a required key is absent.
    pub fn missing(&self, name: &str, reason: &str) {
        self.problems
            .add(self.at, &self.key(name), reason.to_string());
    }

    fn get(&self, name: &str) -> Option<&'a Node> {
        self.used.borrow_mut().insert(name.to_string());
        self.table.get(name).map(|l| &l.node)
    }

    fn wrong_type(&self, name: &str, want: &str, got: &Node) {
        self.problem(name, &format!("expected {want}, found {}", got.kind()));
    }

    /// The keys of this table, for tables of named entries.
    pub fn keys(&self) -> Vec<String> {
        self.table.keys().cloned().collect()
    }

    pub fn string(&self, name: &str) -> Option<String> {
        match self.get(name)? {
            Node::Str(s) => Some(s.clone()),
            other => {
                self.wrong_type(name, "a string", other);
                None
            }
        }
    }

    pub fn required_string(&self, name: &str) -> Option<String> {
        if !self.table.contains_key(name) {
            self.get(name);
            self.missing(name, "missing (required)");
            return None;
        }
        self.string(name)
    }

    /// A required string that must not be empty.
    pub fn required_text(&self, name: &str) -> Option<String> {
        let text = self.required_string(name)?;
        if text.trim().is_empty() {
            self.problem(name, "must not be empty");
            return None;
        }
        Some(text)
    }

    pub fn boolean(&self, name: &str) -> Option<bool> {
        match self.get(name)? {
            Node::Bool(b) => Some(*b),
            other => {
                self.wrong_type(name, "a boolean", other);
                None
            }
        }
    }

    pub fn integer(&self, name: &str, min: i64, max: i64) -> Option<i64> {
        match self.get(name)? {
            Node::Int(i) if (min..=max).contains(i) => Some(*i),
            Node::Int(i) => {
                self.problem(name, &format!("{i} is out of range ({min} to {max})"));
                None
            }
            other => {
                self.wrong_type(name, "an integer", other);
                None
            }
        }
    }

    /// A duration in humantime form ("30s", "5m", "1h 30m").
    pub fn duration(&self, name: &str) -> Option<Duration> {
        let text = self.string(name)?;
        match humantime::parse_duration(&text) {
            Ok(d) if d.is_zero() => {
                self.problem(name, "must be longer than zero");
                None
            }
            Ok(d) if d > MAX_DURATION => {
                self.problem(name, "must be at most 30 days");
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.problem(name, &format!("invalid duration {text:?}: {e}"));
                None
            }
        }
    }

    /// A PEM file of CA certificates, which must be readable and hold one.
    pub fn ca_file(&self, name: &str) -> Option<std::path::PathBuf> {
        let path = self.string(name)?;
        match std::fs::read_to_string(&path) {
            Ok(pem) if pem.contains("-----BEGIN CERTIFICATE-----") => Some(path.into()),
            Ok(_) => {
                self.problem(name, &format!("{path:?} holds no PEM certificate"));
                None
            }
            Err(e) => {
                self.problem(name, &format!("cannot read {path:?}: {e}"));
                None
            }
        }
    }

    /// A size in bytes: an integer, or a string such as "4MiB" or "512KiB".
    pub fn byte_size(&self, name: &str) -> Option<u64> {
        let value = self.get(name)?;
        let parsed = match value {
            Node::Int(i) => u64::try_from(*i).map_err(|_| format!("invalid size {i}")),
            Node::Str(s) => parse_byte_size(s).ok_or_else(|| format!("invalid size {s:?}")),
            other => Err(format!("expected a size, found {}", other.kind())),
        };
        match parsed {
            Ok(0) => self.problem(name, "must be larger than zero"),
            Ok(n) if n > MAX_BYTE_SIZE => self.problem(
                name,
                "must be at most 1GiB: an answer is held in memory while it is read",
            ),
            Ok(n) => return Some(n),
            Err(reason) => self.problem(name, &(reason + " (examples: 1048576, \"4MiB\")")),
        }
        None
    }

    /// A rate in requests per second; zero or absent means no limit.
    pub fn rate(&self, name: &str) -> Option<f64> {
        let rate = match self.get(name)? {
            Node::Int(i) => *i as f64,
            Node::Float(f) => *f,
            other => {
                self.wrong_type(name, "a number of requests per second", other);
                return None;
            }
        };
        if !(rate.is_finite() && rate >= 0.0) {
            self.problem(name, "must be zero (no limit) or a positive number");
            return None;
        }
        (rate > 0.0).then_some(rate)
    }

    /// An http(s) URL, returned without a trailing slash.
    pub fn url(&self, name: &str) -> Option<String> {
        let text = self.string(name)?;
        let parsed = reqwest::Url::parse(&text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        let Some(url) = parsed else {
            self.problem(name, &format!("{text:?} is not an http:// or https:// URL"));
            return None;
        };
        if !url.username().is_empty() || url.password().is_some() {
            // The value is not repeated: it holds a password.
            self.problem(
                name,
                "must not carry a user name or password (user:password@); credentials go in [credentials], and the value is not shown",
            );
            return None;
        }
        if url.query().is_some() || url.fragment().is_some() {
            self.problem(
                name,
                &format!("{text:?} must not carry a query (?) or a fragment (#): the API path is appended to it"),
            );
            return None;
        }
        // The parser lowers the host's case and drops a default port, so
        // that spellings of one endpoint compare equal.
        Some(url.as_str().trim_end_matches('/').to_string())
    }

    /// A secret given as `{name}_file` or `{name}_env`, exactly one of them.
    pub fn optional_secret(&self, name: &str) -> Option<SecretSource> {
        let file = self.string(&format!("{name}_file"));
        let env = self.string(&format!("{name}_env"));
        if file.as_deref() == Some("") {
            self.problem(&format!("{name}_file"), "must not be empty");
            return None;
        }
        if env.as_deref().is_some_and(|e| !is_env_name(e)) {
            // The value is not repeated: it may be the secret itself.
            self.problem(
                &format!("{name}_env"),
                "is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*); the value is not shown in case it is the secret itself",
            );
            return None;
        }
        if self.table.contains_key(name) {
            self.get(name);
            self.problem(
                name,
                &format!(
                    "secrets are not read from the config file; use {name}_file or {name}_env"
                ),
            );
        }
        match (file, env) {
            (Some(_), Some(_)) => {
                self.problem(
                    &format!("{name}_env"),
                    &format!("give {name}_file or {name}_env, not both"),
                );
                None
            }
            (Some(f), None) => Some(SecretSource::File(f.into())),
            (None, Some(e)) => Some(SecretSource::Env(e)),
            (None, None) => None,
        }
    }

    /// Like [`Self::optional_secret`], but one of the two keys must be there.
    pub fn secret(&self, name: &str) -> Option<SecretSource> {
        let present = ["_file", "_env"]
            .iter()
            .any(|s| self.table.contains_key(&format!("{name}{s}")));
        let source = self.optional_secret(name);
        if !present && !self.table.contains_key(name) {
            self.missing(
                &format!("{name}_file"),
                &format!("missing: set {name}_file or {name}_env"),
            );
        }
        source
    }

    /// A table of label names to string values.
    pub fn labels(&self, name: &str, reserved: &[&str]) -> Vec<(String, String)> {
        let Some(t) = self.table(name) else {
            return Vec::new();
        };
        let mut labels = Vec::new();
        for key in t.keys() {
            if let Some(reason) = label_name_problem(&key, reserved) {
                t.problem(&key, &reason);
            }
            if let Some(value) = t.string(&key) {
                labels.push((key, value));
            }
        }
        labels.sort();
        labels
    }

    /// A nested table.
    pub fn table(&self, name: &str) -> Option<TableReader<'a>> {
        let at = self.table.get(name).and_then(|l| l.at);
        match self.get(name)? {
            Node::Table(t) => Some(Self::new(self.problems, self.key(name), t, at)),
            other => {
                self.wrong_type(name, "a table", other);
                None
            }
        }
    }

    /// An array of tables (`[[name]]`), each read at `name[i]`.
    pub fn array_of_tables(&self, name: &str) -> Option<Vec<TableReader<'a>>> {
        let value = self.get(name)?;
        let Node::Array(items) = value else {
            self.wrong_type(name, "an array of tables", value);
            return None;
        };
        let items: &[Located] = items;
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("{}[{i}]", self.key(name));
            match &item.node {
                Node::Table(t) => out.push(Self::new(self.problems, path, t, item.at)),
                other => self.problems.add(
                    item.at,
                    &path,
                    format!("expected a table, found {}", other.kind()),
                ),
            }
        }
        Some(out)
    }

    /// Reports every key of this table that no one asked for.
    pub fn finish(&self) {
        let used = self.used.borrow();
        for (key, value) in self.table {
            if !used.contains(key) {
                self.problems
                    .add(value.at, &self.key(key), "unknown key".to_string());
            }
        }
    }
}

/// The longest duration any key takes; far beyond any sensible setting,
/// and far from overflowing the clock arithmetic.
const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Whether `name` can be an environment variable's name.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn label_name_problem(name: &str, reserved: &[&str]) -> Option<String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Some("not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)".into());
    }
    if name.starts_with("__") {
        return Some("label names starting with __ are reserved by Prometheus".into());
    }
    if reserved.contains(&name) {
        return Some(format!("{name} is a label the exporter sets itself"));
    }
    None
}

/// Parses "4MiB", "512 KiB", "2MB", "1024" or "1024B".
fn parse_byte_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// The largest size a size key takes.
const MAX_BYTE_SIZE: u64 = 1 << 30;
