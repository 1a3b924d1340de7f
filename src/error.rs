//! The one error type of the crate.

use std::fmt;
use std::sync::Arc;

use crate::materials::EncryptedDataKey;

mod pkcs11;

pub use pkcs11::{Pkcs11Class, Pkcs11Error, Pkcs11Operation};

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, grouped so that callers can tell a malformed
/// message from an authentication failure from a token problem.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The message bytes do not follow the format: which field, at which byte.
    #[error("malformed message: field `{field}` at byte {offset}: {reason}")]
    Malformed {
        /// Name of the field being parsed.
        field: &'static str,
        /// Offset of the field from the start of the message.
        offset: u64,
        /// What was wrong with it.
        reason: String,
    },
    /// The header authentication tag did not verify.
    #[error("header authentication failed: the header was altered, or the data key or encryption context is wrong")]
    HeaderAuthentication,
    /// A body frame's authentication tag did not verify.
    #[error("frame {sequence} failed authentication: the message was altered or truncated")]
    FrameAuthentication {
        /// Sequence number of the frame (1-based; 1 for a non-framed body).
        sequence: u32,
    },
    /// The commitment key derived from the data key differs from the header's.
    #[error("key commitment mismatch: the data key does not commit to this message")]
    CommitmentMismatch,
    /// The footer signature is missing, malformed, untrusted or does not verify.
    #[error("signature verification failed: {reason}")]
    Signature {
        /// What failed.
        reason: String,
    },
    /// The encryption context given by the caller does not match the message.
    #[error("encryption context mismatch: {reason}")]
    EncryptionContextMismatch {
        /// Which key differed or was missing.
        reason: String,
    },
    /// A caller-supplied encryption context is not acceptable.
    #[error("invalid encryption context: {reason}")]
    InvalidEncryptionContext {
        /// Why (reserved prefix, too large, ...).
        reason: String,
    },
    /// More encrypted data keys than the configured maximum.
    #[error("too many encrypted data keys: {count} exceeds the maximum of {max}")]
    TooManyEncryptedDataKeys {
        /// How many the message or materials have.
        count: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The commitment policy (or another policy) forbids this operation.
    #[error("policy violation: {reason}")]
    PolicyViolation {
        /// What the policy forbids.
        reason: String,
    },
    /// The algorithm suite id is unknown or not supported here.
    #[error("unsupported algorithm suite 0x{0:04X}")]
    UnsupportedSuite(u16),
    /// No keyring could decrypt any of the message's encrypted data keys.
    #[error("no keyring could decrypt the data key: {}{}", KeyringFailures(.failures), OfferedKeys(.offered, *.offered_count))]
    NoKeyringDecrypted {
        /// One entry per keyring (or per EDK) tried, with its error.
        failures: Vec<KeyringFailure>,
        /// Which keys the offered EDKs are for, as `provider-id/key-name`
        /// (the first few, see [`MAX_OFFERED_SHOWN`]); empty when unknown.
        offered: Vec<String>,
        /// How many EDKs were offered in all.
        offered_count: usize,
    },
    /// None of the encrypted data keys belongs to this keyring ("not mine").
    #[error("{keyring}: none of the {edk_count} encrypted data keys belongs to this keyring")]
    NotMine {
        /// Description of the keyring.
        keyring: String,
        /// Number of EDKs offered.
        edk_count: usize,
    },
    /// A keyring failed on a key that is its own ("mine but failed"), or could not wrap.
    #[error("{keyring}: {reason}")]
    Keyring {
        /// Description of the keyring.
        keyring: String,
        /// What failed.
        reason: String,
    },
    /// A PKCS#11 call failed.
    #[error(transparent)]
    Pkcs11(Box<Pkcs11Error>),
    /// A PKCS#11 URI (RFC 7512) could not be parsed.
    #[error("invalid PKCS#11 URI `{uri}`: {reason}")]
    InvalidUri {
        /// The URI as given (with any pin-value redacted).
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A key could not be loaded or is unusable (bad PEM, wrong length, ...).
    #[error("invalid key: {reason}")]
    InvalidKey {
        /// Why.
        reason: String,
    },
    /// Invalid configuration (frame length 0, bad option combination, ...).
    #[error("invalid configuration: {reason}")]
    Config {
        /// Why.
        reason: String,
    },
    /// A cryptographic primitive failed unexpectedly.
    #[error("cryptographic operation failed: {reason}")]
    Crypto {
        /// Which operation.
        reason: String,
    },
    /// Reading or writing the underlying stream failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Shorthand for [`Error::Malformed`].
    pub(crate) fn malformed(field: &'static str, offset: u64, reason: impl Into<String>) -> Self {
        Error::Malformed { field, offset, reason: reason.into() }
    }

    /// Shorthand for [`Error::Keyring`].
    pub(crate) fn keyring(keyring: impl Into<String>, reason: impl fmt::Display) -> Self {
        Error::Keyring { keyring: keyring.into(), reason: reason.to_string() }
    }

    /// Shorthand for [`Error::Config`].
    pub(crate) fn config(reason: impl Into<String>) -> Self {
        Error::Config { reason: reason.into() }
    }

    /// Shorthand for [`Error::Crypto`].
    pub(crate) fn crypto(reason: impl Into<String>) -> Self {
        Error::Crypto { reason: reason.into() }
    }

    /// True for the "not mine" outcome of a keyring's decrypt.
    pub fn is_not_mine(&self) -> bool {
        matches!(self, Error::NotMine { .. })
    }

    /// What kind of failure this is: the one classification of every error
    /// of the crate (the command's exit code is taken from it).
    ///
    /// [`Error::NoKeyringDecrypted`] takes the most severe kind among its
    /// failures (see [`ErrorKind`]): a token that failed in any keyring wins
    /// over "not this key", so a dead token is never reported as a wrong key.
    /// An [`Error::Io`] that carries an error of this crate (as the streaming
    /// API returns them) has that error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Malformed { .. } | Error::TooManyEncryptedDataKeys { .. } | Error::UnsupportedSuite(_) => {
                ErrorKind::Malformed
            }
            Error::HeaderAuthentication
            | Error::FrameAuthentication { .. }
            | Error::CommitmentMismatch
            | Error::Signature { .. }
            | Error::EncryptionContextMismatch { .. } => ErrorKind::NotAuthentic,
            Error::NotMine { .. } | Error::Keyring { .. } => ErrorKind::NotThisKey,
            Error::NoKeyringDecrypted { failures, .. } => {
                failures.iter().map(KeyringFailure::kind).max_by_key(|k| k.severity()).unwrap_or(ErrorKind::Usage)
            }
            Error::Pkcs11(e) => match e.class {
                Pkcs11Class::UnwrapRefused => ErrorKind::NotThisKey,
                Pkcs11Class::WrongPin | Pkcs11Class::Configuration | Pkcs11Class::Fault => ErrorKind::Token,
            },
            Error::InvalidEncryptionContext { .. }
            | Error::PolicyViolation { .. }
            | Error::InvalidUri { .. }
            | Error::InvalidKey { .. }
            | Error::Config { .. } => ErrorKind::Usage,
            Error::Crypto { .. } => ErrorKind::Internal,
            Error::Io(e) => match e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) {
                Some(inner) => inner.kind(),
                None => ErrorKind::Usage,
            },
        }
    }

    /// True when the message cannot be opened as given: it is malformed, not
    /// authentic (tampered, wrong encryption context, bad signature), or no
    /// keyring holds a key that opens it. Exactly the kinds
    /// [`ErrorKind::Malformed`], [`ErrorKind::NotAuthentic`] and
    /// [`ErrorKind::NotThisKey`] of [`Error::kind`]; a token, usage or
    /// internal failure is not an authentication failure.
    pub fn is_authentication_failure(&self) -> bool {
        matches!(self.kind(), ErrorKind::Malformed | ErrorKind::NotAuthentic | ErrorKind::NotThisKey)
    }
}

