//! The transactional API of [`Producer`]: init, begin, offsets, commit, abort.
//!
//! ```no_run
//! # async fn demo(producer: semantics::Producer) -> Result<(), semantics::producer::TransactionError> {
//! use semantics::ProducerRecord;
//! producer.init_transactions().await?;
//! producer.begin_transaction().await?;
//! producer.send(ProducerRecord::new("out", "v")).await.ok();
//! match producer.commit_transaction().await {
//!     Ok(()) => {}
//!     Err(e) if e.is_abortable() => producer.abort_transaction().await?,
//!     Err(e) => return Err(e),
//! }
//! # Ok(()) }
//! ```

use std::sync::atomic::Ordering;

use super::txn::{TransactionError, TransactionManager, TxnEvent, TxnState};
use super::Producer;
use crate::consumer::{GroupMetadata, TopicPartition};

impl Producer {
    fn manager(&self) -> Result<&TransactionManager, TransactionError> {
        self.txn
            .as_deref()
            .ok_or(TransactionError::NotTransactional)
    }

    /// Where the transaction manager is (`None` without `transactional.id`).
    pub fn transaction_state(&self) -> Option<TxnState> {
        self.txn.as_ref().map(|t| t.state())
    }

    /// InitProducerId for `transactional.id`: fences every older producer
    /// with the same id and aborts what it left open. Call once, first.
    pub async fn init_transactions(&self) -> Result<(), TransactionError> {
        let manager = self.manager()?;
        let identity = manager.init().await?;
        self.hand_to_sender(identity);
        Ok(())
    }

    fn hand_to_sender(&self, identity: (i64, i16)) {
        if let Some(txn) = &self.shared.txn {
            *txn.failure.lock().expect("txn lock") = None;
            txn.in_doubt.store(false, Ordering::Release);
            txn.epoch_bumped_by_coordinator
                .store(false, Ordering::Release);
            *txn.assigned_producer.lock().expect("txn lock") = Some(identity);
        }
        self.shared.wake.notify_one();
    }

    /// Opens a transaction. After an unknown outcome (or a failed record
    /// whose write is in doubt) the producer first takes a new epoch, so
    /// nothing late from the previous transaction can land in this one.
    pub async fn begin_transaction(&self) -> Result<(), TransactionError> {
        let manager = self.manager()?;
        if manager.state() == TxnState::NeedsReinit {
            self.init_transactions().await?;
        }
        manager.apply(TxnEvent::Begin)?;
        Ok(())
    }

    /// Adds the consumer's positions (the next offset to read per partition)
    /// to the transaction: they commit or abort with its records. `group`
    /// comes from the consumer ([`crate::Consumer::group_metadata`]), so a
    /// consumer fenced by a rebalance cannot commit (KIP-447).
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &[(TopicPartition, i64)],
        group: &GroupMetadata,
    ) -> Result<(), TransactionError> {
        self.manager()?.send_offsets(offsets, group).await
    }

    /// Flushes the transaction's records, then commits it. If any record
    /// failed, nothing is committed and the error is abortable.
    pub async fn commit_transaction(&self) -> Result<(), TransactionError> {
        let manager = self.manager()?;
        {
            // Sends past the transaction check append first (see `txn_gate`).
            let _ended = self.txn_gate.write().await;
            manager.apply(TxnEvent::CommitStarted)?;
        }
        self.flush().await;
        if let Some(error) = self.shared.fatal_error() {
            manager.apply(TxnEvent::FatalError).ok();
            return Err(TransactionError::Fatal(error.to_string()));
        }
        let failure = self
            .shared
            .txn
            .as_ref()
            .and_then(|t| t.failure.lock().expect("txn lock").clone());
        if let Some(reason) = failure {
            return Err(manager.record_failed(&reason));
        }
        manager.end(true).await
    }

    /// Aborts the transaction: its records and offsets are discarded by
    /// read_committed consumers. Waits for records in flight first.
    pub async fn abort_transaction(&self) -> Result<(), TransactionError> {
        let manager = self.manager()?;
        {
            let _ended = self.txn_gate.write().await;
            manager.apply(TxnEvent::AbortStarted)?;
        }
        self.flush().await;
        if let Some(error) = self.shared.fatal_error() {
            manager.apply(TxnEvent::FatalError).ok();
            return Err(TransactionError::Fatal(error.to_string()));
        }
        let bumped = self
            .shared
            .txn
            .as_ref()
            .is_some_and(|t| t.epoch_bumped_by_coordinator.load(Ordering::Acquire));
        if bumped {
            let identity = manager.recover_from_coordinator_abort().await?;
            self.hand_to_sender(identity);
            return Ok(());
        }
        manager.end(false).await?;
        // A failed record leaves a gap in its partition's sequence numbers
        // and an in-doubt one may still land: take a new epoch either way.
        let (failed, in_doubt) = self.shared.txn.as_ref().map_or((false, false), |t| {
            (
                t.failure.lock().expect("txn lock").is_some(),
                t.in_doubt.load(Ordering::Acquire),
            )
        });
        if failed || in_doubt {
            self.init_transactions().await?;
        }
        Ok(())
    }
}
