//! Exponential backoff with jitter (KIP-580), one policy for producer retries
//! and for retrying a record handler before giving up on a record.
//!
//! Attempt `n` (1 = the first retry) waits `min(initial × multiplierⁿ⁻¹, max)`,
//! scaled by a uniform factor in `[1 − jitter, 1 + jitter)`. As in Kafka, an
//! `initial` above `max` means a constant `max` from the start.

use std::time::{Duration, Instant};

/// Exponential backoff with jitter, shared by producer retries and handler retries.
///
/// Serialized with millisecond fields (`initial_ms`, `max_ms`), so TOML or
/// JSON configs read naturally; missing fields take the defaults, unknown
/// ones are refused (a typo must not silently become a default).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Wait before the first retry (`retry.backoff.ms`).
    #[serde(rename = "initial_ms", with = "millis")]
    pub initial: Duration,
    /// Growth per retry; at least 1.
    pub multiplier: f64,
    /// Cap on the wait before jitter (`retry.backoff.max.ms`).
    #[serde(rename = "max_ms", with = "millis")]
    pub max: Duration,
    /// Relative jitter in `[0, 1]`: 0.2 spreads waits over ±20 %.
    pub jitter: f64,
    /// Attempts in all, the first included; `None` retries forever.
    pub max_attempts: Option<u32>,
}

impl Default for RetryPolicy {
    /// Kafka's defaults: 100 ms doubling up to 1 s, ±20 %, no attempt limit.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            multiplier: 2.0,
            max: Duration::from_millis(1_000),
            jitter: 0.2,
            max_attempts: None,
        }
    }
}

impl RetryPolicy {
    /// The policy of `retry.backoff.ms` and `retry.backoff.max.ms`: doubling
    /// with ±20 % jitter, attempts bounded by a deadline rather than a count.
    pub fn backoff_between(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            ..Self::default()
        }
    }

    /// Retries of one operation that must end by `deadline`: call
    /// [`Retrying::wait`] after each failed attempt.
    pub fn until(&self, deadline: Instant) -> Retrying<'_> {
        // On tokio's clock, so that tests with paused time see it move.
        let left = deadline.saturating_duration_since(Instant::now());
        Retrying {
            policy: self,
            deadline: tokio::time::Instant::now() + left,
            retries: 0,
        }
    }

    /// The wait before retry `attempt` (1 = first retry), with random jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.backoff_with(attempt, unit_random())
    }

    /// [`backoff`](Self::backoff) with `unit` in `[0, 1)` in place of the
    /// random draw: 0.5 gives the un-jittered value. Never panics, whatever
    /// the fields hold; out-of-range inputs are clamped.
    pub fn backoff_with(&self, attempt: u32, unit: f64) -> Duration {
        let max = self.max.as_nanos() as f64;
        let initial = self.initial.as_nanos() as f64;
        let exponent = f64::from(attempt.saturating_sub(1));
        // f64 saturates to infinity instead of overflowing; `min` caps it. A
        // zero initial times an infinite growth is NaN, which means zero here.
        let grown = initial * self.multiplier.max(1.0).powf(exponent);
        let base = if grown.is_nan() { 0.0 } else { grown.min(max) };
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.5
        };
        // 1 + j·(2u − 1): exactly 1 at u = 0.5, so the un-jittered table is exact.
        let nanos = (base * (1.0 + jitter * (2.0 * unit - 1.0))).round();
        if nanos >= u64::MAX as f64 {
            // Beyond ~584 years: only reachable with an absurd `max`.
            return Duration::from_nanos(u64::MAX);
        }
        Duration::from_nanos(nanos.max(0.0) as u64)
    }

    /// Whether another attempt is allowed after `attempts_made` attempts.
    pub fn should_retry(&self, attempts_made: u32) -> bool {
        self.max_attempts.is_none_or(|max| attempts_made < max)
    }

    /// Checks the fields; the error names the field and what it accepts.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.multiplier.is_finite() && self.multiplier >= 1.0) {
            return Err(format!(
                "multiplier must be a finite number >= 1 (got {})",
                self.multiplier
            ));
        }
        if !(self.jitter.is_finite() && (0.0..=1.0).contains(&self.jitter)) {
            return Err(format!(
                "jitter must be between 0 and 1 (got {})",
                self.jitter
            ));
        }
        if self.max_attempts == Some(0) {
            return Err("max_attempts must be at least 1, or unset for no limit (got 0)".into());
        }
        Ok(())
    }

    /// From Kafka keys: `retry.backoff.ms`, `retry.backoff.max.ms`, `retries`
    /// (→ `max_attempts = retries + 1`). Other keys are ignored, so a whole
    /// client property map can be passed; absent keys keep the defaults.
    pub fn from_properties<I, K, V>(properties: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut policy = Self::default();
        for (key, value) in properties {
            let (key, value) = (key.as_ref(), value.as_ref().trim());
            match key {
                "retry.backoff.ms" => policy.initial = Duration::from_millis(ms(key, value)?),
                "retry.backoff.max.ms" => policy.max = Duration::from_millis(ms(key, value)?),
                "retries" => {
                    let retries: i32 = value
                        .parse()
                        .ok()
                        .filter(|r| *r >= 0)
                        .ok_or_else(|| invalid(key, value, "an integer in [0, 2147483647]"))?;
                    policy.max_attempts = Some(retries as u32 + 1);
                }
                _ => {}
            }
        }
        policy.validate()?;
        Ok(policy)
    }

    /// The policy of a producer's configuration: its `retry.backoff.ms`,
    /// `retry.backoff.max.ms` and `retries`, doubling with ±20 % jitter.
    pub fn for_producer(config: &crate::config::ProducerConfig) -> Self {
        Self {
            initial: config.retry_backoff,
            max: config.retry_backoff_max,
            max_attempts: Some(config.retries.saturating_add(1)),
            ..Self::default()
        }
    }
}

/// The retries of one operation bound by a deadline (see
/// [`RetryPolicy::until`]).
#[derive(Debug)]
pub struct Retrying<'a> {
    policy: &'a RetryPolicy,
    deadline: tokio::time::Instant,
    retries: u32,
}

impl Retrying<'_> {
    /// Waits the backoff before the next attempt and returns true. When that
    /// wait would reach the deadline it waits until the deadline and returns
    /// false: the operation fails when its time is up, neither earlier (a
    /// caller asked to block up to `max.block.ms` blocks that long) nor later
    /// (no attempt starts that could overrun it). Returns false at once when
    /// the policy's attempts are used up.
    pub async fn wait(&mut self) -> bool {
        self.retries = self.retries.saturating_add(1);
        if self
            .policy
            .max_attempts
            .is_some_and(|max| self.retries >= max)
        {
            return false;
        }
        let backoff = self.policy.backoff(self.retries);
        let now = tokio::time::Instant::now();
        if now + backoff >= self.deadline {
            tokio::time::sleep_until(self.deadline).await;
            return false;
        }
        tokio::time::sleep(backoff).await;
        true
    }

    /// Retries waited for so far.
    pub fn retries(&self) -> u32 {
        self.retries
    }
}

fn ms(key: &str, value: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| invalid(key, value, "milliseconds, a non-negative integer"))
}

fn invalid(key: &str, value: &str, expected: &str) -> String {
    format!("{key}: expected {expected}, got {value:?}")
}

/// A cheap uniform value in [0, 1) for jitter (not for anything secret):
/// `RandomState` is randomly keyed per instance, so no RNG crate is needed.
fn unit_random() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// `Duration` as whole milliseconds in serde form.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

#[cfg(test)]
#[path = "retry_tests.rs"]
mod tests;
