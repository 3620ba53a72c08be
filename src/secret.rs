//! Secrets: values that must never reach a log line, a metric, an error
//! message or `Debug` output, and where they are read from.

use std::fmt;
use std::path::PathBuf;

/// A secret value (token, SK, password, security token).
///
/// `Debug` and `Display` print a fixed placeholder; the only way to the value
/// is [`Secret::expose`], which makes every use easy to find.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value, trimming the trailing newline that files usually carry.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        Secret(value.trim_end_matches(['\n', '\r']).to_string())
    }

    /// The secret itself, for signing or sending; never for printing.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where a secret comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// Read from a file each time it is loaded, so a rotated file is seen.
    File(PathBuf),
    /// Read from an environment variable.
    Env(String),
    /// Held in memory (the demo's generated credentials).
    Value(Secret),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::File(p) => write!(f, "File({})", p.display()),
            SecretSource::Env(n) => write!(f, "Env({n})"),
            SecretSource::Value(_) => f.write_str("Value(<redacted>)"),
        }
    }
}

/// Why a secret could not be read. Messages name the source, never the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file could not be read.
    #[error("cannot read secret file {path}: {source}")]
    File {
        /// The file named in the configuration.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The environment variable is not set or not valid UTF-8.
    #[error("environment variable {0} is not set")]
    EnvMissing(String),
    /// The source holds nothing.
    #[error("secret from {0} is empty")]
    Empty(String),
}

impl SecretSource {
    /// Reads the secret now.
    pub fn load(&self) -> Result<Secret, SecretError> {
        let (secret, origin) = match self {
            SecretSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| SecretError::File {
                    path: path.clone(),
                    source,
                })?;
                (Secret::new(text), format!("file {}", path.display()))
            }
            SecretSource::Env(name) => {
                let value =
                    std::env::var(name).map_err(|_| SecretError::EnvMissing(name.clone()))?;
                (Secret::new(value), format!("environment variable {name}"))
            }
            SecretSource::Value(secret) => (secret.clone(), "memory".to_string()),
        };
        if secret.is_empty() {
            return Err(SecretError::Empty(origin));
        }
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{s}"), "<redacted>");
        let src = SecretSource::Value(s);
        assert_eq!(format!("{src:?}"), "Value(<redacted>)");
    }

    #[test]
    fn file_secret_loses_its_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "abc\n").unwrap();
        let s = SecretSource::File(path).load().unwrap();
        assert_eq!(s.expose(), "abc");
    }

    #[test]
    fn empty_and_missing_sources_are_errors_naming_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty");
        std::fs::write(&path, "\n").unwrap();
        let err = SecretSource::File(path.clone()).load().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("secret from file {} is empty", path.display())
        );
        let err = SecretSource::Env("DBSS_TEST_SURELY_UNSET_VAR".into())
            .load()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable DBSS_TEST_SURELY_UNSET_VAR is not set"
        );
    }
}
