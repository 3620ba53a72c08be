//! What the exporter knows about one project: its last good answer, whether
//! its last poll worked, and its request and error counters. The poller owns
//! one [`ProjectState`] per target and renders it after every change.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::api::Instance;
use crate::config::Target;
use crate::render::{Family, ProjectLabels, SeriesWriter};

/// Why a poll failed: the fixed set of `reason` label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// A request or the whole poll ran out of time.
    Timeout,
    /// No connection could be made or it broke.
    Connect,
    /// The API answered 429, or 503 with Retry-After.
    Throttled,
    /// Another 4xx answer (400, 403, 404, ...).
    Http4xx,
    /// A 5xx answer.
    Http5xx,
    /// Signing in failed, or the API refused the credentials (401).
    Auth,
    /// The answer could not be read.
    Decode,
    /// The answer was larger than `poll.max_body_size`.
    TooLarge,
}

impl Reason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Timeout => "timeout",
            Reason::Connect => "connect",
            Reason::Throttled => "throttled",
            Reason::Http4xx => "http_4xx",
            Reason::Http5xx => "http_5xx",
            Reason::Auth => "auth",
            Reason::Decode => "decode",
            Reason::TooLarge => "too_large",
        }
    }
}

/// The last answer that could be read, and when it came.
#[derive(Debug, Clone)]
pub struct LastGood {
    /// When the poll that got it succeeded.
    pub at: SystemTime,
    /// The instances it listed, shared with published copies of the state.
    pub instances: Arc<[Instance]>,
}

/// One project's state, as the poller keeps it.
#[derive(Debug, Clone)]
pub struct ProjectState {
    labels: ProjectLabels,
    /// The last good answer, until it goes stale.
    pub last_good: Option<LastGood>,
    /// Whether the last poll succeeded; `None` before the first poll ends.
    pub up: Option<bool>,
    /// When a poll last succeeded.
    pub last_success: Option<SystemTime>,
    /// How long the last poll took.
    pub last_duration: Option<Duration>,
    /// Requests made, by status code label.
    pub requests: BTreeMap<String, u64>,
    /// Failed polls, by reason.
    pub errors: BTreeMap<Reason, u64>,
    /// Requests that were retries.
    pub retries: u64,
    /// When the credential in use expires, where known.
    pub credential_expiry: Option<SystemTime>,
}

impl ProjectState {
    /// A project not polled yet.
    pub fn new(target: &Target) -> Self {
        ProjectState {
            labels: ProjectLabels::new(&target.project_id, &target.region, &target.labels),
            last_good: None,
            up: None,
            last_success: None,
            last_duration: None,
            requests: BTreeMap::new(),
            errors: BTreeMap::new(),
            retries: 0,
            credential_expiry: None,
        }
    }

    /// Records a poll that got a readable answer; it replaces the old one whole.
    pub fn record_success(&mut self, at: SystemTime, took: Duration, instances: Vec<Instance>) {
        self.up = Some(true);
        self.last_success = Some(at);
        self.last_duration = Some(took);
        self.last_good = Some(LastGood {
            at,
            instances: instances.into(),
        });
    }

    /// Records a failed poll; the last good answer stays until it is stale.
    pub fn record_failure(&mut self, took: Duration, reason: Reason) {
        self.up = Some(false);
        self.last_duration = Some(took);
        *self.errors.entry(reason).or_default() += 1;
    }

    /// Counts one request that got `code` (an HTTP status, or "error").
    pub fn count_request(&mut self, code: &str) {
        match self.requests.get_mut(code) {
            Some(n) => *n += 1,
            None => {
                self.requests.insert(code.to_string(), 1);
            }
        }
    }

    /// When the last good answer goes stale, if there is one to drop.
    pub fn stale_at(&self, stale_after: Duration) -> Option<SystemTime> {
        self.last_good.as_ref().map(|g| g.at + stale_after)
    }

    /// Drops the last good answer if it is older than `stale_after` and the
    /// project is failing; returns whether anything was dropped.
    pub fn expire_stale(&mut self, now: SystemTime, stale_after: Duration) -> bool {
        let stale = self.up == Some(false) && self.stale_at(stale_after).is_some_and(|t| t <= now);
        if stale {
            self.last_good = None;
        }
        stale
    }

    /// Writes the project's samples of `family` to `out`.
    pub fn write_family(&self, family: Family, out: &mut String) {
        let mut w = SeriesWriter::new(&self.labels, family, out);
        let instances: &[Instance] = self.last_good.as_ref().map_or(&[], |g| &g.instances);
        match family {
            Family::UpgradeStatus
            | Family::UpgradeCapacity
            | Family::UpgradeSteps
            | Family::StepInfo
            | Family::StepTimestamp => write_instances(&mut w, family, instances),
            _ => self.write_health(&mut w, family),
        }
    }

    fn write_health(&self, w: &mut SeriesWriter, family: Family) {
        let gauge = |v: Option<f64>| v.into_iter();
        let values = match family {
            Family::Up => gauge(self.up.map(|up| if up { 1.0 } else { 0.0 })),
            Family::Instances => gauge(self.last_good.as_ref().map(|g| g.instances.len() as f64)),
            Family::LastPollSuccess => gauge(self.last_success.map(unix_seconds)),
            Family::PollDuration => gauge(self.last_duration.map(|d| d.as_secs_f64())),
            Family::ApiRetries => gauge(self.up.map(|_| self.retries as f64)),
            Family::CredentialsExpiry => gauge(self.credential_expiry.map(unix_seconds)),
            Family::ApiRequests => {
                for (code, n) in &self.requests {
                    w.sample(&[("code", code)], *n as f64);
                }
                return;
            }
            Family::PollErrors => {
                for (reason, n) in &self.errors {
                    w.sample(&[("reason", reason.as_str())], *n as f64);
                }
                return;
            }
            _ => return,
        };
        for v in values {
            w.sample(&[], v);
        }
    }
}

fn write_instances(w: &mut SeriesWriter, family: Family, instances: &[Instance]) {
    for i in instances {
        let id = i.instance_id.as_str();
        match family {
            Family::UpgradeStatus => {
                if let Some(status) = i.status {
                    let versions = [
                        ("current_version", i.current_version.as_str()),
                        ("upgrade_version", &i.upgrade_version),
                    ];
                    w.sample(&[("instance_id", id), versions[0], versions[1]], status);
                }
            }
            Family::UpgradeCapacity => {
                if let Some(total) = i.total {
                    w.sample(&[("instance_id", id)], total);
                }
            }
            Family::UpgradeSteps => w.sample(&[("instance_id", id)], i.steps.len() as f64),
            _ => write_steps(w, family, i),
        }
    }
}

fn write_steps(w: &mut SeriesWriter, family: Family, i: &Instance) {
    for (n, step) in i.steps.iter().enumerate() {
        let pos = (n + 1).to_string();
        let id = ("instance_id", i.instance_id.as_str());
        let name = ("step_name", step.step_name.as_str());
        match (family, step.time) {
            (Family::StepInfo, _) => {
                let code = ("result_code", step.result_code.as_str());
                w.sample(&[id, ("step", &pos), name, code], 1.0);
            }
            (Family::StepTimestamp, Some(time)) => w.sample(&[id, ("step", &pos), name], time),
            _ => {}
        }
    }
}

/// Seconds since the Unix epoch, with fractions.
pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
