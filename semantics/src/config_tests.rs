use super::*;

fn parse(pairs: &[(&str, &str)]) -> Result<ProducerConfig, ConfigError> {
    ProducerConfig::from_properties(pairs.iter().copied())
}

#[test]
fn defaults_match_the_java_client() {
    let config = parse(&[("bootstrap.servers", "localhost:9092")]).unwrap();
    assert_eq!(config.acks, Acks::All);
    assert!(config.enable_idempotence);
    assert_eq!(config.batch_size, 16_384);
    assert_eq!(config.max_in_flight, 5);
    assert_eq!(config.delivery_timeout, Duration::from_secs(120));
    assert_eq!(config.metadata_max_age, Duration::from_secs(300));
}

#[test]
fn metadata_max_age_takes_both_names() {
    for key in ["metadata.max.age.ms", "topic.metadata.refresh.interval.ms"] {
        let config = parse(&[("bootstrap.servers", "a:1"), (key, "1000")]).unwrap();
        assert_eq!(config.metadata_max_age, Duration::from_secs(1), "{key}");
    }
}

#[test]
fn a_pasted_librdkafka_config_parses() {
    let config = parse(&[
        ("metadata.broker.list", "a:9092,b:9093"),
        ("queue.buffering.max.ms", "20"),
        ("compression.codec", "lz4"),
        ("request.required.acks", "-1"),
        ("statistics.interval.ms", "0"),
    ])
    .unwrap();
    assert_eq!(config.bootstrap_servers, ["a:9092", "b:9093"]);
    assert_eq!(config.linger, Duration::from_millis(20));
    assert_eq!(config.compression, Compression::Lz4);
}

#[test]
fn a_pasted_java_config_with_serializers_parses() {
    let config = parse(&[
        ("bootstrap.servers", "k:9092"),
        (
            "key.serializer",
            "org.apache.kafka.common.serialization.StringSerializer",
        ),
        (
            "value.serializer",
            "org.apache.kafka.common.serialization.ByteArraySerializer",
        ),
        ("acks", "all"),
    ])
    .unwrap();
    assert_eq!(config.bootstrap_servers, ["k:9092"]);
}

#[test]
fn serde_accepts_numbers_and_strings() {
    let config: ProducerConfig = serde_json::from_str(r#"{"bootstrap.servers": "a:1", "linger.ms": 7, "batch.size": "1000", "enable.idempotence": true}"#).unwrap();
    assert_eq!(config.linger, Duration::from_millis(7));
    assert_eq!(config.batch_size, 1000);
    let round_trip: ProducerConfig =
        serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
    assert_eq!(round_trip.to_properties(), config.to_properties());
}

/// Properties, and words the error must contain.
type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);

#[test]
fn errors_name_the_keys_and_allowed_values() {
    let cases: &[Case] = &[
        (
            &[("bootstrap.servers", "a:1"), ("acks", "fast")],
            &["acks", "0, 1, all, -1"],
        ),
        (
            &[("bootstrap.servers", "a:1"), ("lingr.ms", "5")],
            &["lingr.ms"],
        ),
        (
            &[
                ("bootstrap.servers", "a:1"),
                ("acks", "1"),
                ("enable.idempotence", "true"),
            ],
            &["enable.idempotence", "acks"],
        ),
        (
            &[
                ("bootstrap.servers", "a:1"),
                ("enable.idempotence", "true"),
                ("max.in.flight.requests.per.connection", "6"),
            ],
            &["enable.idempotence", "max.in.flight"],
        ),
        (
            &[
                ("bootstrap.servers", "a:1"),
                ("transactional.id", "t"),
                ("enable.idempotence", "false"),
                ("acks", "1"),
            ],
            &["transactional.id", "enable.idempotence"],
        ),
        (
            &[("bootstrap.servers", "a:1"), ("delivery.timeout.ms", "100")],
            &["delivery.timeout.ms", "request.timeout.ms"],
        ),
        (
            &[("bootstrap.servers", "nohostport")],
            &["bootstrap.servers", "host:port"],
        ),
        (
            &[("bootstrap.servers", "a:1"), ("compression.type", "brotli")],
            &["compression.type", "zstd"],
        ),
        (
            &[
                ("bootstrap.servers", "a:1"),
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "GSSAPI"),
            ],
            &["sasl.mechanism"],
        ),
        (
            &[
                ("bootstrap.servers", "a:1"),
                ("ssl.endpoint.identification.algorithm", ""),
            ],
            &[
                "ssl.endpoint.identification.algorithm",
                "cannot be turned off",
            ],
        ),
        (&[("linger.ms", "5")], &["bootstrap.servers"]),
    ];
    for (pairs, words) in cases {
        let error = parse(pairs).unwrap_err().to_string();
        for word in *words {
            assert!(error.contains(word), "{error:?} should mention {word:?}");
        }
    }
}

#[test]
fn sasl_and_tls_from_security_protocol() {
    let config = parse(&[
        ("bootstrap.servers", "a:1"),
        ("security.protocol", "sasl_ssl"),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        ("sasl.username", "u"),
        ("sasl.password", "p"),
        ("ssl.ca.location", "/tmp/ca.pem"),
        ("ssl.certificate.location", "/tmp/client.pem"),
        ("ssl.key.location", "/tmp/client.key"),
        ("ssl.endpoint.identification.algorithm", "https"),
    ])
    .unwrap();
    assert_eq!(config.sasl.unwrap().mechanism, SaslMechanism::ScramSha512);
    let tls = config.tls.unwrap();
    assert!(tls.ca_location.is_some());
    assert_eq!(tls.certificate_location, Some("/tmp/client.pem".into()));
    assert_eq!(tls.key_location, Some("/tmp/client.key".into()));
}

#[test]
fn implicit_idempotence_yields_to_acks_as_in_java() {
    let config = parse(&[("bootstrap.servers", "a:1"), ("acks", "1")]).unwrap();
    assert!(
        !config.enable_idempotence,
        "acks=1 without enable.idempotence turns it off"
    );
    let config = parse(&[
        ("bootstrap.servers", "a:1"),
        ("request.timeout.ms", "200000"),
    ])
    .unwrap();
    assert_eq!(
        config.delivery_timeout,
        Duration::from_millis(200_005),
        "an implicit delivery.timeout.ms grows"
    );
}

#[test]
fn transactional_id_needs_idempotence() {
    let config = parse(&[("bootstrap.servers", "a:1"), ("transactional.id", "t-1")]).unwrap();
    assert_eq!(config.transactional_id.as_deref(), Some("t-1"));
    assert!(config.enable_idempotence);
    let error = parse(&[
        ("bootstrap.servers", "a:1"),
        ("transactional.id", "t-1"),
        ("enable.idempotence", "false"),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("transactional.id") && error.contains("enable.idempotence"),
        "{error}"
    );
}
