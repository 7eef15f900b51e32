//! TLS and SASL against the real broker, each with its own broker process
//! (nisshi: `--cert/--key` makes the listener TLS-only; `--authentication`
//! requires SCRAM, with users stored in sqlite). See shared/BROKER.md.

use harness::broker::test_broker;
use harness::broker::{Broker, BrokerOptions, Storage};
use harness::wire_ops;
use kafka_wire::conn::scram::SaslError;
use kafka_wire::conn::{connect, ConnError, ConnectionConfig, SaslConfig, SaslMechanism};
use kafka_wire::records::{BatchBuilder, Compression, ProducerState};

#[cfg(feature = "tls")]
mod tls;

fn sasl(mechanism: SaslMechanism, password: &str) -> ConnectionConfig {
    ConnectionConfig {
        sasl: Some(SaslConfig {
            mechanism,
            username: "alice".into(),
            password: password.into(),
        }),
        ..ConnectionConfig::default()
    }
}

/// A sqlite broker with user alice for `mechanism`, restarted with
/// authentication required.
async fn authenticating_broker(mechanism: &str) -> Option<Broker> {
    if test_broker::is_external() {
        eprintln!("KAFKA_BOOTSTRAP is set: the SASL tests start their own nisshi, so they run only without it");
        return None;
    }
    let options = BrokerOptions {
        storage: Storage::Sqlite,
        die_with_parent: true,
        ..Default::default()
    };
    let mut broker = Broker::start(options).await.expect("start a sqlite broker");
    broker
        .create_user("alice", "secret", mechanism)
        .expect("create a SCRAM user");
    broker.options_mut().authentication = true;
    broker.restart().await.expect("restart with authentication");
    Some(broker)
}

async fn produce_one(config: ConnectionConfig, bootstrap: &str) -> Result<i64, String> {
    let connection = connect(bootstrap, None, config)
        .await
        .map_err(|e| e.to_string())?;
    wire_ops::create_topic(&connection, "secured", 1)
        .await
        .map_err(|e| e.to_string())?;
    let mut batch = BatchBuilder::new(Compression::None);
    batch.append(0, None, Some(b"authenticated"), &[]);
    let offset = wire_ops::produce(
        &connection,
        "secured",
        0,
        batch.build(ProducerState::NONE).unwrap(),
        -1,
        None,
    )
    .await
    .map_err(|e| e.to_string())?;
    offset.ok_or_else(|| "no offset".to_owned())
}

#[tokio::test]
async fn scram_sha_512_authenticates_and_refuses_a_wrong_password() {
    let Some(broker) = authenticating_broker("scram512").await else {
        return;
    };
    produce_one(
        sasl(SaslMechanism::ScramSha512, "secret"),
        &broker.bootstrap(),
    )
    .await
    .expect("SCRAM-SHA-512 with the right password");
    let wrong = connect(
        &broker.bootstrap(),
        None,
        sasl(SaslMechanism::ScramSha512, "wrong"),
    )
    .await
    .unwrap_err();
    // nisshi answers a bad proof in the SCRAM server-final message (`e=invalid-proof`).
    assert!(
        matches!(
            wrong,
            ConnError::Sasl(SaslError::AuthenticationFailed(_) | SaslError::ServerError(_))
        ),
        "{wrong}"
    );
    // Without SASL the broker answers nothing but ApiVersions/SaslHandshake.
    assert!(
        produce_one(ConnectionConfig::default(), &broker.bootstrap())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn scram_sha_256_authenticates() {
    let Some(broker) = authenticating_broker("scram256").await else {
        return;
    };
    produce_one(
        sasl(SaslMechanism::ScramSha256, "secret"),
        &broker.bootstrap(),
    )
    .await
    .expect("SCRAM-SHA-256 with the right password");
}
