use bytes::Bytes;
use proptest::prelude::*;

use super::*;

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn record() -> ConsumerRecord {
    ConsumerRecord {
        topic: Arc::from("orders"),
        partition: 3,
        offset: 42,
        timestamp: 1_700_000_000_000,
        timestamp_type: TimestampType::CreateTime,
        key: Some(Bytes::from_static(b"k\x00\xff")),
        value: Some(Bytes::from_static(b"\x01payload")),
        headers: vec![
            Header::new("trace", "abc"),
            Header {
                key: Bytes::from_static(b"null"),
                value: None,
            },
            Header::new("trace", "dup"),
        ],
    }
}

fn failure() -> Failure {
    Failure {
        reason: "bad json: expected `}` at 1:7 — ünïcode".into(),
        class: FailureClass::RetriesExhausted,
        attempts: 4,
        first_attempt: at(1_700_000_000_123),
        last_attempt: at(1_700_000_001_456),
    }
}

/// The DLQ record as a consumer would see it.
fn consumed(out: ProducerRecord) -> ConsumerRecord {
    ConsumerRecord {
        topic: Arc::from(out.topic.as_str()),
        partition: 0,
        offset: 7,
        timestamp: 1,
        timestamp_type: TimestampType::CreateTime,
        key: out.key,
        value: out.value,
        headers: out.headers,
    }
}

fn header_list(headers: &[Header]) -> Vec<(String, Option<String>)> {
    let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    headers
        .iter()
        .map(|h| (text(&h.key), h.value.as_ref().map(text)))
        .collect()
}

