//! Starting and stopping one nisshi process.

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kafka_wire::conn::{connect, ConnectionConfig};
use tracing::info;

use super::{broker_binary, BrokerError};

/// Where the broker keeps data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Storage {
    /// `memory://`: fast, lost on restart, never freed.
    Memory,
    /// `sqlite://nisshi.db` in the working directory: survives SIGKILL.
    Sqlite,
}

/// How to start the broker.
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// Storage engine.
    pub storage: Storage,
    /// Port to listen on; a free one when `None`.
    pub port: Option<u16>,
    /// Working directory (data, log); a fresh temporary one when `None`.
    pub work_dir: Option<PathBuf>,
    /// Kill the broker when the process that started it dies (tests).
    pub die_with_parent: bool,
    /// Start it in its own session so it outlives the CLI (`harness broker start`).
    pub detach: bool,
    /// How long to wait for ApiVersions to answer.
    pub ready_timeout: Duration,
    /// Serve TLS only, with this certificate chain and key (PEM files).
    pub tls: Option<TlsFiles>,
    /// Require SASL (SCRAM) authentication; users live in the storage.
    pub authentication: bool,
    /// Advertise this loopback port instead of the listener's, so clients
    /// reach the broker through a proxy listening there.
    pub advertised_port: Option<u16>,
}

/// Certificate chain and private key for a TLS listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        Self {
            storage: Storage::Memory,
            port: None,
            work_dir: None,
            die_with_parent: false,
            detach: false,
            ready_timeout: Duration::from_secs(30),
            tls: None,
            authentication: false,
            advertised_port: None,
        }
    }
}

/// A running local broker. Dropping it kills the process unless it was detached.
#[derive(Debug)]
pub struct Broker {
    child: Option<Child>,
    port: u16,
    work_dir: PathBuf,
    /// The launcher made the working directory and removes it on drop.
    temporary: bool,
    options: BrokerOptions,
}

impl Broker {
    /// Starts the broker and waits until it answers ApiVersions.
    pub async fn start(options: BrokerOptions) -> Result<Self, BrokerError> {
        let port = match options.port {
            Some(port) => port,
            None => free_port()?,
        };
        let work_dir = match &options.work_dir {
            Some(dir) => dir.clone(),
            None => fresh_work_dir()?,
        };
        std::fs::create_dir_all(&work_dir)
            .map_err(BrokerError::io(format!("creating {}", work_dir.display())))?;
        let temporary = options.work_dir.is_none();
        let mut broker = Self {
            child: None,
            port,
            work_dir,
            temporary,
            options,
        };
        broker.spawn()?;
        broker.wait_ready().await?;
        Ok(broker)
    }

    /// `127.0.0.1:PORT`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The working directory (data files and `broker.log`).
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Leaves the process running when this handle is dropped.
    pub fn detach(mut self) -> u32 {
        self.child.take().map(|c| c.id()).unwrap_or_default()
    }

