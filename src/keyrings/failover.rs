//! The failover keyring: one key held by several tokens (an HSM cluster
//! reached without a load balancer, or two partitions), used as one keyring.
//!
//! Every operation goes to one member, chosen round-robin or primary first
//! ([`FailoverStrategy`]). When a member fails with token trouble
//! ([`ErrorKind::Token`]: lost session, removed device, module failure...),
//! it is marked down for [`FailoverKeyring::with_retry_after`] and the same
//! operation is tried on the next member, each member at most once per
//! operation. Any other failure ("not this key", not authentic, usage) is
//! returned at once: another copy of the same key would answer the same.
//! Members marked down are tried after the others, so an operation fails
//! only when every member failed; they return to the rotation when their
//! retry time has passed and an operation succeeds on them.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, KeyringFailure, Result};
use crate::materials::{DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring};

/// Default time a failed member stays marked down.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Which member an operation goes to first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FailoverStrategy {
    /// Spread operations over the members in turn.
    RoundRobin,
    /// Always the first member that is up, in the order given.
    #[default]
    PrimarySecondary,
}

/// What a [`FailoverKeyring`] knows of one member.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberHealth {
    /// The member keyring's description.
    pub description: String,
    /// Operations sent to the member (including failed ones).
    pub operations: u64,
    /// Operations that failed on the member with token trouble.
    pub failures: u64,
    /// The last token error, as text.
    pub last_error: Option<String>,
    /// While the member is marked down: how long until it is tried first again.
    pub down_for: Option<Duration>,
}

impl MemberHealth {
    /// True unless the member is marked down.
    pub fn is_up(&self) -> bool {
        self.down_for.is_none()
    }
}

struct Member {
    keyring: Arc<dyn Keyring>,
    operations: AtomicU64,
    failures: AtomicU64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    last_error: Option<String>,
    down_until: Option<Instant>,
}

impl Member {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Some(until)` while marked down.
    fn down_until(&self, now: Instant) -> Option<Instant> {
        self.state().down_until.filter(|until| *until > now)
    }
}

/// A keyring over several keyrings holding the same key, with failover on
/// token trouble.
///
/// Every operation goes to one member, chosen round-robin or primary first
/// ([`FailoverStrategy`]). When a member fails with token trouble
/// ([`ErrorKind::Token`]), it is marked down for
/// [`with_retry_after`](FailoverKeyring::with_retry_after) and the same
/// operation goes to the next member, each member at most once per
/// operation. Any other failure ("not this key", not authentic, usage) is
/// returned at once. Members marked down are tried after the others and
/// return once their retry time has passed and an operation succeeds on
/// them; [`health`](FailoverKeyring::health) shows each member's state.
///
/// The members must write and read the same EDKs (the same key under the
/// same namespace and key name), so that any member opens what another
/// wrapped: for example [`Pkcs11AesKeyring`](crate::pkcs11::Pkcs11AesKeyring)s
/// over the same key in each token of a cluster.
///
/// ```
/// use std::sync::Arc;
/// use hsm_keyring::keyrings::{FailoverKeyring, FailoverStrategy, RawAesKeyring};
/// use hsm_keyring::Keyring;
///
/// let a: Arc<dyn Keyring> = Arc::new(RawAesKeyring::new("ns", "k", &[1; 32])?);
/// let b: Arc<dyn Keyring> = Arc::new(RawAesKeyring::new("ns", "k", &[1; 32])?);
/// let keyring = FailoverKeyring::new(vec![a, b])?.with_strategy(FailoverStrategy::RoundRobin);
/// assert!(keyring.health().iter().all(|m| m.is_up()));
/// # Ok::<(), hsm_keyring::Error>(())
/// ```
pub struct FailoverKeyring {
    members: Vec<Member>,
    strategy: FailoverStrategy,
    retry_after: Duration,
    next: AtomicUsize,
}

impl fmt::Debug for FailoverKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailoverKeyring")
            .field("members", &self.members.iter().map(|m| m.keyring.description()).collect::<Vec<_>>())
            .field("strategy", &self.strategy)
            .field("retry_after", &self.retry_after)
            .finish()
    }
}

impl FailoverKeyring {
    /// A failover keyring over `members` (at least one), primary first.
    pub fn new(members: Vec<Arc<dyn Keyring>>) -> Result<Self> {
        if members.is_empty() {
            return Err(Error::config("a failover keyring needs at least one member keyring"));
        }
        let members = members
            .into_iter()
            .map(|keyring| Member {
                keyring,
                operations: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                state: Mutex::new(State::default()),
            })
            .collect();
        Ok(FailoverKeyring {
            members,
            strategy: FailoverStrategy::default(),
            retry_after: DEFAULT_RETRY_AFTER,
            next: AtomicUsize::new(0),
        })
    }

