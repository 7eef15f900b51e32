//! A fault-injecting TCP proxy that understands Kafka framing: it reads sizes,
//! API keys and correlation ids, never re-encodes, and can drop the response to
//! the Nth request of an API key *after* the broker processed it (the classic
//! cause of duplicates), or kill every connection after a random lifetime
//! (franz-go kfake's chaos dialer). Faults are deterministic given a seed.
//!
//! The broker must advertise the proxy's address (see
//! [`crate::broker::ClusterOptions::proxied`]) so that connections
//! opened from metadata go through the proxy too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the proxy does to traffic.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Drop the response to these request numbers (1-based, counted per API key
    /// across all connections), then reset the connection so the client
    /// notices at once instead of waiting for its request timeout.
    pub drop_responses: HashMap<i16, Vec<u64>>,
    /// Kill each connection after a lifetime drawn from this range.
    pub chaos: Option<(Duration, Duration)>,
    /// Flip one byte of the response to these request numbers (1-based, per
    /// API key), six bytes before the frame's end: in a Fetch (v12) response
    /// of one partition that is inside the last record batch, past its CRC's
    /// start, so the batch fails its CRC-32C check.
    pub corrupt_responses: HashMap<i16, Vec<u64>>,
    /// Never forward these requests (1-based, per API key) and reset their
    /// connection: the broker never sees them, so the client's call failed
    /// for certain (unlike a dropped response, whose request was applied).
    pub drop_requests: HashMap<i16, Vec<u64>>,
    /// Hold these requests (1-based, per API key) this long before
    /// forwarding them, with everything behind them on their connection: a
    /// request that reaches the broker after the client gave up on it.
    pub delay_requests: HashMap<i16, (Vec<u64>, Duration)>,
}

/// Counters of what the proxy did.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Responses dropped.
    pub dropped_responses: AtomicU64,
    /// Connections killed by chaos.
    pub chaos_kills: AtomicU64,
    /// Responses corrupted.
    pub corrupted_responses: AtomicU64,
    /// Requests never forwarded.
    pub dropped_requests: AtomicU64,
    /// Requests held back.
    pub delayed_requests: AtomicU64,
    /// Connections whose bytes a blackhole held.
    pub blackholed_connections: AtomicU64,
}

/// A running proxy.
pub struct FaultProxy {
    port: u16,
    task: JoinHandle<()>,
    rules: Arc<Rules>,
    /// What happened so far.
    pub stats: Arc<ProxyStats>,
}

