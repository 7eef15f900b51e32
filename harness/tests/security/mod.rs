//! TLS and SASL against Apache Kafka, each test on a one-node cluster of its
//! own whose client listener requires them (replication stays plaintext on
//! the internal listener). SCRAM users are written when the storage is
//! formatted; PLAIN users live in the listener's JAAS configuration. The
//! TLS tests are in [`tls`].

use harness::broker::test_broker;
use harness::broker::{Cluster, ClusterOptions, SaslUser};
use harness::wire_ops;
use kafka_wire::conn::scram::SaslError;
use kafka_wire::conn::{
    connect, ConnError, ConnectionConfig, SaslConfig, SaslMechanism, TlsConfig,
};
use kafka_wire::records::{BatchBuilder, Compression, ProducerState};

mod certs;
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

/// A one-node cluster requiring SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)
/// of user alice, password `secret`.
async fn authenticating_broker() -> Option<Cluster> {
    if test_broker::is_external() {
        eprintln!("KAFKA_BOOTSTRAP is set: the SASL tests start clusters of their own, so they run only without it");
        return None;
    }
    let options = ClusterOptions {
        sasl_users: Some(vec![SaslUser {
            name: "alice".into(),
            password: "secret".into(),
        }]),
        ..test_broker::own_cluster(1)
    };
    Some(Cluster::start(options).await.expect("start a SASL cluster"))
}

async fn produce_one(
    config: ConnectionConfig,
    tls: Option<&TlsConfig>,
    bootstrap: &str,
) -> Result<i64, String> {
    let connection = connect(bootstrap, tls, config)
        .await
        .map_err(|e| e.to_string())?;
    wire_ops::create_topic(&connection, "secured", 1)
        .await
        .map_err(|e| e.to_string())?;
    // One node: the leader is this connection's broker, once elected.
    wire_ops::await_leadership(&connection, "secured", 0)
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
    let Some(broker) = authenticating_broker().await else {
        return;
    };
    produce_one(
        sasl(SaslMechanism::ScramSha512, "secret"),
        None,
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
    // Kafka fails the SaslAuthenticate request of a bad proof.
    assert!(
        matches!(
            wrong,
            ConnError::Sasl(SaslError::AuthenticationFailed(_) | SaslError::ServerError(_))
        ),
        "{wrong}"
    );
    // Without SASL the broker answers nothing but ApiVersions/SaslHandshake.
    assert!(
        produce_one(ConnectionConfig::default(), None, &broker.bootstrap())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn scram_sha_256_authenticates() {
    let Some(broker) = authenticating_broker().await else {
        return;
    };
    produce_one(
        sasl(SaslMechanism::ScramSha256, "secret"),
        None,
        &broker.bootstrap(),
    )
    .await
    .expect("SCRAM-SHA-256 with the right password");
}

/// SASL PLAIN, which Apache Kafka offers (nisshi did not): the right
/// password authenticates, a wrong one is refused.
#[tokio::test]
async fn plain_authenticates_and_refuses_a_wrong_password() {
    let Some(broker) = authenticating_broker().await else {
        return;
    };
    produce_one(
        sasl(SaslMechanism::Plain, "secret"),
        None,
        &broker.bootstrap(),
    )
    .await
    .expect("PLAIN with the right password");
    let wrong = connect(
        &broker.bootstrap(),
        None,
        sasl(SaslMechanism::Plain, "wrong"),
    )
    .await
    .unwrap_err();
    assert!(matches!(wrong, ConnError::Sasl(_)), "{wrong}");
}
