//! Running one operation on a pooled session, and recovering when the
//! session, its login or the token fails (see [`Token`]).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cryptoki::context::Function;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::ObjectHandle;
use cryptoki::session::{Session, SessionState};

use super::lookup::{KeyRef, Lookup};
use super::pool::Lease;
use super::token::Token;
use super::uri::Pkcs11Uri;
use super::{Pkcs11Class, Pkcs11Operation, UNWRAP_REFUSED_ADVICE};
use crate::error::{Error, Result};

type CkResult<T> = std::result::Result<T, CkError>;

/// Waits before each new attempt after a passing token failure
/// (`CKR_GENERAL_ERROR`, `CKR_FUNCTION_FAILED`, `CKR_DEVICE_ERROR` on a
/// session that is still open and logged in): three attempts, 75 ms at most.
pub(super) const BACKOFF: [Duration; 3] =
    [Duration::from_millis(5), Duration::from_millis(20), Duration::from_millis(50)];

/// Run `call`, and again after each wait of the backoff while it fails with
/// a passing failure (`CKR_GENERAL_ERROR`, `CKR_FUNCTION_FAILED`,
/// `CKR_DEVICE_ERROR`) and `alive` says the token still answers; `retried`
/// is called before each new attempt.
///
/// This is for calls that read the token's own state, which SoftHSM 2's file
/// store fails with `CKR_GENERAL_ERROR` while another process rewrites it
/// (every `C_Login` rewrites the token file): `C_Login`, `C_GetTokenInfo`.
pub(super) fn with_backoff<T>(
    mut call: impl FnMut() -> CkResult<T>,
    alive: impl Fn() -> bool,
    mut retried: impl FnMut(),
) -> CkResult<T> {
    let mut waits = BACKOFF.iter();
    loop {
        match call() {
            Err(CkError::Pkcs11(rv, f)) if passing(rv) => match waits.next() {
                Some(wait) if alive() => {
                    retried();
                    std::thread::sleep(*wait);
                }
                _ => return Err(CkError::Pkcs11(rv, f)),
            },
            other => return other,
        }
    }
}

/// True when `C_GetSessionInfo` answers for `session`: the token is there.
pub(super) fn answers(session: &Session) -> bool {
    matches!(health(session), Health::LoggedIn | Health::NotLoggedIn)
}

/// What a token did to keep operations going, counted since it was opened.
///
/// Shown by `Token`'s `Debug` output and returned by [`Token::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenStats {
    /// Recoveries from a lost session or login: each closed the failing
    /// session, every idle one and the key handle cache.
    pub reopens: u64,
    /// Logins (`C_Login` accepted) after the first, with the PIN the token
    /// was opened with.
    pub relogins: u64,
    /// Operations started again after a failure (recovered or not).
    pub retries: u64,
}

impl fmt::Display for TokenStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} reopens, {} re-logins, {} retries", self.reopens, self.relogins, self.retries)
    }
}

/// The counters behind [`TokenStats`], and what the token last saw of its
/// module's process epoch.
#[derive(Default)]
pub(super) struct Counters {
    reopens: AtomicU64,
    pub(super) relogins: AtomicU64,
    pub(super) retries: AtomicU64,
    /// Set once the token is open: later logins are re-logins.
    pub(super) opened: AtomicBool,
    epoch: AtomicU64,
}

impl Counters {
    pub(super) fn new(epoch: u64) -> Self {
        Counters { epoch: AtomicU64::new(epoch), ..Counters::default() }
    }

    pub(super) fn snapshot(&self) -> TokenStats {
        TokenStats {
            reopens: self.reopens.load(Ordering::Relaxed),
            relogins: self.relogins.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }
}

/// What `C_GetSessionInfo` says about a session after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    /// Open and logged in as the user: the token is alive.
    LoggedIn,
    /// Open, but the login is gone.
    NotLoggedIn,
    /// The session (or the token) is gone.
    Gone,
    /// No usable answer.
    Unknown,
}

