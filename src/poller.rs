//! The background poller: one task per target, each on its own schedule,
//! at most `poll.concurrency` polls at a time, never two polls of one
//! project at once. After each poll a task renders its project and hands the
//! result to the [`Snapshot`]; nothing here ever waits for a scrape.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rand::Rng;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::DecodeWarning;
use crate::auth::{AuthContext, Authenticator};
use crate::client::{ApiClient, PollError};
use crate::client_pool::{ClientKey, ClientPool, PoolError};
use crate::config::{Config, CredentialSpec, PollSettings, Target};
use crate::project::{ProjectState, Reason};
use crate::snapshot::{Snapshot, TargetKey};

/// How many decoding warnings of one answer are logged one by one.
const MAX_WARNINGS_LOGGED: usize = 10;

/// What every project task shares.
struct Shared {
    settings: PollSettings,
    permits: Arc<Semaphore>,
    snapshot: Arc<Snapshot>,
}

struct Running {
    target: Target,
    credential: Option<CredentialSpec>,
    client_key: ClientKey,
    cancel: CancellationToken,
    handle: JoinHandle<()>,
    /// Cleared, under its lock, before a changed target's series are
    /// dropped, so that the old task can never publish them again.
    live: Arc<std::sync::Mutex<bool>>,
}

impl Running {
    /// Stops the task; once this returns it publishes nothing more.
    fn stop(&self) {
        self.cancel.cancel();
        *self.live.lock().unwrap_or_else(|e| e.into_inner()) = false;
    }
}

/// Runs and stops project tasks as the configuration says.
pub struct Poller {
    snapshot: Arc<Snapshot>,
    auth: AuthContext,
    shared: Option<Arc<Shared>>,
    running: HashMap<TargetKey, Running>,
    cancel: CancellationToken,
}

/// The identity of a target: the same project on the same endpoint.
pub fn target_key(t: &Target) -> TargetKey {
    (t.project_id.clone(), t.endpoint.clone())
}

impl Poller {
    /// A poller with no targets yet; `cancel` stops every task.
    pub fn new(snapshot: Arc<Snapshot>, auth: AuthContext, cancel: CancellationToken) -> Self {
        Poller {
            snapshot,
            auth,
            shared: None,
            running: HashMap::new(),
            cancel,
        }
    }

    /// Makes the running tasks match `config`: targets that are gone stop
    /// and lose their series, new or changed ones start, unchanged ones keep
    /// running undisturbed. When the poll settings change, every task
    /// restarts with them, keeping its series. A CA file
    /// that cannot be used refuses the whole configuration.
    pub fn apply(&mut self, config: &Config) -> Result<(), PoolError> {
        let pool = ClientPool::build(config)?;
        let settings_changed = self
            .shared
            .as_ref()
            .is_none_or(|s| s.settings != config.poll);
        if settings_changed {
            self.shared = Some(Arc::new(Shared {
                settings: config.poll.clone(),
                permits: Arc::new(Semaphore::new(config.poll.concurrency)),
                snapshot: self.snapshot.clone(),
            }));
        }
        let shared = self.shared.clone().expect("set just above");

        let keys: Vec<TargetKey> = config.targets.iter().map(target_key).collect();
        self.snapshot.set_targets(&keys);
        let mut keep = HashMap::new();
        for target in &config.targets {
            let key = target_key(target);
            let credential = target
                .credentials
                .as_ref()
                .and_then(|n| config.credentials.get(n))
                .cloned();
            let (client_key, client) = pool.client_for(target).expect("the pool has every target");
            match self.running.remove(&key) {
                Some(r)
                    if !settings_changed
                        && r.target == *target
                        && r.credential == credential
                        && r.client_key == client_key =>
                {
                    keep.insert(key, r);
                }
                old => {
                    // A target whose series read the same (its region and
                    // labels did not change, only the poll settings, its
                    // credentials or its TLS choices) keeps its series,
                    // counters and last answer; one whose labels changed
                    // loses its old series now.
                    let same_series = old.as_ref().is_some_and(|o| {
                        o.target.region == target.region && o.target.labels == target.labels
                    });
                    let mut carried = None;
                    if let Some(old) = old {
                        // Stopped first, so that what is carried is final.
                        old.stop();
                        if same_series {
                            carried = self.snapshot.state_of(&key);
                        } else {
                            self.snapshot.remove(&key);
                        }
                    }
                    let client = (client_key, client);
                    let r = self.start(&shared, target.clone(), credential, client, carried);
                    keep.insert(key, r);
                }
            }
        }
        for (_, gone) in self.running.drain() {
            gone.stop();
        }
        self.running = keep;
        Ok(())
    }

    fn start(
        &self,
        shared: &Arc<Shared>,
        target: Target,
        credential: Option<CredentialSpec>,
        (client_key, client): (ClientKey, ApiClient),
        carried: Option<Arc<ProjectState>>,
    ) -> Running {
        let cancel = self.cancel.child_token();
        let live = Arc::new(std::sync::Mutex::new(true));
        // IAM is reached with the target's TLS choices, not the defaults.
        let ctx = self.auth.with_http(client.http().clone());
        let task = ProjectTask {
            shared: shared.clone(),
            client,
            live: live.clone(),
            auth: Authenticator::new(credential.as_ref(), &target, &ctx),
            state: carried.map_or_else(|| ProjectState::new(&target), |s| (*s).clone()),
            key: target_key(&target),
            target: target.clone(),
        };
        let handle = tokio::spawn(task.run(cancel.clone()));
        Running {
            target,
            credential,
            client_key,
            cancel,
            handle,
            live,
        }
    }

