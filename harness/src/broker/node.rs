//! One Kafka node's JVM: started on its own data directory, and killed,
//! stopped, paused or resumed on its own — the faults of a real cluster.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tracing::info;

use super::config::NodePorts;
use super::install::KafkaInstall;
use super::BrokerError;

/// Heap per node: three nodes and the clients under test share 24 GiB and
/// two cores; a broker's data lives in the page cache, not the heap.
const HEAP: &[&str] = &["-Xms256m", "-Xmx1g"];

/// How a node process is tied to the process that starts it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lifetime {
    /// Kill the node when the starting process dies (tests).
    pub die_with_parent: bool,
    /// Start it in its own session so it outlives the CLI (`harness broker start`).
    pub detach: bool,
}

/// One node of a cluster.
#[derive(Debug)]
pub struct Node {
    /// Node id (1-based), also its `node.id`.
    pub id: usize,
    /// Its ports.
    pub ports: NodePorts,
    dir: PathBuf,
    child: Option<Child>,
    paused: bool,
}

impl Node {
    /// A node that is not running yet; `dir` holds its properties, data and log.
    pub fn new(id: usize, ports: NodePorts, dir: PathBuf) -> Self {
        Self {
            id,
            ports,
            dir,
            child: None,
            paused: false,
        }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `server.properties`.
    pub fn properties_path(&self) -> PathBuf {
        self.dir.join("server.properties")
    }

    /// The data directory (`log.dirs`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Where the JVM's output goes.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    /// The process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// How the process exited, if it did.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// Starts `kafka.Kafka` on this node's properties.
    pub fn spawn(&mut self, install: &KafkaInstall, lifetime: Lifetime) -> Result<(), BrokerError> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(BrokerError::io("opening node.log"))?;
        let mut command = Command::new(&install.java);
        command
            .args(HEAP)
            .args([
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                "-XX:+ExitOnOutOfMemoryError",
                "-Djava.awt.headless=true",
                "-Dlog4j2.level=WARN",
            ])
            .arg("-cp")
            .arg(install.classpath())
            .arg("kafka.Kafka")
            .arg(self.properties_path())
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .map_err(BrokerError::io("cloning the log handle"))?,
            )
            .stderr(log);
        tie_lifetime(&mut command, lifetime);
        let child = command.spawn().map_err(|e| {
            BrokerError::Process(format!("spawning java for node {}: {e}", self.id))
        })?;
        info!(
            node = self.id,
            pid = child.id(),
            port = self.ports.client,
            "kafka node started"
        );
        self.child = Some(child);
        self.paused = false;
        Ok(())
    }

    /// SIGKILL: a crash. The data stays for [`Node::spawn`] to start again.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// SIGTERM (a controlled shutdown), then SIGKILL after `grace`.
    pub async fn stop(&mut self, grace: Duration) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        if self.paused {
            signal(child.id(), libc::SIGCONT);
        }
        signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.kill();
    }

    /// SIGSTOP: the node holds its sockets open and answers nothing.
    pub fn pause(&mut self) -> bool {
        let paused = self.pid().is_some_and(|pid| signal(pid, libc::SIGSTOP));
        self.paused |= paused;
        paused
    }

    /// SIGCONT after [`Node::pause`].
    pub fn resume(&mut self) -> bool {
        let resumed = self.pid().is_some_and(|pid| signal(pid, libc::SIGCONT));
        self.paused &= !resumed;
        resumed
    }

    /// Leaves the process running when this handle is dropped; returns its pid.
    pub fn detach(&mut self) -> Option<u32> {
        self.child.take().map(|c| c.id())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `java -cp LIBS main args…` to completion (the storage tool).
pub fn run_tool(
    install: &KafkaInstall,
    main: &str,
    args: &[String],
    log: &Path,
) -> Result<Child, BrokerError> {
    let out = File::create(log).map_err(BrokerError::io("creating the tool log"))?;
    Command::new(&install.java)
        .arg("-cp")
        .arg(install.classpath())
        .arg(main)
        .args(args)
        .stdin(Stdio::null())
        .stdout(
            out.try_clone()
                .map_err(BrokerError::io("cloning the tool log"))?,
        )
        .stderr(out)
        .spawn()
        .map_err(|e| BrokerError::Process(format!("spawning java {main}: {e}")))
}

fn tie_lifetime(command: &mut Command, lifetime: Lifetime) {
    let Lifetime {
        die_with_parent,
        detach,
    } = lifetime;
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
}

/// Sends `sig` to `pid`; false when no such process.
pub fn signal(pid: u32, sig: libc::c_int) -> bool {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid as libc::pid_t, sig) == 0 }
}
