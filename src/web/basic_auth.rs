//! `basic_auth_users`: HTTP basic authentication against bcrypt hashes.
//!
//! bcrypt is slow on purpose, so a check that passed or failed is
//! remembered under a SHA-256 of the user, the hash and the password; a
//! Prometheus server that scrapes every 15 seconds pays the cost once. The
//! cache survives reloads because the hash is part of the key: a changed
//! password hash is checked afresh. Only one bcrypt check runs at a time, on
//! a blocking thread, so a flood of wrong passwords cannot starve scrapes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::file::Redacted;

/// How many outcomes the cache keeps before it starts over.
const CACHE_LIMIT: usize = 1024;

/// The configured users and their bcrypt hashes.
#[derive(Debug, Clone)]
pub struct Users {
    hashes: BTreeMap<String, Redacted>,
}

impl Users {
    /// Checks that every hash is a bcrypt hash; the message names the user.
    pub fn new(hashes: BTreeMap<String, Redacted>) -> Result<Self, String> {
        for (user, hash) in &hashes {
            if hash.0.parse::<bcrypt::HashParts>().is_err() {
                return Err(format!(
                    "basic_auth_users: the password of {user:?} is not a bcrypt hash"
                ));
            }
        }
        Ok(Users { hashes })
    }

    /// Whether no user is configured (authentication is off).
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }
}

/// Remembers bcrypt outcomes and lets one check run at a time.
pub struct Checker {
    cache: Mutex<HashMap<[u8; 32], bool>>,
    bcrypt: Semaphore,
}

impl Default for Checker {
    fn default() -> Self {
        Checker {
            cache: Mutex::new(HashMap::new()),
            bcrypt: Semaphore::new(1),
        }
    }
}

impl Checker {
    /// Whether the `Authorization` header value lets the request in.
    pub async fn allows(self: &Arc<Self>, users: &Users, authorization: Option<&str>) -> bool {
        let Some((user, password)) = authorization.and_then(decode_basic) else {
            return false;
        };
        // An unknown user is checked against a real hash all the same, so
        // that the answer takes as long and does not tell which users exist.
        let (known, hash) = match users.hashes.get(&user) {
            Some(h) => (true, h.0.clone()),
            None => match users.hashes.values().next() {
                Some(h) => (false, h.0.clone()),
                None => return false,
            },
        };
        let key = cache_key(&user, &hash, &password);
        if let Some(ok) = self.cached(&key) {
            return ok && known;
        }
        let ok = self.verify(password, hash).await && known;
        self.remember(key, ok);
        ok
    }

    async fn verify(&self, password: String, hash: String) -> bool {
        let Ok(_permit) = self.bcrypt.acquire().await else {
            return false;
        };
        tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
            .await
            .unwrap_or(false)
    }

    fn cached(&self, key: &[u8; 32]) -> Option<bool> {
        self.lock().get(key).copied()
    }

    fn remember(&self, key: [u8; 32], ok: bool) {
        let mut cache = self.lock();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, ok);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], bool>> {
        // Each change is one insert or clear: a poisoned lock is still whole.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The user and password of a `Basic` authorization value.
fn decode_basic(value: &str) -> Option<(String, String)> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// A digest of everything the outcome depends on; the password itself is
/// never stored.
fn cache_key(user: &str, hash: &str, password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [user, hash, password] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, password: &str) -> String {
        let raw = format!("{user}:{password}");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    fn users() -> Users {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        Users::new(BTreeMap::from([("alice".to_string(), Redacted(hash))])).unwrap()
    }

    #[tokio::test]
    async fn right_password_passes_and_others_do_not() {
        let users = users();
        let c = Arc::new(Checker::default());
        assert!(c.allows(&users, Some(&header("alice", "s3cret"))).await);
        assert!(!c.allows(&users, Some(&header("alice", "wrong"))).await);
        assert!(!c.allows(&users, Some(&header("bob", "s3cret"))).await);
        assert!(!c.allows(&users, Some("Bearer abc")).await);
        assert!(!c.allows(&users, None).await);
        // The second right answer comes from the cache.
        assert!(c.allows(&users, Some(&header("alice", "s3cret"))).await);
        assert_eq!(c.lock().len(), 3);
    }

    #[test]
    fn hashes_that_are_not_bcrypt_are_refused_by_user_name() {
        let bad = BTreeMap::from([("bob".to_string(), Redacted("plain".into()))]);
        assert_eq!(
            Users::new(bad).unwrap_err(),
            "basic_auth_users: the password of \"bob\" is not a bcrypt hash"
        );
    }

    #[test]
    fn basic_values_decode() {
        assert_eq!(
            decode_basic(&header("a", "b:c")),
            Some(("a".into(), "b:c".into()))
        );
        assert_eq!(decode_basic("Basic !!!"), None);
    }
}