#[test]
fn envelope_headers_golden() {
    let out = DeadLetter::envelope(&record(), &failure());
    assert_eq!(out.topic, "orders.DLT");
    assert_eq!((out.partition, out.timestamp), (None, None));
    assert_eq!(out.key, record().key);
    assert_eq!(out.value, record().value);
    let s = |v: &str| Some(v.to_owned());
    let golden: Vec<(String, Option<String>)> = [
        ("trace", s("abc")),
        ("null", None),
        ("trace", s("dup")),
        ("dlq.original.topic", s("orders")),
        ("dlq.original.partition", s("3")),
        ("dlq.original.offset", s("42")),
        ("dlq.original.timestamp", s("1700000000000")),
        (
            "dlq.failure.reason",
            s("bad json: expected `}` at 1:7 — ünïcode"),
        ),
        ("dlq.failure.class", s("retries-exhausted")),
        ("dlq.attempts", s("4")),
        ("dlq.first.attempt.ms", s("1700000000123")),
        ("dlq.last.attempt.ms", s("1700000001456")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(header_list(&out.headers), golden);
}

#[test]
fn round_trip() {
    let envelope = DeadLetter::parse(&consumed(DeadLetter::envelope(&record(), &failure())));
    assert_eq!(
        envelope,
        Some(Envelope {
            original: record(),
            failure: failure()
        })
    );
}

#[test]
fn round_trip_of_tombstone_and_pre_epoch_times() {
    let original = ConsumerRecord {
        key: None,
        value: None,
        headers: vec![],
        ..record()
    };
    let failure = Failure {
        class: FailureClass::Other("custom".into()),
        first_attempt: UNIX_EPOCH - Duration::from_millis(5),
        last_attempt: UNIX_EPOCH,
        ..failure()
    };
    let parsed = DeadLetter::try_parse(&consumed(DeadLetter::envelope(&original, &failure)));
    assert_eq!(parsed, Ok(Envelope { original, failure }));
}

#[test]
fn dead_lettered_twice_keeps_the_earlier_context() {
    let once = consumed(DeadLetter::envelope(&record(), &failure()));
    let second = Failure {
        class: FailureClass::Handler,
        attempts: 1,
        ..failure()
    };
    let twice = consumed(DeadLetter::envelope(&once, &second));
    let envelope = DeadLetter::parse(&twice).unwrap();
    assert_eq!(envelope.failure, second);
    assert_eq!(envelope.original, once);
    assert_eq!(
        DeadLetter::parse(&envelope.original).unwrap().original,
        record()
    );
}

#[test]
fn garbage_headers_are_typed_errors() {
    let good = consumed(DeadLetter::envelope(&record(), &failure()));
    let with = |key: &str, value: Option<&[u8]>| {
        let mut r = good.clone();
        let h = r
            .headers
            .iter_mut()
            .rfind(|h| h.key == key.as_bytes())
            .unwrap();
        h.value = value.map(Bytes::copy_from_slice);
        r
    };
    let bad = |header, value: &str| {
        Err(EnvelopeError::Invalid {
            header,
            value: value.into(),
        })
    };
    let parse = DeadLetter::try_parse;
    assert_eq!(
        parse(&with(ORIGINAL_PARTITION, Some(b"3x"))),
        bad(ORIGINAL_PARTITION, "3x")
    );
    assert_eq!(
        parse(&with(ORIGINAL_PARTITION, Some(b"2147483648"))),
        bad(ORIGINAL_PARTITION, "2147483648")
    );
    assert_eq!(
        parse(&with(ORIGINAL_OFFSET, Some(b""))),
        bad(ORIGINAL_OFFSET, "")
    );
    assert_eq!(parse(&with(ATTEMPTS, Some(b"-1"))), bad(ATTEMPTS, "-1"));
    assert_eq!(
        parse(&with(ORIGINAL_TOPIC, None)),
        bad(ORIGINAL_TOPIC, "null")
    );
    assert_eq!(
        parse(&with(FAILURE_REASON, Some(b"\xff\xfe"))),
        bad(FAILURE_REASON, "\u{fffd}\u{fffd}")
    );
    assert_eq!(
        parse(&with(LAST_ATTEMPT_MS, Some(b"9223372036854775807"))).is_err(),
        from_epoch_ms(i64::MAX).is_none()
    );
    assert_eq!(
        parse(&with(FIRST_ATTEMPT_MS, Some(b"1e3"))),
        bad(FIRST_ATTEMPT_MS, "1e3")
    );
    let mut missing = good.clone();
    missing
        .headers
        .retain(|h| h.key != FAILURE_CLASS.as_bytes());
    assert_eq!(parse(&missing), Err(EnvelopeError::Missing(FAILURE_CLASS)));
    assert_eq!(
        parse(&record()),
        Err(EnvelopeError::Missing(ORIGINAL_TOPIC))
    );
    assert_eq!(DeadLetter::parse(&record()), None);
}

fn headers() -> impl Strategy<Value = Vec<Header>> {
    let key = prop_oneof![
        Just("dlq.attempts".to_owned()),
        Just("dlq.original.topic".to_owned()),
        "[a-z.]{0,12}"
    ];
    let value = proptest::option::of(proptest::collection::vec(any::<u8>(), 0..12));
    proptest::collection::vec((key, value), 0..14).prop_map(|hs| {
        hs.into_iter()
            .map(|(k, v)| Header {
                key: Bytes::from(k),
                value: v.map(Bytes::from),
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn parse_never_panics(headers in headers()) {
        let _ = DeadLetter::try_parse(&ConsumerRecord { headers, ..record() });
    }

    #[test]
    fn any_record_round_trips(
        headers in headers(), partition in any::<i32>(), offset in any::<i64>(),
        timestamp in any::<i64>(), attempts in any::<u32>(), reason in ".*",
        first in -1_000_000_000_000i64..4_000_000_000_000, last in 0i64..4_000_000_000_000,
    ) {
        let original = ConsumerRecord { headers, partition, offset, timestamp, ..record() };
        let failure = Failure {
            reason, attempts, class: FailureClass::NonRetriable,
            first_attempt: from_epoch_ms(first).unwrap(),
            last_attempt: from_epoch_ms(last).unwrap(),
        };
        let parsed = DeadLetter::try_parse(&consumed(DeadLetter::envelope(&original, &failure)));
        prop_assert_eq!(parsed, Ok(Envelope { original, failure }));
    }
}
