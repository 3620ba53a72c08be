//! `--web.config.file`: TLS, basic authentication, extra headers and a rate
//! limit for the HTTP endpoints, in the file format of the Prometheus
//! exporter toolkit, so that a file written for node_exporter works here.
//!
//! [`WebState`] holds the configuration in force. Like the toolkit, it
//! re-reads the file while running: before each new connection and each
//! request it compares the modification time and size of the file and of
//! the certificate, key and CA files it names, and loads them again when one
//! changed. A new file that does not load is logged once and the previous
//! configuration stays in force.

pub mod basic_auth;
pub mod file;
pub mod guard;
pub mod tls;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use http::{HeaderName, HeaderValue};
use tokio_rustls::TlsAcceptor;

use basic_auth::{Checker, Users};
use file::WebFile;

/// Headers that `http_server_config.headers` may set, with the values allowed
/// where the toolkit restricts them (an empty list allows any value).
pub const ALLOWED_HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// Why a web configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed or has a key the format does not know.
    #[error("{file}: {source}")]
    Syntax {
        /// The file.
        file: String,
        /// The parser's message, with the line.
        #[source]
        source: serde_norway::Error,
    },
    /// A value is wrong, or a file it names cannot be used.
    #[error("{file}: {reason}")]
    Invalid {
        /// The file.
        file: String,
        /// What is wrong, naming the key.
        reason: String,
    },
}

/// One loaded web configuration.
pub struct WebConfig {
    /// Accepts TLS connections; `None` serves plain HTTP.
    pub tls: Option<TlsAcceptor>,
    /// Users allowed in; `None` when authentication is off.
    pub users: Option<Users>,
    /// Headers added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Requests allowed, when a rate limit is set.
    pub limiter: Option<RateLimiter>,
    /// The client authentication mode, for the start log line.
    pub client_auth: String,
    /// The files whose change triggers a reload, the configuration first.
    files: Vec<PathBuf>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.is_some())
            .field("headers", &self.headers.len())
            .field("client_auth", &self.client_auth)
            .finish()
    }
}

/// Reads and checks the web configuration file at `path`.
pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
        file: name.clone(),
        source,
    })?;
    let parsed = file::parse(&text).map_err(|source| WebConfigError::Syntax {
        file: name.clone(),
        source,
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    build(parsed, dir, path).map_err(|reason| WebConfigError::Invalid { file: name, reason })
}

fn build(f: WebFile, dir: &Path, path: &Path) -> Result<WebConfig, String> {
    let mut files = vec![path.to_path_buf()];
    let http = f.http_server_config.unwrap_or_default();
    let headers = headers(http.headers.unwrap_or_default())?;
    let users = match f.basic_auth_users {
        Some(map) if !map.is_empty() => Some(Users::new(map)?),
        _ => None,
    };
    let limiter = f.rate_limit.map(RateLimiter::new).transpose()?.flatten();

    let section = f.tls_server_config.unwrap_or_default();
    let client_auth = section
        .client_auth_type
        .clone()
        .unwrap_or_else(|| "NoClientCert".into());
    let tls = match tls::enabled(&section) {
        true => {
            let setup = tls::build(&section, dir)?;
            files.extend(setup.files);
            Some(TlsAcceptor::from(setup.config))
        }
        false => None,
    };
    Ok(WebConfig {
        tls,
        users,
        headers,
        limiter,
        client_auth,
        files,
    })
}

/// Checks `http_server_config.headers` against [`ALLOWED_HEADERS`].
fn headers(
    map: std::collections::BTreeMap<String, String>,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let mut out = Vec::new();
    for (name, value) in map {
        let Some((_, allowed)) = ALLOWED_HEADERS.iter().find(|(n, _)| *n == name) else {
            return Err(format!(
                "http_server_config.headers: HTTP header {name:?} can not be configured"
            ));
        };
        if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
            return Err(format!("http_server_config.headers: invalid value {value:?} for {name} (expected one of {allowed:?})"));
        }
        let header_value = HeaderValue::from_str(&value).map_err(|_| {
            format!("http_server_config.headers: the value of {name} is not a valid header value")
        })?;
        let header_name =
            HeaderName::from_bytes(name.as_bytes()).expect("every allowed header name is valid");
        out.push((header_name, header_value));
    }
    Ok(out)
}

/// A token bucket: `burst` requests at once, one more per `interval`.
#[derive(Debug)]
pub struct RateLimiter {
    burst: f64,
    interval: Duration,
    bucket: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    fn new(section: file::RateLimitSection) -> Result<Option<Self>, String> {
        let Some(text) = section.interval.filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let interval = humantime::parse_duration(&text)
            .map_err(|e| format!("rate_limit.interval: invalid duration {text:?}: {e}"))?;
        if interval.is_zero() {
            return Ok(None);
        }
        let burst = f64::from(section.burst.unwrap_or(0).max(1));
        Ok(Some(RateLimiter {
            burst,
            interval,
            bucket: Mutex::new((burst, Instant::now())),
        }))
    }

