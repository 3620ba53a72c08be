//! Signing a request with an access key pair: the headers an
//! `SDK-HMAC-SHA256` request carries, computed with [`crate::signer`].

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderName, HeaderValue};

use super::AuthError;
use crate::secret::{Secret, SecretSource};
use crate::signer::{self, SignableRequest};

/// An access key pair, with the security token of temporary keys.
#[derive(Debug, Clone)]
pub struct Keys {
    /// The access key id (not a secret).
    pub ak: String,
    /// The secret key.
    pub sk: Secret,
    /// The security token that temporary keys need.
    pub security_token: Option<Secret>,
}

/// Keys whose secret parts are read from their sources on every request, so
/// that rotated files are picked up without a reload.
#[derive(Debug, Clone)]
pub struct StaticKeys {
    /// The access key id.
    pub ak: String,
    /// Where the secret key is read from.
    pub sk: SecretSource,
    /// Where the security token is read from, if there is one.
    pub security_token: Option<SecretSource>,
}

impl StaticKeys {
    /// Reads the secret parts now.
    pub fn load(&self) -> Result<Keys, AuthError> {
        Ok(Keys {
            ak: self.ak.clone(),
            sk: self.sk.load()?,
            security_token: self
                .security_token
                .as_ref()
                .map(SecretSource::load)
                .transpose()?,
        })
    }
}

/// The `Host` header value of `url`: the host, and the port when it is not
/// the scheme's default, as HTTP clients send it.
pub fn host_header(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// Signs `req` for `project_id` at time `now`: adds `Host`, `X-Sdk-Date`,
/// `X-Project-Id`, `X-Security-Token` (when set) and `Authorization`.
pub fn sign_request(
    req: &mut reqwest::Request,
    keys: &Keys,
    project_id: &str,
    now: DateTime<Utc>,
) -> Result<(), AuthError> {
    let host = host_header(req.url());
    set(req, "host", &host, false)?;
    set(req, "x-sdk-date", &signer::format_sdk_date(now), false)?;
    set(req, "x-project-id", project_id, false)?;
    if let Some(token) = &keys.security_token {
        set(req, "x-security-token", token.expose(), true)?;
    }

    let authorization = authorization(req, &host, keys)?;
    set(req, "authorization", &authorization, true)
}

/// Computes the `Authorization` value over the request as it stands.
fn authorization(req: &reqwest::Request, host: &str, keys: &Keys) -> Result<String, AuthError> {
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter(|(name, _)| *name != reqwest::header::HOST)
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
        .collect();
    let query: Vec<(String, String)> = req
        .url()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let body = req.body().and_then(|b| b.as_bytes()).unwrap_or_default();
    let signable = SignableRequest {
        method: req.method().as_str(),
        host,
        path: req.url().path(),
        query: &query,
        headers: &headers,
        body,
    };
    let signature = signer::sign(&signable, &keys.ak, keys.sk.expose().as_bytes())
        .map_err(|e| AuthError::Unsupported(format!("cannot sign the request: {e}")))?;
    Ok(signature.authorization)
}

/// Sets header `name`, marked sensitive when it carries a secret so that no
/// HTTP library prints it.
fn set(
    req: &mut reqwest::Request,
    name: &'static str,
    value: &str,
    sensitive: bool,
) -> Result<(), AuthError> {
    let mut value = HeaderValue::from_str(value).map_err(|_| {
        AuthError::Unsupported(format!(
            "the {name} header would hold characters not allowed in a header"
        ))
    })?;
    value.set_sensitive(sensitive);
    req.headers_mut()
        .insert(HeaderName::from_static(name), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::{parse_authorization, verify};

    fn keys(token: Option<&str>) -> Keys {
        Keys {
            ak: "AKEXAMPLE".into(),
            sk: Secret::new("sk-example"),
            security_token: token.map(Secret::new),
        }
    }

    fn request(url: &str) -> reqwest::Request {
        reqwest::Client::new()
            .get(url)
            .header("Content-Type", "application/json")
            .build()
            .unwrap()
    }

    fn received(req: &reqwest::Request) -> Vec<(String, String)> {
        req.headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect()
    }

    #[test]
    fn signed_request_carries_every_header_and_verifies() {
        let mut req = request("http://127.0.0.1:8123/v1/p1/audit/upgrade/status");
        let now = DateTime::parse_from_rfc3339("2025-02-09T15:44:42Z")
            .unwrap()
            .with_timezone(&Utc);
        sign_request(&mut req, &keys(Some("st-example")), "p1", now).unwrap();

        let h = req.headers();
        assert_eq!(h["host"], "127.0.0.1:8123");
        assert_eq!(h["x-sdk-date"], "20250209T154442Z");
        assert_eq!(h["x-project-id"], "p1");
        assert_eq!(h["x-security-token"], "st-example");
        assert!(h["authorization"].is_sensitive());
        assert!(h["x-security-token"].is_sensitive());

        let auth = parse_authorization(h["authorization"].to_str().unwrap()).unwrap();
        assert_eq!(auth.access, "AKEXAMPLE");
        assert_eq!(
            auth.signed_headers.join(";"),
            "content-type;host;x-project-id;x-sdk-date;x-security-token"
        );
        let headers = received(&req);
        let path = "/v1/p1/audit/upgrade/status";
        verify(
            "GET",
            "127.0.0.1:8123",
            path,
            &[],
            &headers,
            b"",
            b"sk-example",
            &auth,
        )
        .unwrap();
    }

    #[test]
    fn default_ports_are_left_out_of_host() {
        let url = reqwest::Url::parse("https://dbss.cn-north-4.myhuaweicloud.com:443/v1").unwrap();
        assert_eq!(host_header(&url), "dbss.cn-north-4.myhuaweicloud.com");
        let url = reqwest::Url::parse("http://localhost:8080/").unwrap();
        assert_eq!(host_header(&url), "localhost:8080");
    }

    #[test]
    fn keys_debug_hides_the_secrets() {
        let shown = format!("{:?}", keys(Some("st-example")));
        assert!(!shown.contains("sk-example"));
        assert!(!shown.contains("st-example"));
        assert!(shown.contains("AKEXAMPLE"));
    }
}
