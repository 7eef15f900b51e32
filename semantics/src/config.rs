//! Producer configuration with the Kafka property names, so a Java or
//! librdkafka configuration can be pasted.
//!
//! | key | default | notes |
//! |---|---|---|
//! | `bootstrap.servers` (`metadata.broker.list`) | required | `host:port,…` |
//! | `client.id` | `kafka-pure` | |
//! | `acks` (`request.required.acks`) | `all` | `0`, `1`, `all`/`-1` |
//! | `enable.idempotence` | `true` where it can be | needs `acks=all`, ≤ 5 in flight, retries > 0; unset, it turns off when those rule it out (Java 3.2+) |
//! | `linger.ms` (`queue.buffering.max.ms`) | 5 | |
//! | `batch.size` | 16384 | bytes per partition batch |
//! | `batch.num.messages` | 10000 | records per batch |
//! | `buffer.memory` (`queue.buffering.max.kbytes`, KiB) | 33554432 | bytes queued |
//! | `max.block.ms` | 60000 | wait for metadata or buffer space |
//! | `compression.type` (`compression.codec`) | `none` | `none`, `gzip`, `snappy`, `lz4`, `zstd` |
//! | `max.in.flight.requests.per.connection` | 5 | |
//! | `retries` | 2147483647 | bounded by `delivery.timeout.ms` |
//! | `retry.backoff.ms` / `retry.backoff.max.ms` | 100 / 1000 | exponential with jitter |
//! | `reconnect.backoff.ms` / `reconnect.backoff.max.ms` | 50 / 1000 | wait before reconnecting to a broker whose last attempt failed, doubling with ±20 % jitter |
//! | `socket.connection.setup.timeout.ms` | 10000 | TCP connect and TLS handshake to one broker (KIP-601) |
//! | `request.timeout.ms` | 30000 | |
//! | `delivery.timeout.ms` | 120000 | ≥ `linger.ms` + `request.timeout.ms`; unset, it grows to that |
//! | `max.request.size` (`message.max.bytes`) | 1048576 | |
//! | `allow.auto.create.topics` | `true` | |
//! | `metadata.max.age.ms` (`topic.metadata.refresh.interval.ms`) | 300000 | metadata is refreshed at least this often |
//! | `transactional.id` / `transaction.timeout.ms` | none / 60000 | enables transactions (needs idempotence) |
//! | `security.protocol`, `sasl.mechanism`, `sasl.username`, `sasl.password` | `PLAINTEXT` | `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`; SASL `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` |
//! | `ssl.ca.location` | required with SSL | PEM certificates to trust |
//! | `ssl.certificate.location`, `ssl.key.location` | none | PEM client certificate chain and unencrypted key (mutual TLS) |
//! | `ssl.endpoint.identification.algorithm` | `https` | the only value: the broker's certificate must name the host |
//!
//! Keys of Java or librdkafka that do not apply here (serializers, interceptors,
//! statistics …) are accepted and ignored with a warning; any other key is an
//! error that names it.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_wire::conn::{SaslConfig, SaslMechanism, TlsConfig};
use kafka_wire::records::Compression;

/// `acks`: how many replicas must have the record before the broker answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// `acks=0`: no answer at all; records may be lost.
    None,
    /// `acks=1`: the leader wrote it.
    Leader,
    /// `acks=all`: every in-sync replica wrote it.
    All,
}

impl Acks {
    /// The value in ProduceRequest.
    pub fn wire_value(self) -> i16 {
        match self {
            Self::None => 0,
            Self::Leader => 1,
            Self::All => -1,
        }
    }
}

/// Configuration errors, naming the key(s) and the allowed values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value that does not parse or is out of range.
    #[error("invalid value {value:?} for {key}: expected {expected}")]
    InvalidValue {
        /// The key.
        key: String,
        /// The value given.
        value: String,
        /// What is allowed.
        expected: &'static str,
    },
    /// A key this client does not know.
    #[error("unknown configuration key {0:?}")]
    UnknownKey(String),
    /// A required key is missing.
    #[error("missing required configuration key {0}")]
    Missing(&'static str),
    /// Keys whose values contradict each other.
    #[error("{0}")]
    Conflict(String),
}

