//! The configuration file: what it may say, and how it is checked.
//!
//! Loading has two phases, as in [`raw`]: the TOML text becomes a tree that
//! remembers lines, then [`load_str`] walks that tree, collects every problem
//! (unknown keys, bad values, dangling references, duplicates) and either
//! returns a [`Config`] or all the problems at once as a [`ConfigError`].

pub mod perms;
pub mod raw;
mod reader;
pub mod sdk_env;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::secret::SecretSource;
use reader::{Problems, TableReader};

/// Label names that the exporter sets itself; a target may not redefine them.
pub const RESERVED_LABELS: &[&str] = &[
    "project_id",
    "region",
    "instance_id",
    "current_version",
    "upgrade_version",
    "step",
    "step_name",
    "result_code",
    "code",
    "reason",
    "kind",
    "outcome",
    "job",
    "instance",
];

/// A whole, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// How projects are polled.
    pub poll: PollSettings,
    /// Named credentials that targets refer to.
    pub credentials: BTreeMap<String, CredentialSpec>,
    /// The projects to poll, in file order.
    pub targets: Vec<Target>,
}

/// The `[poll]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct PollSettings {
    /// How often each project is polled.
    pub interval: Duration,
    /// The limit for one HTTP request, headers and body.
    pub timeout: Duration,
    /// The limit for opening a connection.
    pub connect_timeout: Duration,
    /// The limit for a whole poll of a project, retries included.
    pub deadline: Duration,
    /// How many projects are polled at once.
    pub concurrency: usize,
    /// How long the last good answer of a failing project is still served.
    pub stale_after: Duration,
    /// How many times a failed request that may pass is tried again.
    pub retries: u32,
    /// Answers larger than this many bytes are cut off and count as failures.
    pub max_body_bytes: u64,
    /// Requests per second allowed to one endpoint, all projects together.
    pub rate_limit: Option<f64>,
    /// A PEM file of extra CA certificates trusted for every endpoint.
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification (never in production).
    pub insecure_skip_verify: bool,
    /// Whether `HTTPS_PROXY` and the like apply. Not a key of the file: it
    /// is always on there, and off only for the demo, whose simulator sits
    /// on loopback where no proxy can reach it.
    pub proxy_from_env: bool,
}

impl Default for PollSettings {
    fn default() -> Self {
        PollSettings {
            interval: Duration::from_secs(300),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            deadline: Duration::from_secs(120),
            concurrency: 8,
            stale_after: Duration::from_secs(900),
            retries: 2,
            max_body_bytes: 4 * 1024 * 1024,
            rate_limit: None,
            ca_file: None,
            insecure_skip_verify: false,
            proxy_from_env: true,
        }
    }
}

/// One `[credentials.NAME]` table: how requests of the targets using it sign in.
#[derive(Debug, Clone, PartialEq)]
pub enum CredentialSpec {
    /// A ready IAM token sent as `X-Auth-Token`.
    Token {
        /// Where the token is read from.
        token: SecretSource,
    },
    /// A permanent or temporary access key pair; requests are signed.
    AkSk {
        /// The access key id (not a secret).
        ak: String,
        /// Where the secret key is read from.
        sk: SecretSource,
        /// Where the security token of temporary credentials is read from.
        security_token: Option<SecretSource>,
    },
    /// An IAM user's password, exchanged for project-scoped tokens.
    Password {
        /// The account (domain) name.
        domain: String,
        /// The IAM user name.
        user: String,
        /// Where the password is read from.
        password: SecretSource,
        /// The IAM endpoint; by default the one of the target's region.
        iam_endpoint: Option<String>,
    },
    /// Temporary credentials of the ECS agency, from the metadata service.
    EcsMetadata {
        /// The metadata service's base URL.
        metadata_endpoint: String,
    },
    /// The `HUAWEICLOUD_SDK_*` environment variables the official SDKs read.
    SdkEnv,
}

/// The metadata service every ECS reaches.
pub const DEFAULT_METADATA_ENDPOINT: &str = "http://169.254.169.254";

/// One `[[targets]]` entry: a project in a region.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The project id, as in the API path.
    pub project_id: String,
    /// The region, a label of every series and the default endpoint's name.
    pub region: String,
    /// The DBSS endpoint, without a trailing slash.
    pub endpoint: String,
    /// The name of the credentials used; `None` means the SDKs' default chain.
    pub credentials: Option<String>,
    /// Extra labels added to every series of this target, sorted by name.
    pub labels: Vec<(String, String)>,
    /// A PEM file of extra CA certificates for this endpoint.
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification for this endpoint.
    pub insecure_skip_verify: bool,
}

impl Target {
    /// The endpoint the public cloud serves DBSS on in `region`.
    pub fn default_endpoint(region: &str) -> String {
        format!("https://dbss.{region}.myhuaweicloud.com")
    }
}

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The line the problem is on, where known.
    pub line: Option<usize>,
    /// The key, in dotted form: `poll.interval`, `targets[2].project_id`.
    pub key: String,
    /// What is wrong, in lower case.
    pub reason: String,
}

