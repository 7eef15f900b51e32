//! Which rustls crypto provider a TLS connection uses.
//!
//! graviola (feature `graviola`, default) is pure Rust and assembly, so the
//! default build needs no C compiler; but it runs only on x86_64 and aarch64
//! CPUs with the extensions it is written for, and asserts (panics) when used
//! on another. So the CPU is checked here, before graviola is touched. `ring`
//! and `aws-lc-rs` (opt-in features, both compile C) run wherever rustls
//! does.
//!
//! Without an explicit choice ([`TlsConfig::provider`](super::TlsConfig)),
//! the first provider of [`TlsProvider::PREFERENCE`] that is built in and runs
//! here is used. None is an error at connect time naming the feature to
//! enable.

use super::error::TlsError;

/// A rustls crypto provider this crate can be built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsProvider {
    /// graviola: feature `graviola` (default).
    Graviola,
    /// aws-lc-rs: feature `aws-lc-rs`.
    AwsLcRs,
    /// ring: feature `ring`.
    Ring,
}

/// Whether a provider can serve a connection in this build, on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Availability {
    /// Built in, and this machine runs it.
    Ready,
    /// Its cargo feature is off.
    NotBuilt,
    /// Built in, but this CPU or target cannot run it: why.
    Unsupported(&'static str),
}

/// Why graviola cannot run on this CPU (the features its README lists).
const GRAVIOLA_CPU: &str = "graviola, the default TLS crypto provider, does not run on this CPU \
     (it needs x86_64 with aes, ssse3, avx, avx2, adx, bmi2 and pclmulqdq, or aarch64 with aes, \
     sha2, pmull and neon)";

/// Why graviola is not in this build although its feature is on.
const GRAVIOLA_TARGET: &str = "graviola, the default TLS crypto provider, does not support this \
     target (x86_64 and aarch64 only)";

impl TlsProvider {
    /// The order in which a provider is chosen when none is asked for: the
    /// default first, then the opt-in ones (aws-lc-rs before ring, as rustls
    /// itself prefers).
    pub const PREFERENCE: [TlsProvider; 3] = [Self::Graviola, Self::AwsLcRs, Self::Ring];

    /// The cargo feature of kafka-wire (and semantics) that builds it in.
    pub fn feature(self) -> &'static str {
        match self {
            Self::Graviola => "graviola",
            Self::AwsLcRs => "aws-lc-rs",
            Self::Ring => "ring",
        }
    }

    /// True when this build has it (which says nothing about the CPU).
    pub fn is_built(self) -> bool {
        match self {
            Self::Graviola => cfg!(all(
                feature = "graviola",
                any(target_arch = "x86_64", target_arch = "aarch64")
            )),
            Self::AwsLcRs => cfg!(feature = "aws-lc-rs"),
            Self::Ring => cfg!(feature = "ring"),
        }
    }

    /// True when this build has it and this machine can run it.
    pub fn is_available(self) -> bool {
        self.availability() == Availability::Ready
    }

    pub(crate) fn availability(self) -> Availability {
        if self == Self::Graviola && cfg!(feature = "graviola") && !self.is_built() {
            return Availability::Unsupported(GRAVIOLA_TARGET);
        }
        if !self.is_built() {
            return Availability::NotBuilt;
        }
        if self == Self::Graviola && !graviola_runs_here() {
            return Availability::Unsupported(GRAVIOLA_CPU);
        }
        Availability::Ready
    }

    /// The provider to use: `requested`, or the first available one of
    /// [`PREFERENCE`](Self::PREFERENCE); an error naming the feature to
    /// enable when there is none.
    pub fn choose(requested: Option<TlsProvider>) -> Result<TlsProvider, TlsError> {
        choose_from(requested, Self::availability)
    }

    /// The rustls provider; `None` when it is not built in or cannot run
    /// here ([`choose`](Self::choose) says why).
    #[cfg(feature = "tls")]
    pub(crate) fn crypto_provider(self) -> Option<tokio_rustls::rustls::crypto::CryptoProvider> {
        match self {
            #[cfg(all(
                feature = "graviola",
                any(target_arch = "x86_64", target_arch = "aarch64")
            ))]
            Self::Graviola if graviola_runs_here() => Some(rustls_graviola::default_provider()),
            #[cfg(feature = "aws-lc-rs")]
            Self::AwsLcRs => Some(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider()),
            #[cfg(feature = "ring")]
            Self::Ring => Some(tokio_rustls::rustls::crypto::ring::default_provider()),
            _ => None,
        }
    }
}

