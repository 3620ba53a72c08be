//! A warning for secret files that other users of the host can read.
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
    let mut found = Vec::new();
    for (name, spec) in &config.credentials {
        for path in secret_files(spec) {
            if let Some(mode) = mode_of(&path).filter(|m| m & 0o004 != 0) {
                found.push(OpenSecretFile {
                    credential: name.clone(),
                    path,
                    mode,
                });
            }
        }
    }
    found
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

fn secret_files(spec: &CredentialSpec) -> Vec<PathBuf> {
    let sources: Vec<&SecretSource> = match spec {
        CredentialSpec::Token { token } => vec![token],
        CredentialSpec::AkSk {
            sk, security_token, ..
        } => std::iter::once(sk).chain(security_token).collect(),
        CredentialSpec::Password { password, .. } => vec![password],
        CredentialSpec::EcsMetadata { .. } | CredentialSpec::SdkEnv => vec![],
    };
    sources
        .into_iter()
        .filter_map(|s| match s {
            SecretSource::File(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
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
