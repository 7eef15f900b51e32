//! One broker connection: requests pipelined, responses matched by correlation id.
//!
//! A writer task owns the write half and a reader task the read half, so a
//! caller dropping its future never tears a frame. Any broken frame, unexpected
//! correlation id, socket error or request timeout *poisons* the connection:
//! every request in flight fails with the same shared cause, later requests
//! fail at once, and the owner opens a new connection (as rskafka's messenger
//! and the Java client's `NetworkClient` do).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use tracing::{debug, warn, Instrument};

use super::error::ConnError;
use super::sasl::{self, SaslConfig};
use super::traffic::Traffic;
use crate::codec::frame::{FrameDecoder, DEFAULT_MAX_FRAME_SIZE};
use crate::codec::message::{decode_body, encode_request, response_header_version};
use crate::codec::versions::{client_ranges, initial_api_versions_version, NegotiatedVersions};
use crate::codec::{api_name, ResponseHeader};
use crate::error::KafkaCode;

/// Per-connection settings.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// `client.id` sent in every request header.
    pub client_id: Option<String>,
    /// Largest response frame accepted (default 100 MiB).
    pub max_frame_size: usize,
    /// `request.timeout.ms`: how long one request may wait for its response.
    pub request_timeout: Duration,
    /// SASL, when the listener requires it.
    pub sasl: Option<SaslConfig>,
    /// `socket.connection.setup.timeout.ms`: how long the TCP connect and
    /// the TLS handshake may take together (KIP-601). A broker whose SYNs
    /// vanish would otherwise hold its callers for the OS's connect timeout,
    /// minutes; ApiVersions and SASL are bounded by `request_timeout`.
    pub setup_timeout: Duration,
    /// Where this connection counts its requests and bytes; connections
    /// opened from clones of one config add to the same counters.
    pub traffic: Arc<Traffic>,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            client_id: Some("kafka-wire".into()),
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            request_timeout: Duration::from_secs(30),
            sasl: None,
            setup_timeout: Duration::from_secs(10),
            traffic: Arc::default(),
        }
    }
}

/// A request waiting for its response.
struct Pending {
    reply: oneshot::Sender<Result<Bytes, ConnError>>,
}

/// State shared by the handle and both I/O tasks.
struct Shared {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    pending: HashMap<i32, Pending>,
    poisoned: Option<Arc<ConnError>>,
}

impl Shared {
    /// Fails every in-flight request with `cause` and refuses new ones.
    fn poison(&self, cause: ConnError) -> Arc<ConnError> {
        let mut state = self.state.lock().expect("connection state lock");
        if let Some(existing) = &state.poisoned {
            return existing.clone();
        }
        let cause = Arc::new(cause);
        warn!(error = %cause, in_flight = state.pending.len(), "connection poisoned");
        state.poisoned = Some(cause.clone());
        for (_, pending) in state.pending.drain() {
            let _ = pending.reply.send(Err(ConnError::Poisoned {
                cause: cause.clone(),
                sent: true,
            }));
        }
        cause
    }

    /// Hands a response frame to its request; an unknown id poisons.
    fn dispatch(&self, frame: Bytes) -> Result<(), ConnError> {
        let Some(id_bytes) = frame.first_chunk::<4>() else {
            return Err(ConnError::Codec(crate::codec::CodecError::Truncated {
                what: "response header",
                needed: 4,
                available: frame.len(),
            }));
        };
        let correlation_id = i32::from_be_bytes(*id_bytes);
        let pending = self
            .state
            .lock()
            .expect("connection state lock")
            .pending
            .remove(&correlation_id);
        match pending {
            // The caller may have stopped waiting; its response is dropped.
            Some(pending) => {
                let _ = pending.reply.send(Ok(frame));
                Ok(())
            }
            None => Err(ConnError::UnexpectedCorrelationId {
                received: correlation_id,
            }),
        }
    }
}