#[cfg(all(
    feature = "graviola",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn graviola_runs_here() -> bool {
    graviola::util::is_cpu_supported()
}

#[cfg(not(all(
    feature = "graviola",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
fn graviola_runs_here() -> bool {
    false
}

/// [`TlsProvider::choose`] over any availability, so that a test can play a
/// CPU graviola does not support.
pub(crate) fn choose_from(
    requested: Option<TlsProvider>,
    availability: impl Fn(TlsProvider) -> Availability,
) -> Result<TlsProvider, TlsError> {
    if let Some(provider) = requested {
        return match availability(provider) {
            Availability::Ready => Ok(provider),
            Availability::NotBuilt => Err(TlsError::NoProvider {
                reason: format!(
                    "the {provider:?} provider is not built in: build kafka-wire with feature `{}`",
                    provider.feature()
                ),
            }),
            Availability::Unsupported(why) => Err(unsupported(why, &availability)),
        };
    }
    let mut unsupported_why = None;
    for provider in TlsProvider::PREFERENCE {
        match availability(provider) {
            Availability::Ready => return Ok(provider),
            Availability::NotBuilt => {}
            Availability::Unsupported(why) => unsupported_why = unsupported_why.or(Some(why)),
        }
    }
    Err(match unsupported_why {
        Some(why) => unsupported(why, &availability),
        None => TlsError::NoProvider {
            reason: "SSL needs a TLS crypto provider: build kafka-wire with feature `graviola` \
                     (the default), `aws-lc-rs` or `ring`"
                .into(),
        },
    })
}

/// A built-in provider cannot run here: say which provider would.
fn unsupported(why: &str, availability: impl Fn(TlsProvider) -> Availability) -> TlsError {
    let built_in = [TlsProvider::AwsLcRs, TlsProvider::Ring]
        .into_iter()
        .find(|p| availability(*p) == Availability::Ready);
    let instead = match built_in {
        Some(provider) => format!("ask for the {provider:?} provider, which this build has"),
        None => {
            "build kafka-wire with feature `aws-lc-rs` or `ring` instead (both compile C)".into()
        }
    };
    TlsError::NoProvider {
        reason: format!("{why}: {instead}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only_graviola_built(cpu_supported: bool) -> impl Fn(TlsProvider) -> Availability {
        move |provider| match (provider, cpu_supported) {
            (TlsProvider::Graviola, true) => Availability::Ready,
            (TlsProvider::Graviola, false) => Availability::Unsupported(GRAVIOLA_CPU),
            _ => Availability::NotBuilt,
        }
    }

    #[test]
    fn graviola_is_chosen_where_it_runs() {
        assert_eq!(
            choose_from(None, only_graviola_built(true)).unwrap(),
            TlsProvider::Graviola
        );
    }

    #[test]
    fn an_unsupported_cpu_is_an_error_naming_the_features_to_enable() {
        let error = choose_from(None, only_graviola_built(false))
            .unwrap_err()
            .to_string();
        for word in ["avx2", "neon", "`ring`", "`aws-lc-rs`"] {
            assert!(error.contains(word), "{error:?} should mention {word}");
        }
    }

    #[test]
    fn an_opt_in_provider_serves_where_graviola_cannot() {
        let ring_too = |provider| match provider {
            TlsProvider::Ring => Availability::Ready,
            other => only_graviola_built(false)(other),
        };
        assert_eq!(choose_from(None, ring_too).unwrap(), TlsProvider::Ring);
    }

    #[test]
    fn a_provider_asked_for_but_not_built_names_its_feature() {
        let error = choose_from(Some(TlsProvider::AwsLcRs), only_graviola_built(true))
            .unwrap_err()
            .to_string();
        assert!(error.contains("`aws-lc-rs`"), "{error}");
    }

    #[test]
    fn no_provider_at_all_names_the_default_feature() {
        let error = choose_from(None, |_| Availability::NotBuilt)
            .unwrap_err()
            .to_string();
        assert!(error.contains("`graviola`"), "{error}");
    }

    /// The real check on this machine: never a panic, whatever the CPU.
    #[test]
    fn this_machine_gets_an_answer_not_a_panic() {
        let _ = TlsProvider::choose(None);
        for provider in TlsProvider::PREFERENCE {
            let _ = provider.is_available();
        }
    }
}
