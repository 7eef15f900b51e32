//! Request-reply against a real broker: 200 concurrent requests get their own
//! replies; a reply after its request timed out counts as expired, a reply
//! nobody asked for as unknown; a record without request headers is skipped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use harness::broker::{test_broker, Cluster};
use harness::wire_ops;
use kafka_wire::conn::{connect, ConnectionConfig};
use semantics::patterns::request_reply::{
    serve, IdGenerator, RequestError, RequestReplyClient, RequestReplyStats, ServeStats,
    CORRELATION_ID_HEADER,
};
use semantics::{Consumer, ConsumerRecord, Producer, ProducerRecord};
use tokio::task::JoinHandle;

const REQUESTS: &str = "rr.requests";
const REPLIES: &str = "rr.replies";
const IDLE: Duration = Duration::from_secs(1);

fn upper(request: &ConsumerRecord) -> Option<Bytes> {
    Some(Bytes::from(request.value.as_deref()?.to_ascii_uppercase()))
}

/// Serves until idle, then hands the consumer back for the next round.
fn start_server(
    mut consumer: Consumer,
    producer: Arc<Producer>,
) -> JoinHandle<(Consumer, ServeStats)> {
    tokio::spawn(async move {
        let stats = serve(&mut consumer, &producer, IDLE, upper).await.unwrap();
        (consumer, stats)
    })
}

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_get_their_replies_and_strays_are_counted() {
    // A cluster of its own: the topic names are fixed.
    let broker = Cluster::start(test_broker::own_cluster(1))
        .await
        .expect("start a one-node cluster");
    let bootstrap = broker.bootstrap();
    let connection = connect(&bootstrap, None, ConnectionConfig::default())
        .await
        .unwrap();
    wire_ops::create_topic(&connection, REQUESTS, 2)
        .await
        .unwrap();
    wire_ops::create_topic(&connection, REPLIES, 3)
        .await
        .unwrap();

    let producer =
        || Arc::new(Producer::from_properties([("bootstrap.servers", &bootstrap)]).unwrap());
    let client = Arc::new(
        RequestReplyClient::new(
            producer(),
            vec![("bootstrap.servers".into(), bootstrap.clone())],
            REPLIES.into(),
        )
        .await
        .expect("reply consumer ready"),
    );

    // The server joins its group before any request, so `IDLE` is not spent joining.
    let server = Consumer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("group.id", "rr-server"),
        ("auto.offset.reset", "earliest"),
    ])
    .unwrap();
    server.subscribe([REQUESTS]).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let assigned = server.assignment().await.unwrap();
        if assigned.len() == 2 && assigned.iter().all(|(_, p)| p.is_some()) {
            break;
        }
        assert!(Instant::now() < deadline, "server never got its partitions");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let server_producer = producer();
    let running = start_server(server, server_producer.clone());

    // 200 concurrent requests, each answered with its own value uppercased.
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..200 {
        let client = client.clone();
        requests.spawn(async move {
            let request = ProducerRecord::new(REQUESTS, format!("req-{i}")).key(format!("k{i}"));
            let reply = client.request(request, Duration::from_secs(30)).await;
            (i, reply)
        });
    }
    while let Some(joined) = requests.join_next().await {
        let (i, reply) = joined.unwrap();
        let reply = reply.unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(reply.value.as_deref(), Some(format!("REQ-{i}").as_bytes()));
        assert_eq!(reply.key.as_deref(), Some(format!("k{i}").as_bytes()));
        assert_eq!(&*reply.topic, REPLIES);
    }
    let (server, served) = running.await.unwrap();
    assert_eq!(served.replied, 200);

    // Server stopped: the request times out, its late reply is expired.
    let late = ProducerRecord::new(REQUESTS, "late");
    match client.request(late, Duration::from_millis(300)).await {
        Err(RequestError::Timeout { after_ms: 300 }) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    // Not a request: the server skips it.
    server_producer
        .send(ProducerRecord::new(REQUESTS, "no headers"))
        .await
        .unwrap()
        .await
        .unwrap();
    let running = start_server(server, server_producer.clone());
    eventually("the expired reply", || client.stats().expired_replies == 1).await;
    let (server, served) = running.await.unwrap();
    assert_eq!((served.replied, served.skipped), (1, 1));

    // A reply nobody asked for.
    let stray = ProducerRecord::new(REPLIES, "stray").header(
        CORRELATION_ID_HEADER,
        IdGenerator::default().next_id().to_be_bytes().to_vec(),
    );
    server_producer.send(stray).await.unwrap().await.unwrap();
    eventually("the unknown reply", || client.stats().unknown_replies == 1).await;

    assert_eq!(
        client.stats(),
        RequestReplyStats {
            sent: 201,
            replied: 200,
            timed_out: 1,
            unknown_replies: 1,
            expired_replies: 1,
        }
    );
    server.close().await;
    Arc::into_inner(client)
        .expect("requests done")
        .close()
        .await;
}
