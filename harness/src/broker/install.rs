//! Finding or building the nisshi binary. The build is cached under
//! `~/.cache/kafka-pure/nisshi-0.7.0` so a machine pays for it once.

use std::path::PathBuf;
use std::process::Command;

use super::BrokerError;

/// The nisshi version this project tests against (0.8 refuses transactional ids).
pub const BROKER_VERSION: &str = "0.7.0";

/// Install root of the cached build; `NISSHI_ROOT` overrides it.
pub fn install_root() -> PathBuf {
    if let Some(root) = std::env::var_os("NISSHI_ROOT") {
        return PathBuf::from(root);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache/kafka-pure")
        .join(format!("nisshi-{BROKER_VERSION}"))
}

/// The binary: `NISSHI_BIN` if set, else the cached build, if its
/// `--version` says 0.7.0.
pub fn broker_binary() -> Result<PathBuf, BrokerError> {
    if let Some(bin) = std::env::var_os("NISSHI_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let path = install_root().join("bin/nisshi");
    if has_right_version(&path) {
        return Ok(path);
    }
    Err(BrokerError::NotInstalled {
        path: path.display().to_string(),
        root: install_root().display().to_string(),
    })
}

fn has_right_version(path: &std::path::Path) -> bool {
    Command::new(path)
        .arg("--version")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains(BROKER_VERSION))
        .unwrap_or(false)
}

/// Builds nisshi with the nightly toolchain unless the cached binary is there.
pub fn install_broker() -> Result<PathBuf, BrokerError> {
    if let Ok(path) = broker_binary() {
        return Ok(path);
    }
    let root = install_root();
    eprintln!(
        "building nisshi {BROKER_VERSION} into {} (about 16 minutes on 2 cores, once)",
        root.display()
    );
    let status = Command::new("cargo")
        .args([
            "+nightly",
            "install",
            &format!("nisshi@{BROKER_VERSION}"),
            "--locked",
        ])
        .args(["--features", "dynostore,libsql", "--root"])
        .arg(&root)
        .status()
        .map_err(BrokerError::io("running cargo install"))?;
    if !status.success() {
        return Err(BrokerError::InstallFailed {
            status: status.to_string(),
        });
    }
    broker_binary()
}
