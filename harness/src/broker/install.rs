//! Apache Kafka's jars, resolved from Maven Central by Maven (the pom in
//! `harness/kafka/pom.xml`, embedded here) into
//! `$KAFKA_PURE_CACHE/kafka-<version>/libs/` (default `~/.cache/kafka-pure`),
//! once per version.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::BrokerError;

/// The version started by default: the newest 4.x that runs on Java 17 here.
pub const DEFAULT_KAFKA_VERSION: &str = "4.4.0";

/// The oldest Java Kafka 4.x brokers run on.
const MIN_JAVA: u32 = 17;

const POM: &str = include_str!("../../kafka/pom.xml");

/// Marks a complete resolution (a half-copied `libs/` never has it).
const COMPLETE: &str = ".resolved";

/// The version the harness and the tests start: `KAFKA_VERSION`, else
/// [`DEFAULT_KAFKA_VERSION`].
pub fn kafka_version() -> String {
    std::env::var("KAFKA_VERSION").unwrap_or_else(|_| DEFAULT_KAFKA_VERSION.to_owned())
}

/// `$KAFKA_PURE_CACHE`, else `~/.cache/kafka-pure`.
pub fn cache_root() -> PathBuf {
    if let Some(root) = std::env::var_os("KAFKA_PURE_CACHE") {
        return PathBuf::from(root);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache/kafka-pure")
}

/// An installed Kafka: its jars and the Java that runs them.
#[derive(Debug, Clone)]
pub struct KafkaInstall {
    /// Kafka version.
    pub version: String,
    /// The directory of jars.
    pub libs: PathBuf,
    /// The `java` executable.
    pub java: PathBuf,
}

impl KafkaInstall {
    /// The `-cp` argument: every jar of `libs/`.
    pub fn classpath(&self) -> String {
        format!("{}/*", self.libs.display())
    }
}

fn version_dir(version: &str) -> PathBuf {
    cache_root().join(format!("kafka-{version}"))
}

/// The cached jars of `version`, without resolving anything.
pub fn installed_kafka(version: &str) -> Result<KafkaInstall, BrokerError> {
    let libs = version_dir(version).join("libs");
    if !libs.join(COMPLETE).exists() {
        return Err(BrokerError::NotInstalled {
            version: version.to_owned(),
            path: libs.display().to_string(),
        });
    }
    Ok(KafkaInstall {
        version: version.to_owned(),
        libs,
        java: java()?,
    })
}

/// The cached jars of `version`, resolved with Maven first if missing.
pub fn install_kafka(version: &str) -> Result<KafkaInstall, BrokerError> {
    if let Ok(install) = installed_kafka(version) {
        return Ok(install);
    }
    java()?;
    let mvn = which("mvn").ok_or_else(|| {
        BrokerError::MissingTool(
            "Maven (`mvn`) is not on PATH: it resolves Apache Kafka from Maven Central. Install it (Debian: `apt-get install maven`, or https://maven.apache.org/download.cgi)".into(),
        )
    })?;
    let dir = version_dir(version);
    std::fs::create_dir_all(&dir)
        .map_err(BrokerError::io(format!("creating {}", dir.display())))?;
    let pom = dir.join("pom.xml");
    std::fs::write(&pom, POM).map_err(BrokerError::io("writing the pom"))?;
    // Resolve into a directory of our own, then rename: a concurrent or
    // interrupted install never leaves a half-filled `libs/` marked complete.
    let partial = dir.join(format!("libs.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    eprintln!(
        "resolving Apache Kafka {version} from Maven Central into {}",
        dir.join("libs").display()
    );
    let status = Command::new(mvn)
        .args(["-q", "-B", "-f"])
        .arg(&pom)
        .arg("dependency:copy-dependencies")
        .arg(format!("-Dkafka.version={version}"))
        .arg(format!("-DoutputDirectory={}", partial.display()))
        .arg("-DincludeScope=runtime")
        .arg("-Dstyle.color=never")
        // stdout is the command's answer (`broker install` prints the jar
        // directory last): Maven's output goes to stderr.
        .stdout(std::io::stderr())
        .status()
        .map_err(BrokerError::io("running mvn"))?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(BrokerError::InstallFailed {
            version: version.to_owned(),
            status: status.to_string(),
        });
    }
    std::fs::write(partial.join(COMPLETE), version).map_err(BrokerError::io("marking libs"))?;
    let libs = dir.join("libs");
    if std::fs::rename(&partial, &libs).is_err() {
        // Another process finished first: its copy is as good as ours.
        let _ = std::fs::remove_dir_all(&partial);
    }
    installed_kafka(version)
}

/// `$JAVA_HOME/bin/java`, else `java` on PATH, if it is Java 17 or newer.
fn java() -> Result<PathBuf, BrokerError> {
    let java = std::env::var_os("JAVA_HOME")
        .map(|home| Path::new(&home).join("bin/java"))
        .filter(|p| p.exists())
        .or_else(|| which("java"))
        .ok_or_else(|| {
            BrokerError::MissingTool(format!(
                "Java is not installed (no JAVA_HOME, no `java` on PATH): Apache Kafka needs Java {MIN_JAVA} or newer (Debian: `apt-get install openjdk-17-jre-headless`, or set JAVA_HOME to a JDK {MIN_JAVA}+)"
            ))
        })?;
    let output = Command::new(&java)
        .arg("-version")
        .output()
        .map_err(BrokerError::io("running java -version"))?;
    let text = String::from_utf8_lossy(&output.stderr);
    match java_major(&text) {
        Some(major) if major >= MIN_JAVA => Ok(java),
        found => Err(BrokerError::MissingTool(format!(
            "{} is Java {}, but Apache Kafka 4 needs Java {MIN_JAVA} or newer: set JAVA_HOME to a newer JDK",
            java.display(),
            found.map_or_else(|| "of an unknown version".to_owned(), |m| m.to_string())
        ))),
    }
}

/// The major version in `java -version` output: `"17.0.15"` → 17, `"1.8.0_392"` → 8.
pub fn java_major(version_output: &str) -> Option<u32> {
    let quoted = version_output.split('"').nth(1)?;
    let mut parts = quoted.split(['.', '-', '+', '_']);
    let first: u32 = parts.next()?.parse().ok()?;
    if first == 1 {
        parts.next()?.parse().ok()
    } else {
        Some(first)
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::java_major;

    #[test]
    fn reads_the_java_major_version() {
        assert_eq!(
            java_major("openjdk version \"17.0.15\" 2025-04-15\nOpenJDK Runtime"),
            Some(17)
        );
        assert_eq!(java_major("openjdk version \"25\" 2025-09-16"), Some(25));
        assert_eq!(java_major("java version \"1.8.0_392\""), Some(8));
        assert_eq!(java_major("no version here"), None);
    }
}
