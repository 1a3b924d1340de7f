//! One logged-in token and its pool of sessions.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLockReadGuard};

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use cryptoki::slot::Slot;

use super::login::pin_hash;
use super::lookup::{HandleCache, KeyRef};
use super::module::{default_module_path, Module, ObjectGuard};
use super::pin::{resolve_pin, Pin};
use super::pool::{Lease, Pool};
use super::profile::{select_profile, MechanismCache, Profile};
use super::recovery::{Counters, TokenStats};
use super::select::select_token;
use super::uri::{ObjectType, Pkcs11Uri};
use super::ErrCtx;
use crate::error::{Error, Result};

type CkResult<T> = std::result::Result<T, CkError>;

/// How to open a [`Token`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TokenOptions {
    /// Most sessions open at once; threads wait when all are in use.
    /// Default: the number of CPUs, between 2 and 16.
    pub pool_size: usize,
    /// The PIN; when `None` it is resolved from the URI and the environment
    /// (see [`resolve_pin`]).
    pub pin: Option<Pin>,
    /// The module to load; when `None`, the URI's `module-path`, then
    /// `$PKCS11_MODULE`, then SoftHSM's default path.
    pub module_path: Option<PathBuf>,
    /// The vendor profile; when `None`, the URI's `profile=` query
    /// attribute, else the one detected from the token's manufacturer and
    /// model (see [`Profile::detect`]).
    pub profile: Option<Profile>,
}

impl Default for TokenOptions {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(4);
        TokenOptions { pool_size: cpus.clamp(2, 16), pin: None, module_path: None, profile: None }
    }
}

impl TokenOptions {
    /// Set the pool size (at least 1).
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// Use this PIN instead of resolving one.
    pub fn pin(mut self, pin: Pin) -> Self {
        self.pin = Some(pin);
        self
    }

    /// Load this module.
    pub fn module_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.module_path = Some(path.into());
        self
    }

    /// Use this vendor profile instead of detecting one.
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = Some(profile);
        self
    }
}

pub(super) struct Inner {
    pub(super) module: Module,
    pub(super) slot: Slot,
    pub(super) label: String,
    pub(super) serial: String,
    uri: Pkcs11Uri,
    pub(super) pin: Pin,
    /// Salted hash of `pin`, compared with the one the process logged in with.
    pub(super) pin_hash: [u8; 32],
    pub(super) pool: Pool,
    pub(super) handles: HandleCache,
    pub(super) profile: Profile,
    pub(super) mechanisms: MechanismCache,
    pub(super) stats: Counters,
}

