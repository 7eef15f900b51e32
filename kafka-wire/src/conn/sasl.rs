//! SASL over the Kafka protocol: SaslHandshake (v1), then SaslAuthenticate
//! frames carrying the mechanism's messages (KIP-152).

use bytes::Bytes;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;
use tracing::debug;

use super::connection::Connection;
use super::error::ConnError;
use super::scram::{SaslError, ScramClient, ScramHash};
use crate::error::KafkaCode;

/// `sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// PLAIN: the password travels in clear (use it with TLS only).
    Plain,
    /// SCRAM-SHA-256.
    ScramSha256,
    /// SCRAM-SHA-512.
    ScramSha512,
}

impl SaslMechanism {
    /// The name in SaslHandshake and in `sasl.mechanism`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    /// Parses `sasl.mechanism`; the error names the key and the allowed values.
    pub fn from_name(name: &str) -> Result<Self, ConnError> {
        match name.to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(Self::Plain),
            "SCRAM-SHA-256" => Ok(Self::ScramSha256),
            "SCRAM-SHA-512" => Ok(Self::ScramSha512),
            _ => Err(ConnError::Config {
                key: "sasl.mechanism",
                reason: format!("`{name}` is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"),
            }),
        }
    }
}

/// SASL credentials (`sasl.mechanism`, `sasl.username`, `sasl.password`).
#[derive(Clone, PartialEq, Eq)]
pub struct SaslConfig {
    /// Mechanism.
    pub mechanism: SaslMechanism,
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslConfig")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Runs the SASL exchange on a connection whose versions are negotiated.
pub async fn authenticate(connection: &Connection, config: &SaslConfig) -> Result<(), ConnError> {
    handshake(connection, config.mechanism).await?;
    match config.mechanism {
        SaslMechanism::Plain => {
            let message = format!("\0{}\0{}", config.username, config.password);
            exchange(connection, message.into_bytes()).await?;
        }
        SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
            let hash = if config.mechanism == SaslMechanism::ScramSha256 {
                ScramHash::Sha256
            } else {
                ScramHash::Sha512
            };
            let mut scram = ScramClient::new(hash, &config.username, &config.password);
            let server_first = exchange(connection, scram.client_first()).await?;
            let client_final = scram.client_final(&server_first)?;
            let server_final = exchange(connection, client_final).await?;
            scram.verify_server_final(&server_final)?;
        }
    }
    debug!(mechanism = config.mechanism.name(), "SASL authenticated");
    Ok(())
}

async fn handshake(connection: &Connection, mechanism: SaslMechanism) -> Result<(), ConnError> {
    let request =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism.name()));
    let response = connection.send(&request).await?;
    match KafkaCode(response.error_code) {
        KafkaCode::NONE => Ok(()),
        KafkaCode(33) => Err(SaslError::MechanismNotEnabled {
            wanted: mechanism.name().into(),
            enabled: response.mechanisms.iter().map(|m| m.to_string()).collect(),
        }
        .into()),
        other => Err(ConnError::Handshake(other)),
    }
}

async fn exchange(connection: &Connection, message: Vec<u8>) -> Result<Bytes, ConnError> {
    let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(message));
    let response = connection.send(&request).await?;
    if response.error_code != 0 {
        let reason = response
            .error_message
            .map(|m| m.to_string())
            .unwrap_or_else(|| KafkaCode(response.error_code).to_string());
        return Err(SaslError::AuthenticationFailed(reason).into());
    }
    Ok(response.auth_bytes)
}
