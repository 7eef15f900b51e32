//! TLS against Apache Kafka (PEM key and trust stores on the client
//! listener, KIP-651) with certificates made for each run by rcgen: the CA
//! and server name checks, every crypto provider of the build, SASL over
//! TLS, and mutual TLS.

use std::time::Duration;

use harness::broker::{test_broker, Cluster, ClusterOptions, SaslUser, TlsFiles};
use kafka_wire::conn::{
    connect, ConnError, ConnectionConfig, SaslMechanism, TlsConfig, TlsError, TlsProvider,
};
use semantics::{Producer, ProducerRecord};

use super::certs::{Ca, CertDir, Role};
use super::{produce_one, sasl};

/// The broker's names: its address, and a DNS name only a configured
/// server name reaches.
const BROKER_NAMES: &[&str] = &["127.0.0.1", "broker.kafka-pure.test"];

async fn tls_broker(served: TlsFiles, sasl_users: Option<Vec<SaslUser>>) -> Option<Cluster> {
    if test_broker::is_external() {
        eprintln!("KAFKA_BOOTSTRAP is set: the TLS tests start clusters of their own, so they run only without it");
        return None;
    }
    let options = ClusterOptions {
        tls: Some(served),
        sasl_users,
        ..test_broker::own_cluster(1)
    };
    Some(Cluster::start(options).await.expect("start a TLS cluster"))
}

fn trusting(ca: &Ca) -> TlsConfig {
    TlsConfig {
        ca_location: Some(ca.pem.clone()),
        ..TlsConfig::default()
    }
}

async fn refusal(bootstrap: &str, tls: &TlsConfig) -> ConnError {
    let config = ConnectionConfig {
        request_timeout: Duration::from_secs(10),
        ..ConnectionConfig::default()
    };
    connect(bootstrap, Some(tls), config)
        .await
        .expect_err("the connection must fail")
        .root()
        .clone()
}

#[tokio::test]
async fn tls_checks_the_ca_and_the_server_name_with_every_provider() {
    let dir = CertDir::new("checks");
    let ca = Ca::new(&dir, "trusted");
    let stranger = Ca::new(&dir, "stranger");
    let Some(broker) = tls_broker(ca.issue(&dir, Role::Broker, BROKER_NAMES), None).await else {
        return;
    };
    let bootstrap = broker.bootstrap();

    let providers: Vec<TlsProvider> = TlsProvider::PREFERENCE
        .into_iter()
        .filter(|p| p.is_available())
        .collect();
    assert!(
        providers.contains(&TlsProvider::Graviola),
        "the default provider runs on the test machine"
    );
    for provider in providers {
        let tls = TlsConfig {
            provider: Some(provider),
            ..trusting(&ca)
        };
        let connection = connect(&bootstrap, Some(&tls), ConnectionConfig::default())
            .await
            .unwrap_or_else(|e| panic!("TLS handshake with {provider:?}: {e}"));
        harness::wire_ops::create_topic(&connection, "tls", 1)
            .await
            .unwrap_or_else(|e| panic!("a request over TLS with {provider:?}: {e}"));
    }

    // A configured server name is what the certificate must hold.
    let by_name = TlsConfig {
        server_name: Some("broker.kafka-pure.test".into()),
        ..trusting(&ca)
    };
    connect(&bootstrap, Some(&by_name), ConnectionConfig::default())
        .await
        .expect("the certificate names broker.kafka-pure.test");

    let untrusted = refusal(&bootstrap, &trusting(&stranger)).await;
    assert!(
        matches!(
            untrusted,
            ConnError::Tls(TlsError::UntrustedCertificate { .. })
        ),
        "{untrusted}"
    );
    assert!(
        untrusted.to_string().contains("ssl.ca.location"),
        "{untrusted}"
    );

    let wrong_name = TlsConfig {
        server_name: Some("other.kafka-pure.test".into()),
        ..trusting(&ca)
    };
    let mismatch = refusal(&bootstrap, &wrong_name).await;
    let ConnError::Tls(TlsError::NameMismatch { presented, .. }) = &mismatch else {
        panic!("{mismatch}");
    };
    assert!(
        presented
            .iter()
            .any(|n| n.contains("broker.kafka-pure.test")),
        "{mismatch}"
    );

    let plaintext = ConnectionConfig {
        request_timeout: Duration::from_secs(3),
        ..ConnectionConfig::default()
    };
    assert!(
        connect(&bootstrap, None, plaintext).await.is_err(),
        "plaintext must be refused by a TLS-only listener"
    );
}

