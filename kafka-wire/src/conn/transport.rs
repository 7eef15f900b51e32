//! Opening byte streams to brokers: plain TCP, or TLS through tokio-rustls
//! (see [`tls`](super::tls); built in unless kafka-wire is built without any
//! of the provider features).

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::connection::{Connection, ConnectionConfig};
use super::error::ConnError;
use super::tls::TlsConfig;

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
/// knows the others. Each address gets `config.setup_timeout` for its TCP
/// connect and TLS handshake.
pub async fn connect(
    address: &str,
    tls: Option<&TlsConfig>,
    config: ConnectionConfig,
) -> Result<Connection, ConnError> {
    let mut last_error = None;
    for candidate in address.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        let setup = tokio::time::timeout(config.setup_timeout, open(candidate, tls)).await;
        match setup {
            Ok(Ok(transport)) => return Connection::handshake(transport, config).await,
            Ok(Err(error)) => last_error = Some(error),
            Err(_) => {
                last_error = Some(ConnError::SetupTimeout {
                    address: candidate.to_owned(),
                    after: config.setup_timeout,
                })
            }
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty broker address").into()
    }))
}

/// TCP connect, then TLS when configured: the part of setting up a
/// connection that `socket.connection.setup.timeout.ms` bounds.
async fn open(address: &str, tls: Option<&TlsConfig>) -> Result<Transport, ConnError> {
    let tcp = TcpStream::connect(address).await?;
    tcp.set_nodelay(true)?;
    match tls {
        None => Ok(Transport::Tcp(tcp)),
        Some(tls) => wrap_tls(tcp, address, tls).await,
    }
}

#[cfg(feature = "tls")]
async fn wrap_tls(tcp: TcpStream, address: &str, tls: &TlsConfig) -> Result<Transport, ConnError> {
    let stream = super::tls::wrap(tcp, address, tls).await?;
    Ok(Transport::Tls(Box::new(stream)))
}

/// Without rustls there is no provider either: the error says which feature
/// to build with.
#[cfg(not(feature = "tls"))]
async fn wrap_tls(
    _tcp: TcpStream,
    _address: &str,
    tls: &TlsConfig,
) -> Result<Transport, ConnError> {
    let reason = match super::TlsProvider::choose(tls.provider) {
        Err(error) => return Err(error.into()),
        Ok(provider) => format!(
            "{provider:?} without rustls: build kafka-wire with feature `{}`",
            provider.feature()
        ),
    };
    Err(super::TlsError::NoProvider { reason }.into())
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
