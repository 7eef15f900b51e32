//! TLS to a broker through tokio-rustls: the certificates to trust from
//! `ssl.ca.location`, the broker's certificate checked against the server
//! name, and a client certificate for mutual TLS. Neither check can be
//! turned off; a failed one is a [`TlsError`] saying which.

use std::path::PathBuf;

use super::tls_provider::TlsProvider;

/// TLS settings (`security.protocol=SSL`/`SASL_SSL`).
#[derive(Debug, Clone, Default)]
pub struct TlsConfig {
    /// `ssl.ca.location`: PEM file of the certificates to trust.
    pub ca_location: Option<PathBuf>,
    /// Name to verify in the broker's certificate; defaults to the host part
    /// of the address (an IP address works when the certificate has it as SAN).
    pub server_name: Option<String>,
    /// `ssl.certificate.location`: PEM certificate chain of this client, for
    /// brokers that require client certificates (`ssl.client.auth=required`).
    pub certificate_location: Option<PathBuf>,
    /// `ssl.key.location`: the PEM private key (PKCS#8, SEC1 or PKCS#1,
    /// unencrypted) of `certificate_location`.
    pub key_location: Option<PathBuf>,
    /// The crypto provider; `None` takes the first that runs here (see
    /// [`TlsProvider::choose`]).
    pub provider: Option<TlsProvider>,
}

#[cfg(feature = "tls")]
pub(crate) use connector::wrap;

#[cfg(feature = "tls")]
mod connector {
    use std::path::Path;
    use std::sync::Arc;

    use tokio::net::TcpStream;
    use tokio_rustls::client::TlsStream;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio_rustls::rustls::{CertificateError, ClientConfig, Error, RootCertStore};

    use super::super::error::{ConnError, TlsError};
    use super::{TlsConfig, TlsProvider};

