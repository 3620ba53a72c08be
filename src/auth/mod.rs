//! Signing in: turning a target's credentials into what each request to
//! the DBSS API must carry.
//!
//! Every kind of credential is a variant of [`Authenticator`]; the poller
//! calls [`Authenticator::authorize`] on each request just before it is sent
//! (so retries are freshly dated and signed) and
//! [`Authenticator::on_unauthorized`] when the API answers 401.
//!
//! - [`aksk`] signs requests with an access key pair;
//! - [`iam`] exchanges a password for project-scoped tokens;
//! - [`metadata`] fetches an ECS agency's temporary keys;
//! - [`cache`] keeps tokens and temporary keys until shortly before they die,
//!   shared by every target that uses the same ones.

pub mod aksk;
pub mod cache;
pub mod iam;
pub mod metadata;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aksk::{Keys, StaticKeys};
use cache::Slot;
use iam::PasswordSignIn;

use crate::config::{CredentialSpec, Target, DEFAULT_METADATA_ENDPOINT};
use crate::secret::{Secret, SecretError, SecretSource};
use crate::selfmetrics::SelfMetrics;

/// The environment variables the official SDKs read.
pub mod env {
    /// The access key id.
    pub const AK: &str = "HUAWEICLOUD_SDK_AK";
    /// The secret key.
    pub const SK: &str = "HUAWEICLOUD_SDK_SK";
    /// The security token of temporary keys.
    pub const SECURITY_TOKEN: &str = "HUAWEICLOUD_SDK_SECURITY_TOKEN";
    /// The project id of targets that give none.
    pub const PROJECT_ID: &str = "HUAWEICLOUD_SDK_PROJECT_ID";
}

/// Why a request could not be given credentials. No message holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A secret could not be read.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The credential kind cannot be used for this target.
    #[error("{0}")]
    Unsupported(String),
    /// IAM or the metadata service could not be reached.
    #[error("cannot reach {service} at {url}: {cause}")]
    Unreachable {
        /// `iam` or `metadata`.
        service: &'static str,
        /// The URL called.
        url: String,
        /// The innermost cause.
        cause: String,
    },
    /// IAM or the metadata service answered with an error.
    #[error("{service} refused with HTTP {status}: {message}")]
    Refused {
        /// `iam` or `metadata`.
        service: &'static str,
        /// The HTTP status.
        status: u16,
        /// The message of the answer, cut for a log line.
        message: String,
    },
    /// An answer lacked what it should hold.
    #[error("{0}")]
    BadAnswer(String),
    /// The default chain found nothing that works.
    #[error("no credentials found: HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK are not set, and the metadata service at {endpoint} failed: {cause}")]
    NothingFound {
        /// The metadata service that was tried.
        endpoint: String,
        /// Why it failed.
        cause: Box<AuthError>,
    },
    /// The outcome of a renewal that another caller made.
    #[error("{0}")]
    Shared(Arc<AuthError>),
}

type SlotMap<T> = Mutex<HashMap<String, Arc<Slot<T>>>>;

/// What the shared parts of the sign-in logic need: metrics, an HTTP client
/// for IAM and the metadata service, and the caches of tokens and temporary
/// keys, which outlive reloads.
#[derive(Clone)]
pub struct AuthContext {
    /// Counts IAM and metadata calls.
    pub metrics: Arc<SelfMetrics>,
    /// The client for IAM and the metadata service.
    pub http: reqwest::Client,
    tokens: Arc<SlotMap<Secret>>,
    keys: Arc<SlotMap<Keys>>,
}

impl AuthContext {
    /// A context with empty caches.
    pub fn new(metrics: Arc<SelfMetrics>) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(crate::client::USER_AGENT)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        AuthContext {
            metrics,
            http,
            tokens: Arc::default(),
            keys: Arc::default(),
        }
    }

    /// The same context (and caches) calling IAM through `http`, so that
    /// sign-in honours a target's CA file and certificate-check choice.
    pub fn with_http(&self, http: reqwest::Client) -> Self {
        AuthContext {
            http,
            ..self.clone()
        }
    }

    /// Counts one call to `kind` (`iam` or `metadata`).
    pub fn count(&self, kind: &str, ok: bool) {
        let outcome = if ok { "success" } else { "failure" };
        self.metrics
            .auth_requests
            .with_label_values(&[kind, outcome])
            .inc();
    }

    fn slot<T>(map: &SlotMap<T>, key: String) -> Arc<Slot<T>> {
        let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key).or_default().clone()
    }
}

