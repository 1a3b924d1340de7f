//! The raw RSA keyring layout of the AWS Encryption SDK.
//!
//! Provider id = key namespace; provider info = key name; ciphertext = the
//! RSA output. RSA binds nothing to the encryption context; the message
//! header authentication does that.

use super::{EdkContext, EdkLayout, EdkName};
use crate::crypto::RsaPadding;
use crate::error::Result;
use crate::master_keys::RsaKey;
use crate::materials::{DataKey, EncryptedDataKey};

/// The raw RSA layout for one RSA key known as `name`.
#[derive(Debug, Clone)]
pub(crate) struct EsdkRawRsa<K> {
    pub(crate) name: EdkName,
    pub(crate) padding: RsaPadding,
    pub(crate) key: K,
}

impl<K: RsaKey> EdkLayout for EsdkRawRsa<K> {
    fn wrap(&self, data_key: &DataKey, _context: &EdkContext<'_>) -> Result<EncryptedDataKey> {
        Ok(EncryptedDataKey {
            provider_id: self.name.namespace.clone(),
            provider_info: self.name.key_name.as_bytes().to_vec(),
            ciphertext: self.key.encrypt(self.padding, data_key.as_bytes())?,
        })
    }

    fn unwrap(&self, edk: &EncryptedDataKey, _context: &EdkContext<'_>, _key_len: usize) -> Option<Result<DataKey>> {
        if edk.provider_id != self.name.namespace || edk.provider_info != self.name.key_name.as_bytes() {
            return None;
        }
        Some(self.key.decrypt(self.padding, &edk.ciphertext))
    }
}