fn health(session: &Session) -> Health {
    match session.get_session_info() {
        Ok(info) => match info.session_state() {
            SessionState::RoUser | SessionState::RwUser => Health::LoggedIn,
            _ => Health::NotLoggedIn,
        },
        Err(CkError::Pkcs11(rv, _)) if session_lost(rv) => Health::Gone,
        Err(_) => Health::Unknown,
    }
}

/// Return values saying the session or its login is gone.
fn session_lost(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::DeviceRemoved
            | RvError::TokenNotPresent
            | RvError::UserNotLoggedIn
    )
}

/// Return values of a token failure that may pass.
fn passing(rv: RvError) -> bool {
    matches!(rv, RvError::GeneralError | RvError::FunctionFailed | RvError::DeviceError)
}

/// Return values with which a token refuses ciphertext that does not open
/// (SoftHSM answers `CKR_GENERAL_ERROR` for a failed AES-GCM tag).
fn is_refusal(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::EncryptedDataInvalid
            | RvError::EncryptedDataLenRange
            | RvError::DataInvalid
            | RvError::DataLenRange
            | RvError::WrappedKeyInvalid
            | RvError::WrappedKeyLenRange
            | RvError::GeneralError
            | RvError::FunctionFailed
    )
}

/// The calls that see the ciphertext of an unwrap (not its `Init`).
fn is_unwrap_call(f: Function) -> bool {
    matches!(f, Function::Decrypt | Function::DecryptUpdate | Function::DecryptFinal | Function::UnwrapKey)
}

/// What to do after a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// The session or its login is lost: drain the pool, log in again, retry.
    Recover,
    /// The key handle went stale on a healthy session: look it up again.
    Relookup,
    /// A failure that may pass, on a session that is alive: wait and retry.
    Backoff,
    /// The token refused the ciphertext on a healthy session.
    Refused,
    /// Report the failure as it is.
    Report,
}

fn triage(err: &CkError, session: &Session, unwrap: bool, device_error_refuses: bool) -> Next {
    let CkError::Pkcs11(rv, f) = err else { return Next::Report };
    if session_lost(*rv) {
        return Next::Recover;
    }
    let stale_handle = matches!(rv, RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid);
    let refused_rv = is_refusal(*rv) || (device_error_refuses && *rv == RvError::DeviceError);
    let refusal = unwrap && refused_rv && is_unwrap_call(*f);
    if !(stale_handle || refusal || passing(*rv)) {
        return Next::Report;
    }
    match health(session) {
        Health::LoggedIn if stale_handle => Next::Relookup,
        Health::LoggedIn if refusal => Next::Refused,
        Health::LoggedIn if passing(*rv) => Next::Backoff,
        // Kryoptic answers CKR_GENERAL_ERROR for a private key used after a
        // logout, YubiHSM CKR_FUNCTION_FAILED when its connector drops.
        Health::NotLoggedIn | Health::Gone => Next::Recover,
        Health::LoggedIn | Health::Unknown => Next::Report,
    }
}

/// How often each kind of retry may still happen in one operation.
struct Budget {
    recover: bool,
    relookup: bool,
    refused: bool,
    backoff: usize,
}

impl Budget {
    fn new() -> Self {
        Budget { recover: true, relookup: true, refused: true, backoff: 0 }
    }

    /// Take the retry `next` asks for, if any is left; the wait to make first.
    fn take(&mut self, next: Next) -> Option<Duration> {
        let flag = match next {
            Next::Recover => &mut self.recover,
            Next::Relookup => &mut self.relookup,
            Next::Refused => &mut self.refused,
            Next::Backoff => {
                let wait = BACKOFF.get(self.backoff).copied()?;
                self.backoff += 1;
                return Some(wait);
            }
            Next::Report => return None,
        };
        std::mem::replace(flag, false).then_some(Duration::ZERO)
    }
}