    /// Choose how operations are spread (default: primary/secondary).
    pub fn with_strategy(mut self, strategy: FailoverStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// How long a member that failed stays marked down (default
    /// [`DEFAULT_RETRY_AFTER`]).
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// Each member's health, in the order given.
    pub fn health(&self) -> Vec<MemberHealth> {
        let now = Instant::now();
        self.members
            .iter()
            .map(|m| {
                let state = m.state();
                MemberHealth {
                    description: m.keyring.description(),
                    operations: m.operations.load(Ordering::Relaxed),
                    failures: m.failures.load(Ordering::Relaxed),
                    last_error: state.last_error.clone(),
                    down_for: state.down_until.and_then(|until| until.checked_duration_since(now)),
                }
            })
            .collect()
    }

    /// The order of members for one operation: those up, from the
    /// strategy's starting point, then those marked down, soonest due first.
    fn order(&self) -> Vec<usize> {
        let n = self.members.len();
        let start = match self.strategy {
            FailoverStrategy::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed) % n,
            FailoverStrategy::PrimarySecondary => 0,
        };
        let now = Instant::now();
        let mut up = Vec::with_capacity(n);
        let mut down = Vec::new();
        for i in (0..n).map(|k| (start + k) % n) {
            match self.members[i].down_until(now) {
                None => up.push(i),
                Some(until) => down.push((until, i)),
            }
        }
        down.sort();
        up.extend(down.into_iter().map(|(_, i)| i));
        up
    }

    /// Run `op` on members in [`order`](Self::order) until one succeeds or
    /// fails with something other than token trouble.
    fn run<T>(&self, mut op: impl FnMut(&dyn Keyring) -> Result<T>) -> std::result::Result<T, Vec<(String, Error)>> {
        let mut failures = Vec::new();
        for i in self.order() {
            let member = &self.members[i];
            member.operations.fetch_add(1, Ordering::Relaxed);
            match op(member.keyring.as_ref()) {
                Ok(value) => {
                    member.state().down_until = None;
                    return Ok(value);
                }
                Err(err) if err.kind() == ErrorKind::Token => {
                    member.failures.fetch_add(1, Ordering::Relaxed);
                    let mut state = member.state();
                    state.last_error = Some(err.to_string());
                    state.down_until = Some(Instant::now() + self.retry_after);
                    drop(state);
                    failures.push((member.keyring.description(), err));
                }
                Err(err) => {
                    return Err(vec![(member.keyring.description(), err)]);
                }
            }
        }
        Err(failures)
    }
}

/// The error for a failed unwrap: the member's own when it was not token
/// trouble or only one member was tried; else every member's.
fn unwrap_error(mut failures: Vec<(String, Error)>, edk_count: usize) -> Error {
    if failures.len() == 1 {
        return failures.remove(0).1;
    }
    let failures = failures.into_iter().map(|(keyring, err)| KeyringFailure::from_error(keyring, err)).collect();
    Error::NoKeyringDecrypted { failures, offered: Vec::new(), offered_count: edk_count }
}

impl Keyring for FailoverKeyring {
    /// Wrap (and generate) on one member. When every member fails with token
    /// trouble, the error is the last member's.
    fn on_encrypt(&self, materials: EncryptionMaterials) -> Result<EncryptionMaterials> {
        self.run(|k| k.on_encrypt(materials.clone())).map_err(|mut failures| match failures.pop() {
            Some((_, last)) => last,
            None => Error::config("a failover keyring needs at least one member keyring"),
        })
    }

    /// Unwrap on one member. When every member fails with token trouble,
    /// the error lists each member's ([`Error::NoKeyringDecrypted`], of
    /// kind [`ErrorKind::Token`]).
    fn on_decrypt(&self, materials: DecryptionMaterials, edks: &[EncryptedDataKey]) -> Result<DecryptionMaterials> {
        self.run(|k| k.on_decrypt(materials.clone(), edks)).map_err(|failures| unwrap_error(failures, edks.len()))
    }

