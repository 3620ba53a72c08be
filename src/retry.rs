//! When a failed request is worth another try, and how long to wait first.
//!
//! Only failures that may pass on their own are tried again: a connection
//! that could not be made or broke, a request that timed out, and the
//! answers 429, 500, 502, 503 and 504. The wait grows exponentially with
//! full jitter (a random time between zero and the exponential step), so
//! that many projects failing together do not come back together. A
//! `Retry-After` header on a 429 or 503 sets a floor under the wait; when
//! that floor lies past the poll's deadline the poll gives up at once.

use std::time::{Duration, SystemTime};

use rand::Rng;

use crate::project::Reason;

/// The first backoff step: the wait before the first retry is at most this.
pub const BASE_DELAY: Duration = Duration::from_millis(300);
/// No backoff step grows past this.
pub const MAX_DELAY: Duration = Duration::from_secs(5);

/// Whether a failure with `reason` and HTTP `status` may pass on a retry.
pub fn is_retryable(reason: Reason, status: Option<u16>) -> bool {
    match status {
        Some(code) => matches!(code, 429 | 500 | 502 | 503 | 504),
        None => matches!(reason, Reason::Connect | Reason::Timeout),
    }
}

/// The upper bound of the wait before retry number `retry` (0 for the
/// first): `BASE_DELAY * 2^retry`, capped at [`MAX_DELAY`].
pub fn backoff_ceiling(retry: u32) -> Duration {
    let factor = 1u32.checked_shl(retry.min(16)).unwrap_or(u32::MAX);
    BASE_DELAY.saturating_mul(factor).min(MAX_DELAY)
}

/// A wait drawn uniformly from `[0, backoff_ceiling(retry)]` (full jitter).
pub fn backoff(retry: u32) -> Duration {
    let ceiling = backoff_ceiling(retry);
    rand::thread_rng().gen_range(Duration::ZERO..=ceiling)
}

/// How long to wait before retry number `retry`: the jittered backoff,
/// but never less than what the server asked for with `Retry-After`.
pub fn wait_before(retry: u32, retry_after: Option<Duration>) -> Duration {
    let drawn = backoff(retry);
    retry_after.map_or(drawn, |floor| drawn.max(floor))
}

/// Reads a `Retry-After` value: a number of seconds or an HTTP-date
/// (RFC 9110), measured from `now`. A date in the past means no wait;
/// anything unreadable is ignored.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::from(date);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_passing_failures_are_retried() {
        for code in [429, 500, 502, 503, 504] {
            assert!(is_retryable(Reason::Http5xx, Some(code)), "{code}");
        }
        for code in [400, 401, 403, 404, 409, 501, 505] {
            assert!(!is_retryable(Reason::Http4xx, Some(code)), "{code}");
        }
        assert!(is_retryable(Reason::Connect, None));
        assert!(is_retryable(Reason::Timeout, None));
        for reason in [Reason::Decode, Reason::TooLarge, Reason::Auth] {
            assert!(!is_retryable(reason, None), "{reason:?}");
        }
        // A body cut off after a 200 came is a broken connection too.
        assert!(!is_retryable(Reason::Decode, Some(200)));
    }

    #[test]
    fn backoff_grows_then_stops_at_the_cap() {
        assert_eq!(backoff_ceiling(0), Duration::from_millis(300));
        assert_eq!(backoff_ceiling(1), Duration::from_millis(600));
        assert_eq!(backoff_ceiling(3), Duration::from_millis(2400));
        assert_eq!(backoff_ceiling(5), MAX_DELAY);
        assert_eq!(backoff_ceiling(u32::MAX), MAX_DELAY);
        for retry in 0..8 {
            for _ in 0..50 {
                assert!(backoff(retry) <= backoff_ceiling(retry));
            }
        }
    }

    #[test]
    fn retry_after_is_a_floor_under_the_backoff() {
        let floor = Duration::from_secs(2);
        for _ in 0..50 {
            assert!(wait_before(0, Some(floor)) >= floor);
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        // Wed, 21 Oct 2015 07:28:00 GMT is 1445412480.
        let cases = [
            ("2", Some(Duration::from_secs(2))),
            (" 120 ", Some(Duration::from_secs(120))),
            ("0", Some(Duration::ZERO)),
            (
                "Wed, 21 Oct 2015 07:28:30 GMT",
                Some(Duration::from_secs(30)),
            ),
            ("Wed, 21 Oct 2015 07:27:00 GMT", Some(Duration::ZERO)),
            ("-1", None),
            ("soon", None),
            ("", None),
        ];
        for (value, want) in cases {
            assert_eq!(parse_retry_after(value, now), want, "{value:?}");
        }
    }
}
