//! The one error type of the crate.

use std::fmt;

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
    #[error("no keyring could decrypt the data key: {}", KeyringFailures(.failures))]
    NoKeyringDecrypted {
        /// One entry per keyring (or per EDK) tried, with its reason.
        failures: Vec<KeyringFailure>,
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

    /// True when the failure means the message is not authentic (tampered,
    /// wrong key, wrong context, bad signature) rather than a usage problem.
    pub fn is_authentication_failure(&self) -> bool {
        matches!(
            self,
            Error::HeaderAuthentication
                | Error::FrameAuthentication { .. }
                | Error::CommitmentMismatch
                | Error::Signature { .. }
                | Error::EncryptionContextMismatch { .. }
                | Error::Malformed { .. }
                | Error::NoKeyringDecrypted { .. }
                | Error::NotMine { .. }
        )
    }
}

impl From<Pkcs11Error> for Error {
    fn from(e: Pkcs11Error) -> Self {
        Error::Pkcs11(Box::new(e))
    }
}

/// Why one keyring (or one of its keys) failed to decrypt, kept in
/// [`Error::NoKeyringDecrypted`].
#[derive(Debug, Clone)]
pub struct KeyringFailure {
    /// Description of the keyring that tried.
    pub keyring: String,
    /// Its reason, as text.
    pub reason: String,
    /// True if the keyring reported that no EDK was its own.
    pub not_mine: bool,
}

impl KeyringFailure {
    /// Record the failure of `keyring` with error `err`.
    pub fn from_error(keyring: impl Into<String>, err: &Error) -> Self {
        KeyringFailure { keyring: keyring.into(), reason: err.to_string(), not_mine: err.is_not_mine() }
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
            write!(f, "[{}] {}", i + 1, failure.reason)?;
        }
        Ok(())
    }
}

/// A failed PKCS#11 operation: which token, which key, which function, which CK_RV.
#[derive(Debug, Clone)]
pub struct Pkcs11Error {
    /// Token label (or slot description) the call was made on, if known.
    pub token: Option<String>,
    /// The key's PKCS#11 URI, if the call concerned a key.
    pub key: Option<String>,
    /// The PKCS#11 function, e.g. `C_Encrypt`, or a step such as `find key`.
    pub function: String,
    /// The CK_RV name, e.g. `CKR_PIN_INCORRECT`, when the module returned one.
    pub rv: Option<String>,
    /// Extra explanation and advice.
    pub detail: String,
}

impl fmt::Display for Pkcs11Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PKCS#11 {}", self.function)?;
        if let Some(rv) = &self.rv {
            write!(f, " returned {rv}")?;
        } else {
            f.write_str(" failed")?;
        }
        if let Some(token) = &self.token {
            write!(f, " on token `{token}`")?;
        }
        if let Some(key) = &self.key {
            write!(f, " for key {key}")?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for Pkcs11Error {}