    /// Stops every task and waits for them to end.
    pub async fn shutdown(&mut self) {
        for (_, r) in self.running.drain() {
            r.cancel.cancel();
            let _ = r.handle.await;
        }
    }

    /// How many project tasks run.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// Whether no project task runs.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }
}

struct ProjectTask {
    shared: Arc<Shared>,
    client: ApiClient,
    live: Arc<std::sync::Mutex<bool>>,
    auth: Result<Authenticator, crate::auth::AuthError>,
    state: ProjectState,
    key: TargetKey,
    target: Target,
}

impl ProjectTask {
    async fn run(mut self, cancel: CancellationToken) {
        let interval = self.shared.settings.interval;
        // The first poll comes soon; a little jitter keeps a large fleet
        // from asking all at the same instant.
        let mut due = Instant::now() + jitter(interval.min(Duration::from_secs(10)) / 10);
        loop {
            let wake = self.next_wake(due);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
            if self
                .state
                .expire_stale(SystemTime::now(), self.shared.settings.stale_after)
            {
                tracing::info!(project_id = %self.target.project_id, region = %self.target.region, "last good answer is stale, instance series dropped");
                self.publish();
            }
            if Instant::now() < due {
                continue;
            }
            let permit = tokio::select! {
                _ = cancel.cancelled() => return,
                p = self.shared.permits.clone().acquire_owned() => p,
            };
            let Ok(_permit) = permit else { return };
            // The poll's future (sign-in, HTTP, decoding) is several KiB; on
            // the heap only while a poll runs, it leaves each waiting task of
            // a large fleet small.
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = Box::pin(self.poll_once()) => {}
            }
            due = next_due(due, interval, Instant::now());
        }
    }

    /// The next instant worth waking for: the poll, or the staleness limit.
    fn next_wake(&self, due: Instant) -> Instant {
        let stale = self
            .state
            .stale_at(self.shared.settings.stale_after)
            .filter(|_| self.state.up == Some(false))
            .and_then(|t| t.duration_since(SystemTime::now()).ok())
            .map(|d| Instant::now() + d);
        stale.map_or(due, |s| s.min(due))
    }

    async fn poll_once(&mut self) {
        let started = Instant::now();
        let deadline = self.shared.settings.deadline;
        let outcome = match &self.auth {
            Err(e) => Err(PollError {
                reason: Reason::Auth,
                status: None,
                error_code: None,
                detail: format!("cannot sign in: {e}"),
            }),
            Ok(auth) => {
                let poll = self.client.poll(
                    &self.target,
                    auth,
                    &self.shared.settings,
                    &mut self.state,
                    started + deadline,
                );
                match tokio::time::timeout(deadline, poll).await {
                    Ok(r) => r,
                    Err(_) => Err(PollError {
                        reason: Reason::Timeout,
                        status: None,
                        error_code: None,
                        detail: format!(
                            "poll did not finish within the deadline of {}",
                            humantime::format_duration(deadline)
                        ),
                    }),
                }
            }
        };
        let took = started.elapsed();
        if let Ok(auth) = &self.auth {
            self.state.credential_expiry = auth.expiry(&self.target.project_id);
        }
        match outcome {
            Ok(answer) => {
                self.log_warnings(&answer.warnings);
                tracing::debug!(project_id = %self.target.project_id, region = %self.target.region, instances = answer.instances.len(), took_ms = took.as_millis() as u64, "poll succeeded");
                for i in &answer.instances {
                    for s in &i.steps {
                        tracing::debug!(project_id = %self.target.project_id, instance_id = %i.instance_id, step_name = %s.step_name, result_code = %s.result_code, msg = %s.msg, "upgrade step");
                    }
                }
                self.state
                    .record_success(SystemTime::now(), took, answer.instances);
            }
            Err(e) => {
                tracing::warn!(
                    project_id = %self.target.project_id,
                    region = %self.target.region,
                    reason = e.reason.as_str(),
                    status = e.status.map(|s| s.to_string()).unwrap_or_default(),
                    error_code = e.error_code.as_deref().unwrap_or(""),
                    error = %e.detail,
                    "poll failed"
                );
                self.state.record_failure(took, e.reason);
                self.state
                    .expire_stale(SystemTime::now(), self.shared.settings.stale_after);
            }
        }
        self.publish();
    }

    fn log_warnings(&self, warnings: &[DecodeWarning]) {
        // A broken answer may bend thousands of entries: log a few, count the rest.
        for w in warnings.iter().take(MAX_WARNINGS_LOGGED) {
            tracing::warn!(project_id = %self.target.project_id, region = %self.target.region, warning = %w, "answer read leniently");
        }
        if let Some(more) = warnings
            .len()
            .checked_sub(MAX_WARNINGS_LOGGED)
            .filter(|n| *n > 0)
        {
            tracing::warn!(project_id = %self.target.project_id, region = %self.target.region, more, "more decoding warnings not logged");
        }
    }

    fn publish(&self) {
        let polled = self.state.up.is_some();
        let state = Arc::new(self.state.clone());
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if *live {
            self.shared.snapshot.update(&self.key, state, polled);
        }
    }
}

/// The poll after one due at `due`: one interval later with a little jitter,
/// or one interval from now when the poll overran.
fn next_due(due: Instant, interval: Duration, now: Instant) -> Instant {
    // Configuration bounds the interval to 30 days; the checked sums only
    // keep a far-off clock from panicking.
    let far = || now.checked_add(interval).unwrap_or(now);
    match due.checked_add(interval + jitter(interval / 50)) {
        Some(next) if next > now => next,
        _ => far(),
    }
}

/// A random duration in `[0, max)`.
fn jitter(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    rand::thread_rng().gen_range(Duration::ZERO..max)
}
