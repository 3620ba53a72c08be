//! Sign-in for the simulator, checked the way the cloud checks it.
//!
//! - AK/SK: the signature is recomputed from the request as received
//!   (method, `Host`, path, query, the headers named in `SignedHeaders`,
//!   body) with [`signer::verify`]. Refusals, all HTTP 401:
//!
//!   | case | `error_code` |
//!   | --- | --- |
//!   | no `Authorization` or `X-Auth-Token`, malformed `Authorization`, no or bad `X-Sdk-Date`, a signed header missing, no `X-Project-Id` | `APIGW.0301` |
//!   | unknown or expired access key, missing or wrong security token | `APIGW.0301` |
//!   | signature does not match | `APIGW.0303` |
//!   | `X-Sdk-Date` more than 15 minutes from the simulator's clock | `APIGW.0304` |
//!   | token unknown, or scoped to another project | `DBSS.10020100` |
//!   | token past its `expires_at` | `APIGW.0307` |
//!
//! - IAM: `POST /v3/auth/tokens` with a password identity and a project
//!   scope; 201 with `X-Subject-Token`, 401 for a wrong password.
//! - Metadata: `PUT /meta-data/latest/api/token` and
//!   `GET /openstack/latest/securitykey`, which mints temporary keys.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use rand::distributions::{Alphanumeric, DistString};
use serde_json::{json, Value};

use super::{error_body, Inner, Reply, Simulator};
use crate::signer::{self, SignError};

/// How far `X-Sdk-Date` may be from the simulator's clock.
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// The prefix of every gateway refusal of an AK/SK request.
const IAM_INFO: &str = "Incorrect IAM authentication information";

struct Key {
    sk: String,
    security_token: Option<String>,
    expires: Option<SystemTime>,
}

struct Issued {
    project_id: String,
    expires: SystemTime,
}

/// What the simulator knows about sign-in.
pub(super) struct AuthState {
    keys: HashMap<String, Key>,
    users: HashMap<(String, String), String>,
    issued: HashMap<String, Issued>,
    token_lifetime: Duration,
    clock_offset_secs: i64,
    metadata_lifetime: Option<Duration>,
    metadata_sessions: HashSet<String>,
    iam_calls: usize,
    securitykey_calls: usize,
    secrets: Vec<String>,
}

impl Default for AuthState {
    fn default() -> Self {
        AuthState {
            keys: HashMap::new(),
            users: HashMap::new(),
            issued: HashMap::new(),
            token_lifetime: Duration::from_secs(24 * 3600),
            clock_offset_secs: 0,
            metadata_lifetime: None,
            metadata_sessions: HashSet::new(),
            iam_calls: 0,
            securitykey_calls: 0,
            secrets: Vec::new(),
        }
    }
}

impl AuthState {
    /// The simulator's clock, which a test may set off from the host's.
    fn now(&self) -> SystemTime {
        let offset = Duration::from_secs(self.clock_offset_secs.unsigned_abs());
        match self.clock_offset_secs >= 0 {
            true => SystemTime::now() + offset,
            false => SystemTime::now() - offset,
        }
    }

    fn mint(&mut self, prefix: &str, len: usize) -> String {
        let value = format!(
            "{prefix}{}",
            Alphanumeric.sample_string(&mut rand::thread_rng(), len)
        );
        self.secrets.push(value.clone());
        value
    }
}

impl Simulator {
    fn auth<R>(&self, f: impl FnOnce(&mut AuthState) -> R) -> R {
        f(&mut self.state.lock().auth)
    }

    /// Accepts requests signed with this permanent key pair.
    pub fn add_access_key(&self, ak: &str, sk: &str) {
        let key = Key {
            sk: sk.to_string(),
            security_token: None,
            expires: None,
        };
        self.auth(|a| a.keys.insert(ak.to_string(), key));
    }

    /// Accepts requests signed with this temporary key pair, carrying
    /// `security_token`, until `expires`.
    pub fn add_temporary_key(&self, ak: &str, sk: &str, security_token: &str, expires: SystemTime) {
        let key = Key {
            sk: sk.to_string(),
            security_token: Some(security_token.to_string()),
            expires: Some(expires),
        };
        self.auth(|a| a.keys.insert(ak.to_string(), key));
    }

    /// Lets IAM issue tokens to `user` of account `domain` for `password`.
    pub fn add_iam_user(&self, domain: &str, user: &str, password: &str) {
        let who = (domain.to_string(), user.to_string());
        self.auth(|a| a.users.insert(who, password.to_string()));
    }

