//! Connection tests on `tokio::io::duplex`, with a scripted peer.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsResponse, MetadataRequest, MetadataResponse};
use kafka_protocol::protocol::{Encodable, HeaderVersion, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;
use crate::codec::header::RequestHeader;

/// Reads one request frame from the peer side; returns its header and body.
async fn read_request(peer: &mut DuplexStream) -> (RequestHeader, Bytes) {
    let size = peer.read_i32().await.unwrap() as usize;
    let mut frame = vec![0; size];
    peer.read_exact(&mut frame).await.unwrap();
    let mut frame = Bytes::from(frame);
    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let header_version = match api_key {
        18 => kafka_protocol::messages::ApiVersionsRequest::header_version(version),
        3 => MetadataRequest::header_version(version),
        17 => kafka_protocol::messages::SaslHandshakeRequest::header_version(version),
        _ => 2,
    };
    let header = RequestHeader::decode(&mut frame, header_version).unwrap();
    (header, frame)
}

async fn write_response<M: Encodable + HeaderVersion>(
    peer: &mut DuplexStream,
    correlation_id: i32,
    version: i16,
    body: &M,
) {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    ResponseHeader { correlation_id }.encode(&mut buf, M::header_version(version));
    body.encode(&mut buf, version).unwrap();
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    peer.write_all(&buf).await.unwrap();
}

fn api_versions(ranges: &[(i16, i16, i16)]) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(
        ranges
            .iter()
            .map(|&(key, min, max)| {
                ApiVersion::default()
                    .with_api_key(key)
                    .with_min_version(min)
                    .with_max_version(max)
            })
            .collect(),
    )
}

fn config() -> ConnectionConfig {
    ConnectionConfig {
        request_timeout: Duration::from_secs(5),
        ..ConnectionConfig::default()
    }
}

/// Completes the ApiVersions exchange as a broker speaking Metadata v0..=12.
async fn serve_handshake(peer: &mut DuplexStream) {
    let (header, _) = read_request(peer).await;
    assert_eq!(header.api_key, 18);
    assert_eq!(header.client_id.as_deref(), Some("kafka-wire"));
    write_response(
        peer,
        header.correlation_id,
        header.api_version,
        &api_versions(&[(18, 0, 4), (3, 0, 12)]),
    )
    .await;
}

#[tokio::test]
async fn handshake_negotiates_and_requests_are_matched_by_correlation_id() {
    let (client, mut peer) = tokio::io::duplex(1 << 16);
    let broker = tokio::spawn(async move {
        serve_handshake(&mut peer).await;
        // Two pipelined requests, answered in reverse order.
        let (first, _) = read_request(&mut peer).await;
        let (second, _) = read_request(&mut peer).await;
        assert_eq!(first.api_version, 12);
        let answer = |id| MetadataResponse::default().with_throttle_time_ms(id);
        write_response(
            &mut peer,
            second.correlation_id,
            12,
            &answer(second.correlation_id),
        )
        .await;
        write_response(
            &mut peer,
            first.correlation_id,
            12,
            &answer(first.correlation_id),
        )
        .await;
        peer
    });
    let connection = Connection::handshake(client, config()).await.unwrap();
    assert_eq!(connection.versions().version(3).unwrap(), 12);
    let request = MetadataRequest::default();
    let (a, b) = tokio::join!(connection.send(&request), connection.send(&request));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.throttle_time_ms, b.throttle_time_ms);
    let _peer = broker.await.unwrap();
}

#[tokio::test]
async fn unsupported_api_versions_version_is_retried_at_the_brokers_max() {
    let (client, mut peer) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        let (header, _) = read_request(&mut peer).await;
        let refusal = api_versions(&[(18, 0, 2)]).with_error_code(35);
        write_response(&mut peer, header.correlation_id, 0, &refusal).await;
        let (retry, _) = read_request(&mut peer).await;
        assert_eq!(retry.api_version, 2);
        write_response(
            &mut peer,
            retry.correlation_id,
            2,
            &api_versions(&[(18, 0, 2)]),
        )
        .await;
        std::future::pending::<()>().await;
    });
    let connection = Connection::handshake(client, config()).await.unwrap();
    assert_eq!(connection.versions().version(18).unwrap(), 2);
}

