//! How soon a broker whose connection attempt failed is tried again:
//! `reconnect.backoff.ms` doubling per failure up to
//! `reconnect.backoff.max.ms`, with ±20 % jitter so clients restarted
//! together do not reconnect in step (the Java client's rule, KIP-144).
//! A broker inside its backoff is refused at once, without I/O, so callers
//! bound for it fail fast and those bound for other brokers never wait.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The two settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectBackoff {
    /// `reconnect.backoff.ms`: the first wait.
    pub base: Duration,
    /// `reconnect.backoff.max.ms`: the longest wait.
    pub max: Duration,
}

impl Default for ReconnectBackoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(50),
            max: Duration::from_millis(1000),
        }
    }
}

/// Failed attempts per broker and when the next may start.
#[derive(Debug, Default)]
pub struct Reconnects {
    failing: HashMap<i32, (u32, Instant)>,
    seed: u64,
}

impl Reconnects {
    /// When broker `id` may be tried again, if not now.
    pub fn blocked_until(&self, id: i32, now: Instant) -> Option<Instant> {
        self.failing
            .get(&id)
            .map(|(_, at)| *at)
            .filter(|at| *at > now)
    }

    /// An attempt to reach `id` failed: the next waits longer.
    pub fn failed(&mut self, id: i32, policy: ReconnectBackoff, now: Instant) -> Duration {
        let failures = self.failing.get(&id).map_or(0, |(n, _)| *n) + 1;
        let exponent = (failures - 1).min(16);
        let wait = policy
            .base
            .saturating_mul(1 << exponent)
            .min(policy.max)
            .max(policy.base.min(policy.max));
        let wait = self.jitter(wait);
        self.failing.insert(id, (failures, now + wait));
        wait
    }

    /// `id` answered: its next failure starts from the base wait again.
    pub fn succeeded(&mut self, id: i32) {
        self.failing.remove(&id);
    }

    /// `wait` × a factor in [0.8, 1.2).
    fn jitter(&mut self, wait: Duration) -> Duration {
        // xorshift64, seeded from the clock once: jitter needs no quality.
        if self.seed == 0 {
            self.seed = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1;
        }
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let permille = 800 + self.seed % 400;
        wait.mul_f64(permille as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_maximum_with_jitter_and_reset_on_success() {
        let policy = ReconnectBackoff::default();
        let mut reconnects = Reconnects::default();
        let now = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..8 {
            waits.push(reconnects.failed(3, policy, now));
        }
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert!((40..60).contains(&ms[0]), "{ms:?}");
        assert!((80..120).contains(&ms[1]), "{ms:?}");
        assert!(ms[7] >= 800 && ms[7] < 1200, "{ms:?}");
        assert!(reconnects.blocked_until(3, now).is_some());
        assert!(
            reconnects.blocked_until(4, now).is_none(),
            "other brokers are not held"
        );
        reconnects.succeeded(3);
        assert!(reconnects.blocked_until(3, now).is_none());
        assert!(reconnects.failed(3, policy, now) < Duration::from_millis(60));
    }
}
