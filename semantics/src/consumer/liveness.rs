//! Whether the application is still polling: `max.poll.interval.ms` (KIP-62).
//! Heartbeats run on their own task, so they prove only that the process is
//! alive; a handler stuck for longer than the interval must give its
//! partitions up, as the Java client's heartbeat thread does.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When the application last asked for records, and whether it is waiting
/// for one now (waiting for records is polling).
#[derive(Debug)]
pub struct PollClock {
    start: Instant,
    last_poll_ms: AtomicU64,
    waiting: AtomicBool,
}

impl Default for PollClock {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            last_poll_ms: AtomicU64::new(0),
            waiting: AtomicBool::new(false),
        }
    }
}

impl PollClock {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The application asked for a record; `waiting` when none was ready.
    pub fn polled(&self, waiting: bool) {
        self.last_poll_ms.store(self.now_ms(), Ordering::Release);
        self.waiting.store(waiting, Ordering::Release);
    }

    /// The application stopped waiting (its poll returned or was dropped).
    pub fn stopped_waiting(&self) {
        self.polled(false);
    }

    /// Milliseconds-since-start of the last poll (a token to see a new one).
    pub fn last_poll(&self) -> u64 {
        self.last_poll_ms.load(Ordering::Acquire)
    }

    /// Whether the application has neither polled nor waited for `interval`.
    pub fn overdue(&self, interval: Duration) -> bool {
        if self.waiting.load(Ordering::Acquire) {
            return false;
        }
        let idle = self.now_ms().saturating_sub(self.last_poll());
        u128::from(idle) > interval.as_millis()
    }
}

/// Marks the end of a wait for records, also when the wait is cancelled
/// (`poll` with a timeout drops it).
pub struct WaitGuard<'a>(pub &'a PollClock);

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.0.stopped_waiting();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_is_polling_and_holding_a_record_is_not() {
        let clock = PollClock::default();
        clock.polled(false);
        assert!(!clock.overdue(Duration::from_secs(60)));
        std::thread::sleep(Duration::from_millis(30));
        assert!(clock.overdue(Duration::from_millis(10)));
        clock.polled(true);
        std::thread::sleep(Duration::from_millis(30));
        assert!(
            !clock.overdue(Duration::from_millis(10)),
            "waiting for records"
        );
        drop(WaitGuard(&clock));
        assert!(
            !clock.overdue(Duration::from_millis(10)),
            "just stopped waiting"
        );
        std::thread::sleep(Duration::from_millis(30));
        assert!(clock.overdue(Duration::from_millis(10)));
    }
}
