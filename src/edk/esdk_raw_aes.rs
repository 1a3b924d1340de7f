//! The raw AES keyring layout of the AWS Encryption SDK.
//!
//! Provider id = key namespace; provider info = key name || tag length in
//! bits (u32 BE, 128) || IV length (u32 BE, 12) || IV; ciphertext =
//! encrypted data key || tag. The AAD is the serialized full encryption
//! context of the materials, so an EDK only opens under the context it was
//! written with.

use super::raw_aes_wire::{join_ciphertext, parse_provider_info, serialize_provider_info, split_ciphertext};
use super::{EdkContext, EdkLayout, EdkName};
use crate::crypto::TAG_LEN;
use crate::error::{Error, Result};
use crate::master_keys::AesKey;
use crate::materials::{DataKey, EncryptedDataKey};

/// The raw AES layout for one AES key known as `name`.
#[derive(Debug, Clone)]
pub(crate) struct EsdkRawAes<K> {
    pub(crate) name: EdkName,
    pub(crate) key: K,
}

impl<K: AesKey> EdkLayout for EsdkRawAes<K> {
    fn wrap(&self, data_key: &DataKey, context: &EdkContext<'_>) -> Result<EncryptedDataKey> {
        let sealed = self.key.seal(context.serialized()?, data_key.as_bytes())?;
        Ok(EncryptedDataKey {
            provider_id: self.name.namespace.clone(),
            provider_info: serialize_provider_info(&self.name.key_name, &sealed.iv),
            ciphertext: join_ciphertext(&sealed.ciphertext, &sealed.tag),
        })
    }

    fn unwrap(&self, edk: &EncryptedDataKey, context: &EdkContext<'_>, key_len: usize) -> Option<Result<DataKey>> {
        if edk.provider_id != self.name.namespace {
            return None;
        }
        let iv = parse_provider_info(&self.name.key_name, &edk.provider_info)?;
        Some(self.open(edk, &iv, context, key_len))
    }
}

impl<K: AesKey> EsdkRawAes<K> {
    fn open(&self, edk: &EncryptedDataKey, iv: &[u8; 12], context: &EdkContext<'_>, key_len: usize) -> Result<DataKey> {
        // Checked before the key is asked, so a malformed EDK costs no token call.
        let expected = key_len + TAG_LEN;
        if edk.ciphertext.len() != expected {
            return Err(Error::keyring(
                "AES-GCM",
                format!(
                    "ciphertext of {} bytes, expected {expected} (a {key_len}-byte data key and a {TAG_LEN}-byte tag)",
                    edk.ciphertext.len()
                ),
            ));
        }
        let (encrypted_key, tag) = split_ciphertext(&edk.ciphertext)
            .ok_or_else(|| Error::keyring("AES-GCM", "ciphertext shorter than the tag"))?;
        self.key.open(iv, context.serialized()?, encrypted_key, &tag)
    }
}
