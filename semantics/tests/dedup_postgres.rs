//! The PostgreSQL dedup store against a real server: redeliveries and races
//! on one message id leave exactly one side-effect row.
//!
//! Needs `KAFKA_PURE_POSTGRES` (a connection string); `.ci/install-postgres`
//! starts a server and prints it. Unset, the tests fail rather than skip.
#![cfg(feature = "postgres")]

use std::sync::Arc;
use std::time::Duration;

use semantics::patterns::dedup::{
    DedupError, DedupStore, MessageId, PostgresDedupStore, Processed,
};
use tokio_postgres::{Client, NoTls};

fn conn_str() -> String {
    std::env::var("KAFKA_PURE_POSTGRES").expect(
        "KAFKA_PURE_POSTGRES is not set: start a server with \
         `eval \"$(.ci/install-postgres)\"` (it prints the connection string)",
    )
}

/// A plain client for setup and checks.
async fn client() -> Client {
    let (client, connection) = tokio_postgres::connect(&conn_str(), NoTls)
        .await
        .expect("connect to KAFKA_PURE_POSTGRES");
    tokio::spawn(connection);
    client
}

/// Fresh `<name>_dedup` and `<name>_payments` tables (one pair per test, so
/// tests can run in parallel); returns the checking client.
async fn fresh(name: &str) -> Client {
    let client = client().await;
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {name}_dedup, {name}_payments;
             CREATE TABLE {name}_payments (message_id bytea NOT NULL, amount int NOT NULL);"
        ))
        .await
        .unwrap();
    client
}

async fn store(name: &str) -> PostgresDedupStore {
    PostgresDedupStore::connect(&conn_str(), &format!("{name}_dedup"))
        .await
        .unwrap()
}

/// Rows in the payments and dedup tables.
async fn counts(client: &Client, name: &str) -> (i64, i64) {
    let count = |table: String| async move {
        let row = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap();
        row.get::<_, i64>(0)
    };
    (
        count(format!("{name}_payments")).await,
        count(format!("{name}_dedup")).await,
    )
}

/// Processes one payment of `amount` for `id` on `store`, writing it (after
/// an optional pause, to widen races) in the store's transaction.
async fn pay(
    store: &PostgresDedupStore,
    name: &str,
    id: &[u8],
    pause: Duration,
) -> Result<Processed, DedupError<tokio_postgres::Error>> {
    let insert = format!("INSERT INTO {name}_payments (message_id, amount) VALUES ($1, 100)");
    store
        .process_once(id, |tx| {
            Box::pin(async move {
                // Borrows `insert` and `id` from this function.
                tx.execute(&insert, &[&id]).await?;
                tokio::time::sleep(pause).await;
                Ok(())
            })
        })
        .await
}

#[tokio::test]
async fn redelivered_message_pays_once() {
    let check = fresh("redelivered").await;
    let store = store("redelivered").await;
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outcomes.push(
            pay(&store, "redelivered", b"msg-1", Duration::ZERO)
                .await
                .unwrap(),
        );
    }
    use Processed::{Done, Duplicate};
    assert_eq!(outcomes, [Done, Duplicate, Duplicate]);
    assert_eq!(counts(&check, "redelivered").await, (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_tasks_on_one_store_pay_once() {
    let check = fresh("race_shared").await;
    let store = Arc::new(store("race_shared").await);
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                pay(&store, "race_shared", b"msg-1", Duration::from_millis(100)).await
            })
        })
        .collect();
    let mut done = 0;
    for t in tasks {
        done += usize::from(t.await.unwrap().unwrap() == Processed::Done);
    }
    assert_eq!(done, 1);
    assert_eq!(counts(&check, "race_shared").await, (1, 1));
}

/// Three consumers (connections) at once: the id's row locks the others out
/// until the first commits; they then see a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_connections_pay_once() {
    let check = fresh("race_conns").await;
    let mut stores = Vec::new();
    for _ in 0..3 {
        stores.push(store("race_conns").await);
    }
    let tasks: Vec<_> = stores
        .into_iter()
        .map(|store| {
            tokio::spawn(async move {
                pay(&store, "race_conns", b"msg-1", Duration::from_millis(300)).await
            })
        })
        .collect();
    let mut done = 0;
    for t in tasks {
        done += usize::from(t.await.unwrap().unwrap() == Processed::Done);
    }
    assert_eq!(done, 1);
    assert_eq!(counts(&check, "race_conns").await, (1, 1));
}

#[tokio::test]
async fn failed_effect_rolls_back_and_is_retried() {
    let check = fresh("failing").await;
    let store = store("failing").await;
    let insert = "INSERT INTO failing_payments (message_id, amount) VALUES ($1, 100)";
    let failed = store
        .process_once(b"msg-1", |tx| {
            Box::pin(async move {
                // The row is written, then the effect fails: both roll back.
                tx.execute(insert, &[&b"msg-1".as_slice()]).await.unwrap();
                Err("payment provider down")
            })
        })
        .await;
    assert!(matches!(
        failed,
        Err(DedupError::Effect("payment provider down"))
    ));
    assert_eq!(counts(&check, "failing").await, (0, 0));

    let retried = pay(&store, "failing", b"msg-1", Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(retried, Processed::Done);
    assert_eq!(counts(&check, "failing").await, (1, 1));
}

#[tokio::test]
async fn process_record_and_forget() {
    let check = fresh("by_record").await;
    let store = store("by_record").await;
    let record = semantics::consumer::ConsumerRecord {
        topic: "payments".into(),
        partition: 0,
        offset: 7,
        timestamp: 0,
        timestamp_type: semantics::consumer::TimestampType::CreateTime,
        key: Some(bytes::Bytes::from_static(b"order-9")),
        value: None,
        headers: Vec::new(),
    };
    let key = record.key.as_deref();
    for _ in 0..2 {
        store
            .process_record(&MessageId::HeaderOrKey("id".into()), &record, |tx| {
                Box::pin(async move {
                    let insert = "INSERT INTO by_record_payments VALUES ($1, 1)";
                    tx.execute(insert, &[&key]).await?;
                    Ok::<_, tokio_postgres::Error>(())
                })
            })
            .await
            .unwrap();
    }
    assert_eq!(counts(&check, "by_record").await, (1, 1));
    assert_eq!(
        store
            .forget_older_than(Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        store
            .forget_older_than(Duration::from_millis(1))
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn rejects_table_names_that_are_not_identifiers() {
    let err = PostgresDedupStore::connect(&conn_str(), "x; DROP TABLE y")
        .await
        .unwrap_err();
    assert!(matches!(err, DedupError::InvalidTable(_)), "{err}");
}
