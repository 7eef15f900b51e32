//! Unit tests: `MessageId` extraction and the in-memory store.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_wire::records::{Header, TimestampType};

use super::*;

fn record(key: Option<&'static [u8]>, headers: Vec<Header>) -> ConsumerRecord {
    ConsumerRecord {
        topic: "payments".into(),
        partition: 3,
        offset: 42,
        timestamp: 0,
        timestamp_type: TimestampType::CreateTime,
        key: key.map(Bytes::from_static),
        value: Some(Bytes::from_static(b"10 EUR")),
        headers,
    }
}

fn null_header(key: &'static str) -> Header {
    Header {
        key: Bytes::from_static(key.as_bytes()),
        value: None,
    }
}

#[test]
fn message_id_from_header_key_or_both() {
    let r = record(
        Some(b"k1"),
        vec![Header::new("id", "h1"), Header::new("x", "y")],
    );
    assert_eq!(MessageId::Header("id".into()).of(&r), Some(b"h1".to_vec()));
    assert_eq!(MessageId::Key.of(&r), Some(b"k1".to_vec()));
    assert_eq!(
        MessageId::HeaderOrKey("id".into()).of(&r),
        Some(b"h1".to_vec())
    );
    assert_eq!(
        MessageId::HeaderOrKey("nope".into()).of(&r),
        Some(b"k1".to_vec())
    );
    assert_eq!(MessageId::Header("nope".into()).of(&r), None);
}

#[test]
fn message_id_takes_last_header_and_ignores_null_or_empty() {
    let repeated = record(None, vec![Header::new("id", "a"), Header::new("id", "b")]);
    assert_eq!(
        MessageId::Header("id".into()).of(&repeated),
        Some(b"b".to_vec())
    );

    let null = record(Some(b"k"), vec![null_header("id")]);
    assert_eq!(MessageId::Header("id".into()).of(&null), None);
    assert_eq!(
        MessageId::HeaderOrKey("id".into()).of(&null),
        Some(b"k".to_vec())
    );

    let empty = record(Some(b""), vec![Header::new("id", "")]);
    assert_eq!(MessageId::HeaderOrKey("id".into()).of(&empty), None);
    assert_eq!(MessageId::Key.of(&record(None, vec![])), None);
}

/// An effect counting its runs.
fn count<'env>(
    runs: &'env AtomicUsize,
) -> impl for<'t> FnOnce(&'t Scoped<'env, ()>) -> EffectFuture<'t, String> + Send {
    move |_| {
        Box::pin(async move {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }
}

#[tokio::test]
async fn runs_once_per_id() {
    let store = InMemoryDedupStore::new();
    let runs = AtomicUsize::new(0);
    assert_eq!(
        store.process_once(b"a", count(&runs)).await.unwrap(),
        Processed::Done
    );
    for _ in 0..2 {
        let again = store.process_once(b"a", count(&runs)).await.unwrap();
        assert_eq!(again, Processed::Duplicate);
    }
    assert_eq!(
        store.process_once(b"b", count(&runs)).await.unwrap(),
        Processed::Done
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(store.len(), 2);
}

#[tokio::test]
async fn failed_effect_records_nothing_and_is_retried() {
    let store = InMemoryDedupStore::new();
    let failed = store
        .process_once(b"a", |_| Box::pin(async { Err("smtp down".to_string()) }))
        .await;
    assert!(matches!(failed, Err(DedupError::Effect(ref e)) if e == "smtp down"));
    assert!(!store.contains(b"a"));
    let runs = AtomicUsize::new(0);
    assert_eq!(
        store.process_once(b"a", count(&runs)).await.unwrap(),
        Processed::Done
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_run_the_effect_once() {
    let store = Arc::new(InMemoryDedupStore::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let (store, runs) = (Arc::clone(&store), Arc::clone(&runs));
            tokio::spawn(async move {
                store
                    .process_once(b"same", move |_| {
                        Box::pin(async move {
                            // Long enough for the others to arrive and wait.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            runs.fetch_add(1, Ordering::SeqCst);
                            Ok::<_, String>(())
                        })
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(
        outcomes.iter().filter(|o| **o == Processed::Done).count(),
        1
    );
}

#[tokio::test]
async fn a_waiter_runs_the_effect_when_the_first_attempt_fails() {
    let store = Arc::new(InMemoryDedupStore::new());
    let first = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .process_once(b"a", |_| {
                    Box::pin(async {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Err("boom".to_string())
                    })
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    let runs = AtomicUsize::new(0);
    let second = store.process_once(b"a", count(&runs)).await.unwrap();
    assert!(matches!(first.await.unwrap(), Err(DedupError::Effect(_))));
    assert_eq!((second, runs.load(Ordering::SeqCst)), (Processed::Done, 1));
}

#[tokio::test]
async fn cancelled_effect_releases_the_id() {
    let store = InMemoryDedupStore::new();
    let slow = store.process_once(b"a", |_| {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<_, String>(())
        })
    });
    let timed_out = tokio::time::timeout(Duration::from_millis(10), slow).await;
    assert!(timed_out.is_err());
    let runs = AtomicUsize::new(0);
    assert_eq!(
        store.process_once(b"a", count(&runs)).await.unwrap(),
        Processed::Done
    );
}

#[tokio::test]
async fn bounded_store_evicts_oldest_first() {
    let store = InMemoryDedupStore::bounded(2);
    let runs = AtomicUsize::new(0);
    for id in [b"a", b"b", b"c"] {
        store.process_once(id, count(&runs)).await.unwrap();
    }
    assert_eq!(store.len(), 2);
    assert!(!store.contains(b"a") && store.contains(b"b") && store.contains(b"c"));
    // Forgotten, so it runs again.
    assert_eq!(
        store.process_once(b"a", count(&runs)).await.unwrap(),
        Processed::Done
    );
    assert_eq!(runs.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn process_record_uses_the_message_id() {
    let store = InMemoryDedupStore::new();
    let runs = AtomicUsize::new(0);
    let ids = MessageId::Header("id".into());
    let with_id = record(None, vec![Header::new("id", "m-1")]);
    let done = store
        .process_record(&ids, &with_id, count(&runs))
        .await
        .unwrap();
    let dup = store
        .process_record(&ids, &with_id, count(&runs))
        .await
        .unwrap();
    assert_eq!((done, dup), (Processed::Done, Processed::Duplicate));
    let missing = store
        .process_record(&ids, &record(None, vec![]), count(&runs))
        .await;
    assert!(matches!(
        missing,
        Err(DedupError::MissingId {
            partition: 3,
            offset: 42,
            ..
        })
    ));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}