/// Producer settings. Build with [`ProducerConfig::from_properties`] or serde.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// `bootstrap.servers`.
    pub bootstrap_servers: Vec<String>,
    /// `client.id`.
    pub client_id: String,
    /// `acks`.
    pub acks: Acks,
    /// `enable.idempotence`.
    pub enable_idempotence: bool,
    /// `linger.ms`.
    pub linger: Duration,
    /// `batch.size` in bytes.
    pub batch_size: usize,
    /// `batch.num.messages`.
    pub batch_max_records: usize,
    /// `buffer.memory` in bytes.
    pub buffer_memory: usize,
    /// `max.block.ms`.
    pub max_block: Duration,
    /// `compression.type`.
    pub compression: Compression,
    /// `max.in.flight.requests.per.connection`.
    pub max_in_flight: usize,
    /// `retries`.
    pub retries: u32,
    /// `retry.backoff.ms`.
    pub retry_backoff: Duration,
    /// `reconnect.backoff.ms`.
    pub reconnect_backoff: Duration,
    /// `reconnect.backoff.max.ms`.
    pub reconnect_backoff_max: Duration,
    /// `socket.connection.setup.timeout.ms`: TCP connect plus TLS handshake.
    pub connection_setup_timeout: Duration,
    /// `retry.backoff.max.ms`.
    pub retry_backoff_max: Duration,
    /// `request.timeout.ms`.
    pub request_timeout: Duration,
    /// `delivery.timeout.ms`.
    pub delivery_timeout: Duration,
    /// `max.request.size`.
    pub max_request_size: usize,
    /// `allow.auto.create.topics`.
    pub allow_auto_create_topics: bool,
    /// `metadata.max.age.ms`: refresh metadata at least this often, so
    /// leadership moves are seen even by a producer that sees no error.
    pub metadata_max_age: Duration,
    /// `transactional.id`.
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms`.
    pub transaction_timeout: Duration,
    /// SASL from `security.protocol` + `sasl.*`.
    pub sasl: Option<SaslConfig>,
    /// TLS from `security.protocol` + `ssl.ca.location`.
    pub tls: Option<TlsConfig>,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: Vec::new(),
            client_id: "kafka-pure".into(),
            acks: Acks::All,
            enable_idempotence: true,
            linger: Duration::from_millis(5),
            batch_size: 16_384,
            batch_max_records: 10_000,
            buffer_memory: 33_554_432,
            max_block: Duration::from_millis(60_000),
            compression: Compression::None,
            max_in_flight: 5,
            retries: i32::MAX as u32,
            retry_backoff: Duration::from_millis(100),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_millis(1_000),
            connection_setup_timeout: Duration::from_millis(10_000),
            retry_backoff_max: Duration::from_millis(1_000),
            request_timeout: Duration::from_millis(30_000),
            delivery_timeout: Duration::from_millis(120_000),
            metadata_max_age: Duration::from_millis(300_000),
            max_request_size: 1_048_576,
            allow_auto_create_topics: true,
            transactional_id: None,
            transaction_timeout: Duration::from_millis(60_000),
            sasl: None,
            tls: None,
        }
    }
}

/// Keys pasted from Java or librdkafka configurations that do not apply here.
pub(crate) const IGNORED_KEYS: &[&str] = &[
    "key.serializer",
    "value.serializer",
    "partitioner.class",
    "interceptor.classes",
    "statistics.interval.ms",
    "metrics.recording.level",
    "socket.keepalive.enable",
    "api.version.request",
    "broker.version.fallback",
    "log.connection.close",
    "partitioner",
];

impl ProducerConfig {
    /// Parses Kafka properties and validates the result.
    pub fn from_properties<I, K, V>(properties: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut config = Self::default();
        let mut security = Security::default();
        let mut explicit_idempotence = None;
        let mut explicit_delivery_timeout = false;
        for (key, value) in properties {
            let (key, value) = (key.as_ref().trim(), value.as_ref().trim());
            explicit_delivery_timeout |=
                matches!(key, "delivery.timeout.ms" | "message.timeout.ms");
            config.apply(key, value, &mut security, &mut explicit_idempotence)?;
        }
        config.adjust_implicit_defaults(explicit_idempotence, explicit_delivery_timeout);
        if config.transactional_id.is_some() && explicit_idempotence == Some(false) {
            return Err(ConfigError::Conflict(
                "transactional.id requires enable.idempotence=true (got false)".into(),
            ));
        }
        security.apply_to(&mut config)?;
        config.validate()?;
        Ok(config)
    }

    /// From `KAFKA_*` environment variables (`KAFKA_BOOTSTRAP_SERVERS` …),
    /// applied over `properties`: the environment wins, as a deployment's
    /// override of what the code sets.
    pub fn from_properties_and_env<I, K, V>(properties: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        Self::from_properties(with_env(properties, |key| {
            let mut probe = Self::default();
            !matches!(
                probe.apply(key, "", &mut Security::default(), &mut None),
                Err(ConfigError::UnknownKey(_))
            )
        }))
    }

    fn apply(
        &mut self,
        key: &str,
        value: &str,
        security: &mut Security,
        idempotence: &mut Option<bool>,
    ) -> Result<(), ConfigError> {
        match key {
            "bootstrap.servers" | "metadata.broker.list" => {
                self.bootstrap_servers = servers(key, value)?
            }
            "client.id" => self.client_id = value.to_owned(),
            "acks" | "request.required.acks" => self.acks = acks(key, value)?,
            "enable.idempotence" => {
                self.enable_idempotence = boolean(key, value)?;
                *idempotence = Some(self.enable_idempotence);
            }
            "linger.ms" | "queue.buffering.max.ms" => self.linger = millis(key, value)?,
            "batch.size" => self.batch_size = positive(key, value)?,
            "batch.num.messages" => self.batch_max_records = positive(key, value)?,
            "buffer.memory" => self.buffer_memory = positive(key, value)?,
            "queue.buffering.max.kbytes" => self.buffer_memory = positive(key, value)? * 1024,
            "queue.buffering.max.messages" => {}
            "max.block.ms" => self.max_block = millis(key, value)?,
            "compression.type" | "compression.codec" => {
                self.compression = Compression::from_name(value)
                    .ok_or_else(|| invalid(key, value, "one of none, gzip, snappy, lz4, zstd"))?
            }
            "max.in.flight.requests.per.connection" | "max.in.flight" => {
                self.max_in_flight = positive(key, value)?
            }
            "retries" | "message.send.max.retries" => {
                self.retries = number(key, value, "a non-negative integer")?
            }
            "retry.backoff.ms" => self.retry_backoff = millis(key, value)?,
            "reconnect.backoff.ms" => self.reconnect_backoff = millis(key, value)?,
            "reconnect.backoff.max.ms" => self.reconnect_backoff_max = millis(key, value)?,
            "socket.connection.setup.timeout.ms" => {
                self.connection_setup_timeout = positive_millis(key, value)?
            }
            "retry.backoff.max.ms" => self.retry_backoff_max = millis(key, value)?,
            "request.timeout.ms" => self.request_timeout = millis(key, value)?,
            "metadata.max.age.ms" | "topic.metadata.refresh.interval.ms" => {
                self.metadata_max_age = millis(key, value)?
            }
            "delivery.timeout.ms" | "message.timeout.ms" => {
                self.delivery_timeout = millis(key, value)?
            }
            "max.request.size" | "message.max.bytes" => {
                self.max_request_size = positive(key, value)?
            }
            "allow.auto.create.topics" => self.allow_auto_create_topics = boolean(key, value)?,
            "transactional.id" => {
                self.transactional_id = Some(value.to_owned()).filter(|v| !v.is_empty())
            }
            "transaction.timeout.ms" => self.transaction_timeout = millis(key, value)?,
            security_key if security.apply(security_key, value) => {}
            ignored if IGNORED_KEYS.contains(&ignored) => tracing::warn!(
                key = ignored,
                "configuration key does not apply to this client; ignored"
            ),
            unknown => return Err(ConfigError::UnknownKey(unknown.to_owned())),
        }
        Ok(())
    }

    /// Java's rules for defaults the user did not set: idempotence is on by
    /// default only where it can be (acks=all, retries > 0, ≤ 5 in flight), and
    /// `delivery.timeout.ms` grows to cover `linger.ms` + `request.timeout.ms`.
    fn adjust_implicit_defaults(
        &mut self,
        explicit_idempotence: Option<bool>,
        explicit_delivery_timeout: bool,
    ) {
        let compatible = self.acks == Acks::All && self.retries > 0 && self.max_in_flight <= 5;
        if explicit_idempotence.is_none() && self.transactional_id.is_none() && !compatible {
            tracing::warn!("enable.idempotence was not set and acks/retries/max.in.flight rule it out: idempotence is off");
            self.enable_idempotence = false;
        }
        let floor = self.linger + self.request_timeout;
        if !explicit_delivery_timeout && self.delivery_timeout < floor {
            tracing::warn!(
                delivery_timeout_ms = floor.as_millis() as u64,
                "delivery.timeout.ms raised to linger.ms + request.timeout.ms"
            );
            self.delivery_timeout = floor;
        }
    }

    /// Checks combinations of keys, naming both sides of a conflict.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.bootstrap_servers.is_empty() {
            return Err(ConfigError::Missing("bootstrap.servers"));
        }
        if self.enable_idempotence {
            if self.acks != Acks::All {
                return Err(ConfigError::Conflict(format!(
                    "enable.idempotence=true requires acks=all (got acks={})",
                    self.acks.wire_value()
                )));
            }
            if self.max_in_flight > 5 {
                return Err(ConfigError::Conflict(format!(
                    "enable.idempotence=true requires max.in.flight.requests.per.connection <= 5 (got {})",
                    self.max_in_flight
                )));
            }
            if self.retries == 0 {
                return Err(ConfigError::Conflict(
                    "enable.idempotence=true requires retries > 0 (got 0)".into(),
                ));
            }
        }
        if self.transactional_id.is_some() && !self.enable_idempotence {
            return Err(ConfigError::Conflict(
                "transactional.id requires enable.idempotence=true".into(),
            ));
        }
        if self.delivery_timeout < self.linger + self.request_timeout {
            return Err(ConfigError::Conflict(format!(
                "delivery.timeout.ms ({}) must be >= linger.ms ({}) + request.timeout.ms ({})",
                self.delivery_timeout.as_millis(),
                self.linger.as_millis(),
                self.request_timeout.as_millis()
            )));
        }
        Ok(())
    }

    /// The configuration as Kafka properties (Java key names).
    pub fn to_properties(&self) -> BTreeMap<String, String> {
        let ms = |d: Duration| d.as_millis().to_string();
        let mut map = BTreeMap::from([
            (
                "bootstrap.servers".to_owned(),
                self.bootstrap_servers.join(","),
            ),
            ("client.id".to_owned(), self.client_id.clone()),
            (
                "acks".to_owned(),
                if self.acks == Acks::All {
                    "all".to_owned()
                } else {
                    self.acks.wire_value().to_string()
                },
            ),
            (
                "enable.idempotence".to_owned(),
                self.enable_idempotence.to_string(),
            ),
            ("linger.ms".to_owned(), ms(self.linger)),
            ("batch.size".to_owned(), self.batch_size.to_string()),
            (
                "batch.num.messages".to_owned(),
                self.batch_max_records.to_string(),
            ),
            ("buffer.memory".to_owned(), self.buffer_memory.to_string()),
            ("max.block.ms".to_owned(), ms(self.max_block)),
            ("metadata.max.age.ms".to_owned(), ms(self.metadata_max_age)),
            (
                "compression.type".to_owned(),
                self.compression.name().to_owned(),
            ),
            (
                "max.in.flight.requests.per.connection".to_owned(),
                self.max_in_flight.to_string(),
            ),
            ("retries".to_owned(), self.retries.to_string()),
            ("retry.backoff.ms".to_owned(), ms(self.retry_backoff)),
            (
                "reconnect.backoff.ms".to_owned(),
                ms(self.reconnect_backoff),
            ),
            (
                "reconnect.backoff.max.ms".to_owned(),
                ms(self.reconnect_backoff_max),
            ),
            (
                "socket.connection.setup.timeout.ms".to_owned(),
                ms(self.connection_setup_timeout),
            ),
            (
                "retry.backoff.max.ms".to_owned(),
                ms(self.retry_backoff_max),
            ),
            ("request.timeout.ms".to_owned(), ms(self.request_timeout)),
            ("delivery.timeout.ms".to_owned(), ms(self.delivery_timeout)),
            (
                "max.request.size".to_owned(),
                self.max_request_size.to_string(),
            ),
            (
                "allow.auto.create.topics".to_owned(),
                self.allow_auto_create_topics.to_string(),
            ),
            (
                "transaction.timeout.ms".to_owned(),
                ms(self.transaction_timeout),
            ),
        ]);
        if let Some(id) = &self.transactional_id {
            map.insert("transactional.id".into(), id.clone());
        }
        map
    }
}

impl<'de> serde::Deserialize<'de> for ProducerConfig {
    /// From a map of Kafka keys to strings, numbers or booleans — through
    /// [`ProducerConfig::from_properties`], so both paths agree.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::from_properties(properties_of(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// A map of Kafka keys to strings, numbers or booleans, as `key=value` text.
pub(crate) fn properties_of<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<(String, String)>, D::Error> {
    use serde::Deserialize;
    let map = BTreeMap::<String, serde_json::Value>::deserialize(deserializer)?;
    Ok(map
        .into_iter()
        .map(|(key, value)| match value {
            serde_json::Value::String(text) => (key, text),
            other => (key, other.to_string()),
        })
        .collect())
}

/// `properties`, then the `KAFKA_*` environment variables that `known`
/// accepts (the environment wins).
pub(crate) fn with_env<I, K, V>(
    properties: I,
    known: impl Fn(&str) -> bool,
) -> Vec<(String, String)>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut all: Vec<(String, String)> = properties
        .into_iter()
        .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
        .collect();
    all.extend(crate::config_env::kafka_env(known));
    all
}

impl serde::Serialize for ProducerConfig {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_properties().serialize(serializer)
    }
}

/// `security.protocol` and the `sasl.*` / `ssl.*` keys, shared by the
/// producer and consumer configurations.
#[derive(Default)]
pub(crate) struct Security {
    pub(crate) protocol: Option<String>,
    pub(crate) mechanism: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) ca_location: Option<std::path::PathBuf>,
    pub(crate) certificate_location: Option<std::path::PathBuf>,
    pub(crate) key_location: Option<std::path::PathBuf>,
    pub(crate) endpoint_identification: Option<String>,
}

impl Security {
    /// Applies a security key; false when `key` is not one.
    pub(crate) fn apply(&mut self, key: &str, value: &str) -> bool {
        match key {
            "security.protocol" => self.protocol = Some(value.to_ascii_uppercase()),
            "sasl.mechanism" | "sasl.mechanisms" => self.mechanism = Some(value.to_owned()),
            "sasl.username" => self.username = Some(value.to_owned()),
            "sasl.password" => self.password = Some(value.to_owned()),
            "ssl.ca.location" => self.ca_location = Some(value.into()),
            "ssl.certificate.location" => self.certificate_location = Some(value.into()),
            "ssl.key.location" => self.key_location = Some(value.into()),
            "ssl.endpoint.identification.algorithm" => {
                self.endpoint_identification = Some(value.to_owned())
            }
            _ => return false,
        }
        true
    }

    fn apply_to(self, config: &mut ProducerConfig) -> Result<(), ConfigError> {
        let (tls, sasl) = self.resolve()?;
        config.tls = tls;
        config.sasl = sasl;
        Ok(())
    }

    /// TLS and SASL settings, checked.
    pub(crate) fn resolve(self) -> Result<(Option<TlsConfig>, Option<SaslConfig>), ConfigError> {
        let mut resolved = (None, None);
        let protocol = self.protocol.as_deref().unwrap_or("PLAINTEXT");
        let (tls, sasl) = match protocol {
            "PLAINTEXT" => (false, false),
            "SSL" => (true, false),
            "SASL_PLAINTEXT" => (false, true),
            "SASL_SSL" => (true, true),
            other => {
                return Err(invalid(
                    "security.protocol",
                    other,
                    "one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL",
                ))
            }
        };
        if let Some(algorithm) = self.endpoint_identification.as_deref() {
            if !algorithm.eq_ignore_ascii_case("https") {
                // Java turns the server name check off with an empty value;
                // this client always checks it.
                return Err(invalid(
                    "ssl.endpoint.identification.algorithm",
                    algorithm,
                    "https (the broker's certificate must name the host: the check cannot be turned off)",
                ));
            }
        }
        if tls {
            resolved.0 = Some(TlsConfig {
                ca_location: self.ca_location,
                certificate_location: self.certificate_location,
                key_location: self.key_location,
                ..TlsConfig::default()
            });
        }
        if sasl {
            let mechanism = self.mechanism.as_deref().unwrap_or("PLAIN");
            let mechanism = SaslMechanism::from_name(mechanism).map_err(|_| {
                invalid(
                    "sasl.mechanism",
                    mechanism,
                    "one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
                )
            })?;
            resolved.1 = Some(SaslConfig {
                mechanism,
                username: self.username.ok_or(ConfigError::Missing("sasl.username"))?,
                password: self.password.ok_or(ConfigError::Missing("sasl.password"))?,
            });
        }
        Ok(resolved)
    }
}

pub(crate) fn invalid(key: &str, value: &str, expected: &'static str) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        value: value.to_owned(),
        expected,
    }
}

pub(crate) fn number<T: std::str::FromStr>(
    key: &str,
    value: &str,
    expected: &'static str,
) -> Result<T, ConfigError> {
    value.parse().map_err(|_| invalid(key, value, expected))
}

pub(crate) fn positive(key: &str, value: &str) -> Result<usize, ConfigError> {
    number::<usize>(key, value, "a positive integer").and_then(|n| {
        if n > 0 {
            Ok(n)
        } else {
            Err(invalid(key, value, "a positive integer"))
        }
    })
}

pub(crate) fn millis(key: &str, value: &str) -> Result<Duration, ConfigError> {
    number::<u64>(key, value, "milliseconds, a non-negative integer").map(Duration::from_millis)
}

/// Milliseconds above zero (a zero timeout could never be met).
pub(crate) fn positive_millis(key: &str, value: &str) -> Result<Duration, ConfigError> {
    positive(key, value).map(|n| Duration::from_millis(n as u64))
}

pub(crate) fn boolean(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, value, "true or false")),
    }
}

fn acks(key: &str, value: &str) -> Result<Acks, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "0" => Ok(Acks::None),
        "1" => Ok(Acks::Leader),
        "all" | "-1" => Ok(Acks::All),
        _ => Err(invalid(key, value, "one of 0, 1, all, -1")),
    }
}

pub(crate) fn servers(key: &str, value: &str) -> Result<Vec<String>, ConfigError> {
    let servers: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let valid = |s: &String| {
        s.rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
    };
    if servers.is_empty() || !servers.iter().all(valid) {
        return Err(invalid(key, value, "a comma-separated list of host:port"));
    }
    Ok(servers)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
