//! Delivery futures: one shared outcome per batch, one cheap future per record.
//!
//! A record's future holds the batch's outcome and its index in the batch, so
//! completing a batch of thousands of records is one write and one wake-up
//! pass, not one channel per record. A batch the broker refused as too large
//! is split: its outcome then points at its pieces' outcomes, and each future
//! follows the piece that holds its record.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

use super::record::Delivery;
use crate::producer::error::ProduceError;

/// What the broker said about a whole batch.
#[derive(Debug, Clone)]
pub(crate) struct BatchAck {
    pub base_offset: i64,
    /// Set when the topic uses log-append time.
    pub log_append_time: Option<i64>,
}

/// The shared outcome of one batch.
#[derive(Debug)]
pub(crate) struct BatchOutcome {
    /// Order in which batches were opened, producer-wide (for `flush`).
    pub id: u64,
    pub topic: Arc<str>,
    pub partition: i32,
    result: OnceLock<Result<BatchAck, ProduceError>>,
    /// Set instead of `result` when the batch was split: each piece's first
    /// offset delta in this batch, and its outcome, in order.
    pieces: OnceLock<Vec<(i32, Arc<BatchOutcome>)>>,
    wakers: Mutex<Vec<Waker>>,
}

impl BatchOutcome {
    pub fn new(id: u64, topic: Arc<str>, partition: i32) -> Arc<Self> {
        Arc::new(Self {
            id,
            topic,
            partition,
            result: OnceLock::new(),
            pieces: OnceLock::new(),
            wakers: Mutex::new(Vec::new()),
        })
    }

    /// Settles the batch once; later calls (and calls after a split) are
    /// ignored.
    pub fn complete(&self, result: Result<BatchAck, ProduceError>) {
        if self.pieces.get().is_none() && self.result.set(result).is_ok() {
            self.wake_all();
        }
    }

    /// Hands the batch's records over to the outcomes of its pieces: `pieces`
    /// holds each piece's first offset delta in this batch, ascending from 0.
    pub fn split_into(&self, pieces: Vec<(i32, Arc<BatchOutcome>)>) {
        if self.result.get().is_none() && self.pieces.set(pieces).is_ok() {
            self.wake_all();
        }
    }

    fn wake_all(&self) {
        for waker in std::mem::take(&mut *self.wakers.lock().expect("waker lock")) {
            waker.wake();
        }
    }

    /// Settled, or handed over to its pieces.
    pub fn is_complete(&self) -> bool {
        self.result.get().is_some() || self.pieces.get().is_some()
    }

    /// The piece holding the record at `offset_delta`, and the record's
    /// delta inside it, once the batch was split.
    fn piece_of(&self, offset_delta: i32) -> Option<(Arc<BatchOutcome>, i32)> {
        let pieces = self.pieces.get()?;
        let (first, piece) = pieces
            .iter()
            .rev()
            .find(|(first, _)| *first <= offset_delta)
            .or_else(|| pieces.first())?;
        Some((piece.clone(), offset_delta - first))
    }
}

/// Resolves when the record is acknowledged (or has failed for good).
#[derive(Debug)]
#[must_use = "a DeliveryFuture reports whether the record was written"]
pub struct DeliveryFuture {
    state: FutureState,
}

#[derive(Debug)]
enum FutureState {
    Pending {
        batch: Arc<BatchOutcome>,
        offset_delta: i32,
        timestamp: i64,
    },
    /// Boxed: a future is kept per record in flight, and the error is large.
    Failed(Option<Box<ProduceError>>),
}

impl DeliveryFuture {
    pub(crate) fn pending(batch: Arc<BatchOutcome>, offset_delta: i32, timestamp: i64) -> Self {
        Self {
            state: FutureState::Pending {
                batch,
                offset_delta,
                timestamp,
            },
        }
    }

    pub(crate) fn failed(error: ProduceError) -> Self {
        Self {
            state: FutureState::Failed(Some(Box::new(error))),
        }
    }

    fn resolve(
        batch: &BatchOutcome,
        offset_delta: i32,
        timestamp: i64,
    ) -> Option<Result<Delivery, ProduceError>> {
        let result = batch.result.get()?;
        Some(match result {
            Ok(ack) => Ok(Delivery {
                topic: batch.topic.clone(),
                partition: batch.partition,
                // −1: written, offset unknown (nisshi's answer to a duplicate batch).
                offset: if ack.base_offset < 0 {
                    -1
                } else {
                    ack.base_offset + i64::from(offset_delta)
                },
                timestamp: ack.log_append_time.unwrap_or(timestamp),
            }),
            Err(error) => Err(error.clone()),
        })
    }
}

impl Future for DeliveryFuture {
    type Output = Result<Delivery, ProduceError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match &mut self.state {
                FutureState::Failed(error) => {
                    return Poll::Ready(Err(error.take().map_or(ProduceError::Closed, |e| *e)))
                }
                FutureState::Pending {
                    batch,
                    offset_delta,
                    timestamp,
                } => {
                    if let Some(result) = Self::resolve(batch, *offset_delta, *timestamp) {
                        return Poll::Ready(result);
                    }
                    if let Some((piece, delta)) = batch.piece_of(*offset_delta) {
                        (*batch, *offset_delta) = (piece, delta);
                        continue;
                    }
                    let mut wakers = batch.wakers.lock().expect("waker lock");
                    // Re-check under the lock: `complete` and `split_into`
                    // drain wakers after setting.
                    if let Some(result) = Self::resolve(batch, *offset_delta, *timestamp) {
                        return Poll::Ready(result);
                    }
                    if batch.pieces.get().is_some() {
                        continue;
                    }
                    if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                        wakers.push(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

#[cfg(test)]
mod size_tests {
    /// One future is held per record in flight (a million, in a bulk load):
    /// it stays three words.
    #[test]
    fn a_delivery_future_is_small() {
        assert!(std::mem::size_of::<super::DeliveryFuture>() <= 32);
    }
}
