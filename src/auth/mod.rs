//! Signing in: turning a target's credentials into what each request to
//! the DBSS API must carry.
//!
//! Every kind of credential is a variant of [`Authenticator`]; the poller
//! calls [`Authenticator::authorize`] on each request just before it is sent
//! (so retries are freshly dated and signed) and
//! [`Authenticator::on_unauthorized`] when the API answers 401.

use std::sync::Arc;
use std::time::SystemTime;

use crate::config::{CredentialSpec, Target};
use crate::secret::{SecretError, SecretSource};
use crate::selfmetrics::SelfMetrics;

/// Why a request could not be given credentials.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A secret could not be read.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The credential kind cannot be used for this target.
    #[error("{0}")]
    Unsupported(String),
}

/// What the shared parts of the sign-in logic need.
#[derive(Clone)]
pub struct AuthContext {
    /// Counts IAM and metadata calls.
    pub metrics: Arc<SelfMetrics>,
}

/// The credentials of one target, ready to apply to requests.
#[derive(Debug)]
pub enum Authenticator {
    /// A ready token, read again from its source on every request so that a
    /// rotated file is picked up without a reload.
    Token(SecretSource),
}

impl Authenticator {
    /// Builds the authenticator of `target` from its credential `spec`
    /// (`None`: the default chain).
    pub fn new(
        spec: Option<&CredentialSpec>,
        _target: &Target,
        _ctx: &AuthContext,
    ) -> Result<Self, AuthError> {
        match spec {
            Some(CredentialSpec::Token { token }) => Ok(Authenticator::Token(token.clone())),
            Some(_) | None => Err(AuthError::Unsupported(
                "this credential type is not available yet".into(),
            )),
        }
    }

    /// Adds credentials to `req`, which is about to be sent for `project_id`.
    pub async fn authorize(
        &self,
        req: &mut reqwest::Request,
        _project_id: &str,
    ) -> Result<(), AuthError> {
        match self {
            Authenticator::Token(source) => {
                let token = source.load()?;
                let mut value =
                    reqwest::header::HeaderValue::from_str(token.expose()).map_err(|_| {
                        AuthError::Unsupported(
                            "token holds characters not allowed in a header".into(),
                        )
                    })?;
                value.set_sensitive(true);
                req.headers_mut().insert("X-Auth-Token", value);
                Ok(())
            }
        }
    }

    /// Called after a 401; returns whether new credentials were obtained,
    /// so that the request is worth one more try.
    pub async fn on_unauthorized(&self, _project_id: &str) -> bool {
        match self {
            Authenticator::Token(_) => false,
        }
    }

    /// When the credential in use expires, where known.
    pub fn expiry(&self, _project_id: &str) -> Option<SystemTime> {
        match self {
            Authenticator::Token(_) => None,
        }
    }
}