    /// SIGTERM, then SIGKILL after 10 s.
    pub async fn stop(&mut self) -> Result<(), BrokerError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if child
                .try_wait()
                .map_err(BrokerError::io("waiting for the broker"))?
                .is_some()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        Ok(())
    }

    /// SIGKILL: a crash, for restart tests.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port and data (after `stop`/`kill`).
    pub async fn restart(&mut self) -> Result<(), BrokerError> {
        self.kill();
        self.spawn()?;
        self.wait_ready().await
    }

    /// Creates a SCRAM user (`scram256` or `scram512`) through the running
    /// broker; it must run without authentication, on sqlite storage so the
    /// user survives a restart with authentication on.
    pub fn create_user(
        &self,
        name: &str,
        password: &str,
        mechanism: &str,
    ) -> Result<(), BrokerError> {
        let output = Command::new(broker_binary()?)
            .args([
                "user",
                "create",
                "--broker",
                &format!("tcp://{}", self.bootstrap()),
            ])
            .args(["--mechanism", mechanism, name, password])
            .current_dir(&self.work_dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .output()
            .map_err(BrokerError::io("running nisshi user create"))?;
        if !output.status.success() {
            return Err(BrokerError::Process(format!(
                "nisshi user create failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(())
    }

    /// Changes the options a restart uses (e.g. turn authentication on).
    pub fn options_mut(&mut self) -> &mut BrokerOptions {
        &mut self.options
    }

    fn security_args(&self) -> Vec<std::ffi::OsString> {
        let mut args = Vec::new();
        if let Some(tls) = &self.options.tls {
            args.extend(["--cert".into(), tls.cert.clone().into_os_string()]);
            args.extend(["--key".into(), tls.key.clone().into_os_string()]);
        }
        if self.options.authentication {
            args.push("--authentication".into());
        }
        args
    }

    fn log_path(&self) -> PathBuf {
        self.work_dir.join("broker.log")
    }

    fn spawn(&mut self) -> Result<(), BrokerError> {
        let binary = broker_binary()?;
        let listener = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!(
            "tcp://127.0.0.1:{}",
            self.options.advertised_port.unwrap_or(self.port)
        );
        let storage = match self.options.storage {
            Storage::Memory => "memory://nisshi/".to_owned(),
            Storage::Sqlite => "sqlite://nisshi.db".to_owned(),
        };
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(BrokerError::io("opening broker.log"))?;
        let mut command = Command::new(binary);
        command
            .arg("broker")
            .args([
                "--listener-url",
                &listener,
                "--advertised-listener-url",
                &advertised,
            ])
            .args(["--storage-engine", &storage])
            .args(["--group-initial-rebalance-delay", "0s"])
            .args(self.security_args())
            .current_dir(&self.work_dir)
            // nisshi reads its settings from the environment and ./.env: start clean.
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .map_err(BrokerError::io("cloning the log handle"))?,
            )
            .stderr(log);
        let (die_with_parent, detach) = (self.options.die_with_parent, self.options.detach);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if die_with_parent {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                }
                if detach {
                    libc::setsid();
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(|e| BrokerError::Process(format!("spawning nisshi: {e}")))?;
        info!(pid = child.id(), port = self.port, "broker started");
        self.child = Some(child);
        Ok(())
    }

    async fn wait_ready(&mut self) -> Result<(), BrokerError> {
        let deadline = Instant::now() + self.options.ready_timeout;
        let config = ConnectionConfig {
            request_timeout: Duration::from_secs(2),
            ..ConnectionConfig::default()
        };
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(BrokerError::Process(format!(
                        "nisshi exited with {status} before answering; see {}",
                        self.log_path().display()
                    )));
                }
            }
            if self.answers(&config).await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(BrokerError::NotReady {
            address: self.bootstrap(),
            seconds: self.options.ready_timeout.as_secs(),
            log: self.log_path().display().to_string(),
        })
    }
}

impl Broker {
    /// Ready means ApiVersions answers (allowed before SASL, KIP-43). A
    /// TLS-only listener is probed by TCP accept alone: the launcher does not
    /// hold the client side of the TLS configuration.
    async fn answers(&self, config: &ConnectionConfig) -> bool {
        if self.options.tls.is_some() {
            return tokio::net::TcpStream::connect(self.bootstrap())
                .await
                .is_ok();
        }
        connect(&self.bootstrap(), None, config.clone())
            .await
            .is_ok()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        // A detached broker keeps its directory: it is still using it.
        let running_detached = self.child.is_none() && self.options.detach;
        self.kill();
        if self.temporary && !running_detached {
            let _ = std::fs::remove_dir_all(&self.work_dir);
        }
    }
}

/// Sends `sig` to `pid`; false when no such process.
pub fn signal(pid: u32, sig: libc::c_int) -> bool {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid as libc::pid_t, sig) == 0 }
}

fn free_port() -> Result<u16, BrokerError> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(BrokerError::io("finding a free port"))?;
    Ok(listener
        .local_addr()
        .map_err(BrokerError::io("finding a free port"))?
        .port())
}

fn fresh_work_dir() -> Result<PathBuf, BrokerError> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("kafka-pure-broker-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(dir)
}
