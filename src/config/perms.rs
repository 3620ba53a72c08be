//! Warnings about the secrets a configuration names: files that other users
//! of the host can read, and files or variables that cannot be read now.
//!
//! The configuration never holds a secret itself (inline secrets are
//! refused), but the files its `*_file` keys name do, and a file everyone
//! may read leaks them to every user of the host. A file its group may read
//! is not reported: secret volumes of Kubernetes are shared with a group.

use std::path::PathBuf;

use super::{Config, CredentialSpec};
use crate::secret::SecretSource;

/// A secret file that every user of the host may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSecretFile {
    /// The `[credentials.NAME]` it belongs to.
    pub credential: String,
    /// The file.
    pub path: PathBuf,
    /// Its permission bits.
    pub mode: u32,
}

/// Every secret file of `config` that every user may read.
pub fn open_secret_files(config: &Config) -> Vec<OpenSecretFile> {
    secrets(config)
        .filter_map(|(credential, source)| match source {
            SecretSource::File(path) => Some((credential, path)),
            _ => None,
        })
        .filter_map(|(credential, path)| {
            let mode = mode_of(path).filter(|m| m & 0o004 != 0)?;
            Some(OpenSecretFile {
                credential: credential.to_string(),
                path: path.clone(),
                mode,
            })
        })
        .collect()
}

/// Logs a warning for each secret file that every user may read.
pub fn warn_open_secret_files(config: &Config) {
    for f in open_secret_files(config) {
        tracing::warn!(
            credential = %f.credential,
            file = %f.path.display(),
            mode = %format!("{:04o}", f.mode),
            "secret file is readable by every user of the host; chmod 600 it (or 640 for a group)"
        );
    }
}

/// A secret that cannot be read now: polls with these credentials fail
/// (reason `auth`) until it can. Secrets are read at every use, so one that
/// appears later (a volume mounted after start) is taken up then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableSecret {
    /// The `[credentials.NAME]` it belongs to.
    pub credential: String,
    /// Why, naming the file or variable, never a value.
    pub reason: String,
}

/// Every secret of `config` that cannot be read now.
pub fn unreadable_secrets(config: &Config) -> Vec<UnreadableSecret> {
    secrets(config)
        .filter_map(|(credential, source)| {
            let e = source.load().err()?;
            Some(UnreadableSecret {
                credential: credential.to_string(),
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Logs a warning for each secret that cannot be read now.
pub fn warn_unreadable_secrets(config: &Config) {
    for u in unreadable_secrets(config) {
        tracing::warn!(
            credential = %u.credential,
            reason = %u.reason,
            "secret cannot be read; polls with these credentials fail until it can"
        );
    }
}

/// Every secret `config` names, with the `[credentials.NAME]` it belongs to.
fn secrets(config: &Config) -> impl Iterator<Item = (&str, &SecretSource)> {
    config.credentials.iter().flat_map(|(name, spec)| {
        let sources: Vec<&SecretSource> = match spec {
            CredentialSpec::Token { token } => vec![token],
            CredentialSpec::AkSk {
                sk, security_token, ..
            } => std::iter::once(sk).chain(security_token).collect(),
            CredentialSpec::Password { password, .. } => vec![password],
            CredentialSpec::EcsMetadata { .. } | CredentialSpec::SdkEnv => vec![],
        };
        sources.into_iter().map(move |s| (name.as_str(), s))
    })
}

#[cfg(unix)]
fn mode_of(path: &std::path::Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
fn mode_of(_path: &std::path::Path) -> Option<u32> {
    None
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn missing_files_and_unset_variables_are_unreadable_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let present = dir.path().join("token");
        std::fs::write(&present, "x").unwrap();
        let missing = dir.path().join("missing");
        let text = format!(
            "[credentials.a]\ntype = \"token\"\ntoken_file = {:?}\n\n[credentials.b]\ntype = \"token\"\ntoken_file = {:?}\n\n[credentials.c]\ntype = \"aksk\"\nak = \"AK\"\nsk_env = \"DBSS_TEST_SURELY_UNSET_SK\"\n\n[[targets]]\nproject_id = \"p\"\nregion = \"cn-north-4\"\ncredentials = \"a\"\n",
            present.display().to_string(),
            missing.display().to_string(),
        );
        let config = super::super::load_str(&text, "c.toml").unwrap();
        assert_eq!(
            unreadable_secrets(&config),
            vec![
                UnreadableSecret {
                    credential: "b".into(),
                    reason: format!(
                        "cannot read secret file {}: No such file or directory (os error 2)",
                        missing.display()
                    ),
                },
                UnreadableSecret {
                    credential: "c".into(),
                    reason: "environment variable DBSS_TEST_SURELY_UNSET_SK is not set".into(),
                },
            ]
        );
    }

    #[test]
    fn files_readable_by_everyone_are_found_but_not_group_readable_ones() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("sk");
        let closed = dir.path().join("pw");
        let group = dir.path().join("group");
        std::fs::write(&group, "x").unwrap();
        std::fs::set_permissions(&group, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::write(&open, "x").unwrap();
        std::fs::write(&closed, "x").unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o600)).unwrap();
        let text = format!(
            "[credentials.keys]\ntype = \"aksk\"\nak = \"AK\"\nsk_file = {:?}\n\n[credentials.pw]\ntype = \"password\"\ndomain = \"d\"\nuser = \"u\"\npassword_file = {:?}\n\n[credentials.grp]\ntype = \"token\"\ntoken_file = {:?}\n\n[[targets]]\nproject_id = \"p\"\nregion = \"cn-north-4\"\ncredentials = \"keys\"\n",
            open.display().to_string(),
            closed.display().to_string(),
            group.display().to_string()
        );
        let config = super::super::load_str(&text, "c.toml").unwrap();
        assert_eq!(
            open_secret_files(&config),
            vec![OpenSecretFile {
                credential: "keys".into(),
                path: open,
                mode: 0o644,
            }]
        );
    }
}