    /// Takes one request from the bucket; false when it is empty.
    pub fn allow(&self) -> bool {
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(b.1).as_secs_f64() / self.interval.as_secs_f64();
        *b = ((b.0 + refill).min(self.burst), now);
        if b.0 >= 1.0 {
            b.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The modification time and size of each watched file.
type Stamp = Vec<Option<(SystemTime, u64)>>;

fn stamp(files: &[PathBuf]) -> Stamp {
    files
        .iter()
        .map(|f| {
            let m = std::fs::metadata(f).ok()?;
            Some((m.modified().ok()?, m.len()))
        })
        .collect()
}

/// The web configuration in force, loaded again when its files change.
pub struct WebState {
    path: PathBuf,
    current: ArcSwap<WebConfig>,
    /// The stamp of the configuration in force, and of the last refused one.
    stamps: Mutex<(Stamp, Option<Stamp>)>,
    checker: Arc<Checker>,
}

impl WebState {
    /// Loads `path`; an error here stops the exporter from starting.
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let config = load(path)?;
        let first = stamp(&config.files);
        Ok(WebState {
            path: path.to_path_buf(),
            current: ArcSwap::from_pointee(config),
            stamps: Mutex::new((first, None)),
            checker: Arc::new(Checker::default()),
        })
    }

    /// The configuration to use now, reloaded first if a file changed.
    pub fn current(&self) -> Arc<WebConfig> {
        let config = self.current.load_full();
        let now = stamp(&config.files);
        let mut stamps = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
        if stamps.0 == now || stamps.1.as_ref() == Some(&now) {
            return self.current.load_full();
        }
        match load(&self.path) {
            Ok(fresh) => {
                let fresh_stamp = stamp(&fresh.files);
                tracing::info!(file = %self.path.display(), tls = fresh.tls.is_some(), basic_auth = fresh.users.is_some(), "web configuration reloaded");
                self.current.store(Arc::new(fresh));
                *stamps = (fresh_stamp, None);
            }
            Err(e) => {
                tracing::error!(error = %e, "web configuration refused, the previous one stays in force");
                stamps.1 = Some(now);
            }
        }
        self.current.load_full()
    }

    /// Logs what the configuration in force turns on, once at start.
    pub fn log_summary(&self, address: &str) {
        let c = self.current.load();
        tracing::info!(file = %self.path.display(), address, tls = c.tls.is_some(), client_auth = %c.client_auth, basic_auth = c.users.is_some(), headers = c.headers.len(), rate_limit = c.limiter.is_some(), "web configuration loaded");
    }

    /// Whether a request with this `Authorization` value may pass.
    pub async fn authorized(&self, config: &WebConfig, authorization: Option<&str>) -> bool {
        match &config.users {
            Some(users) if !users.is_empty() => self.checker.allows(users, authorization).await,
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn error(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "web.yml", text);
        load(&p)
            .unwrap_err()
            .to_string()
            .replace(&p.display().to_string(), "web.yml")
    }

    #[test]
    fn headers_follow_the_toolkit_rules() {
        assert_eq!(
            error("http_server_config:\n  headers:\n    Content-Type: text/html\n"),
            "web.yml: http_server_config.headers: HTTP header \"Content-Type\" can not be configured"
        );
        assert_eq!(
            error("http_server_config:\n  headers:\n    X-Frame-Options: allow\n"),
            "web.yml: http_server_config.headers: invalid value \"allow\" for X-Frame-Options (expected one of [\"deny\", \"sameorigin\"])"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "w.yml",
            "http_server_config:\n  http2: true\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n",
        );
        assert_eq!(load(&p).unwrap().headers.len(), 2);
    }

    #[test]
    fn unknown_keys_and_missing_files_are_named() {
        let e = error("tls_server_config:\n  certfile: a\n");
        assert!(
            e.starts_with("web.yml: tls_server_config: unknown field `certfile`"),
            "{e}"
        );
        let e = error("tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n");
        assert!(
            e.starts_with("web.yml: cert_file \"nope.crt\": cannot read:"),
            "{e}"
        );
        let e = error("rate_limit:\n  interval: soon\n");
        assert!(
            e.starts_with("web.yml: rate_limit.interval: invalid duration"),
            "{e}"
        );
    }

    #[test]
    fn a_changed_file_is_reloaded_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "w.yml", "");
        let state = WebState::load(&p).unwrap();
        assert!(state.current().headers.is_empty());

        std::fs::write(
            &p,
            "http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
        )
        .unwrap();
        assert_eq!(state.current().headers.len(), 1);

        std::fs::write(&p, "http_server_config:\n  headers: [broken\n").unwrap();
        assert_eq!(state.current().headers.len(), 1);
        assert_eq!(state.current().headers.len(), 1);
    }

    #[test]
    fn the_rate_limiter_allows_a_burst_then_refuses() {
        let section = file::RateLimitSection {
            burst: Some(2),
            interval: Some("1h".into()),
        };
        let l = RateLimiter::new(section).unwrap().unwrap();
        assert!(l.allow());
        assert!(l.allow());
        assert!(!l.allow());
    }
}