impl From<Pkcs11Error> for Error {
    fn from(e: Pkcs11Error) -> Self {
        Error::Pkcs11(Box::new(e))
    }
}

/// The kind of an [`Error`], from [`Error::kind`].
///
/// From least to most severe: `NotThisKey`, `NotAuthentic`, `Malformed`,
/// `Usage`, `Internal`, `Token`.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The input does not follow the message format, or exceeds a limit
    /// (hostile lengths and counts, unknown suite).
    Malformed,
    /// The message is not authentic: a header or frame tag, the key
    /// commitment or the signature does not verify, or the encryption
    /// context differs from the one required.
    NotAuthentic,
    /// No keyring could open any encrypted data key: none was for its key,
    /// or one was but did not open (altered, or wrapped under another key or
    /// encryption context).
    NotThisKey,
    /// The token or its module failed or refused: lost session, device
    /// error, wrong or locked PIN, key usage forbidden by its attributes,
    /// no such token or key.
    Token,
    /// Configuration, arguments, key files or a policy forbid the operation.
    Usage,
    /// A cryptographic primitive failed unexpectedly.
    Internal,
}

impl ErrorKind {
    /// Rank used to pick the kind of a failure list: the most severe wins.
    fn severity(self) -> u8 {
        match self {
            ErrorKind::NotThisKey => 0,
            ErrorKind::NotAuthentic => 1,
            ErrorKind::Malformed => 2,
            ErrorKind::Usage => 3,
            ErrorKind::Internal => 4,
            ErrorKind::Token => 5,
        }
    }
}