    fn description(&self) -> String {
        let members: Vec<String> = self.members.iter().map(|m| m.keyring.description()).collect();
        format!("failover keyring [{}]", members.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::error::{Pkcs11Class, Pkcs11Error, Pkcs11Operation};
    use crate::keyrings::RawAesKeyring;
    use crate::materials::AlgorithmSuite;
    use crate::EncryptionContext;

    /// A raw AES keyring that can be switched to fail like a lost token.
    #[derive(Debug)]
    struct Switchable {
        inner: RawAesKeyring,
        down: AtomicBool,
    }

    impl Switchable {
        fn new() -> Arc<Switchable> {
            Arc::new(Switchable {
                inner: RawAesKeyring::new("ns", "key", &[7; 32]).unwrap(),
                down: AtomicBool::new(false),
            })
        }

        fn set_down(&self, down: bool) {
            self.down.store(down, Ordering::SeqCst);
        }

        fn check(&self) -> Result<()> {
            if !self.down.load(Ordering::SeqCst) {
                return Ok(());
            }
            Err(Error::from(Pkcs11Error::new(
                Some("t".into()),
                None,
                Pkcs11Operation::Call(crate::pkcs11::Function::Encrypt),
                Some(crate::pkcs11::RvError::DeviceRemoved),
                Pkcs11Class::Fault,
                "the device is gone".into(),
            )))
        }
    }

    impl Keyring for Switchable {
        fn on_encrypt(&self, materials: EncryptionMaterials) -> Result<EncryptionMaterials> {
            self.check()?;
            self.inner.on_encrypt(materials)
        }
        fn on_decrypt(&self, materials: DecryptionMaterials, edks: &[EncryptedDataKey]) -> Result<DecryptionMaterials> {
            self.check()?;
            self.inner.on_decrypt(materials, edks)
        }
        fn description(&self) -> String {
            self.inner.description()
        }
    }

    fn suite() -> AlgorithmSuite {
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey
    }

    fn encrypt(k: &dyn Keyring) -> Result<EncryptionMaterials> {
        k.on_encrypt(EncryptionMaterials::new(suite(), EncryptionContext::new()))
    }

    fn members(a: &Arc<Switchable>, b: &Arc<Switchable>) -> Vec<Arc<dyn Keyring>> {
        vec![Arc::clone(a) as Arc<dyn Keyring>, Arc::clone(b) as Arc<dyn Keyring>]
    }

    #[test]
    fn round_robin_spreads_and_fails_over_once_per_member() {
        let (a, b) = (Switchable::new(), Switchable::new());
        let ha = FailoverKeyring::new(members(&a, &b)).unwrap().with_strategy(FailoverStrategy::RoundRobin);
        for _ in 0..10 {
            encrypt(&ha).unwrap();
        }
        let h = ha.health();
        assert_eq!((h[0].operations, h[1].operations), (5, 5));

        b.set_down(true);
        for _ in 0..10 {
            encrypt(&ha).unwrap();
        }
        let h = ha.health();
        assert_eq!(h[1].failures, 1, "marked down after its first failure: {h:?}");
        assert!(!h[1].is_up() && h[1].down_for.unwrap() <= DEFAULT_RETRY_AFTER);
        assert!(h[1].last_error.as_deref().unwrap().contains("CKR_DEVICE_REMOVED"));
        assert_eq!(h[0].operations, 15);

        // Both down: each tried once, the error is a token error.
        a.set_down(true);
        let err = encrypt(&ha).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Token);
        let h = ha.health();
        assert_eq!((h[0].failures, h[1].failures), (1, 2));
        let enc = {
            a.set_down(false);
            encrypt(&ha).unwrap()
        };
        a.set_down(true);
        let err = ha
            .on_decrypt(DecryptionMaterials::new(suite(), EncryptionContext::new()), enc.encrypted_data_keys())
            .unwrap_err();
        assert!(matches!(&err, Error::NoKeyringDecrypted { failures, .. } if failures.len() == 2), "{err}");
        assert_eq!(err.kind(), ErrorKind::Token);
    }

    #[test]
    fn primary_first_and_back_after_the_retry_time() {
        let (a, b) = (Switchable::new(), Switchable::new());
        let ha = FailoverKeyring::new(members(&a, &b)).unwrap().with_retry_after(Duration::ZERO);
        encrypt(&ha).unwrap();
        assert_eq!((ha.health()[0].operations, ha.health()[1].operations), (1, 0));
        a.set_down(true);
        encrypt(&ha).unwrap();
        a.set_down(false);
        // A zero retry time: the primary is tried first again, and is up.
        encrypt(&ha).unwrap();
        let h = ha.health();
        assert_eq!((h[0].operations, h[0].failures, h[1].operations), (3, 1, 1));
        assert!(h.iter().all(MemberHealth::is_up), "{h:?}");
    }

    #[test]
    fn not_this_key_is_not_failed_over() {
        let (a, b) = (Switchable::new(), Switchable::new());
        let ha = FailoverKeyring::new(members(&a, &b)).unwrap();
        let mut edks = encrypt(&ha).unwrap().encrypted_data_keys().to_vec();
        edks[0].ciphertext[0] ^= 1;
        let err = ha.on_decrypt(DecryptionMaterials::new(suite(), EncryptionContext::new()), &edks).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotThisKey, "{err}");
        let other = RawAesKeyring::new("ns", "other", &[7; 32]).unwrap();
        let edks = encrypt(&other).unwrap().encrypted_data_keys().to_vec();
        let err = ha.on_decrypt(DecryptionMaterials::new(suite(), EncryptionContext::new()), &edks).unwrap_err();
        assert!(err.is_not_mine(), "{err}");
        let h = ha.health();
        assert_eq!((h[0].operations, h[1].operations, h[0].failures), (3, 0, 0));
    }
}