/// The credentials of one target, ready to apply to requests.
pub enum Authenticator {
    /// A ready token, read again from its source on every request so that a
    /// rotated file is picked up without a reload.
    Token(SecretSource),
    /// A permanent or temporary key pair, from the configuration or the
    /// SDK environment variables.
    AkSk(StaticKeys),
    /// Project-scoped tokens from IAM.
    Password(PasswordSignIn, AuthContext),
    /// Temporary keys from the metadata service; `chained` when the default
    /// chain fell back to it.
    Metadata {
        /// The metadata service's base URL.
        endpoint: String,
        /// Whether the default chain chose it after finding no variables.
        chained: bool,
        /// The shared caches.
        ctx: AuthContext,
    },
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Authenticator::Token(s) => write!(f, "Token({s:?})"),
            Authenticator::AkSk(k) => write!(f, "AkSk({k:?})"),
            Authenticator::Password(p, _) => write!(f, "Password({p:?})"),
            Authenticator::Metadata { endpoint, .. } => write!(f, "Metadata({endpoint})"),
        }
    }
}

impl Authenticator {
    /// Builds the authenticator of `target` from its credential `spec`
    /// (`None`: the default chain).
    pub fn new(
        spec: Option<&CredentialSpec>,
        target: &Target,
        ctx: &AuthContext,
    ) -> Result<Self, AuthError> {
        let auth = match spec {
            Some(CredentialSpec::Token { token }) => Authenticator::Token(token.clone()),
            Some(CredentialSpec::AkSk {
                ak,
                sk,
                security_token,
            }) => Authenticator::AkSk(StaticKeys {
                ak: ak.clone(),
                sk: sk.clone(),
                security_token: security_token.clone(),
            }),
            Some(CredentialSpec::Password {
                domain,
                user,
                password,
                iam_endpoint,
            }) => {
                let endpoint = iam_endpoint.clone();
                let signin = PasswordSignIn {
                    domain: domain.clone(),
                    user: user.clone(),
                    password: password.clone(),
                    endpoint: endpoint.unwrap_or_else(|| iam::default_endpoint(&target.region)),
                };
                Authenticator::Password(signin, ctx.clone())
            }
            Some(CredentialSpec::EcsMetadata { metadata_endpoint }) => {
                Self::metadata(metadata_endpoint, false, ctx)
            }
            Some(CredentialSpec::SdkEnv) => Authenticator::AkSk(sdk_env_keys()?),
            None => Self::default_chain(DEFAULT_METADATA_ENDPOINT, ctx),
        };
        Ok(auth)
    }

    /// The SDKs' default chain: the environment variables when the key pair
    /// is there, else the metadata service at `metadata_endpoint`.
    pub fn default_chain(metadata_endpoint: &str, ctx: &AuthContext) -> Self {
        match sdk_env_keys() {
            Ok(keys) if std::env::var_os(env::SK).is_some() => Authenticator::AkSk(keys),
            _ => Self::metadata(metadata_endpoint, true, ctx),
        }
    }

    fn metadata(endpoint: &str, chained: bool, ctx: &AuthContext) -> Self {
        Authenticator::Metadata {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            chained,
            ctx: ctx.clone(),
        }
    }

    /// Adds credentials to `req`, which is about to be sent for `project_id`.
    pub async fn authorize(
        &self,
        req: &mut reqwest::Request,
        project_id: &str,
    ) -> Result<(), AuthError> {
        match self {
            Authenticator::Token(source) => set_token(req, &source.load()?),
            Authenticator::AkSk(keys) => {
                aksk::sign_request(req, &keys.load()?, project_id, chrono::Utc::now())
            }
            Authenticator::Password(signin, ctx) => {
                let token = self.token(signin, ctx, project_id, false).await?;
                set_token(req, &token)
            }
            Authenticator::Metadata { .. } => {
                let keys = self.temporary_keys(false).await?;
                aksk::sign_request(req, &keys, project_id, chrono::Utc::now())
            }
        }
    }

