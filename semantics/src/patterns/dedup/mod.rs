//! Idempotent consumer: perform each external side effect once although an
//! at-least-once consumer sees some records more than once.
//!
//! Every record carries a message id ([`MessageId`] says where: a header, the
//! key, or a header falling back to the key). A [`DedupStore`] runs the side
//! effect for an id only if that id was never processed, and records the id
//! *atomically with* the effect, so a crash between the two cannot happen:
//!
//! - [`InMemoryDedupStore`]: one process, no durability (tests, caches).
//! - `PostgresDedupStore` (feature `postgres`): the effect writes its rows
//!   through the open transaction the store also inserts the id in.
//!
//! ```no_run
//! # #[cfg(feature = "postgres")]
//! # async fn demo(consumer: &mut semantics::consumer::Consumer) -> Result<(), Box<dyn std::error::Error>> {
//! use semantics::patterns::dedup::{DedupStore, MessageId, PostgresDedupStore};
//! let store = PostgresDedupStore::connect("postgres://app@db/billing", "payments_dedup").await?;
//! let ids = MessageId::HeaderOrKey("message-id".into());
//! loop {
//!     let record = consumer.recv().await?;
//!     // The effect may borrow: it runs within the call.
//!     let body = record.value.as_deref().unwrap_or_default();
//!     store
//!         .process_record(&ids, &record, |tx| {
//!             Box::pin(async move {
//!                 tx.execute("INSERT INTO payments (body) VALUES ($1)", &[&body])
//!                     .await?;
//!                 Ok::<_, tokio_postgres::Error>(())
//!             })
//!         })
//!         .await?;
//! }
//! # }
//! ```

mod error;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;

use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;

use crate::consumer::ConsumerRecord;

pub use error::DedupError;
pub use memory::InMemoryDedupStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresDedupStore;

/// Where the id of a record comes from.
///
/// A header with a null or empty value, and a null or empty key, count as no
/// id: an empty id would make unrelated messages duplicates of each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageId {
    /// The value of the header with this key (the last one when repeated,
    /// like Java's `Headers.lastHeader`).
    Header(String),
    /// The record key.
    Key,
    /// The header if present, else the record key.
    HeaderOrKey(String),
}

impl MessageId {
    /// The id of `record`, or `None` when it carries none.
    pub fn of(&self, record: &ConsumerRecord) -> Option<Vec<u8>> {
        match self {
            MessageId::Header(name) => header(record, name),
            MessageId::Key => key(record),
            MessageId::HeaderOrKey(name) => header(record, name).or_else(|| key(record)),
        }
    }
}

fn header(record: &ConsumerRecord, name: &str) -> Option<Vec<u8>> {
    let header = record
        .headers
        .iter()
        .rev()
        .find(|h| h.key.as_ref() == name.as_bytes())?;
    non_empty(header.value.as_deref())
}

fn key(record: &ConsumerRecord) -> Option<Vec<u8>> {
    non_empty(record.key.as_deref())
}

fn non_empty(bytes: Option<&[u8]>) -> Option<Vec<u8>> {
    bytes.filter(|b| !b.is_empty()).map(<[u8]>::to_vec)
}

/// Outcome of processing one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processed {
    /// The effect ran and the id is now recorded.
    Done,
    /// The id was processed before; the effect did not run.
    Duplicate,
}

/// The future a side effect returns. Boxed because it borrows the store's
/// transaction, and a closure returning a borrowing future cannot be written
/// with a plain generic on stable Rust.
pub type EffectFuture<'t, E> = Pin<Box<dyn Future<Output = Result<(), E>> + Send + 't>>;

/// The store's transaction `T` as lent to an effect; derefs to `T`.
///
/// `'env` is what the effect's future may borrow besides the transaction
/// (the record, local state). Without it in the argument type the effect's
/// closure could only capture owned or `'static` data.
pub struct Scoped<'env, T> {
    tx: T,
    _env: PhantomData<&'env ()>,
}

impl<T> Scoped<'_, T> {
    fn new(tx: T) -> Self {
        Self {
            tx,
            _env: PhantomData,
        }
    }

    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    fn into_inner(self) -> T {
        self.tx
    }
}

impl<T> Deref for Scoped<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.tx
    }
}

/// Records which message ids were processed, atomically with their effect.
///
/// The effect is a closure taking the store's transaction (see
/// [`Self::Tx`]) and returning a boxed future:
/// `|tx| Box::pin(async move { ...; Ok(()) })`; the future may borrow the
/// caller's data. If it returns `Err`, nothing is recorded and a later
/// attempt runs it again. Concurrent calls with one id run the effect at
/// most once: the others wait for it, then report [`Processed::Duplicate`]
/// (or run the effect themselves if it failed).
pub trait DedupStore: Send + Sync {
    /// What the effect writes through: `()` in memory, the open
    /// `tokio_postgres::Transaction` in PostgreSQL.
    type Tx<'t>: Sync;

    /// Runs `effect` unless `id` was processed before, recording `id` in the
    /// same transaction as the effect.
    fn process_once<'env, E, F>(
        &self,
        id: &[u8],
        effect: F,
    ) -> impl Future<Output = Result<Processed, DedupError<E>>> + Send
    where
        E: Send,
        F: for<'t> FnOnce(&'t Scoped<'env, Self::Tx<'t>>) -> EffectFuture<'t, E> + Send;

    /// [`process_once`](Self::process_once) with the id `source` takes from
    /// `record`; [`DedupError::MissingId`] if it has none (nothing runs).
    fn process_record<'env, E, F>(
        &self,
        source: &MessageId,
        record: &ConsumerRecord,
        effect: F,
    ) -> impl Future<Output = Result<Processed, DedupError<E>>> + Send
    where
        E: Send,
        F: for<'t> FnOnce(&'t Scoped<'env, Self::Tx<'t>>) -> EffectFuture<'t, E> + Send,
    {
        let id = source.of(record).ok_or_else(|| DedupError::MissingId {
            topic: record.topic.to_string(),
            partition: record.partition,
            offset: record.offset,
        });
        async move { self.process_once(&id?, effect).await }
    }
}

#[cfg(test)]
mod tests;
