//! A credential that dies, kept until shortly before it does.
//!
//! A [`Slot`] holds one token or one set of temporary keys. Callers that find
//! it stale queue on an async lock; the first one fetches, the others take
//! what it got, so that many polls waiting at once cost one call to IAM or
//! the metadata service, and a failure is not repeated by every waiter.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::AuthError;

/// The most a credential is renewed ahead of its death.
const MAX_MARGIN: Duration = Duration::from_secs(3600);

/// A value with the times it was obtained and dies.
#[derive(Clone)]
pub struct Expiring<T> {
    /// The credential.
    pub value: T,
    /// When it was obtained.
    pub obtained: SystemTime,
    /// When it dies.
    pub expires: SystemTime,
}

impl<T> Expiring<T> {
    /// Whether it is still worth using at `now`: more than a tenth of its
    /// lifetime (at most an hour) is left.
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        let lifetime = self
            .expires
            .duration_since(self.obtained)
            .unwrap_or_default();
        let margin = (lifetime / 10).min(MAX_MARGIN);
        self.expires
            .duration_since(now)
            .is_ok_and(|left| left > margin)
    }

    /// Whether it has not died yet at `now`.
    pub fn is_alive(&self, now: SystemTime) -> bool {
        self.expires > now
    }
}

struct State<T> {
    current: Option<Expiring<T>>,
    last_error: Option<Arc<AuthError>>,
}

/// One cached credential and the lock its renewals queue on.
pub struct Slot<T> {
    state: tokio::sync::Mutex<State<T>>,
    attempts: AtomicU64,
    expiry: Mutex<Option<SystemTime>>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot {
            state: tokio::sync::Mutex::new(State {
                current: None,
                last_error: None,
            }),
            attempts: AtomicU64::new(0),
            expiry: Mutex::new(None),
        }
    }
}

impl<T: Clone> Slot<T> {
    /// The cached value if fresh, else what `fetch` gets. With `force` (the
    /// cached value was refused), a fresh value counts only if someone else
    /// fetched it while this caller waited.
    pub async fn get<F, Fut>(&self, force: bool, fetch: F) -> Result<T, AuthError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Expiring<T>, AuthError>>,
    {
        let seen = self.attempts.load(Ordering::SeqCst);
        let mut state = self.state.lock().await;
        let fetched_meanwhile = self.attempts.load(Ordering::SeqCst) != seen;
        let now = SystemTime::now();

        if !force || fetched_meanwhile {
            if let Some(c) = state.current.as_ref().filter(|c| c.is_fresh(now)) {
                return Ok(c.value.clone());
            }
            if let (true, Some(e)) = (fetched_meanwhile, &state.last_error) {
                return Err(AuthError::Shared(e.clone()));
            }
        }

        // Counted when done, so that everyone who queued meanwhile shares it.
        let outcome = fetch().await;
        self.attempts.fetch_add(1, Ordering::SeqCst);
        match outcome {
            Ok(fresh) => {
                self.set_expiry(Some(fresh.expires));
                let value = fresh.value.clone();
                state.current = Some(fresh);
                state.last_error = None;
                Ok(value)
            }
            Err(e) => self.fetch_failed(&mut state, force, e, now),
        }
    }

    /// After a failed renewal, a credential that still lives is used on;
    /// one that was refused or died is dropped.
    fn fetch_failed(
        &self,
        state: &mut State<T>,
        force: bool,
        error: AuthError,
        now: SystemTime,
    ) -> Result<T, AuthError> {
        let error = Arc::new(error);
        state.last_error = Some(error.clone());
        if let Some(c) = state.current.as_ref().filter(|c| !force && c.is_alive(now)) {
            tracing::warn!(error = %error, "renewal failed, the current credential is used until it expires");
            return Ok(c.value.clone());
        }
        state.current = None;
        self.set_expiry(None);
        Err(AuthError::Shared(error))
    }

    /// When the cached value dies, if one is cached.
    pub fn expiry(&self) -> Option<SystemTime> {
        *self.expiry.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_expiry(&self, at: Option<SystemTime>) {
        *self.expiry.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn lasting(value: u32, secs: u64) -> Expiring<u32> {
        let now = SystemTime::now();
        Expiring {
            value,
            obtained: now,
            expires: now + Duration::from_secs(secs),
        }
    }

    #[test]
    fn freshness_keeps_a_tenth_of_the_lifetime_at_most_an_hour() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let short = Expiring {
            value: (),
            obtained: t0,
            expires: t0 + Duration::from_secs(100),
        };
        assert!(short.is_fresh(t0 + Duration::from_secs(89)));
        assert!(!short.is_fresh(t0 + Duration::from_secs(91)));
        let day = Expiring {
            value: (),
            obtained: t0,
            expires: t0 + Duration::from_secs(86_400),
        };
        assert!(day.is_fresh(t0 + Duration::from_secs(86_400 - 3_601)));
        assert!(!day.is_fresh(t0 + Duration::from_secs(86_400 - 3_599)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_fetch() {
        let slot = Arc::new(Slot::<u32>::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (slot, calls) = (slot.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                slot.get(false, || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok(lasting(7, 3600))
                })
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), 7);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(slot.expiry().is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_failure() {
        let slot = Arc::new(Slot::<u32>::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (slot, calls) = (slot.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                slot.get(false, || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Err::<Expiring<u32>, _>(AuthError::Unsupported("refused".into()))
                })
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap_err().to_string(), "refused");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn force_fetches_again_and_a_failed_renewal_keeps_a_live_value() {
        let slot = Slot::<u32>::default();
        let got = slot.get(false, || async { Ok(lasting(1, 3600)) }).await;
        assert_eq!(got.unwrap(), 1);
        let got = slot.get(true, || async { Ok(lasting(2, 3600)) }).await;
        assert_eq!(got.unwrap(), 2);

        // A stale but living value outlives a failed renewal...
        let now = SystemTime::now();
        let stale = Expiring {
            value: 3,
            obtained: now - Duration::from_secs(3550),
            expires: now + Duration::from_secs(50),
        };
        slot.get(true, || async { Ok(stale) }).await.unwrap();
        let failing = || async { Err(AuthError::Unsupported("down".into())) };
        assert_eq!(slot.get(false, failing).await.unwrap(), 3);
        // ...but not a refusal.
        let err = slot.get(true, failing).await.unwrap_err();
        assert_eq!(err.to_string(), "down");
        assert_eq!(slot.expiry(), None);
    }
}
