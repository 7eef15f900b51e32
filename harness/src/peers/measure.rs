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
    /// Peak resident set size in MiB (`VmHWM` of the program, read while it
    /// runs: `ru_maxrss` would count the harness's own memory, inherited
    /// at fork before the program was exec'ed).
    pub peak_rss_mib: f64,
    /// Wall time from spawn to exit (start-up included).
    pub wall: Duration,
    /// Killed for running past the limit.
    pub timed_out: bool,
}

/// Spawns `command`, collects its output and reaps it with `wait4`; kills
/// it (SIGKILL) if it runs longer than `limit`.
pub fn run(mut command: Command, limit: Duration) -> std::io::Result<Measured> {
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
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Returns (killed for the limit, peak RSS in KiB seen).
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + limit;
            let mut peak_kib = 0;
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                peak_kib = peak_kib.max(high_water_kib(pid).unwrap_or(0));
                if Instant::now() >= deadline {
                    // SAFETY: kill(2) on the child this process has not reaped.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    return (true, peak_kib);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (false, peak_kib)
        })
    };
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value, and `wait4` writes it
    // for the child this process spawned and has not reaped.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if reaped != pid {
        return Err(std::io::Error::last_os_error());
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    let (timed_out, peak_kib) = watchdog.join().unwrap_or((false, 0));
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
        peak_rss_mib: peak_kib as f64 / 1024.0,
        wall,
        timed_out,
    })
}

/// `VmHWM` (peak RSS, KiB) of a running process.
fn high_water_kib(pid: libc::pid_t) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
