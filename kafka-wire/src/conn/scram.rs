//! SCRAM-SHA-256/512 (RFC 5802, RFC 7677) as pure message logic: no I/O.
//!
//! ```text
//! client-first  n,,n=USER,r=CNONCE
//! server-first  r=CNONCE+SNONCE,s=SALT_B64,i=ITERATIONS
//! client-final  c=biws,r=CNONCE+SNONCE,p=PROOF_B64
//! server-final  v=SERVER_SIGNATURE_B64   (or e=ERROR)
//! ```
//! Server messages are hostile input: every field is checked, and the
//! iteration count is bounded so a server cannot make the client spin.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// Highest PBKDF2 iteration count accepted from a server (Kafka's own limit is
/// 16,384; Kafka's minimum is 4,096).
pub const MAX_ITERATIONS: u32 = 100_000;

/// SASL failures, from message parsing to the broker's verdict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    /// A server message is not what SCRAM allows.
    #[error("malformed SCRAM {message}: {reason}")]
    Malformed {
        /// Which message.
        message: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The server's nonce does not extend ours (a replay or a man in the middle).
    #[error("SCRAM server nonce does not start with the client nonce")]
    NonceMismatch,
    /// The server asks for more PBKDF2 iterations than [`MAX_ITERATIONS`].
    #[error("SCRAM iteration count {0} outside 1..={MAX_ITERATIONS}")]
    Iterations(u32),
    /// The server's signature is wrong: it does not know the password.
    #[error("SCRAM server signature does not verify")]
    ServerSignature,
    /// The server sent `e=…` in its final message.
    #[error("SCRAM server error: {0}")]
    ServerError(String),
    /// The broker does not enable the mechanism; it lists the ones it does.
    #[error("broker does not enable SASL mechanism {wanted}; enabled: {enabled:?}")]
    MechanismNotEnabled {
        /// Mechanism asked for.
        wanted: String,
        /// Mechanisms the broker enables.
        enabled: Vec<String>,
    },
    /// The broker rejected the credentials.
    #[error("SASL authentication failed: {0}")]
    AuthenticationFailed(String),
}

/// The hash behind a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

/// Parsed server-first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFirst {
    /// Combined nonce (client nonce + server part).
    pub nonce: String,
    /// Salt, decoded.
    pub salt: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: u32,
}

/// Parses `r=…,s=…,i=…` (extensions after `i` are ignored).
pub fn parse_server_first(message: &[u8]) -> Result<ServerFirst, SaslError> {
    let malformed = |reason: &str| SaslError::Malformed {
        message: "server-first",
        reason: reason.into(),
    };
    let text = std::str::from_utf8(message).map_err(|_| malformed("not UTF-8"))?;
    let mut fields = text.split(',');
    let nonce = attribute(fields.next(), 'r').ok_or_else(|| malformed("missing r="))?;
    let salt = attribute(fields.next(), 's').ok_or_else(|| malformed("missing s="))?;
    let iterations = attribute(fields.next(), 'i').ok_or_else(|| malformed("missing i="))?;
    if nonce.is_empty() {
        return Err(malformed("empty nonce"));
    }
    let salt = BASE64
        .decode(salt)
        .map_err(|_| malformed("salt is not base64"))?;
    let iterations: u32 = iterations
        .parse()
        .map_err(|_| malformed("iteration count is not a number"))?;
    if iterations == 0 || iterations > MAX_ITERATIONS {
        return Err(SaslError::Iterations(iterations));
    }
    Ok(ServerFirst {
        nonce: nonce.to_owned(),
        salt,
        iterations,
    })
}

/// Parsed server-final message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerFinal {
    /// `v=`: the server's signature.
    Verifier(Vec<u8>),
    /// `e=`: the server's error.
    Error(String),
}

/// Parses `v=…` or `e=…`.
pub fn parse_server_final(message: &[u8]) -> Result<ServerFinal, SaslError> {
    let malformed = |reason: &str| SaslError::Malformed {
        message: "server-final",
        reason: reason.into(),
    };
    let text = std::str::from_utf8(message).map_err(|_| malformed("not UTF-8"))?;
    let first = text.split(',').next();
    if let Some(error) = attribute(first, 'e') {
        return Ok(ServerFinal::Error(error.to_owned()));
    }
    let verifier = attribute(first, 'v').ok_or_else(|| malformed("missing v= or e="))?;
    BASE64
        .decode(verifier)
        .map(ServerFinal::Verifier)
        .map_err(|_| malformed("verifier is not base64"))
}

fn attribute(field: Option<&str>, name: char) -> Option<&str> {
    let field = field?;
    let mut chars = field.chars();
    (chars.next()? == name && chars.next()? == '=').then(|| &field[2..])
}

