//! One poll of one project: the HTTP request to the upgrade-status API,
//! with its credentials, and the answer read into instances or a
//! [`PollError`] that says exactly what went wrong.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::StatusCode;

use crate::api::{self, UpgradeStatus};
use crate::auth::Authenticator;
use crate::config::{PollSettings, Target};
use crate::project::{ProjectState, Reason};
use crate::ratelimit::RateLimits;
use crate::retry;

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

/// The HTTP client shared by all polls, with the rate limits of every
/// endpoint.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    limits: Arc<RateLimits>,
}

/// A failed request, with the wait the server asked for, if any.
struct Failed {
    error: PollError,
    retry_after: Option<Duration>,
}

impl From<PollError> for Failed {
    fn from(error: PollError) -> Self {
        Failed {
            error,
            retry_after: None,
        }
    }
}

/// The User-Agent of every request.
pub const USER_AGENT: &str = concat!("dbss-exporter/", env!("CARGO_PKG_VERSION"));

impl ApiClient {
    /// A client with the connect timeout and rate limit of `settings`, and
    /// the default trust store.
    pub fn new(settings: &PollSettings) -> Result<Self, reqwest::Error> {
        Self::from_builder(
            Self::builder(settings),
            RateLimits::new(settings.rate_limit),
        )
    }

    /// The HTTP client builder with what every client shares; the
    /// [`ClientPool`](crate::client_pool::ClientPool) adds the TLS options.
    pub fn builder(settings: &PollSettings) -> reqwest::ClientBuilder {
        let builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(settings.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90));
        if settings.proxy_from_env {
            builder
        } else {
            builder.no_proxy()
        }
    }

    /// The underlying HTTP client, shared with sign-in calls.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A client made by `builder`, waiting on the shared `limits`.
    pub fn from_builder(
        builder: reqwest::ClientBuilder,
        limits: Arc<RateLimits>,
    ) -> Result<Self, reqwest::Error> {
        Ok(ApiClient {
            http: builder.build()?,
            limits,
        })
    }

    /// Polls `target` once, retrying what may pass until `deadline`, and
    /// counting its requests and retries in `state`.
    pub async fn poll(
        &self,
        target: &Target,
        auth: &Authenticator,
        settings: &PollSettings,
        state: &mut ProjectState,
        deadline: Instant,
    ) -> Result<UpgradeStatus, PollError> {
        let mut renewed = false;
        let mut retry = 0;
        loop {
            let failed = match self.attempt(target, auth, settings, state, deadline).await {
                Ok(answer) => return Ok(answer),
                Err(failed) => failed,
            };
            if failed.error.status == Some(401) {
                // A token may have died early: renew once, try once more. A
                // clock that is off makes every signature fail: no renewal helps.
                let skew = failed.error.is_clock_skew();
                if renewed || skew || !auth.on_unauthorized(&target.project_id).await {
                    return Err(failed.error);
                }
                renewed = true;
            } else {
                let wait = plan_retry(failed, retry, settings.retries, deadline)?;
                tracing::debug!(project_id = %target.project_id, retry = retry + 1, wait_ms = wait.as_millis() as u64, "retrying");
                tokio::time::sleep(wait).await;
                retry += 1;
            }
            state.retries += 1;
        }
    }

    /// One request: waits for the endpoint's rate limit, then signs, sends
    /// and reads the answer.
    async fn attempt(
        &self,
        target: &Target,
        auth: &Authenticator,
        settings: &PollSettings,
        state: &mut ProjectState,
        deadline: Instant,
    ) -> Result<UpgradeStatus, Failed> {
        self.limits
            .acquire(&target.endpoint, deadline)
            .await
            .map_err(|e| PollError::new(Reason::Timeout, e.to_string()))?;
        let timeout = settings
            .timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        let req = self.request(target, auth, timeout).await?;

        let resp = match self.http.execute(req).await {
            Ok(resp) => resp,
            Err(e) => {
                state.count_request("error");
                return Err(transport_error(&e).into());
            }
        };
        let status = resp.status();
        state.count_request(status.as_str());
        let retry_after = retry_after(&resp);
        let body = read_body(resp, settings.max_body_bytes).await?;
        if status == StatusCode::OK {
            return api::decode(&body)
                .map_err(|e| PollError::new(Reason::Decode, e.to_string()).into());
        }
        Err(Failed {
            error: status_error(status, &body, retry_after.is_some()),
            retry_after,
        })
    }

    /// Builds the request and signs it just before it is sent, so that a
    /// retry is freshly dated and signed.
    async fn request(
        &self,
        target: &Target,
        auth: &Authenticator,
        timeout: Duration,
    ) -> Result<reqwest::Request, PollError> {
        let url = format!(
            "{}{}",
            target.endpoint,
            api::upgrade_status_path(&target.project_id)
        );
        let mut req = self
            .http
            .get(&url)
            .header("Content-Type", "application/json")
            .timeout(timeout)
            .build()
            .map_err(|e| PollError::new(Reason::Connect, format!("cannot build request: {e}")))?;
        auth.authorize(&mut req, &target.project_id)
            .await
            .map_err(|e| PollError::new(Reason::Auth, format!("cannot sign in: {e}")))?;
        Ok(req)
    }
}

