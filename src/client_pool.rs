//! One HTTP client per distinct TLS choice of the targets.
//!
//! A reqwest client holds its trust store, so targets that trust different
//! CA files (`poll.ca_file`, `targets[].ca_file`) or skip verification
//! (`insecure_skip_verify`) need clients of their own; targets that choose
//! alike share one, and with it its connection pool. The pool is built anew
//! on every load of the configuration, before anything changes, so that a CA
//! file that cannot be used refuses the whole load.
//!
//! Proxies come from the environment, as reqwest reads them by default:
//! `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (also in lower
//! case).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::client::ApiClient;
use crate::config::{Config, PollSettings, Target};
use crate::poller::target_key;
use crate::ratelimit::RateLimits;
use crate::snapshot::TargetKey;

/// Why the clients could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// A CA file could not be read.
    #[error("ca_file {path:?}: cannot read: {source}")]
    ReadCa {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A CA file holds no PEM certificate.
    #[error("ca_file {path:?}: no PEM certificate found")]
    NoCertificates {
        /// The file.
        path: PathBuf,
    },
    /// A CA file holds a certificate the TLS library refused.
    #[error("ca_file {path:?}: {source}")]
    BadCa {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

/// What makes two targets need different clients: the CA files with a
/// digest of their content, and whether verification is skipped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    ca_files: Vec<(PathBuf, [u8; 32])>,
    insecure: bool,
}

/// The clients of one configuration, and which target uses which.
pub struct ClientPool {
    clients: HashMap<ClientKey, ApiClient>,
    targets: HashMap<TargetKey, ClientKey>,
}

impl ClientPool {
    /// Builds a client for every distinct TLS choice of `config`'s targets,
    /// warning about each target that skips certificate verification.
    pub fn build(config: &Config) -> Result<Self, PoolError> {
        let mut files = CaFiles::default();
        let mut pool = ClientPool {
            clients: HashMap::new(),
            targets: HashMap::new(),
        };
        // One limit per endpoint, whichever TLS choice its targets make.
        let limits = RateLimits::new(config.poll.rate_limit);
        for target in &config.targets {
            let key = files.key_for(&config.poll, target)?;
            if key.insecure {
                tracing::warn!(project_id = %target.project_id, endpoint = %target.endpoint, "insecure_skip_verify is on: the certificate of the endpoint is not checked");
            }
            if !pool.clients.contains_key(&key) {
                let client = build_client(&config.poll, &files, &key, limits.clone())?;
                pool.clients.insert(key.clone(), client);
            }
            pool.targets.insert(target_key(target), key);
        }
        Ok(pool)
    }

    /// The client of `target` and its key, which tells whether a running
    /// target's client changed.
    pub fn client_for(&self, target: &Target) -> Option<(ClientKey, ApiClient)> {
        let key = self.targets.get(&target_key(target))?;
        let client = self.clients.get(key)?;
        Some((key.clone(), client.clone()))
    }

    /// How many distinct clients there are.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether there is no client (no target).
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

/// CA files read once per load, by path.
#[derive(Default)]
struct CaFiles {
    read: HashMap<PathBuf, (Vec<u8>, [u8; 32])>,
}

impl CaFiles {
    fn key_for(&mut self, poll: &PollSettings, target: &Target) -> Result<ClientKey, PoolError> {
        let mut ca_files = Vec::new();
        for path in [&poll.ca_file, &target.ca_file].into_iter().flatten() {
            let digest = self.read(path)?;
            ca_files.push((path.clone(), digest));
        }
        Ok(ClientKey {
            ca_files,
            insecure: poll.insecure_skip_verify || target.insecure_skip_verify,
        })
    }

    fn read(&mut self, path: &Path) -> Result<[u8; 32], PoolError> {
        if let Some((_, digest)) = self.read.get(path) {
            return Ok(*digest);
        }
        let pem = std::fs::read(path).map_err(|source| PoolError::ReadCa {
            path: path.to_path_buf(),
            source,
        })?;
        let digest: [u8; 32] = Sha256::digest(&pem).into();
        self.read.insert(path.to_path_buf(), (pem, digest));
        Ok(digest)
    }

    fn pem(&self, path: &Path) -> &[u8] {
        self.read
            .get(path)
            .map(|(p, _)| p.as_slice())
            .unwrap_or(&[])
    }
}

fn build_client(
    settings: &PollSettings,
    files: &CaFiles,
    key: &ClientKey,
    limits: Arc<RateLimits>,
) -> Result<ApiClient, PoolError> {
    let mut builder = ApiClient::builder(settings);
    for (path, _) in &key.ca_files {
        let bad = |source| PoolError::BadCa {
            path: path.clone(),
            source,
        };
        let certs = reqwest::Certificate::from_pem_bundle(files.pem(path)).map_err(bad)?;
        if certs.is_empty() {
            return Err(PoolError::NoCertificates { path: path.clone() });
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if key.insecure {
        builder = builder.danger_accept_invalid_certs(true);
    }
    ApiClient::from_builder(builder, limits).map_err(PoolError::Build)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        crate::config::load_str(text, "c.toml").unwrap()
    }

    const TARGETS: &str = "[credentials]\nmain = { type = \"token\", token_env = \"T\" }\n\n[[targets]]\nproject_id = \"a\"\nregion = \"r\"\ncredentials = \"main\"\n\n[[targets]]\nproject_id = \"b\"\nregion = \"r\"\ncredentials = \"main\"\ninsecure_skip_verify = true\n\n[[targets]]\nproject_id = \"c\"\nregion = \"r\"\ncredentials = \"main\"\n";

    #[test]
    fn targets_that_choose_alike_share_a_client() {
        let pool = ClientPool::build(&config(TARGETS)).unwrap();
        assert_eq!(pool.len(), 2);
        let c = config(TARGETS);
        let (a, _) = pool.client_for(&c.targets[0]).unwrap();
        let (b, _) = pool.client_for(&c.targets[1]).unwrap();
        let (cc, _) = pool.client_for(&c.targets[2]).unwrap();
        assert_eq!(a, cc);
        assert_ne!(a, b);
    }

    #[test]
    fn ca_files_that_go_bad_after_the_check_are_named() {
        // The configuration checks CA files when it loads; they can still
        // vanish or change before the clients are built.
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let text = format!("[poll]\nca_file = {:?}\n\n{TARGETS}", ca.display());
        let loaded = config(&text);

        std::fs::remove_file(&ca).unwrap();
        let e = ClientPool::build(&loaded).err().unwrap().to_string();
        assert!(
            e.starts_with(&format!("ca_file {:?}: cannot read:", ca)),
            "{e}"
        );

        std::fs::write(&ca, "not a certificate\n").unwrap();
        let e = ClientPool::build(&loaded).err().unwrap().to_string();
        assert_eq!(e, format!("ca_file {:?}: no PEM certificate found", ca));
    }
}
