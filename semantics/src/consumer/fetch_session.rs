//! Incremental fetch sessions (KIP-227). After one full Fetch the broker
//! keeps the partitions and their positions under a session id; each later
//! request names only the partitions whose position changed, joined or left
//! (`forgotten_topics_data`), and the answer names only partitions with
//! something new. With 1,000 assigned partitions a request carries the few
//! that moved instead of all of them.
//!
//! A pure state machine, one per broker, driven by the consumer's driver:
//! it never has two requests out (one fetch per broker at a time), so the
//! epochs go out in order.

use std::collections::HashMap;

use kafka_wire::KafkaCode;

use super::fetch::FetchTarget;
use super::TopicPartition;

/// The broker does not know the session (it was evicted or the broker
/// restarted).
const FETCH_SESSION_ID_NOT_FOUND: KafkaCode = KafkaCode(70);
/// The request's epoch is not the one the broker expects.
const INVALID_FETCH_SESSION_EPOCH: KafkaCode = KafkaCode(71);
/// Fetch v7 is the first with sessions.
pub const FIRST_SESSION_VERSION: i16 = 7;

/// One broker's session as this client sees it.
#[derive(Debug, Default)]
pub struct FetchSession {
    /// The broker's id for the session; 0 when there is none.
    id: i32,
    /// Epoch of the next request: 0 opens a new session with a full
    /// request (closing the one `id` names, if any), then 1, 2, …
    epoch: i32,
    /// What the broker's session holds, as last sent and accepted.
    held: HashMap<TopicPartition, FetchTarget>,
    /// What it will hold once the request out now is accepted.
    pending: Option<HashMap<TopicPartition, FetchTarget>>,
}

/// What to put in the next Fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRequest {
    /// `session_id` field.
    pub session_id: i32,
    /// `session_epoch` field.
    pub session_epoch: i32,
    /// The partitions to name: all of them in a full request, else those
    /// that are new to the session or whose position changed.
    pub targets: Vec<FetchTarget>,
    /// Partitions to drop from the session.
    pub forgotten: Vec<TopicPartition>,
}

/// What an answer means for the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAnswer {
    /// Accepted: the answer's partitions are to be applied.
    Accepted,
    /// The broker lost or refused the session: nothing in the answer, and
    /// the next request (at once, no backoff) is a full one.
    Restart,
    /// Another top-level error: the caller handles it as without a session;
    /// the next request is a full one.
    Failed,
}

impl FetchSession {
    /// The request for `targets`, every partition to fetch from this broker
    /// now. A partition left out is forgotten by the session.
    pub fn next_request(&mut self, targets: &[FetchTarget]) -> SessionRequest {
        let wanted: HashMap<TopicPartition, FetchTarget> = targets
            .iter()
            .map(|target| (target.tp.clone(), target.clone()))
            .collect();
        let request = if self.epoch == 0 {
            SessionRequest {
                session_id: self.id,
                session_epoch: 0,
                targets: targets.to_vec(),
                forgotten: Vec::new(),
            }
        } else {
            let changed = targets
                .iter()
                .filter(|target| self.held.get(&target.tp) != Some(*target))
                .cloned()
                .collect();
            let mut forgotten: Vec<TopicPartition> = self
                .held
                .keys()
                .filter(|tp| !wanted.contains_key(*tp))
                .cloned()
                .collect();
            forgotten.sort();
            SessionRequest {
                session_id: self.id,
                session_epoch: self.epoch,
                targets: changed,
                forgotten,
            }
        };
        self.pending = Some(wanted);
        request
    }

    /// The answer to the last request: its top-level error and session id.
    pub fn on_answer(&mut self, error: KafkaCode, session_id: i32) -> SessionAnswer {
        let pending = self.pending.take().unwrap_or_default();
        if error == FETCH_SESSION_ID_NOT_FOUND {
            self.start_over(0);
            return SessionAnswer::Restart;
        }
        if error == INVALID_FETCH_SESSION_EPOCH {
            // Close the broker's session and open a new one.
            self.start_over(self.id);
            return SessionAnswer::Restart;
        }
        if !error.is_ok() {
            self.start_over(self.id);
            return SessionAnswer::Failed;
        }
        if self.epoch == 0 {
            // 0: the broker keeps no session (its cache is full, say): every
            // request stays a full one.
            self.id = session_id;
            self.epoch = i32::from(session_id != 0);
        } else {
            self.epoch = next_epoch(self.epoch);
        }
        self.held = if self.id == 0 {
            HashMap::new()
        } else {
            pending
        };
        SessionAnswer::Accepted
    }

    /// The request failed without an answer (connection lost, timed out):
    /// whether the broker applied it is unknown, so start over with a full
    /// request that closes the old session.
    pub fn on_failure(&mut self) {
        self.pending = None;
        self.start_over(self.id);
    }

    fn start_over(&mut self, id: i32) {
        self.id = id;
        self.epoch = 0;
        self.held.clear();
    }
}

/// Epochs run 1, 2, … and wrap back to 1 (0 opens a session, −1 is
/// sessionless).
fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

#[cfg(test)]
#[path = "fetch_session_tests.rs"]
mod tests;
