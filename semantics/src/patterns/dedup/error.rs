//! What can go wrong when processing a message once.

use std::convert::Infallible;

/// Why a message was not processed (its id is then not recorded, so a later
/// attempt runs the effect again).
///
/// `E` is the side effect's own error; it defaults to [`Infallible`] for
/// calls that run no effect, such as connecting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DedupError<E = Infallible> {
    /// The side effect returned an error; its transaction was rolled back.
    #[error("side effect failed: {0}")]
    Effect(#[source] E),
    /// The record carries no id where [`MessageId`](super::MessageId) looks.
    #[error("no message id in {topic}-{partition}@{offset}")]
    MissingId {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
    },
    /// The dedup table name is not a plain SQL identifier.
    #[error(
        "invalid dedup table name {0:?}: use letters, digits and '_' (optionally schema.table)"
    )]
    InvalidTable(String),
    /// The database failed (connection, SQL, commit); nothing was recorded,
    /// unless the commit succeeded before the connection broke.
    #[cfg(feature = "postgres")]
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
}
