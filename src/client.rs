//! One poll of one project: the HTTP request to the upgrade-status API,
//! with its credentials, and the answer read into instances or a
//! [`PollError`] that says exactly what went wrong.

use std::time::Duration;

use reqwest::StatusCode;

use crate::api::{self, UpgradeStatus};
use crate::auth::Authenticator;
use crate::config::{PollSettings, Target};
use crate::project::{ProjectState, Reason};

/// Why a poll failed, with what the operator needs to act on it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{detail}")]
pub struct PollError {
    /// The reason label of `dbss_poll_errors_total`.
    pub reason: Reason,
    /// The HTTP status, when the API answered.
    pub status: Option<u16>,
    /// The API's error code, when its body had one.
    pub error_code: Option<String>,
    /// A one-line description, free of secrets and of whole bodies.
    pub detail: String,
}

impl PollError {
    fn new(reason: Reason, detail: impl Into<String>) -> Self {
        PollError {
            reason,
            status: None,
            error_code: None,
            detail: detail.into(),
        }
    }
}

/// The HTTP client shared by all polls.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
}

/// The User-Agent of every request.
pub const USER_AGENT: &str = concat!("dbss-exporter/", env!("CARGO_PKG_VERSION"));

impl ApiClient {
    /// A client with the connect timeout of `settings` and the default
    /// trust store.
    pub fn new(settings: &PollSettings) -> Result<Self, reqwest::Error> {
        Self::from_builder(Self::builder(settings))
    }

    /// The HTTP client builder with what every client shares; the
    /// [`ClientPool`](crate::client_pool::ClientPool) adds the TLS options.
    pub fn builder(settings: &PollSettings) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(settings.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
    }

    /// The underlying HTTP client, shared with sign-in calls.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A client made by `builder`.
    pub fn from_builder(builder: reqwest::ClientBuilder) -> Result<Self, reqwest::Error> {
        Ok(ApiClient {
            http: builder.build()?,
        })
    }

    /// Polls `target` once, counting its requests in `state`.
    pub async fn poll(
        &self,
        target: &Target,
        auth: &Authenticator,
        settings: &PollSettings,
        state: &mut ProjectState,
    ) -> Result<UpgradeStatus, PollError> {
        let mut renewed = false;
        loop {
            let outcome = self.attempt(target, auth, settings, state).await;
            match outcome {
                // A clock that is off makes every signature fail; no renewal helps.
                Err(e) if e.status == Some(401) && !renewed && !e.is_clock_skew() => {
                    // A token may have died early: renew once, try once more.
                    renewed = true;
                    if !auth.on_unauthorized(&target.project_id).await {
                        return Err(e);
                    }
                }
                other => return other,
            }
        }
    }

    async fn attempt(
        &self,
        target: &Target,
        auth: &Authenticator,
        settings: &PollSettings,
        state: &mut ProjectState,
    ) -> Result<UpgradeStatus, PollError> {
        let url = format!(
            "{}{}",
            target.endpoint,
            api::upgrade_status_path(&target.project_id)
        );
        let mut req = self
            .http
            .get(&url)
            .header("Content-Type", "application/json")
            .timeout(settings.timeout)
            .build()
            .map_err(|e| PollError::new(Reason::Connect, format!("cannot build request: {e}")))?;
        auth.authorize(&mut req, &target.project_id)
            .await
            .map_err(|e| PollError::new(Reason::Auth, format!("cannot sign in: {e}")))?;

        let resp = match self.http.execute(req).await {
            Ok(resp) => resp,
            Err(e) => {
                state.count_request("error");
                return Err(transport_error(&e));
            }
        };
        let status = resp.status();
        state.count_request(status.as_str());
        let body = read_body(resp, settings.max_body_bytes).await?;
        if status == StatusCode::OK {
            return api::decode(&body).map_err(|e| PollError::new(Reason::Decode, e.to_string()));
        }
        Err(status_error(status, &body))
    }
}

/// Reads the body, refusing more than `limit` bytes.
async fn read_body(mut resp: reqwest::Response, limit: u64) -> Result<Vec<u8>, PollError> {
    let too_large = || {
        PollError::new(
            Reason::TooLarge,
            format!("answer is larger than {limit} bytes"),
        )
    };
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() as u64 + chunk.len() as u64 > limit {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(transport_error(&e)),
        }
    }
}

/// Classifies a request that got no (complete) answer.
fn transport_error(e: &reqwest::Error) -> PollError {
    if e.is_timeout() {
        return PollError::new(Reason::Timeout, "request timed out");
    }
    let reason = if e.is_connect() {
        "cannot connect"
    } else {
        "connection failed"
    };
    PollError::new(Reason::Connect, format!("{reason}: {}", root_cause(e)))
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Classifies an answer other than 200, reading its error code if any.
fn status_error(status: StatusCode, body: &[u8]) -> PollError {
    let reason = match status.as_u16() {
        401 => Reason::Auth,
        429 => Reason::Throttled,
        500..=599 => Reason::Http5xx,
        _ => Reason::Http4xx,
    };
    let parsed = api::decode_error_body(body);
    let detail = match &parsed {
        Some(e) => format!("HTTP {}: {} {}", status.as_u16(), e.code, e.message),
        None => format!(
            "HTTP {} with a {}-byte body that is not a known error shape",
            status.as_u16(),
            body.len()
        ),
    };
    let mut error = PollError {
        reason,
        status: Some(status.as_u16()),
        error_code: parsed.map(|e| e.code),
        detail,
    };
    if error.is_clock_skew() {
        error.detail.push_str(CLOCK_ADVICE);
    }
    error
}

/// Added to the message of a request refused for its date.
const CLOCK_ADVICE: &str =
    " (clock skew: the local clock is more than 15 minutes off the cloud clock; sync it with NTP)";

impl PollError {
    /// Whether the API refused the request because this host's clock is off.
    pub fn is_clock_skew(&self) -> bool {
        self.status == Some(401)
            && crate::auth::is_clock_skew(self.error_code.as_deref(), &self.detail)
    }
}
