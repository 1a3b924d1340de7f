//! EDK layouts: how each format lays out an encrypted data key, written
//! once against the master-key traits of [`crate::master_keys`].
//!
//! A layout is a pair of pure functions: `wrap` (data key + encryption
//! context -> EDK) and `unwrap` (EDK + context -> data key, or `None` when
//! the EDK is not for this key). Where the key lives does not matter here:
//! a token key and a memory key with the same key material give the same
//! bytes. The keyring adapter ([`crate::keyrings`]) applies the shared rules
//! around a layout (generating the data key, "not mine" versus "mine but
//! failed", collecting every failure).
//!
//! Layouts of the AWS Encryption SDK message format:
//! * [`EsdkRawAes`]: the raw AES keyring layout (AES-GCM, AAD = the full
//!   serialized encryption context, IV in the provider info).
//! * [`EsdkRawRsa`]: the raw RSA keyring layout (provider info = key name).
//!
//! Layouts of S3 client-side encryption (one EDK per object, bound to the
//! content suite): `S3AesGcm` (`AES/GCM`) and `S3RsaOaep` (`RSA-OAEP-SHA1`).
//!
//! A new format adds its layouts here, one file each.
//!
//! [`intermediate`] wraps any of these through a fresh intermediate key, for
//! the suites that ask for it (the DynamoDB item suites).

mod esdk_raw_aes;
mod esdk_raw_rsa;
pub(crate) mod intermediate;
mod name;
pub mod raw_aes_wire;
mod s3_aes_gcm;
pub(crate) mod s3_legacy;
mod s3_rsa_oaep;

pub(crate) use esdk_raw_aes::EsdkRawAes;
pub(crate) use esdk_raw_rsa::EsdkRawRsa;
pub(crate) use name::EdkName;
pub use name::AWS_KMS_PROVIDER_ID;
pub(crate) use s3_aes_gcm::S3AesGcm;
pub(crate) use s3_rsa_oaep::S3RsaOaep;

use std::fmt;

use once_cell::unsync::OnceCell;

use crate::error::Result;
use crate::materials::{DataKey, EncryptedDataKey, EncryptionContext};

/// The encryption context an EDK is bound to, with its serialization
/// computed at most once per decryption (only if some EDK needs it).
pub(crate) struct EdkContext<'a> {
    context: &'a EncryptionContext,
    serialized: OnceCell<Vec<u8>>,
}

impl<'a> EdkContext<'a> {
    pub(crate) fn new(context: &'a EncryptionContext) -> Self {
        EdkContext { context, serialized: OnceCell::new() }
    }

    /// The serialized full context (the AAD of AES-GCM wrapping).
    pub(crate) fn serialized(&self) -> Result<&[u8]> {
        self.serialized.get_or_try_init(|| self.context.serialize()).map(Vec::as_slice)
    }
}

/// One EDK layout of one key: wrap and unwrap.
pub(crate) trait EdkLayout: Send + Sync + fmt::Debug {
    /// Wrap `data_key` for the materials' `context`.
    fn wrap(&self, data_key: &DataKey, context: &EdkContext<'_>) -> Result<EncryptedDataKey>;

    /// `None` when `edk` is not for this key (another provider id, key name
    /// or layout); otherwise the data key, or why this EDK did not open.
    fn unwrap(&self, edk: &EncryptedDataKey, context: &EdkContext<'_>, key_len: usize) -> Option<Result<DataKey>>;
}
