//! How long a retried message waits before its record comes back (DESIGN.md section 5):
//! exponential with jitter for transient errors, longer fixed waits where WhatsApp says the
//! problem is the recipient, not the moment.

use std::time::Duration;

use anna_shared::whatsapp::errors::ErrorClass;
use rand::Rng;

/// 131056: about one message every 6 s to the same customer is allowed.
const PAIR_RATE_WAIT: Duration = Duration::from_secs(6);
/// 131049: WhatsApp held the message back to keep the customer's engagement healthy;
/// retrying soon only repeats that.
const ENGAGEMENT_WAIT: Duration = Duration::from_secs(30 * 60);
/// 131057: the account is in maintenance (a throughput upgrade takes about a minute).
const MAINTENANCE_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait after the first failed attempt; doubles with each further attempt.
    pub base: Duration,
    /// Longest wait.
    pub cap: Duration,
    /// Least wait after 131056 (too many messages to this recipient).
    pub pair_rate_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(15 * 60),
            pair_rate_wait: PAIR_RATE_WAIT,
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`, after attempt `attempt` (1-based) failed.
    /// Equal jitter: half the backoff fixed, half random, so retries of a batch that failed
    /// together do not come back together.
    pub fn delay(&self, attempt: u32, class: ErrorClass, code: Option<i64>) -> Duration {
        let floor = match (class, code) {
            (_, Some(131049)) => ENGAGEMENT_WAIT,
            (_, Some(131057)) => MAINTENANCE_WAIT,
            (ErrorClass::RetryRecipientLater, _) => self.pair_rate_wait,
            _ => Duration::ZERO,
        };
        let exponent = attempt.saturating_sub(1).min(20);
        let backoff = self.base.saturating_mul(1 << exponent).min(self.cap);
        let half = backoff / 2;
        let jitter = rand::rng().random_range(Duration::ZERO..=half);
        (half + jitter).max(floor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_exponentially_within_jitter_bounds() {
        let policy = RetryPolicy::default();
        for (attempt, full) in [(1u32, 2u64), (2, 4), (3, 8), (4, 16)] {
            for _ in 0..50 {
                let d = policy.delay(attempt, ErrorClass::Retry, Some(131000));
                let full = Duration::from_secs(full);
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
            }
        }
    }

    #[test]
    fn never_waits_longer_than_the_cap() {
        let policy = RetryPolicy::default();
        for attempt in [10, 30, 1_000, u32::MAX] {
            assert!(policy.delay(attempt, ErrorClass::Retry, None) <= policy.cap);
        }
    }

    #[test]
    fn recipient_and_account_waits_have_floors() {
        let policy = RetryPolicy::default();
        assert!(policy.delay(1, ErrorClass::RetryRecipientLater, Some(131056)) >= PAIR_RATE_WAIT);
        assert!(policy.delay(1, ErrorClass::RetryRecipientLater, Some(131049)) >= ENGAGEMENT_WAIT);
        assert!(policy.delay(1, ErrorClass::Retry, Some(131057)) >= MAINTENANCE_WAIT);
    }
}
