//! The S3 client-side encryption layout of an AES-GCM wrapped data key
//! (wrapping algorithm `AES/GCM`, the reference clients' raw AES keyring).
//!
//! EDK = IV (12) || encrypted data key || tag (16). The AAD is the content
//! suite's binding string: `"115"` for the committing suite (V3 objects),
//! `"AES/GCM/NoPadding"` for V2 objects. The material description is not
//! authenticated by the layout (the reference keyrings do not bind it).

use crate::crypto::{IV_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::master_keys::AesKey;
use crate::materials::DataKey;

/// The `AES/GCM` S3 layout over one AES key.
#[derive(Debug, Clone)]
pub(crate) struct S3AesGcm<K> {
    pub(crate) key: K,
}

impl<K: AesKey> S3AesGcm<K> {
    /// Wrap `data_key`; `binding` is the AAD (the content suite's string).
    pub(crate) fn wrap(&self, data_key: &DataKey, binding: &[u8]) -> Result<Vec<u8>> {
        let sealed = self.key.seal(binding, data_key.as_bytes())?;
        let mut edk = Vec::with_capacity(IV_LEN + sealed.ciphertext.len() + TAG_LEN);
        edk.extend_from_slice(&sealed.iv);
        edk.extend_from_slice(&sealed.ciphertext);
        edk.extend_from_slice(&sealed.tag);
        Ok(edk)
    }

    /// Unwrap an EDK of this layout. The length is checked before the key
    /// is asked (a malformed EDK costs no token call).
    pub(crate) fn unwrap(&self, edk: &[u8], binding: &[u8], key_len: usize) -> Result<DataKey> {
        if edk.len() != IV_LEN + key_len + TAG_LEN {
            return Err(Error::keyring(
                "S3 AES/GCM",
                format!(
                    "encrypted data key of {} bytes, expected {} (12-byte IV, {key_len}-byte key, 16-byte tag)",
                    edk.len(),
                    IV_LEN + key_len + TAG_LEN
                ),
            ));
        }
        let (iv, rest) = edk.split_at(IV_LEN);
        let (ciphertext, tag) = rest.split_at(key_len);
        let iv: [u8; IV_LEN] = iv.try_into().map_err(|_| Error::crypto("IV split"))?;
        let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| Error::crypto("tag split"))?;
        self.key.open(&iv, binding, ciphertext, &tag)
    }
}

#[cfg(test)]
mod tests {
    //! The layout's bytes against AES-GCM computed with the `aes-gcm` crate directly.
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use aes_gcm::{Aes256Gcm, Nonce};

    use super::*;
    use crate::master_keys::MemoryAesKey;

    #[test]
    fn edk_is_iv_ciphertext_tag_with_the_binding_as_aad() {
        let wrapping = [9u8; 32];
        let layout = S3AesGcm { key: MemoryAesKey::new(&wrapping).unwrap() };
        let data_key = DataKey::new((0u8..32).collect());
        let edk = layout.wrap(&data_key, b"115").unwrap();
        assert_eq!(edk.len(), 12 + 32 + 16);
        let cipher = Aes256Gcm::new_from_slice(&wrapping).unwrap();
        let opened = cipher.decrypt(Nonce::from_slice(&edk[..12]), Payload { msg: &edk[12..], aad: b"115" }).unwrap();
        assert_eq!(opened, data_key.as_bytes());
        assert_eq!(layout.unwrap(&edk, b"115", 32).unwrap(), data_key);
        // The V2 binding does not open a V3 EDK, and a short EDK is refused.
        assert!(layout.unwrap(&edk, b"AES/GCM/NoPadding", 32).is_err());
        assert!(layout.unwrap(&edk[1..], b"115", 32).is_err());
    }
}