/// The handle users hold; I/O tasks stop when the last clone is dropped.
struct Handle {
    shared: Arc<Shared>,
    outgoing: mpsc::UnboundedSender<Bytes>,
    tasks: [AbortHandle; 2],
    next_correlation_id: AtomicI32,
    versions: OnceLock<NegotiatedVersions>,
    config: ConnectionConfig,
}

impl Drop for Handle {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A pipelined connection to one broker. Cheap to clone; clones share it.
#[derive(Clone)]
pub struct Connection {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("poisoned", &self.poison_cause())
            .finish()
    }
}

impl Connection {
    /// Starts a connection over any byte stream: negotiates API versions, then
    /// authenticates if SASL is configured. Needs a tokio runtime.
    pub async fn handshake<T>(stream: T, config: ConnectionConfig) -> Result<Self, ConnError>
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let connection = Self::start(stream, config);
        let versions = connection.negotiate_versions().await?;
        let _ = connection.handle.versions.set(versions);
        if let Some(sasl) = connection.handle.config.sasl.clone() {
            sasl::authenticate(&connection, &sasl).await?;
        }
        Ok(connection)
    }

    /// Starts the I/O tasks without any handshake (tests of the raw pipeline).
    pub fn start<T>(stream: T, config: ConnectionConfig) -> Self
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (reader, writer) = tokio::io::split(stream);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
        });
        let (outgoing, queue) = mpsc::unbounded_channel();
        let span = tracing::debug_span!("connection", client_id = ?config.client_id);
        let read_task = tokio::spawn(
            read_loop(
                reader,
                shared.clone(),
                config.max_frame_size,
                config.traffic.clone(),
            )
            .instrument(span.clone()),
        );
        let write_task = tokio::spawn(
            write_loop(writer, queue, shared.clone(), config.traffic.clone()).instrument(span),
        );
        Self {
            handle: Arc::new(Handle {
                shared,
                outgoing,
                tasks: [read_task.abort_handle(), write_task.abort_handle()],
                next_correlation_id: AtomicI32::new(0),
                versions: OnceLock::new(),
                config,
            }),
        }
    }

    /// Versions negotiated on this connection (empty before the handshake).
    pub fn versions(&self) -> &NegotiatedVersions {
        static EMPTY: OnceLock<NegotiatedVersions> = OnceLock::new();
        self.handle
            .versions
            .get()
            .unwrap_or_else(|| EMPTY.get_or_init(NegotiatedVersions::default))
    }

    /// The failure that poisoned this connection, if any.
    pub fn poison_cause(&self) -> Option<Arc<ConnError>> {
        self.handle
            .shared
            .state
            .lock()
            .expect("connection state lock")
            .poisoned
            .clone()
    }

    /// True once the connection failed; open a new one.
    pub fn is_poisoned(&self) -> bool {
        self.poison_cause().is_some()
    }

    /// Sends `request` at the highest negotiated version and awaits its response.
    pub async fn send<R: Request>(&self, request: &R) -> Result<R::Response, ConnError> {
        let version = self.versions().version_for::<R>()?;
        self.send_version(request, version).await
    }

    /// Sends `request` at an explicit `version` and awaits its response.
    pub async fn send_version<R: Request>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, ConnError> {
        let frame = self.send_raw(request, version).await?;
        self.decode::<R>(frame, version)
    }

    /// Sends `request` and returns the undecoded response frame (header and
    /// body, without the size prefix) — for capturing fixtures and for proxies.
    pub async fn send_raw<R: Request>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<Bytes, ConnError> {
        let (correlation_id, reply) = self.submit(request, version, true)?;
        let reply = reply.expect("a reply channel was requested");
        self.await_reply(R::KEY, correlation_id, reply).await
    }

    /// Queues `request` for the wire now, in call order, and returns a future
    /// for its response. Callers that need requests to reach the broker in a
    /// given order (a producer pipelining batches of one partition) queue them
    /// from one task with this, then await the futures anywhere.
    pub fn enqueue<R>(
        &self,
        request: &R,
    ) -> Result<
        impl std::future::Future<Output = Result<R::Response, ConnError>> + Send + 'static,
        ConnError,
    >
    where
        R: Request,
        R::Response: Send + 'static,
    {
        let version = self.versions().version_for::<R>()?;
        let (correlation_id, reply) = self.submit(request, version, true)?;
        let reply = reply.expect("a reply channel was requested");
        let connection = self.clone();
        Ok(async move {
            let frame = connection
                .await_reply(R::KEY, correlation_id, reply)
                .await?;
            connection.decode::<R>(frame, version)
        })
    }

    /// Sends a request the broker does not answer (Produce with `acks=0`) at
    /// the highest negotiated version: no correlation slot is held for it.
    pub fn send_without_response<R: Request>(&self, request: &R) -> Result<(), ConnError> {
        let version = self.versions().version_for::<R>()?;
        self.send_without_response_version(request, version)
    }

    /// [`Connection::send_without_response`] at an explicit `version`.
    pub fn send_without_response_version<R: Request>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<(), ConnError> {
        self.submit(request, version, false).map(|_| ())
    }

    /// Encodes and queues `request`; returns its correlation id and, when a
    /// response is expected, the channel its raw frame arrives on.
    #[allow(clippy::type_complexity)]
    fn submit<R: Request>(
        &self,
        request: &R,
        version: i16,
        expect_response: bool,
    ) -> Result<(i32, Option<oneshot::Receiver<Result<Bytes, ConnError>>>), ConnError> {
        let correlation_id = self
            .handle
            .next_correlation_id
            .fetch_add(1, Ordering::Relaxed)
            & i32::MAX;
        // Sized up front: a Produce request carrying a 1 MB batch would
        // otherwise be copied through every doubling of the buffer.
        let body_size = request.compute_size(version).unwrap_or(0);
        let mut buf = BytesMut::with_capacity(body_size + 64);
        encode_request(
            &mut buf,
            correlation_id,
            self.handle.config.client_id.as_deref(),
            version,
            request,
        )?;
        let reply = self.register(correlation_id, expect_response)?;
        if self.handle.outgoing.send(buf.freeze()).is_err() {
            // The writer stopped: it poisoned the connection on its way out.
            let cause = self
                .poison_cause()
                .unwrap_or_else(|| Arc::new(ConnError::Closed));
            return Err(ConnError::Poisoned { cause, sent: false });
        }
        Ok((correlation_id, reply))
    }

    fn register(
        &self,
        correlation_id: i32,
        expect_response: bool,
    ) -> Result<Option<oneshot::Receiver<Result<Bytes, ConnError>>>, ConnError> {
        let mut state = self
            .handle
            .shared
            .state
            .lock()
            .expect("connection state lock");
        if let Some(cause) = &state.poisoned {
            return Err(ConnError::Poisoned {
                cause: cause.clone(),
                sent: false,
            });
        }
        if !expect_response {
            return Ok(None);
        }
        let (reply, receiver) = oneshot::channel();
        state.pending.insert(correlation_id, Pending { reply });
        Ok(Some(receiver))
    }

    async fn await_reply(
        &self,
        api_key: i16,
        correlation_id: i32,
        reply: oneshot::Receiver<Result<Bytes, ConnError>>,
    ) -> Result<Bytes, ConnError> {
        let timeout = self.handle.config.request_timeout;
        match tokio::time::timeout(timeout, reply).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(self.poisoned_in_flight()),
            Err(_) => {
                // Like the Java client: a timed-out request closes the connection,
                // since its late response would otherwise arrive unmatched.
                let error = ConnError::Timeout {
                    api: api_name(api_key),
                    correlation_id,
                    after: timeout,
                };
                self.handle.shared.poison(error.clone());
                Err(error)
            }
        }
    }

    fn poisoned_in_flight(&self) -> ConnError {
        let cause = self
            .poison_cause()
            .unwrap_or_else(|| Arc::new(ConnError::Closed));
        ConnError::Poisoned { cause, sent: true }
    }

    fn decode<R: Request>(&self, mut frame: Bytes, version: i16) -> Result<R::Response, ConnError> {
        let decoded = ResponseHeader::decode(&mut frame, response_header_version::<R>(version))
            .and_then(|_| decode_body::<R>(frame, version));
        // A body that does not decode means client and broker disagree about
        // the stream: trust nothing else on it.
        decoded.map_err(|e| {
            let error = ConnError::Codec(e);
            self.handle.shared.poison(error.clone());
            error
        })
    }

    /// ApiVersions: ask at our highest version; a broker that does not know it
    /// answers UNSUPPORTED_VERSION with its own range, and we ask again.
    async fn negotiate_versions(&self) -> Result<NegotiatedVersions, ConnError> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("kafka-wire-rs"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut version = initial_api_versions_version();
        for _ in 0..2 {
            let response = self.api_versions(&request, version).await?;
            match KafkaCode(response.error_code) {
                KafkaCode::NONE => {
                    debug!(apis = response.api_keys.len(), "ApiVersions negotiated");
                    return Ok(NegotiatedVersions::from_response(&response));
                }
                KafkaCode(35) => {
                    let theirs = response
                        .api_keys
                        .iter()
                        .find(|k| k.api_key == ApiVersionsRequest::KEY);
                    let ours = client_ranges()[&ApiVersionsRequest::KEY];
                    version = theirs.map_or(0, |k| k.max_version.min(ours.max));
                }
                other => return Err(ConnError::Handshake(other)),
            }
        }
        Err(ConnError::Handshake(KafkaCode(35)))
    }

    /// One ApiVersions exchange. A broker that does not speak `version` answers
    /// with a v0 body (KIP-511), so a body that fails at `version` is read as v0.
    async fn api_versions(
        &self,
        request: &ApiVersionsRequest,
        version: i16,
    ) -> Result<ApiVersionsResponse, ConnError> {
        let frame = self.send_raw(request, version).await?;
        let mut body = frame.clone();
        ResponseHeader::decode(&mut body, 0)?;
        match decode_body::<ApiVersionsRequest>(body.clone(), version) {
            Ok(response) => Ok(response),
            Err(_) if version > 0 => self.decode::<ApiVersionsRequest>(frame, 0),
            Err(e) => Err(e.into()),
        }
    }
}