/// SASL_SSL: each mechanism authenticates over TLS, a wrong password is
/// refused, and the producer's `security.protocol=SASL_SSL` configuration
/// delivers a record.
#[tokio::test]
async fn sasl_ssl_authenticates_with_scram_and_plain() {
    let dir = CertDir::new("sasl-ssl");
    let ca = Ca::new(&dir, "sasl");
    let users = vec![SaslUser {
        name: "alice".into(),
        password: "secret".into(),
    }];
    let served = ca.issue(&dir, Role::Broker, BROKER_NAMES);
    let Some(broker) = tls_broker(served, Some(users)).await else {
        return;
    };
    let bootstrap = broker.bootstrap();
    let tls = trusting(&ca);
    for mechanism in [
        SaslMechanism::ScramSha256,
        SaslMechanism::ScramSha512,
        SaslMechanism::Plain,
    ] {
        produce_one(sasl(mechanism, "secret"), Some(&tls), &bootstrap)
            .await
            .unwrap_or_else(|e| panic!("{mechanism:?} over TLS: {e}"));
        let wrong = connect(&bootstrap, Some(&tls), sasl(mechanism, "wrong"))
            .await
            .unwrap_err();
        assert!(
            matches!(wrong, ConnError::Sasl(_)),
            "{mechanism:?}: {wrong}"
        );
    }

    let producer = Producer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        ("sasl.username", "alice"),
        ("sasl.password", "secret"),
        ("ssl.ca.location", ca.pem.to_str().unwrap()),
        ("ssl.endpoint.identification.algorithm", "https"),
    ])
    .expect("SASL_SSL producer configuration");
    producer
        .send(ProducerRecord::new("secured", "through the producer").partition(0))
        .await
        .expect("queued")
        .await
        .expect("delivered over SASL_SSL");
    producer.close(Duration::from_secs(10)).await;
}

/// Mutual TLS: a client certificate from the CA of the broker's truststore
/// is let in; none, or one from another CA, is refused with an error that
/// says so.
#[tokio::test]
async fn mutual_tls_admits_only_clients_of_the_trusted_ca() {
    let dir = CertDir::new("mtls");
    let ca = Ca::new(&dir, "mtls");
    let stranger = Ca::new(&dir, "impostor");
    let served = TlsFiles {
        client_ca: Some(ca.pem.clone()),
        ..ca.issue(&dir, Role::Broker, BROKER_NAMES)
    };
    let Some(broker) = tls_broker(served, None).await else {
        return;
    };
    let bootstrap = broker.bootstrap();

    let client = ca.issue(&dir, Role::Client, &["alice"]);
    let with_certificate = TlsConfig {
        certificate_location: Some(client.cert.clone()),
        key_location: Some(client.key.clone()),
        ..trusting(&ca)
    };
    produce_one(
        ConnectionConfig::default(),
        Some(&with_certificate),
        &bootstrap,
    )
    .await
    .expect("a client certificate of the trusted CA");

    for (what, tls) in [
        ("no client certificate", trusting(&ca)),
        ("a certificate of another CA", {
            let impostor = stranger.issue(&dir, Role::Client, &["mallory"]);
            TlsConfig {
                certificate_location: Some(impostor.cert),
                key_location: Some(impostor.key),
                ..trusting(&ca)
            }
        }),
    ] {
        let refused = refusal(&bootstrap, &tls).await;
        assert!(
            matches!(refused, ConnError::Tls(TlsError::RefusedByBroker { .. })),
            "{what}: {refused}"
        );
        assert!(
            refused.to_string().contains("ssl.certificate.location"),
            "{what}: {refused}"
        );
    }

    // The same through the producer's configuration keys.
    let producer = Producer::from_properties([
        ("bootstrap.servers", bootstrap.as_str()),
        ("security.protocol", "SSL"),
        ("ssl.ca.location", ca.pem.to_str().unwrap()),
        ("ssl.certificate.location", client.cert.to_str().unwrap()),
        ("ssl.key.location", client.key.to_str().unwrap()),
    ])
    .expect("mutual TLS producer configuration");
    producer
        .send(ProducerRecord::new("secured", "mutual").partition(0))
        .await
        .expect("queued")
        .await
        .expect("delivered over mutual TLS");
    producer.close(Duration::from_secs(10)).await;
}

/// KIP-601: a listener that accepts the TCP connection and then says
/// nothing (a hung TLS terminator, a half-dead host) fails the connect after
/// `socket.connection.setup.timeout.ms` instead of holding the caller for
/// as long as the peer keeps the socket open.
#[tokio::test]
async fn a_silent_tls_peer_fails_the_connect_after_the_setup_timeout() {
    let dir = CertDir::new("silent-peer");
    let ca = Ca::new(&dir, "silent");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let silent = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(socket);
    });
    let started = std::time::Instant::now();
    let error = connect(
        &address,
        Some(&trusting(&ca)),
        ConnectionConfig {
            setup_timeout: Duration::from_millis(300),
            ..ConnectionConfig::default()
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, ConnError::SetupTimeout { address: a, .. } if *a == address),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    silent.abort();
}