/// A configuration refused, with every problem found in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, as named on the command line.
    pub file: String,
    /// Every problem, in the order met.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match p.line {
                Some(line) => write!(f, "{}:{}: {}: {}", self.file, line, p.key, p.reason)?,
                None => write!(f, "{}: {}: {}", self.file, p.key, p.reason)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Reads and validates the file at `path`.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: name.clone(),
        problems: vec![Problem {
            line: None,
            key: "(file)".into(),
            reason: format!("cannot read: {e}"),
        }],
    })?;
    let config = load_str(&text, &name)?;
    perms::warn_open_secret_files(&config);
    perms::warn_unreadable_secrets(&config);
    Ok(config)
}

/// Validates configuration text; `file` names it in messages.
pub fn load_str(text: &str, file: &str) -> Result<Config, ConfigError> {
    load_str_with_env(text, file, std::env::var(sdk_env::PROJECT_ID_ENV).ok())
}

/// Validates configuration text, with `env_project_id` standing for
/// `HUAWEICLOUD_SDK_PROJECT_ID`.
pub fn load_str_with_env(
    text: &str,
    file: &str,
    env_project_id: Option<String>,
) -> Result<Config, ConfigError> {
    let problems = Problems::new(file, text);
    let root = match raw::parse(text) {
        Ok(root) => root,
        Err((msg, at)) => {
            problems.add(at, "(syntax)", msg.trim_end().replace('\n', "; "));
            return Err(problems.into_error());
        }
    };

    let top = TableReader::root(&problems, &root);
    let poll = read_poll(&top);
    let credentials = read_credentials(&top);
    let defined = defined_credentials(&root);
    let targets = read_targets(&top, &defined, &credentials, env_project_id);
    top.finish();

    match problems.is_empty() {
        true => Ok(Config {
            poll,
            credentials,
            targets,
        }),
        false => Err(problems.into_error()),
    }
}

fn read_poll(top: &TableReader) -> PollSettings {
    let mut poll = PollSettings::default();
    let Some(t) = top.table("poll") else {
        return poll;
    };
    let defaults = PollSettings::default();
    poll.interval = t.duration("interval").unwrap_or(defaults.interval);
    if poll.interval < Duration::from_secs(1) {
        t.problem("interval", "must be at least 1s");
    }
    let timeout = t.duration("timeout");
    poll.connect_timeout = t
        .duration("connect_timeout")
        .unwrap_or(defaults.connect_timeout);
    let deadline = t.duration("deadline");
    poll.concurrency = t.integer("concurrency", 1, 100_000).unwrap_or(8) as usize;
    poll.stale_after = t.duration("stale_after").unwrap_or(defaults.stale_after);
    poll.retries = t.integer("retries", 0, 10).unwrap_or(2) as u32;
    poll.max_body_bytes = t
        .byte_size("max_body_size")
        .unwrap_or(defaults.max_body_bytes);
    poll.rate_limit = t.rate("rate_limit");
    poll.ca_file = t.ca_file("ca_file");
    poll.insecure_skip_verify = t.boolean("insecure_skip_verify").unwrap_or(false);

    // The deadline must leave room before the next poll is due.
    poll.deadline = match deadline {
        Some(d) if d >= poll.interval => {
            t.problem("deadline", "must be shorter than poll.interval");
            d
        }
        Some(d) => d,
        None => defaults.deadline.min(poll.interval.mul_f64(0.8)),
    };
    // A timeout left at its default shrinks to fit a short deadline.
    poll.timeout = match timeout {
        Some(d) if d > poll.deadline => {
            t.problem("timeout", "must not be longer than poll.deadline");
            d
        }
        Some(d) => d,
        None => defaults.timeout.min(poll.deadline),
    };
    t.finish();
    poll
}

fn read_credentials(top: &TableReader) -> BTreeMap<String, CredentialSpec> {
    let mut out = BTreeMap::new();
    let Some(all) = top.table("credentials") else {
        return out;
    };
    for name in all.keys() {
        let Some(t) = all.table(&name) else { continue };
        // Without a known type the other keys cannot be judged.
        if let Some(spec) = read_credential(&t) {
            out.insert(name, spec);
            t.finish();
        }
    }
    all.finish();
    out
}

/// The names of every `[credentials.NAME]` table, valid or not, so that a
/// target naming a broken one is not also reported as dangling.
fn defined_credentials(root: &raw::Table) -> BTreeSet<String> {
    match root.get("credentials").map(|c| &c.node) {
        Some(raw::Node::Table(t)) => t.keys().cloned().collect(),
        _ => BTreeSet::new(),
    }
}

