//! KIP-320 in the driver: validating positions with a new leader
//! (OffsetForLeaderEpoch) and acting on a log truncated under the consumer.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use kafka_wire::{ConnError, KafkaCode};
use tracing::{debug, warn};

use super::{Driver, FetchFailure, Internal};
use crate::consumer::partition::{Cursor, Delivery};
use crate::consumer::validate::{Validation, ValidationTarget};
use crate::consumer::{ConsumeError, OffsetReset, TopicPartition};

impl Driver {
    pub(super) fn start_validation(
        &mut self,
        broker: i32,
        targets: Vec<(ValidationTarget, Arc<Cursor>)>,
    ) {
        let shared = self.shared.clone();
        let tx = self.internal_tx.clone();
        tokio::spawn(async move {
            let plain: Vec<ValidationTarget> = targets.iter().map(|(t, _)| t.clone()).collect();
            let request = crate::consumer::validate::build_request(&plain);
            let result = match shared.cluster.connection(broker).await {
                Ok(connection) => match connection.send(&request).await {
                    Ok(response) => Ok(crate::consumer::validate::judge(&plain, &response)),
                    Err(e) => Err(FetchFailure::Connection(e)),
                },
                Err(e) => Err(FetchFailure::Connection(e)),
            };
            let _ = tx.send(Internal::Validated { targets, result });
        });
    }

    pub(super) fn on_validated(
        &mut self,
        targets: Vec<(ValidationTarget, Arc<Cursor>)>,
        result: Result<Vec<(TopicPartition, Validation)>, FetchFailure>,
    ) {
        // A broker without OffsetForLeaderEpoch v2+ cannot tell: fetch on
        // as clients before KIP-320 did.
        let mut unsupported = false;
        let mut answers: HashMap<TopicPartition, Validation> = match result {
            Ok(answers) => answers.into_iter().collect(),
            Err(FetchFailure::Connection(ConnError::Version(e))) => {
                debug!(error = %e, "position validation not offered");
                unsupported = true;
                HashMap::new()
            }
            Err(failure) => {
                if let FetchFailure::Connection(e) = &failure {
                    debug!(error = %e, "position validation failed");
                }
                HashMap::new()
            }
        };
        let mut deliveries = Vec::new();
        for (target, cursor) in targets {
            let Some(state) = self.partitions.get_mut(&target.tp) else {
                continue;
            };
            if !Arc::ptr_eq(&state.cursor, &cursor) || state.fetch_offset != Some(target.offset) {
                continue; // repositioned meanwhile: nothing left to validate
            }
            state.validating = false;
            let answer = if unsupported {
                Some(Validation::Error(KafkaCode(35)))
            } else {
                answers.remove(&target.tp)
            };
            let settled = match answer {
                Some(Validation::Valid) => true,
                Some(Validation::Diverged(end)) => {
                    deliveries.extend(self.truncated(
                        &target.tp,
                        target.offset,
                        Some(end.end_offset),
                    ));
                    true
                }
                Some(Validation::Unknown) => {
                    deliveries.extend(self.truncated(&target.tp, target.offset, None));
                    true
                }
                Some(Validation::Error(code)) if code.0 == 35 || !code.class().is_retriable() => {
                    // UNSUPPORTED_VERSION and the like: the broker cannot
                    // say; what it refuses for good shows on the fetch.
                    debug!(tp = %target.tp, %code, "position validation not possible");
                    true
                }
                Some(Validation::Error(code)) => {
                    debug!(tp = %target.tp, %code, "position validation refused; retrying");
                    self.shared.cluster.invalidate(&target.tp.topic);
                    false
                }
                None => false,
            };
            // The partition may be gone (reset through a position lookup).
            let Some(state) = self.partitions.get_mut(&target.tp) else {
                continue;
            };
            if settled {
                state.needs_validation = false;
                // Validated against this leader epoch: the next new one
                // asks again.
                state.fetched_under_epoch =
                    state.fetched_under_epoch.max(target.current_leader_epoch);
            } else {
                state.back_off(&self.retry);
                self.refresh_metadata();
            }
        }
        for delivery in deliveries {
            self.deliver(delivery);
        }
    }

    /// The log of `tp` was truncated below the position `offset` (KIP-320).
    /// With `auto.offset.reset=none` the partition stops with a typed error;
    /// otherwise it goes on from where the leader's log parts from what was
    /// read (or is reset per the policy when the leader cannot say where),
    /// never from `offset`, which would skip the new log's records before it.
    pub(super) fn truncated(
        &mut self,
        tp: &TopicPartition,
        offset: i64,
        divergent_offset: Option<i64>,
    ) -> Option<Delivery> {
        let reset = self.shared.config.auto_offset_reset;
        // An epoch ending at or after the position leaves nothing behind it
        // to read again: the logs part at the position at the latest.
        let divergent_offset = divergent_offset.map(|at| at.min(offset));
        let state = self.partitions.get_mut(tp)?;
        warn!(%tp, offset, ?divergent_offset, "log truncated below the position");
        if reset == OffsetReset::None {
            state.halted = true;
            state.needs_validation = false;
            return Some(Delivery::Error {
                cursor: Some(state.cursor.clone()),
                error: ConsumeError::LogTruncated {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    offset,
                    divergent_offset,
                },
            });
        }
        match divergent_offset {
            // From where the logs part, or from where the application
            // stopped if that is earlier: records fetched but not handed
            // out are dropped with the cursor and must be read again.
            Some(at) => {
                let consumed = state.resume_offset().unwrap_or(offset);
                state.reposition(at.min(offset).min(consumed))
            }
            None => {
                let assignment = state.cursor.assignment.clone();
                state.cursor.revoked.store(true, Ordering::Release);
                self.partitions.remove(tp);
                self.add_reset(tp.clone(), &assignment);
            }
        }
        None
    }
}
