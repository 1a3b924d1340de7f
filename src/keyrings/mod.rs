//! Software keyrings: wrapping keys held in process memory.
//!
//! * [`RawAesKeyring`]: AES-GCM key wrap with a 128-, 192- or 256-bit key.
//! * [`RawRsaKeyring`]: RSA encryption (PKCS#1 v1.5 or OAEP) of the data key.
//! * [`MultiKeyring`]: a generator plus children, so that one message can be
//!   opened by any of several keys.
//!
//! The EDKs they write follow the raw keyring layouts of the AWS Encryption
//! SDK, so other implementations holding the same keys can open them and the
//! reverse. [`raw_aes_edk`] exposes the raw AES layout for keyrings whose AES
//! key lives elsewhere (in a PKCS#11 token, for instance).

pub mod multi;
pub mod raw_aes;
pub mod raw_aes_edk;
pub mod raw_rsa;

pub use multi::MultiKeyring;
pub use raw_aes::RawAesKeyring;
pub use raw_rsa::RawRsaKeyring;

use crate::error::{Error, Result};

/// Provider id reserved for AWS KMS keyrings; raw keyrings refuse it as namespace.
pub const AWS_KMS_PROVIDER_ID: &str = "aws-kms";

/// Largest value a u16-length-prefixed header field can hold.
const MAX_FIELD_LEN: usize = u16::MAX as usize;

/// Check a raw keyring's namespace and name: the namespace `aws-kms` is
/// reserved, and both must fit their header fields (`extra` bytes follow the
/// name in the provider info).
pub(crate) fn check_namespace_and_name(namespace: &str, name: &str, extra: usize) -> Result<()> {
    if namespace == AWS_KMS_PROVIDER_ID {
        return Err(Error::config(format!(
            "the key namespace `{AWS_KMS_PROVIDER_ID}` is reserved for AWS KMS keyrings"
        )));
    }
    if namespace.len() > MAX_FIELD_LEN {
        return Err(Error::config(format!(
            "a key namespace of {} bytes does not fit the 65535-byte provider id field",
            namespace.len()
        )));
    }
    if name.len().checked_add(extra).is_none_or(|n| n > MAX_FIELD_LEN) {
        return Err(Error::config(format!(
            "a key name of {} bytes does not fit the 65535-byte provider info field",
            name.len()
        )));
    }
    Ok(())
}

/// The error of a keyring whose own EDKs all failed to open: one reason per
/// EDK, in order ("mine but failed", as opposed to [`Error::NotMine`]).
pub(crate) fn own_edks_failed(keyring: String, failures: &[String]) -> Error {
    Error::keyring(
        keyring,
        format!("could not open any of its {} encrypted data keys: {}", failures.len(), failures.join("; ")),
    )
}
