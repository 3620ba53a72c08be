//! Temporary keys of an ECS agency, from the metadata service: a session
//! token first (`PUT /meta-data/latest/api/token`, skipped when the service
//! does not offer one), then `GET /openstack/latest/securitykey`.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::aksk::Keys;
use super::cache::Expiring;
use super::{AuthContext, AuthError};
use crate::secret::Secret;

/// The limit for one call to the metadata service, which is on the host's
/// own link: a slow answer means it is not there.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the session token asked for lives, in seconds.
const SESSION_TTL_SECONDS: &str = "21600";

/// Fetches temporary keys from the metadata service at `endpoint`.
pub async fn fetch(ctx: &AuthContext, endpoint: &str) -> Result<Expiring<Keys>, AuthError> {
    let session = session_token(ctx, endpoint).await;
    let obtained = SystemTime::now();
    let outcome = security_key(ctx, endpoint, session.as_ref()).await;
    ctx.count("metadata", outcome.is_ok());
    let keys = outcome?;
    tracing::debug!(endpoint, ak = %keys.value.ak, expires_at = %humantime::format_rfc3339(keys.expires), "temporary keys obtained from the metadata service");
    Ok(Expiring { obtained, ..keys })
}

/// Asks for a session token; `None` when the service gives none, in which
/// case the keys are asked for without one.
async fn session_token(ctx: &AuthContext, endpoint: &str) -> Option<Secret> {
    let url = format!("{endpoint}/meta-data/latest/api/token");
    let resp = ctx
        .http
        .put(&url)
        .header("X-Metadata-Token-Ttl-Seconds", SESSION_TTL_SECONDS)
        .timeout(CALL_TIMEOUT)
        .send()
        .await;
    let ok = matches!(&resp, Ok(r) if r.status().is_success());
    ctx.count("metadata", ok);
    let text = resp
        .ok()
        .filter(|r| r.status().is_success())?
        .text()
        .await
        .ok()?;
    Some(Secret::new(text.trim())).filter(|s| !s.is_empty())
}

async fn security_key(
    ctx: &AuthContext,
    endpoint: &str,
    session: Option<&Secret>,
) -> Result<Expiring<Keys>, AuthError> {
    let url = format!("{endpoint}/openstack/latest/securitykey");
    let mut req = ctx
        .http
        .get(&url)
        .timeout(CALL_TIMEOUT)
        .build()
        .map_err(|e| AuthError::Unreachable {
            service: "metadata",
            url: url.clone(),
            cause: super::root_cause(&e),
        })?;
    if let Some(token) = session {
        let mut value = reqwest::header::HeaderValue::from_str(token.expose()).map_err(|_| {
            AuthError::BadAnswer("metadata session token is not a header value".into())
        })?;
        value.set_sensitive(true);
        req.headers_mut().insert("x-metadata-token", value);
    }
    let resp = ctx
        .http
        .execute(req)
        .await
        .map_err(|e| AuthError::Unreachable {
            service: "metadata",
            url: url.clone(),
            cause: super::root_cause(&e),
        })?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.unwrap_or_default();
    if status != 200 {
        return Err(AuthError::Refused {
            service: "metadata",
            status,
            message: format!("a {}-byte answer", body.len()),
        });
    }
    parse_credential(&body)
}

/// Reads `{"credential": {"access", "secret", "securitytoken", "expires_at"}}`.
fn parse_credential(body: &[u8]) -> Result<Expiring<Keys>, AuthError> {
    let bad = |what: &str| AuthError::BadAnswer(format!("metadata securitykey answer {what}"));
    let value: Value = serde_json::from_slice(body).map_err(|_| bad("is not JSON"))?;
    let c = &value["credential"];
    let field = |name: &str| {
        c[name]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad(&format!("has no credential.{name}")))
    };
    let expires = super::parse_time(field("expires_at")?)
        .ok_or_else(|| bad("has a bad credential.expires_at"))?;
    Ok(Expiring {
        value: Keys {
            ak: field("access")?.to_string(),
            sk: Secret::new(field("secret")?),
            security_token: Some(Secret::new(field("securitytoken")?)),
        },
        obtained: SystemTime::now(),
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_is_read_and_errors_name_the_missing_field() {
        let body = br#"{"credential":{"access":"TMPAK","secret":"s3","securitytoken":"st","expires_at":"2030-01-01T00:00:00.000000Z"}}"#;
        let got = parse_credential(body).unwrap();
        assert_eq!(got.value.ak, "TMPAK");
        assert_eq!(got.value.sk.expose(), "s3");
        assert_eq!(got.value.security_token.unwrap().expose(), "st");

        let body = br#"{"credential":{"access":"TMPAK","secret":"s3","expires_at":"2030-01-01T00:00:00Z"}}"#;
        let err = parse_credential(body).err().unwrap();
        assert_eq!(
            err.to_string(),
            "metadata securitykey answer has no credential.securitytoken"
        );
    }
}
