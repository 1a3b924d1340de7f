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

#[cfg(test)]
mod tests {
    //! The layout's bytes, checked against AES-GCM computed independently
    //! (the `aes-gcm` crate directly) and the provider-info fields laid out
    //! by hand.
    use aes_gcm::aead::{AeadInPlace, KeyInit};
    use aes_gcm::{Aes256Gcm, Nonce};

    use super::*;
    use crate::crypto::{AeadKey, IV_LEN};
    use crate::master_keys::Sealed;
    use crate::materials::EncryptionContext;

    /// A memory AES key that always uses the same IV, so the bytes are fixed.
    #[derive(Debug)]
    struct FixedIv(AeadKey, [u8; IV_LEN]);

    impl AesKey for FixedIv {
        fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Sealed> {
            let mut ciphertext = plaintext.to_vec();
            let tag = self.0.seal_in_place(&self.1, aad, &mut ciphertext)?;
            Ok(Sealed { iv: self.1, ciphertext, tag })
        }
        fn open(&self, iv: &[u8; IV_LEN], aad: &[u8], ciphertext: &[u8], tag: &[u8; TAG_LEN]) -> Result<DataKey> {
            let mut buf = ciphertext.to_vec();
            self.0.open_in_place(iv, aad, &mut buf, tag).map_err(|()| crate::master_keys::aes_open_failed())?;
            Ok(DataKey::new(buf))
        }
        fn bits(&self) -> Option<usize> {
            Some(256)
        }
    }

    #[test]
    fn edk_bytes_are_the_raw_aes_layout() {
        let key = [0x42u8; 32];
        let iv = [7u8; IV_LEN];
        let layout = EsdkRawAes {
            name: EdkName::new(
                "my-namespace".into(),
                "my-key".into(),
                super::super::raw_aes_wire::PROVIDER_INFO_SUFFIX_LEN,
            )
            .unwrap(),
            key: FixedIv(AeadKey::new(&key).unwrap(), iv),
        };
        let context = EncryptionContext::from_pairs([("purpose", "test"), ("b", "2")]).unwrap();
        let data_key = DataKey::new((0u8..32).collect());
        let edk = layout.wrap(&data_key, &EdkContext::new(&context)).unwrap();

        // Expected, computed without the crate's code: AES-256-GCM over the
        // data key, AAD = the context serialized as the format defines it.
        let aad = context.serialize().unwrap();
        let mut expected_ct = data_key.as_bytes().to_vec();
        let tag = Aes256Gcm::new_from_slice(&key)
            .unwrap()
            .encrypt_in_place_detached(Nonce::from_slice(&iv), &aad, &mut expected_ct)
            .unwrap();
        expected_ct.extend_from_slice(&tag);
        let mut expected_info = b"my-key".to_vec();
        expected_info.extend_from_slice(&[0, 0, 0, 128, 0, 0, 0, 12]);
        expected_info.extend_from_slice(&iv);

        assert_eq!(edk.provider_id, "my-namespace");
        assert_eq!(edk.provider_info, expected_info);
        assert_eq!(edk.ciphertext, expected_ct);

        // And it opens, under the same context only.
        let opened = layout.unwrap(&edk, &EdkContext::new(&context), 32).unwrap().unwrap();
        assert_eq!(opened, data_key);
        let other = EncryptionContext::from_pairs([("purpose", "other")]).unwrap();
        assert!(layout.unwrap(&edk, &EdkContext::new(&other), 32).unwrap().is_err());
        // Another key name or namespace: not this layout's EDK.
        let foreign = EncryptedDataKey { provider_id: "x".into(), ..edk.clone() };
        assert!(layout.unwrap(&foreign, &EdkContext::new(&context), 32).is_none());
        // A wrong-length ciphertext is refused before the key is asked.
        let short = EncryptedDataKey { ciphertext: edk.ciphertext[1..].to_vec(), ..edk };
        assert!(layout.unwrap(&short, &EdkContext::new(&context), 32).unwrap().is_err());
    }
}