/// A SCRAM exchange from the client's side.
#[derive(Debug, Clone)]
pub struct ScramClient {
    hash: ScramHash,
    password: String,
    client_nonce: String,
    client_first_bare: String,
    expected_server_signature: Option<Vec<u8>>,
}

impl ScramClient {
    /// Starts an exchange with a fresh random nonce.
    pub fn new(hash: ScramHash, username: &str, password: &str) -> Self {
        let mut raw = [0u8; 24];
        getrandom::getrandom(&mut raw).expect("the OS random source is available");
        Self::with_nonce(hash, username, password, &BASE64.encode(raw))
    }

    /// Starts an exchange with a given nonce (test vectors).
    pub fn with_nonce(hash: ScramHash, username: &str, password: &str, nonce: &str) -> Self {
        let name = username.replace('=', "=3D").replace(',', "=2C");
        Self {
            hash,
            password: password.to_owned(),
            client_nonce: nonce.to_owned(),
            client_first_bare: format!("n={name},r={nonce}"),
            expected_server_signature: None,
        }
    }

    /// The client-first message.
    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// Answers the server-first message with the client-final message.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, SaslError> {
        let parsed = parse_server_first(server_first)?;
        if !parsed.nonce.starts_with(&self.client_nonce)
            || parsed.nonce.len() == self.client_nonce.len()
        {
            return Err(SaslError::NonceMismatch);
        }
        let without_proof = format!("c=biws,r={}", parsed.nonce);
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare,
            String::from_utf8_lossy(server_first),
            without_proof
        );
        let keys = derive_keys(
            self.hash,
            self.password.as_bytes(),
            &parsed.salt,
            parsed.iterations,
        );
        let client_signature = hmac(self.hash, &keys.stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = keys
            .client_key
            .iter()
            .zip(&client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        self.expected_server_signature =
            Some(hmac(self.hash, &keys.server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message: the server proves it knows the password.
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), SaslError> {
        match parse_server_final(server_final)? {
            ServerFinal::Error(error) => Err(SaslError::ServerError(error)),
            ServerFinal::Verifier(signature) => {
                let expected =
                    self.expected_server_signature
                        .as_deref()
                        .ok_or(SaslError::Malformed {
                            message: "server-final",
                            reason: "arrived before server-first".into(),
                        })?;
                if constant_time_eq(expected, &signature) {
                    Ok(())
                } else {
                    Err(SaslError::ServerSignature)
                }
            }
        }
    }
}

struct Keys {
    client_key: Vec<u8>,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

fn derive_keys(hash: ScramHash, password: &[u8], salt: &[u8], iterations: u32) -> Keys {
    let salted = match hash {
        ScramHash::Sha256 => {
            pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec()
        }
        ScramHash::Sha512 => {
            pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, iterations).to_vec()
        }
    };
    let client_key = hmac(hash, &salted, b"Client Key");
    let stored_key = match hash {
        ScramHash::Sha256 => Sha256::digest(&client_key).to_vec(),
        ScramHash::Sha512 => Sha512::digest(&client_key).to_vec(),
    };
    let server_key = hmac(hash, &salted, b"Server Key");
    Keys {
        client_key,
        stored_key,
        server_key,
    }
}

fn hmac(hash: ScramHash, key: &[u8], data: &[u8]) -> Vec<u8> {
    match hash {
        ScramHash::Sha256 => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        ScramHash::Sha512 => {
            let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7677 section 3: the SCRAM-SHA-256 example exchange.
    const SERVER_FIRST: &[u8] =
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";

    #[test]
    fn rfc_7677_sha256_exchange() {
        let mut client =
            ScramClient::with_nonce(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(client.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let client_final = client.client_final(SERVER_FIRST).unwrap();
        assert_eq!(
            String::from_utf8(client_final).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        client
            .verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert_eq!(
            client.verify_server_final(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Err(SaslError::ServerSignature)
        );
    }

    #[test]
    fn hostile_server_first_messages_are_errors() {
        let mut client = ScramClient::with_nonce(ScramHash::Sha512, "u", "p", "abc");
        for bad in [
            &b""[..],
            b"r=abcdef",
            b"r=abcdef,s=***,i=4096",
            b"r=abcdef,s=c2FsdA==,i=-1",
            b"r=abcdef,s=c2FsdA==,i=4000000000",
            b"r=xyz123,s=c2FsdA==,i=4096",
            b"r=abc,s=c2FsdA==,i=4096",
            b"\xff\xfe",
        ] {
            assert!(
                client.client_final(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn usernames_are_escaped() {
        let client = ScramClient::with_nonce(ScramHash::Sha256, "a=b,c", "p", "n");
        assert_eq!(client.client_first(), b"n,,n=a=3Db=2Cc,r=n");
    }

    #[test]
    fn server_error_is_reported() {
        assert_eq!(
            parse_server_final(b"e=invalid-proof").unwrap(),
            ServerFinal::Error("invalid-proof".into())
        );
    }
}