/// Why one keyring (or one of its keys) failed to decrypt, kept in
/// [`Error::NoKeyringDecrypted`] with the keyring's own error.
#[derive(Debug, Clone)]
pub struct KeyringFailure {
    /// Description of the keyring that tried.
    pub keyring: String,
    error: Arc<Error>,
}

impl KeyringFailure {
    /// Record the failure of `keyring` with error `err`.
    pub fn from_error(keyring: impl Into<String>, err: Error) -> Self {
        KeyringFailure { keyring: keyring.into(), error: Arc::new(err) }
    }

    /// The keyring's error.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The kind of the keyring's error.
    pub fn kind(&self) -> ErrorKind {
        self.error.kind()
    }

    /// True if the keyring reported that no EDK was its own.
    pub fn is_not_mine(&self) -> bool {
        self.error.is_not_mine()
    }
}

impl fmt::Display for KeyringFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

/// Most EDK key names kept in [`Error::NoKeyringDecrypted`].
pub const MAX_OFFERED_SHOWN: usize = 5;

impl Error {
    /// [`Error::NoKeyringDecrypted`] for `failures`, naming the keys the
    /// offered EDKs are for.
    pub(crate) fn no_keyring_decrypted(failures: Vec<KeyringFailure>, edks: &[EncryptedDataKey]) -> Self {
        let offered = edks.iter().take(MAX_OFFERED_SHOWN).map(key_label).collect();
        Error::NoKeyringDecrypted { failures, offered, offered_count: edks.len() }
    }
}

/// Longest provider id or key name shown, in characters.
const MAX_LABEL_CHARS: usize = 64;

/// `provider-id/key-name` of an EDK, for people: the key name is the
/// provider info without the raw AES keyring's IV suffix when it has that
/// layout; anything not printable is shown in hex; long parts are cut.
fn key_label(edk: &EncryptedDataKey) -> String {
    const AES_SUFFIX: [u8; 8] = [0, 0, 0, 128, 0, 0, 0, 12];
    let info = edk.provider_info.as_slice();
    let name = match info.len().checked_sub(20) {
        Some(n) if info.get(n..n + 8) == Some(&AES_SUFFIX[..]) => info.get(..n).unwrap_or(info),
        _ => info,
    };
    let name = match std::str::from_utf8(name) {
        Ok(text) => printable(text),
        Err(_) => printable(&name.iter().map(|b| format!("{b:02x}")).collect::<String>()),
    };
    format!("{}/{name}", printable(&edk.provider_id))
}

fn printable(text: &str) -> String {
    let mut out: String = text.chars().take(MAX_LABEL_CHARS).map(|c| if c.is_control() { '?' } else { c }).collect();
    if text.chars().nth(MAX_LABEL_CHARS).is_some() {
        out.push_str("...");
    }
    out
}

struct OfferedKeys<'a>(&'a [String], usize);

impl fmt::Display for OfferedKeys<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (shown, count) = (self.0, self.1);
        if shown.is_empty() {
            return Ok(());
        }
        write!(f, " (the message's {count} encrypted data key(s) are for: {}", shown.join(", "))?;
        if count > shown.len() {
            write!(f, " and {} more", count - shown.len())?;
        }
        f.write_str(")")
    }
}

struct KeyringFailures<'a>(&'a [KeyringFailure]);

impl fmt::Display for KeyringFailures<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no keyring was configured");
        }
        for (i, failure) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "[{}] {}", i + 1, failure)?;
        }
        Ok(())
    }
}
