//! Whether the application is still polling: `max.poll.interval.ms` (KIP-62).
//! Heartbeats run on their own task, so they prove only that the process is
//! alive; a handler stuck for longer than the interval must give its
//! partitions up, as the Java client's heartbeat thread does.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many times the application asked for records, and whether it is
/// waiting for one now (waiting for records is polling).
///
/// A poll only counts: reading the clock on every record cost a third of
/// the consumer's CPU. The group task, which checks liveness once per
/// heartbeat, notes when it first sees the count change. A poll is then
/// dated at most one heartbeat late, so a member is never declared gone
/// early; at worst it leaves one heartbeat interval late.
#[derive(Debug)]
pub struct PollClock {
    polls: AtomicU64,
    waiting: AtomicBool,
    /// The count the last check saw, and when it first saw that count.
    seen: Mutex<(u64, Instant)>,
}

impl Default for PollClock {
    fn default() -> Self {
        Self {
            polls: AtomicU64::new(0),
            waiting: AtomicBool::new(false),
            seen: Mutex::new((0, Instant::now())),
        }
    }
}

impl PollClock {
    /// The application asked for a record; `waiting` when none was ready.
    pub fn polled(&self, waiting: bool) {
        self.polls.fetch_add(1, Ordering::Release);
        self.waiting.store(waiting, Ordering::Release);
    }

    /// The application stopped waiting (its poll returned or was dropped).
    pub fn stopped_waiting(&self) {
        self.polled(false);
    }

    /// How many polls so far (a token to see a new one).
    pub fn last_poll(&self) -> u64 {
        self.polls.load(Ordering::Acquire)
    }

    /// Whether the application has neither polled nor waited for `interval`
    /// since this check first saw its last poll.
    pub fn overdue(&self, interval: Duration) -> bool {
        if self.waiting.load(Ordering::Acquire) {
            return false;
        }
        let polls = self.last_poll();
        let now = Instant::now();
        let mut seen = self.seen.lock().expect("poll clock lock");
        if seen.0 != polls {
            *seen = (polls, now);
            return false;
        }
        now.duration_since(seen.1) > interval
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
