//! Password sign-in: an IAM user's password exchanged for project-scoped
//! tokens (`POST /v3/auth/tokens`), one cached token per project.

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::cache::Expiring;
use super::{AuthContext, AuthError};
use crate::secret::{Secret, SecretSource};

/// The limit for one call to IAM.
const IAM_TIMEOUT: Duration = Duration::from_secs(30);

/// The environment variable that overrides the default IAM endpoint.
pub const IAM_ENDPOINT_ENV: &str = "HUAWEICLOUD_SDK_IAM_ENDPOINT";

/// The IAM endpoint a target in `region` uses when none is configured.
pub fn default_endpoint(region: &str) -> String {
    match std::env::var(IAM_ENDPOINT_ENV) {
        Ok(url) if !url.is_empty() => url.trim_end_matches('/').to_string(),
        _ => format!("https://iam.{region}.myhuaweicloud.com"),
    }
}

/// Who signs in, and where.
#[derive(Debug, Clone)]
pub struct PasswordSignIn {
    /// The account (domain) name.
    pub domain: String,
    /// The IAM user name.
    pub user: String,
    /// Where the password is read from.
    pub password: SecretSource,
    /// The IAM base URL, without a trailing slash.
    pub endpoint: String,
}

impl PasswordSignIn {
    /// The key of this user's token for `project_id` in the shared cache.
    pub fn cache_key(&self, project_id: &str) -> String {
        format!(
            "{}\n{}\n{}\n{:?}\n{}",
            self.endpoint, self.domain, self.user, self.password, project_id
        )
    }

    /// Asks IAM for a token scoped to `project_id`.
    pub async fn fetch(
        &self,
        ctx: &AuthContext,
        project_id: &str,
    ) -> Result<Expiring<Secret>, AuthError> {
        let password = self.password.load()?;
        let outcome = self.request(ctx, project_id, &password).await;
        ctx.count("iam", outcome.is_ok());
        match &outcome {
            Ok(t) => {
                tracing::debug!(project_id, user = %self.user, domain = %self.domain, expires_at = %humantime::format_rfc3339(t.expires), "iam token obtained")
            }
            Err(e) => {
                tracing::warn!(project_id, user = %self.user, domain = %self.domain, error = %e, "iam sign-in failed")
            }
        }
        outcome
    }

    async fn request(
        &self,
        ctx: &AuthContext,
        project_id: &str,
        password: &Secret,
    ) -> Result<Expiring<Secret>, AuthError> {
        let url = format!("{}/v3/auth/tokens", self.endpoint);
        let body = self.body(project_id, password);
        let obtained = SystemTime::now();
        let resp = ctx
            .http
            .post(&url)
            .header("Content-Type", "application/json;charset=utf8")
            .timeout(IAM_TIMEOUT)
            .body(body)
            .send()
            .await
            .map_err(|e| AuthError::Unreachable {
                service: "iam",
                url: url.clone(),
                cause: super::root_cause(&e),
            })?;
        let status = resp.status().as_u16();
        let token = resp.headers().get("x-subject-token").cloned();
        let body = resp.bytes().await.unwrap_or_default();
        if status != 201 && status != 200 {
            return Err(AuthError::Refused {
                service: "iam",
                status,
                message: iam_error_message(&body),
            });
        }
        let token = token
            .and_then(|v| v.to_str().ok().map(Secret::new))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                AuthError::BadAnswer("iam answered without an x-subject-token header".into())
            })?;
        let expires = expires_at(&body)?;
        Ok(Expiring {
            value: token,
            obtained,
            expires,
        })
    }

    /// The request body; it holds the password, so it is never logged.
    fn body(&self, project_id: &str, password: &Secret) -> Vec<u8> {
        json!({"auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {
                    "name": self.user,
                    "password": password.expose(),
                    "domain": {"name": self.domain},
                }},
            },
            "scope": {"project": {"id": project_id}},
        }})
        .to_string()
        .into_bytes()
    }
}

/// `token.expires_at` of an IAM answer.
fn expires_at(body: &[u8]) -> Result<SystemTime, AuthError> {
    let bad = || AuthError::BadAnswer("iam answer has no valid token.expires_at".into());
    let value: Value = serde_json::from_slice(body).map_err(|_| bad())?;
    let text = value["token"]["expires_at"].as_str().ok_or_else(bad)?;
    super::parse_time(text).ok_or_else(bad)
}

/// The message of an IAM error body (`{"error": {"code", "message", "title"}}`
/// or the gateway shapes), cut for a log line.
fn iam_error_message(body: &[u8]) -> String {
    let value: Value = serde_json::from_slice(body).unwrap_or_default();
    let message = value["error"]["message"]
        .as_str()
        .or_else(|| value["error_msg"].as_str())
        .or_else(|| value["error"]["error_msg"].as_str());
    match message {
        Some(m) => crate::api::shorten(m, 200),
        None => format!(
            "a {}-byte answer that is not a known error shape",
            body.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iam_error_messages_are_read_from_every_shape() {
        let iam = br#"{"error":{"code":401,"message":"The username or password is wrong.","title":"Unauthorized"}}"#;
        assert_eq!(iam_error_message(iam), "The username or password is wrong.");
        let gw = br#"{"error_code":"APIGW.0301","error_msg":"Incorrect IAM authentication information"}"#;
        assert_eq!(
            iam_error_message(gw),
            "Incorrect IAM authentication information"
        );
        assert_eq!(
            iam_error_message(b"<html>"),
            "a 6-byte answer that is not a known error shape"
        );
    }

    #[test]
    fn expires_at_is_read_with_microseconds() {
        let body = br#"{"token":{"expires_at":"2026-12-04T19:00:00.000000Z"}}"#;
        let t = expires_at(body).unwrap();
        assert_eq!(
            humantime::format_rfc3339(t).to_string(),
            "2026-12-04T19:00:00Z"
        );
        let err = expires_at(br#"{"token":{}}"#).unwrap_err();
        assert_eq!(err.to_string(), "iam answer has no valid token.expires_at");
    }

    #[test]
    fn the_body_names_the_user_and_scopes_the_project() {
        let signin = PasswordSignIn {
            domain: "acme".into(),
            user: "ops".into(),
            password: SecretSource::Value(Secret::new("pw")),
            endpoint: "http://iam".into(),
        };
        let body: Value = serde_json::from_slice(&signin.body("p1", &Secret::new("pw"))).unwrap();
        assert_eq!(
            body["auth"]["identity"]["password"]["user"]["domain"]["name"],
            "acme"
        );
        assert_eq!(body["auth"]["scope"]["project"]["id"], "p1");
        assert!(!format!("{signin:?}").contains("\"pw\""));
    }
}