    /// How long tokens issued from now on live (24 hours by default).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.auth(|a| a.token_lifetime = lifetime);
    }

    /// Makes every token IAM issued so far invalid, as if revoked.
    pub fn revoke_tokens(&self) {
        self.auth(|a| a.issued.clear());
    }

    /// Sets the simulator's clock `seconds` ahead of the host's (behind
    /// when negative).
    pub fn set_clock_offset(&self, seconds: i64) {
        self.auth(|a| a.clock_offset_secs = seconds);
    }

    /// Serves temporary keys from the metadata service, each set living
    /// `lifetime` from when it is fetched.
    pub fn serve_metadata_keys(&self, lifetime: Duration) {
        self.auth(|a| a.metadata_lifetime = Some(lifetime));
    }

    /// How many `POST /v3/auth/tokens` calls arrived.
    pub fn iam_calls(&self) -> usize {
        self.auth(|a| a.iam_calls)
    }

    /// How many `GET /openstack/latest/securitykey` calls arrived.
    pub fn securitykey_calls(&self) -> usize {
        self.auth(|a| a.securitykey_calls)
    }

    /// Every secret the simulator handed out or received: tokens, temporary
    /// secret keys and security tokens, metadata session tokens, signatures.
    pub fn seen_secrets(&self) -> Vec<String> {
        self.auth(|a| a.secrets.clone())
    }
}

/// A request as received, for the checks below.
pub(super) struct Received<'a> {
    /// The method.
    pub method: &'a str,
    /// The path, as sent.
    pub path: &'a str,
    /// The query string, as sent.
    pub query: Option<&'a str>,
    /// Every header, names in lower case.
    pub headers: &'a [(String, String)],
    /// The body.
    pub body: &'a [u8],
}

impl Received<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn query_pairs(&self) -> Vec<(String, String)> {
        let url = format!("http://sim/?{}", self.query.unwrap_or_default());
        reqwest::Url::parse(&url)
            .map(|u| u.query_pairs().map(|(k, v)| (k.into(), v.into())).collect())
            .unwrap_or_default()
    }
}

fn refuse(code: &str, msg: &str) -> Reply {
    Reply::json(401, &error_body(code, msg))
}

/// Checks the credentials of an upgrade-status request for `project_id`.
pub(super) fn check(inner: &mut Inner, project_id: &str, req: &Received) -> Result<(), Reply> {
    if let Some(value) = req.header("authorization") {
        return check_signature(&mut inner.auth, project_id, req, value);
    }
    let Some(token) = req.header("x-auth-token") else {
        return Err(refuse(
            "APIGW.0301",
            &format!("{IAM_INFO}: x-auth-token not found"),
        ));
    };
    if inner.tokens.contains(token) {
        return Ok(());
    }
    let now = inner.auth.now();
    match inner.auth.issued.get(token) {
        Some(t) if t.project_id == project_id && t.expires > now => Ok(()),
        Some(t) if t.project_id == project_id => {
            Err(refuse("APIGW.0307", "The token must be updated"))
        }
        _ => Err(refuse("DBSS.10020100", "Token authentication failed")),
    }
}

fn check_signature(
    auth: &mut AuthState,
    project_id: &str,
    req: &Received,
    value: &str,
) -> Result<(), Reply> {
    let bad = |what: &str| refuse("APIGW.0301", &format!("{IAM_INFO}: {what}"));
    let parsed = signer::parse_authorization(value).map_err(|e| bad(&e.to_string()))?;
    auth.secrets.push(parsed.signature.clone());

    let date = req
        .header("x-sdk-date")
        .ok_or_else(|| bad("x-sdk-date not found"))?;
    let date = signer::parse_sdk_date(date).map_err(|e| bad(&e.to_string()))?;
    check_date(auth.now(), date)?;

    let key = auth
        .keys
        .get(&parsed.access)
        .ok_or_else(|| bad("the access key does not exist"))?;
    check_key(key, auth.now(), req).map_err(|what| bad(&what))?;
    if req.header("x-project-id") != Some(project_id) {
        return Err(bad(
            "x-project-id does not match the project of the request",
        ));
    }

    let host = req.header("host").unwrap_or_default();
    let query = req.query_pairs();
    let checked = signer::verify(
        req.method,
        host,
        req.path,
        &query,
        req.headers,
        req.body,
        key.sk.as_bytes(),
        &parsed,
    );
    match checked {
        Ok(()) => Ok(()),
        Err(SignError::SignatureMismatch) => Err(refuse(
            "APIGW.0303",
            &format!("{IAM_INFO}: verify aksk signature fail"),
        )),
        Err(e) => Err(bad(&e.to_string())),
    }
}

