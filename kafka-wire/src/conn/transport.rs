//! Opening byte streams to brokers: plain TCP, or TLS through tokio-rustls
//! (feature `tls`, because rustls' `ring` provider compiles C).

use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::connection::{Connection, ConnectionConfig};
use super::error::ConnError;

/// TLS settings (`security.protocol=SSL`/`SASL_SSL`).
#[derive(Debug, Clone, Default)]
pub struct TlsConfig {
    /// `ssl.ca.location`: PEM file of the certificates to trust.
    pub ca_location: Option<PathBuf>,
    /// Name to verify in the broker's certificate; defaults to the host part
    /// of the address (an IP address works when the certificate has it as SAN).
    pub server_name: Option<String>,
}

/// A TCP or TLS stream.
pub enum Transport {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP.
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// Connects to `address` (`host:port`), optionally with TLS, and runs the
/// connection handshake (ApiVersions, then SASL when configured).
///
/// `address` may also be a bootstrap list (`host:port,host:port,…`): the
/// addresses are tried in order and the first that accepts the TCP
/// connection is used, so a node that is down does not stop a client that
/// knows the others.
pub async fn connect(
    address: &str,
    tls: Option<&TlsConfig>,
    config: ConnectionConfig,
) -> Result<Connection, ConnError> {
    let mut last_error = None;
    for candidate in address.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        match TcpStream::connect(candidate).await {
            Ok(tcp) => return handshake(tcp, candidate, tls, config).await,
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error
        .unwrap_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty broker address")
        })
        .into())
}

async fn handshake(
    tcp: TcpStream,
    address: &str,
    tls: Option<&TlsConfig>,
    config: ConnectionConfig,
) -> Result<Connection, ConnError> {
    tcp.set_nodelay(true)?;
    let transport = match tls {
        None => Transport::Tcp(tcp),
        Some(tls) => wrap_tls(tcp, address, tls).await?,
    };
    Connection::handshake(transport, config).await
}

#[cfg(not(feature = "tls"))]
async fn wrap_tls(
    _tcp: TcpStream,
    _address: &str,
    _tls: &TlsConfig,
) -> Result<Transport, ConnError> {
    Err(ConnError::Config {
        key: "security.protocol",
        reason: "SSL needs kafka-wire built with the `tls` feature; this build allows PLAINTEXT and SASL_PLAINTEXT".into(),
    })
}

#[cfg(feature = "tls")]
async fn wrap_tls(tcp: TcpStream, address: &str, tls: &TlsConfig) -> Result<Transport, ConnError> {
    use std::sync::Arc;
    use tokio_rustls::rustls::pki_types::ServerName;
    use tokio_rustls::rustls::{ClientConfig, RootCertStore};

    let ca = tls.ca_location.as_ref().ok_or_else(|| ConnError::Config {
        key: "ssl.ca.location",
        reason: "required for SSL: a PEM file of the certificates to trust".into(),
    })?;
    let pem = std::fs::read(ca).map_err(|e| ConnError::Config {
        key: "ssl.ca.location",
        reason: format!("{}: {e}", ca.display()),
    })?;
    let mut roots = RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &pem[..]) {
        let cert = cert.map_err(|e| ConnError::Tls(e.to_string()))?;
        roots.add(cert).map_err(|e| ConnError::Tls(e.to_string()))?;
    }
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let host = tls
        .server_name
        .clone()
        .unwrap_or_else(|| host_of(address).to_owned());
    let name = ServerName::try_from(host.clone()).map_err(|_| ConnError::Config {
        key: "ssl.endpoint.identification.algorithm",
        reason: format!("`{host}` is not a valid DNS name or IP address"),
    })?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| ConnError::Tls(e.to_string()))?;
    Ok(Transport::Tls(Box::new(stream)))
}

#[cfg(feature = "tls")]
fn host_of(address: &str) -> &str {
    match address.rsplit_once(':') {
        Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
        None => address,
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
