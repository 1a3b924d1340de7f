//! Logging a pooled session in, with the PIN checked even when the process
//! is already logged in (see [`Token`]).

use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::types::RawAuthPin;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::pin::Pin;
use super::recovery::{answers, with_backoff};
use super::token::Token;
use crate::error::Result;

impl Token {
    /// Open a session and log in, checking the PIN even when the process is
    /// already logged in (see [`Token`]).
    pub(super) fn open_session(&self) -> cryptoki::error::Result<Session> {
        let session = self.inner.module.ctx().open_rw_session(self.inner.slot)?;
        let pin = RawAuthPin::new(Box::new(self.inner.pin.as_bytes().to_vec()));
        // Held around C_Login, so a concurrent login's hash is in place
        // before another session sees CKR_USER_ALREADY_LOGGED_IN.
        let mut logins = self.inner.module.logins();
        let token = (self.inner.label.clone(), self.inner.serial.clone());
        // SoftHSM fails a login with CKR_GENERAL_ERROR while another process
        // rewrites the token file (as its own logins do): a passing failure.
        let login = with_backoff(
            || session.login_with_raw(UserType::User, &pin),
            || answers(&session),
            || {
                self.inner.stats.retries.fetch_add(1, Ordering::Relaxed);
            },
        );
        match login {
            Ok(()) => {
                logins.insert(token, self.inner.pin_hash);
                if self.inner.stats.opened.load(Ordering::Relaxed) {
                    self.inner.stats.relogins.fetch_add(1, Ordering::Relaxed);
                }
                Ok(session)
            }
            Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, f)) => match logins.get(&token) {
                Some(hash) if bool::from(hash.ct_eq(&self.inner.pin_hash)) => Ok(session),
                // Another PIN than the one the process logged in with.
                Some(_) => Err(CkError::Pkcs11(RvError::PinIncorrect, f)),
                // Logged in by code outside this crate: the PIN cannot be checked.
                None => Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, f)),
            },
            Err(e) => Err(e),
        }
    }
}

/// SHA-256 over a random per-process salt and the PIN: what the process
/// remembers of a PIN it logged in with (never the PIN itself).
pub(super) fn pin_hash(pin: &Pin) -> Result<[u8; 32]> {
    static SALT: OnceLock<[u8; 32]> = OnceLock::new();
    let salt = match SALT.get() {
        Some(salt) => salt,
        None => {
            let mut fresh = [0u8; 32];
            crate::crypto::fill_random(&mut fresh)?;
            SALT.get_or_init(|| fresh)
        }
    };
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(pin.as_bytes());
    Ok(hasher.finalize().into())
}