impl FaultProxy {
    /// Listens on `127.0.0.1:port` (0 for any) and forwards to `upstream`.
    pub async fn start(
        port: u16,
        upstream: String,
        faults: Faults,
        seed: u64,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let port = listener.local_addr()?.port();
        let stats = Arc::new(ProxyStats::default());
        let shared = Arc::new(Rules {
            faults: Mutex::new(faults),
            counts: Mutex::new(HashMap::new()),
            rng: Mutex::new(seed | 1),
            stats: stats.clone(),
            blackholed: Mutex::default(),
            healed: Default::default(),
            partition: tokio::sync::watch::channel(false).0,
        });
        let task = tokio::spawn(accept_loop(
            listener,
            upstream,
            shared.clone(),
            stats.clone(),
        ));
        Ok(Self {
            port,
            task,
            rules: shared,
            stats,
        })
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// While on, every response to `api_key` is dropped (and its connection
    /// reset), whatever its number: a coordinator that never answers.
    pub fn drop_all_responses(&self, api_key: i16, on: bool) {
        let mut apis = self.rules.blackholed.lock().expect("blackholed lock");
        if on {
            apis.insert(api_key);
        } else {
            apis.remove(&api_key);
        }
    }

    /// Replaces the faults for what follows: counters per API key and the
    /// statistics start again, and a healed proxy injects again.
    pub fn set_faults(&self, faults: Faults) {
        *self.rules.faults.lock().expect("faults lock") = faults;
        self.rules.counts.lock().expect("counts lock").clear();
        self.rules
            .blackholed
            .lock()
            .expect("blackholed lock")
            .clear();
        self.rules.healed.store(false, Ordering::Release);
        self.rules.partition.send_replace(false);
        for counter in [
            &self.stats.dropped_responses,
            &self.stats.chaos_kills,
            &self.stats.corrupted_responses,
            &self.stats.dropped_requests,
            &self.stats.delayed_requests,
            &self.stats.blackholed_connections,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }

    /// While on, bytes are held in both directions on every connection, open
    /// or new, without closing any socket: a network partition, which the
    /// client notices only by its own timeouts. Off (or [`FaultProxy::heal`])
    /// delivers what was held.
    pub fn blackhole(&self, on: bool) {
        self.rules.partition.send_replace(on);
    }

    /// Stops injecting faults into new connections and requests (the
    /// checker reads back through a healed proxy: it observes, it is not
    /// under test).
    pub fn heal(&self) {
        self.rules
            .healed
            .store(true, std::sync::atomic::Ordering::Release);
        self.rules
            .blackholed
            .lock()
            .expect("blackholed lock")
            .clear();
        self.rules.partition.send_replace(false);
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A free loopback port to start a proxy on later (the broker must advertise it first).
pub fn reserve_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct Rules {
    faults: Mutex<Faults>,
    counts: Mutex<HashMap<i16, u64>>,
    rng: Mutex<u64>,
    stats: Arc<ProxyStats>,
    blackholed: Mutex<std::collections::HashSet<i16>>,
    healed: std::sync::atomic::AtomicBool,
    /// True while blackholed.
    partition: tokio::sync::watch::Sender<bool>,
}

impl Rules {
    /// Counts a request of `api_key`; returns what to do to its response.
    fn count_request(&self, api_key: i16) -> Option<Doom> {
        if self.healed.load(Ordering::Acquire) {
            return None;
        }
        let mut counts = self.counts.lock().expect("counts lock");
        let n = counts.entry(api_key).or_default();
        *n += 1;
        let faults = self.faults.lock().expect("faults lock");
        let listed =
            |map: &HashMap<i16, Vec<u64>>| map.get(&api_key).is_some_and(|l| l.contains(n));
        let blackholed = self
            .blackholed
            .lock()
            .expect("blackholed lock")
            .contains(&api_key);
        if listed(&faults.drop_requests) {
            Some(Doom::DropRequest)
        } else if let Some((_, delay)) = faults
            .delay_requests
            .get(&api_key)
            .filter(|(numbers, _)| numbers.contains(n))
        {
            Some(Doom::DelayRequest(*delay))
        } else if blackholed || listed(&faults.drop_responses) {
            Some(Doom::Drop)
        } else if listed(&faults.corrupt_responses) {
            Some(Doom::Corrupt)
        } else {
            None
        }
    }

    fn chaos_lifetime(&self) -> Option<Duration> {
        if self.healed.load(Ordering::Acquire) {
            return None;
        }
        let (min, max) = self.faults.lock().expect("faults lock").chaos?;
        let mut state = self.rng.lock().expect("rng lock");
        // xorshift64: deterministic for a seed.
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let span = max.saturating_sub(min).as_millis().max(1) as u64;
        Some(min + Duration::from_millis(*state % span))
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: String,
    rules: Arc<Rules>,
    stats: Arc<ProxyStats>,
) {
    while let Ok((client, _)) = listener.accept().await {
        stats.connections.fetch_add(1, Ordering::Relaxed);
        let (upstream, rules, stats) = (upstream.clone(), rules.clone(), stats.clone());
        tokio::spawn(async move {
            let Ok(broker) = TcpStream::connect(&upstream).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = broker.set_nodelay(true);
            let lifetime = rules.chaos_lifetime();
            let relay = relay(client, broker, rules);
            match lifetime {
                Some(lifetime) => {
                    if tokio::time::timeout(lifetime, relay).await.is_err() {
                        stats.chaos_kills.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None => {
                    if let Relay::Dropped = relay.await {
                        stats.dropped_responses.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Doom {
    Drop,
    Corrupt,
    DropRequest,
    DelayRequest(Duration),
}

enum Relay {
    Closed,
    Dropped,
}

/// Forwards frames both ways until either side closes or a response is dropped.
async fn relay(client: TcpStream, broker: TcpStream, rules: Arc<Rules>) -> Relay {
    let (client_read, client_write) = client.into_split();
    let (broker_read, broker_write) = broker.into_split();
    let doomed: Arc<Mutex<HashMap<i32, Doom>>> = Arc::default();
    let held = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let requests = forward_requests(
        client_read,
        broker_write,
        rules.clone(),
        doomed.clone(),
        held.clone(),
    );
    let responses = forward_responses(broker_read, client_write, doomed, rules, held);
    tokio::select! {
        _ = requests => Relay::Closed,
        dropped = responses => if dropped { Relay::Dropped } else { Relay::Closed },
    }
}

async fn read_frame(reader: &mut OwnedReadHalf) -> Option<Vec<u8>> {
    let size = reader.read_i32().await.ok()?;
    let size = usize::try_from(size)
        .ok()
        .filter(|&s| s <= 200 * 1024 * 1024)?;
    let mut frame = vec![0; 4 + size];
    frame[..4].copy_from_slice(&(size as i32).to_be_bytes());
    reader.read_exact(&mut frame[4..]).await.ok()?;
    Some(frame)
}

async fn forward_requests(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    rules: Arc<Rules>,
    doomed: Arc<Mutex<HashMap<i32, Doom>>>,
    held: Arc<std::sync::atomic::AtomicBool>,
) {
    while let Some(frame) = read_frame(&mut from).await {
        hold_while_partitioned(&rules, &held).await;
        if frame.len() >= 12 {
            let api_key = i16::from_be_bytes([frame[4], frame[5]]);
            let correlation_id = i32::from_be_bytes([frame[8], frame[9], frame[10], frame[11]]);
            let doom = rules.count_request(api_key);
            match doom {
                Some(Doom::DropRequest) => {
                    rules.stats.dropped_requests.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Some(Doom::DelayRequest(delay)) => {
                    rules.stats.delayed_requests.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(delay).await;
                }
                _ => {}
            }
            if let Some(doom) = doom.filter(|d| matches!(d, Doom::Drop | Doom::Corrupt)) {
                doomed
                    .lock()
                    .expect("doomed lock")
                    .insert(correlation_id, doom);
            }
        }
        if to.write_all(&frame).await.is_err() {
            return;
        }
    }
}

/// Returns true when it stopped because it dropped a doomed response.
async fn forward_responses(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    doomed: Arc<Mutex<HashMap<i32, Doom>>>,
    rules: Arc<Rules>,
    held: Arc<std::sync::atomic::AtomicBool>,
) -> bool {
    let stats = rules.stats.clone();
    while let Some(mut frame) = read_frame(&mut from).await {
        hold_while_partitioned(&rules, &held).await;
        let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let doom = doomed.lock().expect("doomed lock").remove(&correlation_id);
        match doom {
            // The broker processed the request; the client never hears of it.
            Some(Doom::Drop) => return true,
            Some(Doom::Corrupt) if frame.len() > 14 => {
                let at = frame.len() - 6;
                frame[at] ^= 0xff;
                stats.corrupted_responses.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        if to.write_all(&frame).await.is_err() {
            return false;
        }
    }
    false
}

/// Waits while the proxy is blackholed, counting the connection once.
async fn hold_while_partitioned(rules: &Rules, held: &std::sync::atomic::AtomicBool) {
    if !*rules.partition.borrow() {
        return;
    }
    let mut partition = rules.partition.subscribe();
    if !held.swap(true, Ordering::Relaxed) {
        rules
            .stats
            .blackholed_connections
            .fetch_add(1, Ordering::Relaxed);
    }
    let _ = partition.wait_for(|on| !on).await;
}
