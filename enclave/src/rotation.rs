//! Certificate rotation: the current [`Identity`] behind an atomic pointer, served to rustls as
//! server certificate ([`ResolvesServerCert`]) and, for enclave-to-enclave links, as client
//! certificate ([`ResolvesClientCert`]); a background task re-issues it at two thirds of its
//! lifetime, retrying with backoff while the attester fails.
//!
//! A swap changes what *new* handshakes get. Connections already established keep their keys
//! (TLS 1.3 traffic keys do not depend on the certificate afterwards), so rotation drops no
//! connection; the server also pins the identity a connection was accepted with, so a fresh
//! attestation on an old connection still binds the key that connection uses.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::client::ResolvesClientCert;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;

use crate::error::AttestError;
use crate::identity::{unix_now, Identity, IdentityConfig};
use crate::Attester;

/// The current identity, swapped atomically.
pub struct IdentityResolver {
    current: ArcSwap<Identity>,
    generation: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl std::fmt::Debug for IdentityResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityResolver")
            .field("current", &self.current.load())
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl IdentityResolver {
    pub fn new(identity: Identity) -> Self {
        Self {
            current: ArcSwap::from_pointee(identity),
            generation: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    /// The identity new handshakes get.
    pub fn current(&self) -> Arc<Identity> {
        self.current.load_full()
    }

    /// Replaces the identity for new handshakes.
    pub fn replace(&self, identity: Identity) {
        self.current.store(Arc::new(identity));
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// How many times the identity was replaced.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The last rotation failure, cleared by the next success.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    fn set_last_error(&self, error: Option<String>) {
        if let Ok(mut slot) = self.last_error.lock() {
            *slot = error;
        }
    }
}

impl ResolvesServerCert for IdentityResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(self.current.load().certified_key()))
    }
}

impl ResolvesClientCert for IdentityResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let key = Arc::clone(self.current.load().certified_key());
        // Offer the certificate only if the server can check our key's signatures.
        key.key.choose_scheme(sigschemes).map(|_| key)
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// One identity that never changes (a connection's pinned identity).
#[derive(Debug)]
pub(crate) struct FixedIdentity(pub(crate) Arc<CertifiedKey>);

impl ResolvesServerCert for FixedIdentity {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// When to renew and how to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationConfig {
    /// Renew after this fraction of the lifetime, as numerator/denominator (default 2/3).
    pub renew_after: (u32, u32),
    /// First retry delay after a failed issue; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RotationConfig {
    fn default() -> Self {
        Self {
            renew_after: (2, 3),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

impl RotationConfig {
    /// How long after issue an identity with `lifetime_secs` is renewed.
    pub fn renew_delay(&self, lifetime_secs: u64) -> Duration {
        let (num, den) = self.renew_after;
        let millis = u128::from(lifetime_secs)
            .saturating_mul(1000)
            .saturating_mul(u128::from(num))
            .checked_div(u128::from(den))
            .unwrap_or(0);
        Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
    }
}

/// Issues the first identity now (blocking on the attester) and returns the resolver.
pub fn initial(
    attester: &dyn Attester,
    config: &IdentityConfig,
) -> Result<Arc<IdentityResolver>, AttestError> {
    Ok(Arc::new(IdentityResolver::new(Identity::issue_now(
        attester, config,
    )?)))
}

/// Spawns the renewal task on the current tokio runtime. It runs until aborted (or the
/// runtime shuts down); the attester is called on the blocking pool.
pub fn spawn_rotation(
    resolver: Arc<IdentityResolver>,
    attester: Arc<dyn Attester>,
    identity: IdentityConfig,
    rotation: RotationConfig,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut delay = rotation.renew_delay(identity.lifetime_secs);
        loop {
            tokio::time::sleep(delay).await;
            let mut backoff = rotation.min_backoff;
            loop {
                let attester = Arc::clone(&attester);
                let config = identity.clone();
                let issued = tokio::task::spawn_blocking(move || {
                    Identity::issue_now(attester.as_ref(), &config)
                })
                .await;
                match issued {
                    Ok(Ok(next)) => {
                        resolver.replace(next);
                        resolver.set_last_error(None);
                        break;
                    }
                    Ok(Err(e)) => resolver.set_last_error(Some(e.to_string())),
                    Err(join) => resolver.set_last_error(Some(join.to_string())),
                }
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2).min(rotation.max_backoff);
            }
            delay = rotation.renew_delay(identity.lifetime_secs);
        }
    })
}

/// Seconds until `identity` expires at `now` (0 when expired), for monitoring.
pub fn remaining_secs(identity: &Identity) -> u64 {
    let now = unix_now().unwrap_or(i64::MAX);
    u64::try_from(identity.expires_at().saturating_sub(now)).unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn renewal_comes_at_two_thirds_of_the_lifetime() {
        let config = RotationConfig::default();
        assert_eq!(config.renew_delay(3), Duration::from_secs(2));
        assert_eq!(config.renew_delay(86_400), Duration::from_secs(57_600));
    }

    #[test]
    fn a_zero_denominator_renews_at_once_instead_of_panicking() {
        let config = RotationConfig {
            renew_after: (2, 0),
            ..RotationConfig::default()
        };
        assert_eq!(config.renew_delay(60), Duration::ZERO);
    }
}
