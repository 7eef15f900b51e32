//! TLS against Apache Kafka (a PEM key store on the client listener) with a
//! self-signed certificate for 127.0.0.1, made by the `openssl` command line
//! for each run.

use std::path::Path;
use std::process::Command;

use harness::broker::{test_broker, Cluster, ClusterOptions, TlsFiles};
use kafka_wire::conn::{connect, ConnectionConfig, TlsConfig};

fn self_signed(dir: &Path, name: &str) -> TlsFiles {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        // webpki refuses a CA certificate as the server's own: make it a leaf.
        .args([
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the openssl command line (Debian package openssl) makes the test certificate");
    assert!(
        status.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    TlsFiles { cert, key }
}

#[tokio::test]
async fn tls_connects_to_a_trusted_broker_and_refuses_an_untrusted_one() {
    if harness::broker::test_broker::is_external() {
        eprintln!("KAFKA_BOOTSTRAP is set: the TLS test starts a cluster of its own, so it runs only without it");
        return;
    }
    let dir = std::env::temp_dir().join(format!("kafka-pure-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let served = self_signed(&dir, "broker");
    let stranger = self_signed(&dir, "stranger");
    let options = ClusterOptions {
        tls: Some(served.clone()),
        ..test_broker::own_cluster(1)
    };
    let broker = Cluster::start(options).await.expect("start a TLS cluster");

    let trusted = TlsConfig {
        ca_location: Some(served.cert.clone()),
        ..TlsConfig::default()
    };
    let connection = connect(
        &broker.bootstrap(),
        Some(&trusted),
        ConnectionConfig::default(),
    )
    .await
    .expect("TLS handshake");
    harness::wire_ops::create_topic(&connection, "tls", 1)
        .await
        .expect("a request over TLS");

    let untrusted = TlsConfig {
        ca_location: Some(stranger.cert),
        ..TlsConfig::default()
    };
    let refused = connect(
        &broker.bootstrap(),
        Some(&untrusted),
        ConnectionConfig::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(refused, kafka_wire::ConnError::Tls(_)),
        "{refused}"
    );

    let plaintext = ConnectionConfig {
        request_timeout: std::time::Duration::from_secs(3),
        ..ConnectionConfig::default()
    };
    assert!(
        connect(&broker.bootstrap(), None, plaintext).await.is_err(),
        "plaintext must be refused by a TLS-only listener"
    );
}
