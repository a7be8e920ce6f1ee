//! Fault injection: what makes the simulator misbehave the way the real Cloud API does under
//! load and failure, so retries, pacing and the never-twice promise can be tested.
//!
//! Rates are probabilities per send (0.0 to 1.0). A *hang* holds the request open for
//! [`Faults::hang_ms`] and never answers usefully: before accepting, nothing was sent; after
//! accepting, the send is recorded (the customer got the message) but the answer is lost —
//! the case that tempts a sender to send twice.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// HTTP 500 with Graph code 131000 (something went wrong), before accepting.
    pub server_error_rate: f64,
    /// Hang before accepting: nothing is sent, the client times out.
    pub hang_before_accept_rate: f64,
    /// Accept and record the send, then hang: the answer is lost.
    pub hang_after_accept_rate: f64,
    /// How long a hang lasts (milliseconds); default 30 s.
    pub hang_ms: Option<u64>,
    /// Sends per second the number accepts; more within one second → 130429.
    pub throughput_per_second: Option<u32>,
    /// A recipient may receive one message per this many milliseconds; sooner → 131056.
    pub pair_interval_ms: Option<u64>,
    /// Random 131056 answers (pair rate) at this rate.
    pub pair_rate_error_rate: f64,
    /// Graph error code answered for these recipients (digits) instead of accepting.
    pub error_for_numbers: HashMap<String, u32>,
}

impl Faults {
    pub fn hang(&self) -> Duration {
        Duration::from_millis(self.hang_ms.unwrap_or(30_000))
    }

    /// Rates outside 0..=1 are configuration mistakes, said at once rather than misbehaving.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("server_error_rate", self.server_error_rate),
            ("hang_before_accept_rate", self.hang_before_accept_rate),
            ("hang_after_accept_rate", self.hang_after_accept_rate),
            ("pair_rate_error_rate", self.pair_rate_error_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1, got {rate}"));
            }
        }
        if self.throughput_per_second == Some(0) {
            return Err("throughput_per_second must be at least 1".into());
        }
        Ok(())
    }
}

/// What the fault stage decided for one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Proceed,
    ServerError,
    HangBeforeAccept,
    Throughput,
    PairRate,
    ErrorCode(u32),
}

/// The moving parts behind [`Faults`]: accepted-send times for the throughput window and the
/// last send per recipient for the pair rate.
#[derive(Debug, Default)]
pub struct FaultState {
    pub faults: Faults,
    window: VecDeque<Instant>,
    last_per_recipient: HashMap<String, Instant>,
}

fn roll(rate: f64) -> bool {
    rate > 0.0 && rand::rng().random_bool(rate.min(1.0))
}

impl FaultState {
    pub fn new(faults: Faults) -> Self {
        Self {
            faults,
            ..Self::default()
        }
    }

    /// Decides, before accepting, whether this send fails and how. A send that passes takes
    /// its place in the throughput window and the recipient's pair-rate slot.
    pub fn check(&mut self, recipient: &str, now: Instant) -> Verdict {
        if roll(self.faults.server_error_rate) {
            return Verdict::ServerError;
        }
        if roll(self.faults.hang_before_accept_rate) {
            return Verdict::HangBeforeAccept;
        }
        if let Some(code) = self.faults.error_for_numbers.get(recipient) {
            return Verdict::ErrorCode(*code);
        }
        if let Some(limit) = self.faults.throughput_per_second {
            while self
                .window
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
            {
                self.window.pop_front();
            }
            if self.window.len() >= limit as usize {
                return Verdict::Throughput;
            }
        }
        if let Some(interval) = self.faults.pair_interval_ms.map(Duration::from_millis)
            && self
                .last_per_recipient
                .get(recipient)
                .is_some_and(|last| now.duration_since(*last) < interval)
        {
            return Verdict::PairRate;
        }
        if roll(self.faults.pair_rate_error_rate) {
            return Verdict::PairRate;
        }
        if self.faults.throughput_per_second.is_some() {
            self.window.push_back(now);
        }
        if self.faults.pair_interval_ms.is_some() {
            self.last_per_recipient.insert(recipient.to_owned(), now);
        }
        Verdict::Proceed
    }

    /// Whether this accepted send loses its answer.
    pub fn lose_answer(&self) -> bool {
        roll(self.faults.hang_after_accept_rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_faults_by_default() {
        let mut state = FaultState::default();
        let now = Instant::now();
        for _ in 0..1_000 {
            assert_eq!(state.check("5511987654321", now), Verdict::Proceed);
        }
        assert!(!state.lose_answer());
    }

    #[test]
    fn throughput_limit_counts_a_sliding_second() {
        let mut state = FaultState::new(Faults {
            throughput_per_second: Some(3),
            ..Faults::default()
        });
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(
                state.check(&format!("55119876543{i:02}"), t0),
                Verdict::Proceed
            );
        }
        assert_eq!(state.check("5511987654399", t0), Verdict::Throughput);
        let later = t0 + Duration::from_millis(1_001);
        assert_eq!(state.check("5511987654399", later), Verdict::Proceed);
    }

    #[test]
    fn pair_rate_defers_only_that_recipient() {
        let mut state = FaultState::new(Faults {
            pair_interval_ms: Some(6_000),
            ..Faults::default()
        });
        let t0 = Instant::now();
        assert_eq!(state.check("A", t0), Verdict::Proceed);
        assert_eq!(
            state.check("A", t0 + Duration::from_secs(1)),
            Verdict::PairRate
        );
        assert_eq!(
            state.check("B", t0 + Duration::from_secs(1)),
            Verdict::Proceed
        );
        assert_eq!(
            state.check("A", t0 + Duration::from_secs(7)),
            Verdict::Proceed
        );
    }

    #[test]
    fn certain_rates_always_fire_and_codes_follow_numbers() {
        let mut state = FaultState::new(Faults {
            server_error_rate: 1.0,
            ..Faults::default()
        });
        assert_eq!(state.check("A", Instant::now()), Verdict::ServerError);
        let mut state = FaultState::new(Faults {
            error_for_numbers: HashMap::from([("A".to_owned(), 131031)]),
            ..Faults::default()
        });
        assert_eq!(state.check("A", Instant::now()), Verdict::ErrorCode(131031));
        assert_eq!(state.check("B", Instant::now()), Verdict::Proceed);
    }

    #[test]
    fn rates_outside_zero_to_one_are_refused() {
        let bad = Faults {
            server_error_rate: 1.5,
            ..Faults::default()
        };
        assert!(bad.validate().is_err());
        assert!(Faults::default().validate().is_ok());
    }
}