    /// Called after a 401; returns whether new credentials were obtained,
    /// so that the request is worth one more try.
    pub async fn on_unauthorized(&self, project_id: &str) -> bool {
        match self {
            Authenticator::Token(_) | Authenticator::AkSk(_) => false,
            Authenticator::Password(signin, ctx) => {
                self.token(signin, ctx, project_id, true).await.is_ok()
            }
            Authenticator::Metadata { .. } => self.temporary_keys(true).await.is_ok(),
        }
    }

    /// When the credential in use expires, where known.
    pub fn expiry(&self, project_id: &str) -> Option<SystemTime> {
        match self {
            Authenticator::Token(_) | Authenticator::AkSk(_) => None,
            Authenticator::Password(signin, ctx) => {
                AuthContext::slot(&ctx.tokens, signin.cache_key(project_id)).expiry()
            }
            Authenticator::Metadata { endpoint, ctx, .. } => {
                AuthContext::slot(&ctx.keys, endpoint.clone()).expiry()
            }
        }
    }

    async fn token(
        &self,
        signin: &PasswordSignIn,
        ctx: &AuthContext,
        project_id: &str,
        force: bool,
    ) -> Result<Secret, AuthError> {
        let slot = AuthContext::slot(&ctx.tokens, signin.cache_key(project_id));
        slot.get(force, || signin.fetch(ctx, project_id)).await
    }

    async fn temporary_keys(&self, force: bool) -> Result<Keys, AuthError> {
        let Authenticator::Metadata {
            endpoint,
            chained,
            ctx,
        } = self
        else {
            return Err(AuthError::Unsupported("not a metadata credential".into()));
        };
        let slot = AuthContext::slot(&ctx.keys, endpoint.clone());
        let got = slot.get(force, || metadata::fetch(ctx, endpoint)).await;
        match got {
            Err(e) if *chained => Err(AuthError::NothingFound {
                endpoint: endpoint.clone(),
                cause: Box::new(e),
            }),
            other => other,
        }
    }
}

/// Keys from the `HUAWEICLOUD_SDK_*` variables; the secret parts are read on
/// every request.
fn sdk_env_keys() -> Result<StaticKeys, AuthError> {
    let ak = std::env::var(env::AK)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| SecretError::EnvMissing(env::AK.to_string()))?;
    let security_token = std::env::var_os(env::SECURITY_TOKEN)
        .filter(|v| !v.is_empty())
        .map(|_| SecretSource::Env(env::SECURITY_TOKEN.to_string()));
    Ok(StaticKeys {
        ak,
        sk: SecretSource::Env(env::SK.to_string()),
        security_token,
    })
}

/// Sends `token` as `X-Auth-Token`, marked sensitive.
fn set_token(req: &mut reqwest::Request, token: &Secret) -> Result<(), AuthError> {
    let mut value = reqwest::header::HeaderValue::from_str(token.expose()).map_err(|_| {
        AuthError::Unsupported("token holds characters not allowed in a header".into())
    })?;
    value.set_sensitive(true);
    req.headers_mut().insert("X-Auth-Token", value);
    Ok(())
}

/// Whether an error answer says the request's `X-Sdk-Date` was too far from
/// the server's clock, which no renewal cures: the local clock is wrong.
pub fn is_clock_skew(error_code: Option<&str>, message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    error_code == Some(CLOCK_SKEW_CODE)
        || (m.contains("x-sdk-date") && (m.contains("expired") || m.contains("15 minutes")))
}

/// The gateway code for a request dated too far from the server's clock.
pub const CLOCK_SKEW_CODE: &str = "APIGW.0304";

/// Parses an RFC 3339 time such as `2026-12-04T19:00:00.000000Z`.
pub fn parse_time(text: &str) -> Option<SystemTime> {
    let t = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    Some(SystemTime::from(t.with_timezone(&chrono::Utc)))
}

/// The innermost cause of an error, which says the most in one line.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