/// Decides whether retry number `retry` happens and after what wait; gives
/// back the error when it does not.
fn plan_retry(
    failed: Failed,
    retry: u32,
    budget: u32,
    deadline: Instant,
) -> Result<Duration, PollError> {
    let Failed {
        mut error,
        retry_after,
    } = failed;
    if retry >= budget || !retry::is_retryable(error.reason, error.status) {
        return Err(error);
    }
    let wait = retry::wait_before(retry, retry_after);
    if Instant::now() + wait >= deadline {
        if let Some(asked) = retry_after {
            error.detail = format!(
                "{}; Retry-After of {} s passes the poll deadline, next try in the next cycle",
                error.detail,
                asked.as_secs()
            );
        }
        return Err(error);
    }
    Ok(wait)
}

/// The `Retry-After` of a 429 or 503 answer.
fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    if !matches!(resp.status().as_u16(), 429 | 503) {
        return None;
    }
    let value = resp.headers().get(reqwest::header::RETRY_AFTER)?;
    retry::parse_retry_after(value.to_str().ok()?, SystemTime::now())
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
    // `connect_timeout` covers TCP and the TLS handshake: no connection.
    if e.is_connect() && e.is_timeout() {
        return PollError::new(
            Reason::Connect,
            "cannot connect: no connection within connect_timeout",
        );
    }
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

/// Classifies an answer other than 200, reading its error code if any; a
/// 503 that says when to come back is throttling, not a fault.
fn status_error(status: StatusCode, body: &[u8], has_retry_after: bool) -> PollError {
    let reason = match status.as_u16() {
        401 => Reason::Auth,
        429 => Reason::Throttled,
        503 if has_retry_after => Reason::Throttled,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(reason: Reason, status: Option<u16>, retry_after: Option<u64>) -> Failed {
        Failed {
            error: PollError {
                status,
                ..PollError::new(reason, "HTTP 429: APIGW.0308 slow down")
            },
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(600)
    }

    #[test]
    fn retries_stop_at_the_budget() {
        let f = || failed(Reason::Http5xx, Some(503), None);
        assert!(plan_retry(f(), 0, 2, far()).is_ok());
        assert!(plan_retry(f(), 1, 2, far()).is_ok());
        assert_eq!(plan_retry(f(), 2, 2, far()).unwrap_err().status, Some(503));
        assert!(plan_retry(f(), 0, 0, far()).is_err());
    }

    #[test]
    fn client_errors_and_unreadable_answers_are_not_retried() {
        for (reason, status) in [
            (Reason::Http4xx, Some(400)),
            (Reason::Http4xx, Some(403)),
            (Reason::Http4xx, Some(404)),
            (Reason::Decode, None),
            (Reason::TooLarge, None),
        ] {
            assert!(plan_retry(failed(reason, status, None), 0, 5, far()).is_err());
        }
    }

    #[test]
    fn retry_after_sets_the_wait_or_ends_the_poll() {
        let wait = plan_retry(failed(Reason::Throttled, Some(429), Some(2)), 0, 2, far());
        assert!(wait.unwrap() >= Duration::from_secs(2));

        let soon = Instant::now() + Duration::from_secs(5);
        let err =
            plan_retry(failed(Reason::Throttled, Some(429), Some(30)), 0, 2, soon).unwrap_err();
        assert_eq!(err.reason, Reason::Throttled);
        assert_eq!(
            err.detail,
            "HTTP 429: APIGW.0308 slow down; Retry-After of 30 s passes the poll deadline, next try in the next cycle"
        );
    }

    #[test]
    fn a_503_that_says_when_to_come_back_is_throttling() {
        let body = br#"{"error_code": "DBSS.11000000", "error_msg": "busy"}"#;
        let with = status_error(StatusCode::SERVICE_UNAVAILABLE, body, true);
        let without = status_error(StatusCode::SERVICE_UNAVAILABLE, body, false);
        assert_eq!(
            (with.reason, without.reason),
            (Reason::Throttled, Reason::Http5xx)
        );
        assert_eq!(without.error_code.as_deref(), Some("DBSS.11000000"));
        assert_eq!(without.detail, "HTTP 503: DBSS.11000000 busy");
        let html = status_error(StatusCode::BAD_GATEWAY, b"<html>x</html>", false);
        assert_eq!(
            html.detail,
            "HTTP 502 with a 14-byte body that is not a known error shape"
        );
    }
}
