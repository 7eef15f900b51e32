//! Runs one peer process and measures what it cost: CPU (user + system) and
//! peak RSS from the kernel's accounting of that process (`wait4`), so every
//! client is measured the same way, whatever it reports of itself.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A finished peer process.
#[derive(Debug, Clone)]
pub struct Measured {
    /// What it printed on stdout.
    pub stdout: String,
    /// The tail of what it printed on stderr.
    pub stderr: String,
    /// Whether it exited with status 0.
    pub success: bool,
    /// CPU seconds, user plus system, of the process and the threads it ran.
    pub cpu_seconds: f64,
    /// Peak resident set size in MiB.
    pub peak_rss_mib: f64,
    /// Wall time from spawn to exit (start-up included).
    pub wall: Duration,
}

/// Spawns `command`, collects its output and reaps it with `wait4`.
pub fn run(mut command: Command) -> std::io::Result<Measured> {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut stdout_pipe = child.stdout.take().expect("piped");
    let mut stderr_pipe = child.stderr.take().expect("piped");
    let stdout = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout_pipe.read_to_string(&mut text);
        text
    });
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value, and `wait4` writes it
    // for the child this process spawned and has not reaped.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if reaped != pid {
        return Err(std::io::Error::last_os_error());
    }
    let wall = started.elapsed();
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let stderr = stderr.join().unwrap_or_default();
    let tail: String = stderr
        .lines()
        .rev()
        .take(5)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    Ok(Measured {
        stdout: stdout.join().unwrap_or_default(),
        stderr: tail,
        success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        cpu_seconds: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        // ru_maxrss is in KiB on Linux.
        peak_rss_mib: usage.ru_maxrss as f64 / 1024.0,
        wall,
    })
}
