//! The web configuration file as written: the YAML layout of the Prometheus
//! exporter toolkit, read strictly (an unknown key is an error, as the
//! toolkit's strict YAML reading makes it).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// The whole file. Every section is optional; an empty file means plain
/// HTTP without authentication.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebFile {
    /// `tls_server_config`: serve HTTPS.
    #[serde(default)]
    pub tls_server_config: Option<TlsSection>,
    /// `http_server_config`: HTTP/2 and extra response headers.
    #[serde(default)]
    pub http_server_config: Option<HttpSection>,
    /// `basic_auth_users`: user name to bcrypt hash.
    #[serde(default)]
    pub basic_auth_users: Option<BTreeMap<String, Redacted>>,
    /// `rate_limit`: requests allowed per interval, with a burst.
    #[serde(default)]
    pub rate_limit: Option<RateLimitSection>,
}

/// `tls_server_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The server certificate chain, inline PEM.
    pub cert: Option<String>,
    /// The server private key, inline PEM.
    pub key: Option<Redacted>,
    /// The server certificate chain, a PEM file.
    pub cert_file: Option<String>,
    /// The server private key, a PEM file.
    pub key_file: Option<String>,
    /// How client certificates are asked for and checked.
    pub client_auth_type: Option<String>,
    /// CA certificates that sign client certificates, a PEM file.
    pub client_ca_file: Option<String>,
    /// CA certificates that sign client certificates, inline PEM.
    pub client_ca: Option<String>,
    /// TLS 1.2 cipher suites allowed, by their IANA names.
    pub cipher_suites: Option<Vec<String>>,
    /// Key exchange groups, in order of preference.
    pub curve_preferences: Option<Vec<String>>,
    /// The lowest TLS version accepted: TLS10 to TLS13.
    pub min_version: Option<String>,
    /// The highest TLS version accepted: TLS10 to TLS13.
    pub max_version: Option<String>,
    /// Accepted for compatibility; the server's order always wins here.
    pub prefer_server_cipher_suites: Option<bool>,
    /// Client certificates must carry one of these DNS names or IP addresses.
    pub client_allowed_sans: Option<Vec<String>>,
}

/// `http_server_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Accepted for compatibility; this server speaks HTTP/1.1.
    pub http2: Option<bool>,
    /// Extra headers set on every response.
    pub headers: Option<BTreeMap<String, String>>,
}

/// `rate_limit`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSection {
    /// How many requests may come at once.
    pub burst: Option<u32>,
    /// One more request is allowed after each interval, such as `100ms`.
    pub interval: Option<String>,
}

/// A string that never shows in `Debug` output: bcrypt hashes and keys.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Redacted(pub String);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Parses the text of a web configuration file; comments only or nothing
/// at all is an empty configuration.
pub fn parse(text: &str) -> Result<WebFile, serde_norway::Error> {
    let file: Option<WebFile> = serde_norway::from_str(text)?;
    Ok(file.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_exporter_style_file_is_read() {
        let text = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS12\n  prefer_server_cipher_suites: true\nhttp_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\nbasic_auth_users:\n  alice: $2y$10$abc\n";
        let f = parse(text).unwrap();
        let tls = f.tls_server_config.unwrap();
        assert_eq!(tls.cert_file.as_deref(), Some("server.crt"));
        assert_eq!(tls.min_version.as_deref(), Some("TLS12"));
        let users = f.basic_auth_users.unwrap();
        assert_eq!(users["alice"].0, "$2y$10$abc");
        assert_eq!(format!("{:?}", users["alice"]), "<redacted>");
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let err = parse("tls_server_config:\n  cert_fil: x\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("unknown field `cert_fil`"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
        let err = parse("basic_auth:\n  a: b\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `basic_auth`"));
    }

    #[test]
    fn empty_and_comment_only_files_are_empty_configurations() {
        assert!(parse("").unwrap().tls_server_config.is_none());
        assert!(parse("# nothing yet\n").unwrap().basic_auth_users.is_none());
    }
}