fn check_date(now: SystemTime, date: DateTime<Utc>) -> Result<(), Reply> {
    let sent = SystemTime::from(date);
    let skew = now
        .duration_since(sent)
        .or_else(|_| sent.duration_since(now))
        .unwrap_or_default();
    if skew > MAX_SKEW {
        return Err(refuse(
            "APIGW.0304",
            &format!(
                "{IAM_INFO}: x-sdk-date expired, it is more than 15 minutes from the server time"
            ),
        ));
    }
    Ok(())
}

/// Temporary keys must be alive and come with their security token.
fn check_key(key: &Key, now: SystemTime, req: &Received) -> Result<(), String> {
    if key.expires.is_some_and(|e| e <= now) {
        return Err("the access key has expired".into());
    }
    match (&key.security_token, req.header("x-security-token")) {
        (None, _) => Ok(()),
        (Some(want), Some(got)) if want == got => Ok(()),
        (Some(_), None) => Err("x-security-token not found".into()),
        (Some(_), Some(_)) => Err("the security token is invalid".into()),
    }
}

/// Answers the IAM and metadata calls; `None` for any other path.
pub(super) fn answer(inner: &mut Inner, req: &Received) -> Option<Reply> {
    let auth = &mut inner.auth;
    match (req.method, req.path) {
        ("POST", "/v3/auth/tokens") => Some(issue_token(auth, req.body)),
        ("PUT", "/meta-data/latest/api/token") => Some(metadata_session(auth, req)),
        ("GET", "/openstack/latest/securitykey") => Some(security_key(auth, req)),
        _ => None,
    }
}

/// The IAM error shape.
fn iam_error(status: u16, message: &str, title: &str) -> Reply {
    Reply::json(
        status,
        &json!({"error": {"code": status, "message": message, "title": title}}),
    )
}

fn issue_token(auth: &mut AuthState, body: &[u8]) -> Reply {
    auth.iam_calls += 1;
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return iam_error(400, "The request body is not valid JSON.", "Bad Request");
    };
    let user = &v["auth"]["identity"]["password"]["user"];
    let (Some(name), Some(password), Some(domain)) = (
        user["name"].as_str(),
        user["password"].as_str(),
        user["domain"]["name"].as_str(),
    ) else {
        return iam_error(400, "The request has no password identity.", "Bad Request");
    };
    let Some(project_id) = v["auth"]["scope"]["project"]["id"].as_str() else {
        return iam_error(400, "The request has no project scope.", "Bad Request");
    };
    let who = (domain.to_string(), name.to_string());
    if auth.users.get(&who).map(String::as_str) != Some(password) {
        return iam_error(401, "The username or password is wrong.", "Unauthorized");
    }

    let issued_at = auth.now();
    let expires = issued_at + auth.token_lifetime;
    let token = auth.mint("MIIsim", 96);
    auth.issued.insert(
        token.clone(),
        Issued {
            project_id: project_id.to_string(),
            expires,
        },
    );
    let body = json!({"token": {
        "methods": ["password"],
        "issued_at": iso(issued_at),
        "expires_at": iso(expires),
        "project": {"id": project_id},
        "user": {"name": name, "domain": {"name": domain}},
    }});
    Reply::json(201, &body).with_header("X-Subject-Token", &token)
}

fn metadata_session(auth: &mut AuthState, req: &Received) -> Reply {
    if auth.metadata_lifetime.is_none() {
        return Reply::raw(404, "not found");
    }
    if req.header("x-metadata-token-ttl-seconds").is_none() {
        return Reply::raw(400, "missing x-metadata-token-ttl-seconds");
    }
    let token = auth.mint("mds-", 40);
    auth.metadata_sessions.insert(token.clone());
    Reply::raw(200, Bytes::from(token)).with_header("Content-Type", "text/plain")
}

fn security_key(auth: &mut AuthState, req: &Received) -> Reply {
    auth.securitykey_calls += 1;
    let Some(lifetime) = auth.metadata_lifetime else {
        return Reply::raw(404, "not found");
    };
    if let Some(session) = req.header("x-metadata-token") {
        if !auth.metadata_sessions.contains(session) {
            return Reply::raw(401, "unauthorized");
        }
    }
    let expires = auth.now() + lifetime;
    let ak = format!("TMPAK{}", auth.keys.len());
    let sk = auth.mint("tmp-sk-", 40);
    let security_token = auth.mint("tmp-st-", 120);
    let body = json!({"credential": {
        "access": ak,
        "secret": sk,
        "securitytoken": security_token,
        "expires_at": iso(expires),
    }});
    auth.keys.insert(
        ak,
        Key {
            sk,
            security_token: Some(security_token),
            expires: Some(expires),
        },
    );
    Reply::json(200, &body)
}

/// `2026-12-04T19:00:00.000000Z`, as IAM writes times.
fn iso(t: SystemTime) -> String {
    DateTime::<Utc>::from(t)
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}
