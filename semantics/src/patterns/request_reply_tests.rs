use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use kafka_wire::records::Header;

use super::*;

fn consumed(headers: Vec<Header>) -> ConsumerRecord {
    ConsumerRecord {
        topic: Arc::from("requests"),
        partition: 1,
        offset: 7,
        timestamp: 0,
        timestamp_type: crate::consumer::TimestampType::CreateTime,
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::from_static(b"v")),
        headers,
    }
}

#[test]
fn ids_are_unique_and_differ_between_generators() {
    let ids = IdGenerator::default();
    let seen: HashSet<u128> = (0..100_000).map(|_| ids.next_id()).collect();
    assert_eq!(seen.len(), 100_000);
    let other = IdGenerator::default();
    assert!(!seen.contains(&other.next_id()));
}

#[test]
fn request_headers_replace_the_callers_and_round_trip() {
    let record = ProducerRecord::new("requests", "v")
        .header(CORRELATION_ID_HEADER, "stale")
        .header("trace", "t")
        .header(REPLY_TOPIC_HEADER, "elsewhere");
    let record = with_request_headers(record, 0xABCD, "replies");
    let keys: Vec<&[u8]> = record.headers.iter().map(|h| h.key.as_ref()).collect();
    assert_eq!(
        keys,
        [
            &b"trace"[..],
            CORRELATION_ID_HEADER.as_bytes(),
            REPLY_TOPIC_HEADER.as_bytes()
        ]
    );
    assert_eq!(correlation_id(&record.headers), Some(0xABCD));
    assert_eq!(
        record.headers[1].value.as_deref(),
        Some(&0xABCDu128.to_be_bytes()[..])
    );
    assert_eq!(record.headers[2].value.as_deref(), Some(&b"replies"[..]));
}

#[test]
fn correlation_id_needs_sixteen_bytes_and_takes_the_last_header() {
    let id = |v: &[u8]| Header::new(CORRELATION_ID_HEADER, Bytes::copy_from_slice(v));
    let null = Header {
        key: Bytes::from_static(CORRELATION_ID_HEADER.as_bytes()),
        value: None,
    };
    let cases: Vec<(Vec<Header>, Option<u128>)> = vec![
        (vec![], None),
        (vec![Header::new("other", "x")], None),
        (vec![id(&[1; 15])], None),
        (vec![id(&[1; 17])], None),
        (vec![null], None),
        (vec![id(&5u128.to_be_bytes())], Some(5)),
        (
            vec![id(&5u128.to_be_bytes()), id(&6u128.to_be_bytes())],
            Some(6),
        ),
    ];
    for (headers, expected) in cases {
        assert_eq!(correlation_id(&headers), expected, "{headers:?}");
    }
}

#[test]
fn reply_keeps_key_and_id_and_goes_to_the_reply_topic() {
    let request = consumed(vec![
        Header::new(REPLY_TOPIC_HEADER, "replies"),
        Header::new(
            CORRELATION_ID_HEADER,
            Bytes::copy_from_slice(&9u128.to_be_bytes()),
        ),
    ]);
    let reply = reply_for(&request, Bytes::from_static(b"V")).expect("a request");
    assert_eq!(reply.topic, "replies");
    assert_eq!(reply.key, request.key);
    assert_eq!(reply.value.as_deref(), Some(&b"V"[..]));
    assert_eq!(correlation_id(&reply.headers), Some(9));
    assert!(reply.partition.is_none());

    // Either header missing, or a reply topic that is not UTF-8: not a request.
    for headers in [
        vec![Header::new(REPLY_TOPIC_HEADER, "replies")],
        vec![Header::new(CORRELATION_ID_HEADER, "id")],
        vec![
            Header::new(REPLY_TOPIC_HEADER, Bytes::from_static(&[0xFF, 0xFE])),
            Header::new(CORRELATION_ID_HEADER, "id"),
        ],
    ] {
        assert!(reply_for(&consumed(headers), Bytes::new()).is_none());
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Register(u128),
    Expire(u128, bool),
    Route(Option<u128>, Verdict<u128>),
}

#[test]
fn router_classifies_replies() {
    use Op::*;
    use Verdict::*;
    let cases: Vec<(&str, Vec<Op>)> = vec![
        (
            "pending id matches once",
            vec![
                Register(1),
                Route(Some(1), Matched(1)),
                Route(Some(1), Unknown),
            ],
        ),
        ("never registered", vec![Route(Some(2), Unknown)]),
        ("no id", vec![Register(1), Route(None, Unknown)]),
        (
            "timed out then late",
            vec![
                Register(3),
                Expire(3, true),
                Route(Some(3), Expired),
                Route(Some(3), Expired),
            ],
        ),
        (
            "expire after reply is a no-op",
            vec![
                Register(4),
                Route(Some(4), Matched(4)),
                Expire(4, false),
                Route(Some(4), Unknown),
            ],
        ),
        (
            "expire of unknown id",
            vec![Expire(5, false), Route(Some(5), Unknown)],
        ),
        (
            "others unaffected",
            vec![
                Register(6),
                Register(7),
                Expire(6, true),
                Route(Some(7), Matched(7)),
                Route(Some(6), Expired),
            ],
        ),
    ];
    for (name, ops) in cases {
        let mut router = ReplyRouter::new(10);
        for op in ops {
            match op {
                Register(id) => assert!(router.register(id, id), "{name}"),
                Expire(id, was) => assert_eq!(router.expire(id), was, "{name}: {op:?}"),
                Route(id, verdict) => assert_eq!(router.route(id), verdict, "{name}: {op:?}"),
            }
        }
    }
}

#[test]
fn router_forgets_the_oldest_expired_ids() {
    let mut router = ReplyRouter::new(3);
    for id in 0..4 {
        router.register(id, ());
        assert!(router.expire(id));
    }
    assert_eq!(router.route(Some(0)), Verdict::Unknown);
    for id in 1..4 {
        assert_eq!(router.route(Some(id)), Verdict::Expired);
    }
    // Capacity 0 remembers nothing.
    let mut forgetful = ReplyRouter::new(0);
    forgetful.register(1, ());
    forgetful.expire(1);
    assert_eq!(forgetful.route(Some(1)), Verdict::Unknown);
}

#[test]
fn closed_router_drops_waiters_and_refuses_new_ones() {
    let mut router = ReplyRouter::new(10);
    let (tx, mut rx) = oneshot::channel::<()>();
    assert!(router.register(1, tx));
    router.close();
    assert!(rx.try_recv().is_err(), "waiter sees the close");
    let (tx, _rx) = oneshot::channel::<()>();
    assert!(!router.register(2, tx));
}
