//! Process faults: start a process, SIGKILL it at a seeded point, again.

use std::time::Duration;

use tokio::process::Child;

/// Spawns with `spawn` `kills` times and SIGKILLs each run after a delay
/// drawn (xorshift64, deterministic per `seed`) from `min .. min + spread`.
/// Returns how many kills hit a process that was still running.
pub async fn kill_repeatedly(
    mut spawn: impl FnMut() -> std::io::Result<Child>,
    kills: usize,
    seed: u64,
    min: Duration,
    spread: Duration,
) -> std::io::Result<usize> {
    let mut state = seed | 1;
    let mut hits = 0;
    for _ in 0..kills {
        let mut child = spawn()?;
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let spread_ms = spread.as_millis().max(1) as u64;
        tokio::time::sleep(min + Duration::from_millis(state % spread_ms)).await;
        if child.try_wait()?.is_none() {
            hits += 1;
        }
        child.start_kill()?; // SIGKILL
        child.wait().await?;
    }
    Ok(hits)
}