#[tokio::test]
async fn a_broken_frame_poisons_every_request_in_flight() {
    let (client, mut peer) = tokio::io::duplex(1 << 16);
    let small = ConnectionConfig {
        max_frame_size: 1024,
        ..config()
    };
    let connection = Connection::start(client, small);
    let request = MetadataRequest::default();
    let sends = tokio::spawn({
        let connection = connection.clone();
        async move {
            let first = connection.send_version(&request, 12);
            let second = connection.send_version(&request, 12);
            tokio::join!(first, second)
        }
    });
    read_request(&mut peer).await;
    read_request(&mut peer).await;
    peer.write_all(&4096i32.to_be_bytes()).await.unwrap(); // over the 1 KiB maximum
    let (first, second) = sends.await.unwrap();
    for result in [first, second] {
        let error = result.unwrap_err();
        assert!(error.outcome_unknown(), "{error}");
        assert!(
            matches!(
                error.root(),
                ConnError::Codec(crate::codec::CodecError::FrameTooLarge {
                    size: 4096,
                    max: 1024
                })
            ),
            "{error}"
        );
    }
    assert!(connection.is_poisoned());
    let later = connection
        .send_version(&MetadataRequest::default(), 12)
        .await
        .unwrap_err();
    assert!(
        matches!(later, ConnError::Poisoned { sent: false, .. }),
        "{later}"
    );
}