    /// Runs the TLS handshake on `tcp`, connected to `address`.
    pub(crate) async fn wrap(
        tcp: TcpStream,
        address: &str,
        tls: &TlsConfig,
    ) -> Result<TlsStream<TcpStream>, ConnError> {
        let chosen = TlsProvider::choose(tls.provider)?;
        let provider = chosen
            .crypto_provider()
            .ok_or_else(|| TlsError::NoProvider {
                reason: format!("{chosen:?} is not built in"),
            })?;
        let config = client_config(tls, provider)?;
        let host = tls
            .server_name
            .clone()
            .unwrap_or_else(|| host_of(address).to_owned());
        let name = ServerName::try_from(host.clone()).map_err(|_| ConnError::Config {
            key: "bootstrap.servers",
            reason: format!("`{host}` is not a valid DNS name or IP address to check the broker's certificate against"),
        })?;
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| handshake_error(e, &host, tls))
    }

    fn client_config(
        tls: &TlsConfig,
        provider: tokio_rustls::rustls::crypto::CryptoProvider,
    ) -> Result<ClientConfig, ConnError> {
        let builder = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Other(e.to_string()))?
            .with_root_certificates(trusted(tls)?);
        match (&tls.certificate_location, &tls.key_location) {
            (None, None) => Ok(builder.with_no_client_auth()),
            (Some(chain), Some(key)) => {
                let chain = certificates("ssl.certificate.location", chain)?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| file_error("ssl.key.location", key, e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| ConnError::Config {
                        key: "ssl.key.location",
                        reason: format!("does not fit ssl.certificate.location: {e}"),
                    })
            }
            (Some(_), None) => Err(ConnError::Config {
                key: "ssl.key.location",
                reason: "required with ssl.certificate.location (mutual TLS)".into(),
            }),
            (None, Some(_)) => Err(ConnError::Config {
                key: "ssl.certificate.location",
                reason: "required with ssl.key.location (mutual TLS)".into(),
            }),
        }
    }

    /// The certificates of `ssl.ca.location`.
    fn trusted(tls: &TlsConfig) -> Result<RootCertStore, ConnError> {
        let ca = tls.ca_location.as_ref().ok_or_else(|| ConnError::Config {
            key: "ssl.ca.location",
            reason: "required for SSL: a PEM file of the certificates to trust".into(),
        })?;
        let mut roots = RootCertStore::empty();
        for cert in certificates("ssl.ca.location", ca)? {
            roots
                .add(cert)
                .map_err(|e| file_error("ssl.ca.location", ca, e))?;
        }
        Ok(roots)
    }

    /// Every certificate of a PEM file, at least one.
    fn certificates(
        key: &'static str,
        path: &Path,
    ) -> Result<Vec<CertificateDer<'static>>, ConnError> {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| file_error(key, path, e))?;
        if certs.is_empty() {
            return Err(file_error(key, path, "no CERTIFICATE block"));
        }
        Ok(certs)
    }

    fn file_error(key: &'static str, path: &Path, error: impl std::fmt::Display) -> ConnError {
        ConnError::Config {
            key,
            reason: format!("{}: {error}", path.display()),
        }
    }

    /// A failed handshake as what failed: the CA check, the name check, the
    /// broker's refusal, or the socket.
    fn handshake_error(error: std::io::Error, host: &str, tls: &TlsConfig) -> ConnError {
        let Some(rustls) = error.get_ref().and_then(|e| e.downcast_ref::<Error>()) else {
            return error.into();
        };
        let server_name = host.to_owned();
        ConnError::Tls(match rustls {
            Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
                TlsError::UntrustedCertificate {
                    server_name,
                    ca_location: tls.ca_location.clone().unwrap_or_default(),
                }
            }
            Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                presented,
                ..
            }) => TlsError::NameMismatch {
                server_name,
                presented: presented.iter().map(|n| plain_name(n)).collect(),
            },
            Error::InvalidCertificate(CertificateError::NotValidForName) => {
                TlsError::NameMismatch {
                    server_name,
                    presented: Vec::new(),
                }
            }
            Error::InvalidCertificate(other) => TlsError::BadCertificate {
                server_name,
                reason: other.to_string(),
            },
            Error::AlertReceived(alert) => TlsError::RefusedByBroker {
                alert: format!("{alert:?}"),
            },
            other => TlsError::Other(other.to_string()),
        })
    }

    /// `broker.example` from webpki's `DnsName("broker.example")`, and
    /// `127.0.0.1` from `IpAddress(127.0.0.1)`.
    fn plain_name(presented: &str) -> String {
        presented
            .split_once('(')
            .and_then(|(_, rest)| rest.strip_suffix(')'))
            .map(|name| name.trim_matches('"'))
            .unwrap_or(presented)
            .to_owned()
    }

    /// The host part of `host:port` (`[v6]:port` too).
    fn host_of(address: &str) -> &str {
        match address.rsplit_once(':') {
            Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
            None => address,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn config_error(
            tls: &TlsConfig,
            provider: tokio_rustls::rustls::crypto::CryptoProvider,
        ) -> (&'static str, String) {
            match client_config(tls, provider) {
                Err(ConnError::Config { key, reason }) => (key, reason),
                other => panic!("{:?}", other.map(|_| "a client config")),
            }
        }

        #[test]
        fn unusable_files_are_configuration_errors_naming_key_and_path() {
            let Some(chosen) = TlsProvider::choose(None).ok() else {
                eprintln!("no TLS provider of this build runs here");
                return;
            };
            let dir = std::env::temp_dir().join(format!("kafka-wire-tls-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let empty = dir.join("empty.pem");
            std::fs::write(&empty, "").unwrap();
            let cases = [
                (TlsConfig::default(), "ssl.ca.location", "required"),
                (
                    TlsConfig {
                        ca_location: Some(dir.join("missing.pem")),
                        ..TlsConfig::default()
                    },
                    "ssl.ca.location",
                    "missing.pem",
                ),
                (
                    TlsConfig {
                        ca_location: Some(empty.clone()),
                        ..TlsConfig::default()
                    },
                    "ssl.ca.location",
                    "no CERTIFICATE",
                ),
            ];
            for (tls, key, words) in cases {
                let provider = chosen.crypto_provider().unwrap();
                let (got_key, reason) = config_error(&tls, provider);
                assert_eq!(got_key, key, "{reason}");
                assert!(reason.contains(words), "{reason}");
            }
            let _ = std::fs::remove_dir_all(&dir);
        }

        #[test]
        fn the_host_is_the_address_without_its_port() {
            assert_eq!(host_of("127.0.0.1:9093"), "127.0.0.1");
            assert_eq!(host_of("[::1]:9093"), "::1");
            assert_eq!(host_of("broker.example"), "broker.example");
        }

        #[test]
        fn presented_names_are_shown_plain() {
            assert_eq!(plain_name("DnsName(\"broker.example\")"), "broker.example");
            assert_eq!(plain_name("IpAddress(127.0.0.1)"), "127.0.0.1");
            assert_eq!(plain_name("something else"), "something else");
        }
    }
}