/// One logged-in token with a bounded pool of sessions.
///
/// `Token` is cheap to clone and `Send + Sync`: every operation borrows one
/// session from the pool for its duration, so a session is used by one
/// thread at a time; when all `pool_size` sessions are busy, callers wait.
///
/// # Recovery
///
/// When an operation fails because its session or its login was lost
/// (`CKR_SESSION_HANDLE_INVALID`, `CKR_SESSION_CLOSED`, `CKR_DEVICE_REMOVED`,
/// `CKR_TOKEN_NOT_PRESENT`, `CKR_USER_NOT_LOGGED_IN`, or any other failure
/// while `C_GetSessionInfo` shows the session gone or no longer logged in, as
/// Kryoptic's `CKR_GENERAL_ERROR` after a logout), every pooled session is
/// stale: the failing session and every idle one are closed, the key handle
/// cache is emptied, a new session logs in again with the PIN the token was
/// opened with, and the operation is retried once. Sessions busy in other
/// threads are closed when they come back. A stale key handle on a healthy
/// session (`CKR_OBJECT_HANDLE_INVALID`, `CKR_KEY_HANDLE_INVALID`) is looked
/// up again once. `CKR_GENERAL_ERROR`, `CKR_FUNCTION_FAILED` and
/// `CKR_DEVICE_ERROR` on a session that is still open and logged in are
/// retried up to three times after short waits (5, 20, 50 ms). Anything else,
/// and any failure left after these retries, is reported with its PKCS#11
/// function and return value ([`Pkcs11Class::Fault`](super::Pkcs11Class::Fault) for the token's
/// failures: [`ErrorKind::Token`](crate::ErrorKind::Token)), never as "not
/// this key". [`stats`](Token::stats) counts the recoveries, re-logins and
/// retries.
///
/// A process forked from the one that opened the token initializes the
/// module again on its first use and leaves the parent's sessions alone
/// (see [`Module`]).
///
/// # Login and PIN
///
/// PKCS#11 keeps one login state per process and token, and `C_Login` on a
/// token the process is logged in to returns `CKR_USER_ALREADY_LOGGED_IN`
/// without checking the PIN. So that a wrong PIN still fails, the process
/// remembers, per token, a salted SHA-256 hash of the PIN that logged in
/// (the salt is random per process; the PIN itself is not kept beyond the
/// `Token` that holds it) and compares it in constant time:
///
/// * the same PIN is accepted;
/// * another PIN fails like a wrong PIN at login (`C_Login`,
///   `CKR_PIN_INCORRECT`, [`Pkcs11Class::WrongPin`](super::Pkcs11Class::WrongPin));
/// * when the process was logged in by code that does not go through this
///   crate (no remembered hash), the PIN cannot be checked and the session
///   is refused (`C_Login`, `CKR_USER_ALREADY_LOGGED_IN`,
///   [`Pkcs11Class::Configuration`](super::Pkcs11Class::Configuration)) until that code logs out.
///
/// [`logout`](Token::logout) forgets the hash; the next login is checked by
/// the token again. A process serving several tenants shares this one login
/// per token among them: the PIN separates processes, not tenants inside a
/// process; give tenants their own tokens or processes.
#[derive(Clone)]
pub struct Token {
    pub(super) inner: Arc<Inner>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("label", &self.inner.label)
            .field("serial", &self.inner.serial)
            .field("slot", &self.inner.slot.id())
            .field("module", &self.inner.module.path())
            .field("pool_size", &self.inner.pool.size())
            .field("profile", &self.inner.profile.name)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Token {
    /// Open the token named by `uri` (`token`, `serial`, `slot-id`,
    /// `manufacturer`, `model`) and log in, with default options.
    pub fn open(uri: &Pkcs11Uri) -> Result<Self> {
        Self::open_with(uri, TokenOptions::default())
    }

    /// Open the token named by `uri` and log in.
    ///
    /// Fails with a distinct [`Pkcs11Error`](crate::pkcs11::Pkcs11Error) when no
    /// token matches (operation `find token`) or the PIN is wrong
    /// (`C_Login`, `CKR_PIN_INCORRECT`, also while the process is already
    /// logged in with another PIN; see [`Token`]).
    pub fn open_with(uri: &Pkcs11Uri, mut options: TokenOptions) -> Result<Self> {
        let path = options
            .module_path
            .clone()
            .or_else(|| uri.module_path.as_ref().map(PathBuf::from))
            .unwrap_or_else(default_module_path);
        let module = Module::load(&path)?;
        match Self::open_in(&module, &path, uri, &mut options) {
            // SoftHSM 2 that read the token's file while another process was
            // rewriting it keeps what it read (no user PIN) for the life of
            // the process: tried once more after the module was initialized
            // again, if nothing else in the process uses it.
            Err(Error::Pkcs11(e)) if e.rv == Some(RvError::UserPinNotInitialized) && module.reload_if_unused() => {
                Self::open_in(&module, &path, uri, &mut options)
            }
            other => other,
        }
    }

    /// [`open_with`](Self::open_with) on `module`, loaded from `path`. A PIN
    /// resolved here is kept in `options`, so that it is asked for once.
    fn open_in(module: &Module, path: &Path, uri: &Pkcs11Uri, options: &mut TokenOptions) -> Result<Self> {
        let module_epoch = module.epoch();
        let summary = select_token(module, uri)?;
        let slot = module.slot(&summary)?;
        let profile = match &options.profile {
            Some(profile) => profile.clone(),
            None => select_profile(module, &summary, uri)?,
        };
        let pin = match &options.pin {
            Some(pin) => pin.clone(),
            None => options.pin.insert(resolve_pin(uri)?).clone(),
        };
        let token_uri = Pkcs11Uri {
            token: Some(summary.label.clone()),
            module_path: Some(path.to_string_lossy().into_owned()),
            ..Pkcs11Uri::default()
        };
        let token = Token {
            inner: Arc::new(Inner {
                module: module.clone(),
                slot,
                label: summary.label,
                serial: summary.serial,
                uri: token_uri,
                pin_hash: pin_hash(&pin)?,
                pin,
                pool: Pool::new(options.pool_size),
                handles: HandleCache::default(),
                profile,
                mechanisms: MechanismCache::default(),
                stats: Counters::new(module_epoch),
            }),
        };
        // Open one session now, so a wrong PIN is reported here.
        let checked = token.checkout().map(drop);
        checked.map_err(|e| token.err_ctx(None).ck(e))?;
        token.inner.stats.opened.store(true, Ordering::Relaxed);
        Ok(token)
    }

    /// The token label.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The vendor profile in use.
    pub fn profile(&self) -> &Profile {
        &self.inner.profile
    }

    /// The token serial number.
    pub fn serial(&self) -> &str {
        &self.inner.serial
    }

    /// The slot id the token sits in.
    pub fn slot_id(&self) -> u64 {
        self.inner.slot.id()
    }

    /// The module the token is reached through.
    pub fn module(&self) -> &Module {
        &self.inner.module
    }

    /// Most sessions this token opens at once.
    pub fn pool_size(&self) -> usize {
        self.inner.pool.size()
    }

    /// A URI naming this token (label and module path, no PIN).
    pub fn uri(&self) -> &Pkcs11Uri {
        &self.inner.uri
    }

    /// The URI of an object on this token.
    pub fn key_uri(&self, label: Option<&str>, id: Option<&[u8]>, object_type: Option<ObjectType>) -> Pkcs11Uri {
        Pkcs11Uri {
            object: label.map(str::to_owned),
            id: id.map(<[u8]>::to_vec),
            object_type,
            ..self.inner.uri.clone()
        }
    }

    /// Log out of the token. PKCS#11 keeps one login state per process and
    /// token, so every session of this process, in any pool, loses its login;
    /// pools log in again when an operation reports `CKR_USER_NOT_LOGGED_IN`.
    /// The remembered PIN hash is forgotten, so the next login is checked by
    /// the token.
    pub fn logout(&self) -> Result<()> {
        let lease = self.checkout().map_err(|e| self.err_ctx(None).ck(e))?;
        let mut logins = self.inner.module.logins();
        let result = match lease.session().logout() {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserNotLoggedIn, _)) => Ok(()),
            Err(e) => Err(self.err_ctx(None).ck(e)),
        };
        logins.remove(&(self.inner.label.clone(), self.inner.serial.clone()));
        result
    }

    /// How many times a lost session or login was recovered from
    /// ([`TokenStats::reopens`]).
    #[doc(hidden)]
    pub fn session_reopen_count(&self) -> u64 {
        self.stats().reopens
    }

    /// What the token did to keep operations going since it was opened:
    /// recoveries, re-logins and retries (also in its `Debug` output).
    pub fn stats(&self) -> TokenStats {
        self.inner.stats.snapshot()
    }

    pub(crate) fn err_ctx(&self, key: Option<&Pkcs11Uri>) -> ErrCtx {
        ErrCtx { token: Some(self.inner.label.clone()), key: key.map(Pkcs11Uri::to_path_string) }
    }

    /// Run `op` on a pooled session, with the recovery described on [`Token`].
    pub(crate) fn run<T>(&self, key_uri: Option<&Pkcs11Uri>, mut op: impl FnMut(&Session) -> CkResult<T>) -> Result<T> {
        self.run_inner(key_uri, None, false, false, &mut |s, _| op(s))
    }

    /// [`run`](Token::run) for a caller that holds the module's object lock
    /// (creating or destroying objects).
    pub(crate) fn run_holding<T>(
        &self,
        _held: &ObjectGuard<'_>,
        key_uri: Option<&Pkcs11Uri>,
        mut op: impl FnMut(&Session) -> CkResult<T>,
    ) -> Result<T> {
        self.run_inner(key_uri, None, true, false, &mut |s, _| op(s))
    }

    /// Run `op` on a pooled session with the handle of `key`, with recovery.
    pub(crate) fn run_with_key<T>(
        &self,
        key_uri: &Pkcs11Uri,
        key: &KeyRef,
        mut op: impl FnMut(&Session, ObjectHandle) -> CkResult<T>,
    ) -> Result<T> {
        self.run_inner(Some(key_uri), Some(key), false, false, &mut |s, h| match h {
            Some(h) => op(s, h),
            None => Err(CkError::InvalidValue),
        })
    }

    /// [`run_with_key`](Token::run_with_key) for unwrapping an encrypted data
    /// key: when `C_Decrypt` (or `C_UnwrapKey`) refuses the ciphertext
    /// (`CKR_ENCRYPTED_DATA_INVALID`, `CKR_ENCRYPTED_DATA_LEN_RANGE`,
    /// `CKR_DATA_INVALID`, `CKR_DATA_LEN_RANGE`, or the `CKR_GENERAL_ERROR` /
    /// `CKR_FUNCTION_FAILED` SoftHSM returns for a failed AES-GCM tag) twice
    /// in a row while `C_GetSessionInfo` shows the session open and logged
    /// in, the error is [`Pkcs11Class::UnwrapRefused`](super::Pkcs11Class::UnwrapRefused): this EDK does not open
    /// with this key. A refusal that does not repeat was the token's passing
    /// failure. Any other failure keeps its class.
    pub(crate) fn unwrap_with_key<T>(
        &self,
        key_uri: &Pkcs11Uri,
        key: &KeyRef,
        mut op: impl FnMut(&Session, ObjectHandle) -> CkResult<T>,
    ) -> Result<T> {
        self.run_inner(Some(key_uri), Some(key), false, true, &mut |s, h| match h {
            Some(h) => op(s, h),
            None => Err(CkError::InvalidValue),
        })
    }

    /// Borrow a session: an idle one, a new one if fewer than `pool_size`
    /// are open, else wait for one to come back.
    ///
    /// The lease holds the module's [`use_guard`](Module::use_guard), taken
    /// before the session: every thread takes the lock before a session, so
    /// waiting for one never blocks someone who holds the other.
    pub(crate) fn checkout(&self) -> CkResult<Lease<'_>> {
        self.checkout_with(self.inner.module.use_guard())
    }

    pub(super) fn checkout_with<'a>(&'a self, guard: Option<RwLockReadGuard<'a, ()>>) -> CkResult<Lease<'a>> {
        self.check_process();
        self.inner.pool.checkout(guard, || self.open_session())
    }
}
