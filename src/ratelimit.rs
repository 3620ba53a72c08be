//! The request rate limit of `poll.rate_limit`: one schedule per endpoint,
//! shared by every project polled through it, so that a large fleet cannot
//! trip the gateway's own throttling.
//!
//! Each endpoint hands out send times one emission interval (`1 / rate`)
//! apart; a request that finds the schedule ahead of the clock waits for its
//! slot. There is no burst: requests are spread evenly, which is what a
//! gateway counting requests per second likes best. A request that gives up
//! while waiting (its poll's deadline came) leaves its slot unused; the
//! schedule then runs a little behind, never ahead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The schedules of every endpoint, for one rate.
#[derive(Debug)]
pub struct RateLimits {
    interval: Option<Duration>,
    next: Mutex<HashMap<String, Instant>>,
}

/// A slot that would start after the poll's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the request rate limit of the endpoint leaves no slot before the poll deadline")]
pub struct NoSlot;

impl RateLimits {
    /// Limits to `rate` requests per second per endpoint; `None` is no limit.
    pub fn new(rate: Option<f64>) -> Arc<Self> {
        let interval = rate
            .filter(|r| r.is_finite() && *r > 0.0)
            .map(|r| Duration::from_secs_f64((1.0 / r).min(3600.0)));
        Arc::new(RateLimits {
            interval,
            next: Mutex::new(HashMap::new()),
        })
    }

    /// Takes the next send slot of `endpoint` and returns when to send: now,
    /// or later when the endpoint is busy. A slot past `deadline` is not
    /// taken.
    pub fn reserve(
        &self,
        endpoint: &str,
        now: Instant,
        deadline: Instant,
    ) -> Result<Instant, NoSlot> {
        let Some(interval) = self.interval else {
            return Ok(now);
        };
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let free = next.get(endpoint).copied().unwrap_or(now).max(now);
        if free >= deadline {
            return Err(NoSlot);
        }
        // Endpoints come from the configuration, so this map stays small.
        next.insert(endpoint.to_string(), free + interval);
        Ok(free)
    }

    /// Waits for the next send slot of `endpoint`.
    pub async fn acquire(&self, endpoint: &str, deadline: Instant) -> Result<(), NoSlot> {
        let at = self.reserve(endpoint, Instant::now(), deadline)?;
        if at > Instant::now() {
            tokio::time::sleep_until(at.into()).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn no_rate_means_no_wait() {
        let limits = RateLimits::new(None);
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(limits.reserve("https://a", now, now + ms(1)), Ok(now));
        }
    }

    #[test]
    fn slots_are_one_interval_apart_per_endpoint() {
        let limits = RateLimits::new(Some(4.0));
        let now = Instant::now();
        let far = now + Duration::from_secs(60);
        let a: Vec<Instant> = (0..3)
            .map(|_| limits.reserve("https://a", now, far).unwrap())
            .collect();
        assert_eq!(a, [now, now + ms(250), now + ms(500)]);
        // Another endpoint has its own schedule.
        assert_eq!(limits.reserve("https://b", now, far), Ok(now));
        // An idle endpoint does not bank slots for a later burst.
        let later = now + Duration::from_secs(10);
        assert_eq!(limits.reserve("https://a", later, far), Ok(later));
        assert_eq!(limits.reserve("https://a", later, far), Ok(later + ms(250)));
    }

    #[test]
    fn a_slot_past_the_deadline_is_refused_and_not_taken() {
        let limits = RateLimits::new(Some(1.0));
        let now = Instant::now();
        assert_eq!(limits.reserve("e", now, now + ms(500)), Ok(now));
        assert_eq!(limits.reserve("e", now, now + ms(500)), Err(NoSlot));
        let far = now + Duration::from_secs(5);
        assert_eq!(
            limits.reserve("e", now, far),
            Ok(now + Duration::from_secs(1))
        );
    }

    #[tokio::test]
    async fn acquire_waits_for_the_slot() {
        let limits = RateLimits::new(Some(20.0));
        let start = Instant::now();
        let deadline = start + Duration::from_secs(10);
        for _ in 0..3 {
            limits.acquire("e", deadline).await.unwrap();
        }
        assert!(start.elapsed() >= ms(100));
    }
}