async fn read_loop<T: AsyncRead>(
    mut reader: ReadHalf<T>,
    shared: Arc<Shared>,
    max_frame_size: usize,
    traffic: Arc<Traffic>,
) {
    let mut decoder = FrameDecoder::new(max_frame_size);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let failure = loop {
        match decode_available(&mut decoder, &mut buf, &shared) {
            Ok(()) => {}
            Err(error) => break error,
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(64 * 1024);
        }
        match reader.read_buf(&mut buf).await {
            Ok(0) => break ConnError::Closed,
            Ok(read) => traffic.received(read),
            Err(e) => break e.into(),
        }
    };
    shared.poison(failure);
}

fn decode_available(
    decoder: &mut FrameDecoder,
    buf: &mut BytesMut,
    shared: &Shared,
) -> Result<(), ConnError> {
    while let Some(frame) = decoder.decode(buf)? {
        shared.dispatch(frame)?;
    }
    Ok(())
}

async fn write_loop<T: AsyncWrite>(
    mut writer: WriteHalf<T>,
    mut queue: mpsc::UnboundedReceiver<Bytes>,
    shared: Arc<Shared>,
    traffic: Arc<Traffic>,
) {
    while let Some(frame) = queue.recv().await {
        let mut result = writer.write_all(&frame).await;
        if result.is_ok() {
            traffic.sent(frame.len());
        }
        // Coalesce: flush only once the queue is drained.
        if result.is_ok() && queue.is_empty() {
            result = writer.flush().await;
        }
        if let Err(e) = result {
            shared.poison(e.into());
            return;
        }
    }
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
