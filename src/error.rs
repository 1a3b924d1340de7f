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
    /// A DynamoDB item (or one of its attributes) is not well formed, or
    /// does not fit its table configuration.
    #[error("malformed item: {reason}")]
    MalformedItem {
        /// What is wrong, naming the attribute where there is one.
        reason: String,
    },
    /// A DynamoDB item failed authentication: an attribute, the header or the
    /// footer was altered, added, removed or moved, or the table
    /// configuration differs from the writer's.
    #[error("item authentication failed: {reason}")]
    ItemAuthentication {
        /// What did not verify.
        reason: String,
    },
    /// S3 object metadata (or its instruction file) is missing a field, has
    /// an unknown value, or mixes formats: which field, and why.
    #[error("malformed S3 object metadata: `{field}`: {reason}")]
    S3Metadata {
        /// The metadata key (`x-amz-3`, `x-amz-iv`, ...) or `instruction file`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An S3 object failed authentication: its GCM tag or its key
    /// commitment (`x-amz-d`) did not verify.
    #[error("S3 object authentication failed: {reason}")]
    S3Authentication {
        /// What did not verify, naming the fields that could have been altered.
        reason: String,
    },
    /// A DynamoDB request failed at the service or on the way to it
    /// (feature `dynamodb-client`).
    #[error("DynamoDB {operation} failed: {reason}")]
    DynamoDb {
        /// The operation (`PutItem`, `Query`, ...).
        operation: &'static str,
        /// The service's error code, when it answered
        /// (`ConditionalCheckFailedException`, ...).
        code: Option<String>,
        /// The SDK's description.
        reason: String,
    },
    /// An object store (S3, GCS, Azure, local files, ...) refused or failed
    /// an operation on an object.
    #[error("object store: {operation} `{key}`: {reason}")]
    Store {
        /// The operation (`put`, `get`, `upload part 3`, ...).
        operation: String,
        /// The object key.
        key: String,
        /// What the store said.
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
            Error::Malformed { .. }
            | Error::MalformedItem { .. }
            | Error::TooManyEncryptedDataKeys { .. }
            | Error::UnsupportedSuite(_)
            | Error::S3Metadata { .. } => ErrorKind::Malformed,
            Error::HeaderAuthentication
            | Error::ItemAuthentication { .. }
            | Error::FrameAuthentication { .. }
            | Error::CommitmentMismatch
            | Error::Signature { .. }
            | Error::EncryptionContextMismatch { .. }
            | Error::S3Authentication { .. } => ErrorKind::NotAuthentic,
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
            | Error::Store { .. }
            | Error::Config { .. } => ErrorKind::Usage,
            Error::Crypto { .. } | Error::DynamoDb { .. } => ErrorKind::Internal,
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

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki::context::Function;
    use cryptoki::error::RvError;

    fn pkcs11(rv: RvError, class: Pkcs11Class) -> Error {
        Error::from(Pkcs11Error::new(
            Some("t".into()),
            None,
            Pkcs11Operation::Call(Function::Decrypt),
            Some(rv),
            class,
            String::new(),
        ))
    }

    fn failure(err: Error) -> KeyringFailure {
        KeyringFailure::from_error("k", err)
    }

    fn edk(provider_id: &str, provider_info: &[u8]) -> EncryptedDataKey {
        EncryptedDataKey { provider_id: provider_id.into(), provider_info: provider_info.to_vec(), ciphertext: vec![] }
    }

    #[test]
    fn every_variant_has_its_kind() {
        let cases = [
            (Error::malformed("f", 3, "bad"), ErrorKind::Malformed),
            (Error::TooManyEncryptedDataKeys { count: 3, max: 2 }, ErrorKind::Malformed),
            (Error::UnsupportedSuite(0x1234), ErrorKind::Malformed),
            (Error::HeaderAuthentication, ErrorKind::NotAuthentic),
            (Error::FrameAuthentication { sequence: 2 }, ErrorKind::NotAuthentic),
            (Error::CommitmentMismatch, ErrorKind::NotAuthentic),
            (Error::Signature { reason: "x".into() }, ErrorKind::NotAuthentic),
            (Error::EncryptionContextMismatch { reason: "x".into() }, ErrorKind::NotAuthentic),
            (Error::NotMine { keyring: "k".into(), edk_count: 1 }, ErrorKind::NotThisKey),
            (Error::keyring("k", "authentication failed"), ErrorKind::NotThisKey),
            (pkcs11(RvError::GeneralError, Pkcs11Class::UnwrapRefused), ErrorKind::NotThisKey),
            (pkcs11(RvError::GeneralError, Pkcs11Class::Fault), ErrorKind::Token),
            (pkcs11(RvError::KeyFunctionNotPermitted, Pkcs11Class::Configuration), ErrorKind::Token),
            (pkcs11(RvError::PinIncorrect, Pkcs11Class::WrongPin), ErrorKind::Token),
            (Error::InvalidEncryptionContext { reason: "x".into() }, ErrorKind::Usage),
            (Error::PolicyViolation { reason: "x".into() }, ErrorKind::Usage),
            (Error::InvalidUri { uri: "u".into(), reason: "x".into() }, ErrorKind::Usage),
            (Error::InvalidKey { reason: "x".into() }, ErrorKind::Usage),
            (Error::config("x"), ErrorKind::Usage),
            (Error::crypto("x"), ErrorKind::Internal),
            (Error::Io(std::io::Error::other("disk")), ErrorKind::Usage),
            (Error::Io(std::io::Error::other(Error::HeaderAuthentication)), ErrorKind::NotAuthentic),
            (Error::Io(std::io::Error::other(Error::crypto("x"))), ErrorKind::Internal),
        ];
        for (err, kind) in cases {
            assert_eq!(err.kind(), kind, "{err:?}");
            let exit_1 = matches!(kind, ErrorKind::Malformed | ErrorKind::NotAuthentic | ErrorKind::NotThisKey);
            assert_eq!(err.is_authentication_failure(), exit_1, "{err:?}");
        }
    }

    #[test]
    fn the_most_severe_failure_decides_a_failed_multi_keyring() {
        let not_mine = || failure(Error::NotMine { keyring: "k".into(), edk_count: 1 });
        let refused = || failure(pkcs11(RvError::GeneralError, Pkcs11Class::UnwrapRefused));
        let dead = || failure(pkcs11(RvError::DeviceError, Pkcs11Class::Fault));
        let all =
            |failures: Vec<KeyringFailure>| Error::NoKeyringDecrypted { failures, offered: vec![], offered_count: 1 };
        assert_eq!(all(vec![not_mine(), refused()]).kind(), ErrorKind::NotThisKey);
        assert_eq!(all(vec![not_mine(), dead(), refused()]).kind(), ErrorKind::Token);
        assert_eq!(all(vec![dead(), not_mine()]).kind(), ErrorKind::Token);
        assert_eq!(all(vec![not_mine(), failure(Error::crypto("x"))]).kind(), ErrorKind::Internal);
        assert!(!all(vec![not_mine(), dead()]).is_authentication_failure());
        // Nested: a multi-keyring inside a multi-keyring.
        assert_eq!(all(vec![not_mine(), failure(all(vec![dead()]))]).kind(), ErrorKind::Token);
        // Nothing configured is a usage error.
        assert_eq!(all(vec![]).kind(), ErrorKind::Usage);
        // The member's error is kept, typed.
        let err = all(vec![dead()]);
        let Error::NoKeyringDecrypted { failures, .. } = &err else { unreachable!() };
        assert!(matches!(failures[0].error(), Error::Pkcs11(e) if e.rv == Some(RvError::DeviceError)));
        assert!(err.to_string().contains("CKR_DEVICE_ERROR"), "{err}");
    }

    #[test]
    fn a_failed_decrypt_names_the_keys_of_the_offered_edks() {
        let mut aes_info = b"aes-key".to_vec();
        aes_info.extend([0, 0, 0, 128, 0, 0, 0, 12]);
        aes_info.extend([0xAB; 12]);
        let edks = [
            edk("ns", &aes_info),
            edk("ns", b"rsa-key"),
            edk("bin", &[0xFF, 0x00]),
            edk("ctl\n", b"x\ty"),
            edk("long", "n".repeat(100).as_bytes()),
            edk("sixth", b"six"),
            edk("seventh", b"seven"),
        ];
        let err = Error::no_keyring_decrypted(vec![], &edks);
        let text = err.to_string();
        assert!(text.contains("ns/aes-key, ns/rsa-key, bin/ff00, ctl?/x?y"), "{text}");
        assert!(text.contains(&format!("long/{}...", "n".repeat(MAX_LABEL_CHARS))), "{text}");
        assert!(!text.contains("sixth") && text.contains("7 encrypted data key(s)") && text.contains("and 2 more"));
        let one = Error::no_keyring_decrypted(vec![], &edks[1..2]).to_string();
        assert!(one.ends_with("(the message's 1 encrypted data key(s) are for: ns/rsa-key)"), "{one}");
        // Hostile sizes are cut: 65535-byte names do not reach the message whole.
        let huge = Error::no_keyring_decrypted(vec![], &[edk(&"p".repeat(65_535), &[b'q'; 65_535])]).to_string();
        assert!(huge.len() < 400, "{}", huge.len());
    }
}