impl Token {
    /// Run `op` on a pooled session with the handle of `key` (when given),
    /// with the recovery described on [`Token`]. `unwrap`: `op` opens an
    /// encrypted data key, whose refusal on a healthy session is
    /// [`Pkcs11Class::UnwrapRefused`].
    pub(super) fn run_inner<T>(
        &self,
        key_uri: Option<&Pkcs11Uri>,
        key: Option<&KeyRef>,
        holding_object_lock: bool,
        unwrap: bool,
        op: &mut dyn FnMut(&Session, Option<ObjectHandle>) -> CkResult<T>,
    ) -> Result<T> {
        let ctx = self.err_ctx(key_uri);
        let mut budget = Budget::new();
        loop {
            let lease = if holding_object_lock { self.checkout_with(None) } else { self.checkout() };
            let lease = match lease {
                Ok(lease) => lease,
                Err(CkError::Pkcs11(rv, _)) if session_lost(rv) && budget.take(Next::Recover).is_some() => {
                    self.inner.stats.retries.fetch_add(1, Ordering::Relaxed);
                    self.recovered(None);
                    continue;
                }
                Err(e) => return Err(ctx.ck(e)),
            };
            let result = match key {
                None => op(lease.session(), None),
                Some(k) => match self.inner.handles.lookup(lease.session(), k) {
                    Ok(h) => op(lease.session(), Some(h)),
                    Err(Lookup::Ck(e)) => Err(e),
                    Err(Lookup::NotFound) => {
                        // A private object is invisible when the login was lost.
                        let state = health(lease.session());
                        if state == Health::LoggedIn {
                            return Err(ctx.step(Pkcs11Operation::FindKey, k.not_found(&self.inner.label)));
                        }
                        if budget.take(Next::Recover).is_some() {
                            self.inner.stats.retries.fetch_add(1, Ordering::Relaxed);
                            self.recovered(Some(lease));
                            continue;
                        }
                        // Never "no such key" on a session that lost its login.
                        return Err(ctx.class_step(
                            Pkcs11Operation::Call(Function::FindObjects),
                            Pkcs11Class::Fault,
                            format!(
                                "the search for the key found nothing while C_GetSessionInfo showed the session {}, \
                                 also after logging in again: the token keeps losing the login",
                                if state == Health::NotLoggedIn { "not logged in" } else { "unusable" }
                            ),
                        ));
                    }
                    Err(Lookup::Ambiguous(n)) => {
                        return Err(ctx.step(
                            Pkcs11Operation::FindKey,
                            format!("{n} objects match; add `id=` to the URI to pick one (list the token's keys)"),
                        ))
                    }
                },
            };
            let err = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let next = triage(&err, lease.session(), unwrap, self.inner.profile.device_error_refuses);
            let Some(wait) = budget.take(next) else {
                return Err(match next {
                    Next::Refused => refused(ctx.ck(err)),
                    _ => ctx.ck(err),
                });
            };
            self.inner.stats.retries.fetch_add(1, Ordering::Relaxed);
            match next {
                Next::Recover => self.recovered(Some(lease)),
                Next::Relookup => {
                    if let Some(k) = key {
                        self.inner.handles.forget(k);
                    }
                }
                _ => {}
            }
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
        }
    }

    /// After a lost session or login: close `lease`'s session and every
    /// idle one (unless another thread just did), and forget every key
    /// handle; the next checkout opens a session and logs in again.
    fn recovered(&self, lease: Option<Lease<'_>>) {
        let drained = match lease {
            Some(lease) => lease.drain(),
            None => {
                self.inner.pool.drain_all(false);
                true
            }
        };
        self.inner.handles.clear();
        if drained {
            self.inner.stats.reopens.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Before a checkout: when the module was initialized again in a new
    /// process (a fork), the pooled sessions are the parent's: forget them.
    pub(super) fn check_process(&self) {
        let epoch = self.inner.module.epoch();
        let seen = self.inner.stats.epoch.load(Ordering::Acquire);
        if seen != epoch
            && self.inner.stats.epoch.compare_exchange(seen, epoch, Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            self.inner.pool.drain_all(true);
            self.inner.handles.clear();
            self.inner.stats.reopens.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// An unwrap the token refused twice on a healthy session: this EDK does not
/// open with this key.
fn refused(err: Error) -> Error {
    match err {
        Error::Pkcs11(mut e) => {
            e.class = Pkcs11Class::UnwrapRefused;
            e.detail = UNWRAP_REFUSED_ADVICE.to_owned();
            Error::Pkcs11(e)
        }
        other => other,
    }
}