fn read_credential(t: &TableReader) -> Option<CredentialSpec> {
    let kind = t.required_string("type")?;
    // Every key is read before any is found missing, so that all problems
    // of the table are reported at once.
    let spec = match kind.as_str() {
        "token" => CredentialSpec::Token {
            token: t.secret("token")?,
        },
        "aksk" => {
            let (ak, sk) = (t.required_text("ak"), t.secret("sk"));
            let security_token = t.optional_secret("security_token");
            CredentialSpec::AkSk {
                ak: ak?,
                sk: sk?,
                security_token,
            }
        }
        "password" => read_password(t)?,
        "ecs_metadata" => CredentialSpec::EcsMetadata {
            metadata_endpoint: t
                .url("metadata_endpoint")
                .unwrap_or_else(|| DEFAULT_METADATA_ENDPOINT.to_string()),
        },
        "sdk_env" => CredentialSpec::SdkEnv,
        other => {
            t.problem(
                "type",
                &format!(
                    "unknown credential type {other:?} (expected token, aksk, password, ecs_metadata or sdk_env)"
                ),
            );
            return None;
        }
    };
    Some(spec)
}

fn read_password(t: &TableReader) -> Option<CredentialSpec> {
    let (domain, user) = (t.required_text("domain"), t.required_text("user"));
    let password = t.secret("password");
    let iam_endpoint = t.url("iam_endpoint");
    if iam_endpoint
        .as_deref()
        .is_some_and(|u| u.starts_with("http://"))
    {
        tracing::warn!(
            endpoint = iam_endpoint.as_deref().unwrap_or(""),
            "iam_endpoint is plain http: the password crosses the network unencrypted"
        );
    }
    Some(CredentialSpec::Password {
        domain: domain?,
        user: user?,
        password: password?,
        iam_endpoint,
    })
}

fn read_targets(
    top: &TableReader,
    defined: &BTreeSet<String>,
    credentials: &BTreeMap<String, CredentialSpec>,
    env_project_id: Option<String>,
) -> Vec<Target> {
    let mut targets = Vec::new();
    let Some(list) = top.array_of_tables("targets") else {
        top.missing("targets", "at least one [[targets]] entry is required");
        return targets;
    };
    if list.is_empty() {
        top.problem("targets", "at least one [[targets]] entry is required");
    }
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    let mut series: HashMap<Vec<(String, String)>, usize> = HashMap::new();
    for (i, t) in list.iter().enumerate() {
        if let Some(target) = read_target(t, defined, credentials, env_project_id.clone()) {
            let key = (target.project_id.clone(), target.endpoint.clone());
            if let Some(first) = seen.get(&key) {
                t.problem(
                    "project_id",
                    &format!(
                        "duplicate of targets[{first}]: same project_id {:?} and endpoint {:?}",
                        key.0, key.1
                    ),
                );
            } else if let Some(first) = series.get(&series_labels(&target)) {
                // Same labels on every series: the page would repeat them.
                t.problem(
                    "labels",
                    &format!("targets[{first}] has the same project_id, region and labels: their series would collide; tell them apart with a label"),
                );
            }
            seen.entry(key).or_insert(i);
            series.entry(series_labels(&target)).or_insert(i);
            targets.push(target);
        }
        t.finish();
    }
    targets
}

fn read_target(
    t: &TableReader,
    defined: &BTreeSet<String>,
    credentials: &BTreeMap<String, CredentialSpec>,
    env_project_id: Option<String>,
) -> Option<Target> {
    let cred = t.string("credentials");
    let fallback = sdk_env::Fallback::of(cred.as_deref(), credentials);
    let project_id = sdk_env::project_id(t, fallback, env_project_id);
    if let Some(id) = &project_id {
        check_project_id(t, id);
    }
    let region = t.required_string("region");
    if let Some(r) = &region {
        if r.is_empty() || !r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            t.problem("region", "must be a region name such as cn-north-4");
        }
    }
    let endpoint = t.url("endpoint");
    if let Some(name) = &cred {
        if !defined.contains(name) {
            t.problem(
                "credentials",
                &format!("no [credentials.{name}] is defined"),
            );
        }
    }
    let labels = t.labels("labels", RESERVED_LABELS);
    let ca_file = t.ca_file("ca_file");
    let insecure_skip_verify = t.boolean("insecure_skip_verify").unwrap_or(false);

    let region = region?;
    Some(Target {
        project_id: project_id?,
        endpoint: endpoint.unwrap_or_else(|| Target::default_endpoint(&region)),
        region,
        credentials: cred,
        labels,
        ca_file,
        insecure_skip_verify,
    })
}

/// The labels that every series of `target` carries.
fn series_labels(target: &Target) -> Vec<(String, String)> {
    let mut labels = target.labels.clone();
    labels.push(("project_id".into(), target.project_id.clone()));
    labels.push(("region".into(), target.region.clone()));
    labels.sort();
    labels
}

fn check_project_id(t: &TableReader, id: &str) {
    let ok_chars = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if id.is_empty() || id.len() > 64 || !ok_chars {
        t.problem(
            "project_id",
            "must be 1 to 64 letters, digits, '-' or '_' (Huawei Cloud project ids are 32 hex characters)",
        );
    }
}

#[cfg(test)]
#[cfg(test)]
mod tests;