#[tokio::test]
async fn an_unknown_correlation_id_poisons() {
    let (client, mut peer) = tokio::io::duplex(1 << 16);
    let connection = Connection::start(client, config());
    let pending = tokio::spawn({
        let connection = connection.clone();
        async move {
            connection
                .send_version(&MetadataRequest::default(), 12)
                .await
        }
    });
    let (header, _) = read_request(&mut peer).await;
    write_response(
        &mut peer,
        header.correlation_id + 1000,
        12,
        &MetadataResponse::default(),
    )
    .await;
    let error = pending.await.unwrap().unwrap_err();
    assert!(
        matches!(error.root(), ConnError::UnexpectedCorrelationId { .. }),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_timeout_fails_the_request_and_poisons() {
    let (client, mut peer) = tokio::io::duplex(1 << 16);
    let connection = Connection::start(client, config());
    let pending = tokio::spawn({
        let connection = connection.clone();
        async move {
            connection
                .send_version(&MetadataRequest::default(), 12)
                .await
        }
    });
    read_request(&mut peer).await; // never answered
    let error = pending.await.unwrap().unwrap_err();
    assert!(
        matches!(
            error,
            ConnError::Timeout {
                api: "Metadata",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.outcome_unknown());
    assert!(connection.is_poisoned());
}

#[tokio::test]
async fn peer_close_fails_in_flight_requests_as_closed() {
    let (client, mut peer) = tokio::io::duplex(1 << 16);
    let connection = Connection::start(client, config());
    let pending = tokio::spawn({
        let connection = connection.clone();
        async move {
            connection
                .send_version(&MetadataRequest::default(), 12)
                .await
        }
    });
    read_request(&mut peer).await;
    drop(peer);
    let error = pending.await.unwrap().unwrap_err();
    assert!(matches!(error.root(), ConnError::Closed), "{error}");
}

#[tokio::test]
async fn requests_without_response_hold_no_slot() {
    let (client, mut peer) = tokio::io::duplex(1 << 16);
    let connection = Connection::start(client, config());
    connection
        .send_without_response_version(&MetadataRequest::default(), 12)
        .unwrap();
    let (header, _) = read_request(&mut peer).await;
    assert_eq!(header.api_key, MetadataRequest::KEY);
    // A response to it would be unexpected: nothing waits for that id.
    assert!(connection
        .handle
        .shared
        .state
        .lock()
        .unwrap()
        .pending
        .is_empty());
}

#[tokio::test]
async fn sasl_plain_sends_the_rfc_4616_message() {
    use kafka_protocol::messages::{
        SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
        SaslHandshakeResponse,
    };
    use kafka_protocol::protocol::Decodable;

    let (client, mut peer) = tokio::io::duplex(1 << 16);
    let broker = tokio::spawn(async move {
        let (header, _) = read_request(&mut peer).await;
        let offered = api_versions(&[(18, 0, 4), (17, 0, 1), (36, 0, 2)]);
        write_response(
            &mut peer,
            header.correlation_id,
            header.api_version,
            &offered,
        )
        .await;
        let (header, mut body) = read_request(&mut peer).await;
        assert_eq!(header.api_key, 17);
        let handshake = SaslHandshakeRequest::decode(&mut body, header.api_version).unwrap();
        assert_eq!(handshake.mechanism.as_str(), "PLAIN");
        write_response(
            &mut peer,
            header.correlation_id,
            header.api_version,
            &SaslHandshakeResponse::default(),
        )
        .await;
        // SaslAuthenticate v2 is flexible: header v2.
        let size = peer.read_i32().await.unwrap() as usize;
        let mut frame = vec![0; size];
        peer.read_exact(&mut frame).await.unwrap();
        let mut frame = Bytes::from(frame);
        let header = RequestHeader::decode(&mut frame, 2).unwrap();
        assert_eq!(header.api_key, 36);
        let authenticate = SaslAuthenticateRequest::decode(&mut frame, header.api_version).unwrap();
        assert_eq!(&authenticate.auth_bytes[..], b"\0alice\0secret");
        write_response(
            &mut peer,
            header.correlation_id,
            header.api_version,
            &SaslAuthenticateResponse::default(),
        )
        .await;
        peer
    });
    let sasl = crate::conn::SaslConfig {
        mechanism: crate::conn::SaslMechanism::Plain,
        username: "alice".into(),
        password: "secret".into(),
    };
    let connection = Connection::handshake(
        client,
        ConnectionConfig {
            sasl: Some(sasl),
            ..config()
        },
    )
    .await
    .unwrap();
    assert!(!connection.is_poisoned());
    broker.await.unwrap();
}

#[tokio::test]
async fn a_mechanism_the_broker_does_not_enable_is_named() {
    use kafka_protocol::messages::SaslHandshakeResponse;
    use kafka_protocol::protocol::StrBytes;

    let (client, mut peer) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        let (header, _) = read_request(&mut peer).await;
        write_response(
            &mut peer,
            header.correlation_id,
            header.api_version,
            &api_versions(&[(18, 0, 4), (17, 0, 1)]),
        )
        .await;
        let (header, _) = read_request(&mut peer).await;
        let refusal = SaslHandshakeResponse::default()
            .with_error_code(33)
            .with_mechanisms(vec![StrBytes::from_static_str("SCRAM-SHA-512")]);
        write_response(
            &mut peer,
            header.correlation_id,
            header.api_version,
            &refusal,
        )
        .await;
        std::future::pending::<()>().await;
    });
    let sasl = crate::conn::SaslConfig {
        mechanism: crate::conn::SaslMechanism::Plain,
        username: "alice".into(),
        password: "secret".into(),
    };
    let error = Connection::handshake(
        client,
        ConnectionConfig {
            sasl: Some(sasl),
            ..config()
        },
    )
    .await
    .unwrap_err();
    assert!(
        error.to_string().contains("PLAIN") && error.to_string().contains("SCRAM-SHA-512"),
        "{error}"
    );
}
