//! A dedup store in a PostgreSQL table, written in the same transaction as
//! the side effect's own rows.
//!
//! Per message: `BEGIN`; `INSERT INTO <table> (id) VALUES ($1) ON CONFLICT
//! DO NOTHING`; if no row was inserted the id is a duplicate (roll back, skip
//! the effect); else run the effect in the transaction and `COMMIT`.
//! Inserting first makes the id's row a lock: a concurrent transaction with
//! the same id (another consumer, after a rebalance) blocks on it until the
//! first commits (then sees a duplicate) or rolls back (then runs).

use std::time::Duration;

use tokio::sync::Mutex;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, Statement, Transaction};

use super::{DedupError, DedupStore, EffectFuture, Processed, Scoped};

/// Processed ids in a table `(id bytea primary key, processed_at timestamptz
/// not null default now())`, created if missing.
///
/// One connection: calls on one store run one after another. For parallel
/// processing use one store per worker (they may share the table).
#[derive(Debug)]
pub struct PostgresDedupStore {
    client: Mutex<Client>,
    insert: Statement,
    table: String,
}

impl PostgresDedupStore {
    /// Connects without TLS (`conn_str` as in `tokio_postgres::connect`,
    /// URL or `key=value`) and creates `table` if missing. Needs a Tokio
    /// runtime: the connection runs on a spawned task.
    pub async fn connect(conn_str: &str, table: &str) -> Result<Self, DedupError> {
        let table = quoted_table(table)?;
        let (client, connection) = tokio_postgres::connect(conn_str, NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!("dedup store connection closed: {e}");
            }
        });
        Self::init(client, table).await
    }

    /// Uses a connected client (e.g. one set up with TLS; its connection
    /// must be running) and creates `table` if missing.
    pub async fn with_client(client: Client, table: &str) -> Result<Self, DedupError> {
        let table = quoted_table(table)?;
        Self::init(client, table).await
    }

    async fn init(client: Client, table: String) -> Result<Self, DedupError> {
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {table} \
             (id bytea PRIMARY KEY, processed_at timestamptz NOT NULL DEFAULT now())"
        );
        if let Err(e) = client.batch_execute(&create).await {
            // Two stores creating the table at once: one wins, the other
            // trips over the catalog's unique index; the table exists.
            let raced = [&SqlState::UNIQUE_VIOLATION, &SqlState::DUPLICATE_TABLE];
            if !e.code().is_some_and(|c| raced.contains(&c)) {
                return Err(e.into());
            }
        }
        let insert = client
            .prepare(&format!(
                "INSERT INTO {table} (id) VALUES ($1) ON CONFLICT (id) DO NOTHING"
            ))
            .await?;
        Ok(Self {
            client: Mutex::new(client),
            insert,
            table,
        })
    }

    /// The table, as quoted in SQL.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Deletes ids processed more than `age` ago, returning how many. Safe
    /// once no redelivery can be that old (e.g. beyond the topic's retention).
    pub async fn forget_older_than(&self, age: Duration) -> Result<u64, DedupError> {
        let sql = format!(
            "DELETE FROM {} WHERE processed_at < now() - make_interval(secs => $1)",
            self.table
        );
        let client = self.client.lock().await;
        Ok(client.execute(&sql, &[&age.as_secs_f64()]).await?)
    }
}

impl DedupStore for PostgresDedupStore {
    type Tx<'t> = Transaction<'t>;

    async fn process_once<'env, E, F>(
        &self,
        id: &[u8],
        effect: F,
    ) -> Result<Processed, DedupError<E>>
    where
        E: Send,
        F: for<'t> FnOnce(&'t Scoped<'env, Transaction<'t>>) -> EffectFuture<'t, E> + Send,
    {
        let mut client = self.client.lock().await;
        // Dropping the transaction (error, cancellation) rolls it back.
        let tx = Scoped::new(client.transaction().await?);
        if tx.execute(&self.insert, &[&id]).await? == 0 {
            tx.into_inner().rollback().await?;
            return Ok(Processed::Duplicate);
        }
        if let Err(e) = effect(&tx).await {
            // Best effort: the effect's error is the one worth reporting.
            let _ = tx.into_inner().rollback().await;
            return Err(DedupError::Effect(e));
        }
        tx.into_inner().commit().await?;
        Ok(Processed::Done)
    }
}

/// `table` (or `schema.table`) double-quoted, after checking each part is a
/// plain identifier, so it cannot inject SQL. Quoting keeps the case as given.
fn quoted_table(table: &str) -> Result<String, DedupError> {
    let parts: Vec<&str> = table.split('.').collect();
    let plain = |p: &&str| {
        let mut chars = p.chars();
        p.len() <= 63 // PostgreSQL's NAMEDATALEN - 1
            && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if parts.len() > 2 || !parts.iter().all(plain) {
        return Err(DedupError::InvalidTable(table.to_string()));
    }
    Ok(parts
        .iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join("."))
}

#[cfg(test)]
mod tests {
    use super::quoted_table;

    #[test]
    fn table_names_are_plain_identifiers() {
        assert_eq!(quoted_table("dedup").unwrap(), "\"dedup\"");
        assert_eq!(quoted_table("app.Dedup_1").unwrap(), "\"app\".\"Dedup_1\"");
        for bad in [
            "",
            "1abc",
            "a.b.c",
            "a b",
            "x\"; DROP TABLE y; --",
            "a-b",
            "é",
            ".a",
            &"a".repeat(64),
        ] {
            assert!(quoted_table(bad).is_err(), "{bad:?} accepted");
        }
    }
}
