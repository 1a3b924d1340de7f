//! The S3 client-side encryption layout of an RSA-OAEP wrapped data key
//! (wrapping algorithm `RSA-OAEP-SHA1`, the reference clients' raw RSA
//! keyring).
//!
//! EDK = RSA-OAEP (SHA-1, MGF1-SHA1, empty label) of the "pseudo data key":
//! key length (1 byte) || data key || binding, where the binding is the
//! content suite's string (`"115"` for V3 objects, `"AES/GCM/NoPadding"` for
//! V2). On unwrap the binding must match, in constant time.

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::crypto::RsaPadding;
use crate::error::{Error, Result};
use crate::master_keys::RsaKey;
use crate::materials::DataKey;

/// The `RSA-OAEP-SHA1` S3 layout over one RSA key.
#[derive(Debug, Clone)]
pub(crate) struct S3RsaOaep<K> {
    pub(crate) key: K,
}

impl<K: RsaKey> S3RsaOaep<K> {
    /// Wrap `data_key` bound to `binding`.
    pub(crate) fn wrap(&self, data_key: &DataKey, binding: &[u8]) -> Result<Vec<u8>> {
        let len = u8::try_from(data_key.len()).map_err(|_| Error::crypto("data key longer than 255 bytes"))?;
        let mut pseudo = Zeroizing::new(Vec::with_capacity(1 + data_key.len() + binding.len()));
        pseudo.push(len);
        pseudo.extend_from_slice(data_key.as_bytes());
        pseudo.extend_from_slice(binding);
        self.key.encrypt(RsaPadding::OaepSha1, &pseudo)
    }

    /// Unwrap and check the pseudo data key: a length of 16, 24 or 32 and
    /// the expected binding after the key.
    pub(crate) fn unwrap(&self, edk: &[u8], binding: &[u8]) -> Result<DataKey> {
        let pseudo = self.key.decrypt(RsaPadding::OaepSha1, edk)?;
        let bytes = pseudo.as_bytes();
        let key_len = usize::from(*bytes.first().unwrap_or(&0));
        if !matches!(key_len, 16 | 24 | 32) || bytes.len() != 1 + key_len + binding.len() {
            return Err(Error::keyring(
                "S3 RSA-OAEP-SHA1",
                format!("the unwrapped data key has an invalid length field ({key_len}) or size ({})", bytes.len()),
            ));
        }
        if !bool::from(bytes[1 + key_len..].ct_eq(binding)) {
            return Err(Error::keyring(
                "S3 RSA-OAEP-SHA1",
                "the data key is bound to another content cipher than this object's (altered or another format)",
            ));
        }
        Ok(DataKey::new(bytes[1..1 + key_len].to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::master_keys::MemoryRsaKey;

    #[test]
    fn pseudo_data_key_layout_and_binding() {
        let private = crate::crypto::RsaPrivateKey::from_pem(TEST_KEY).unwrap();
        let key = MemoryRsaKey::new(private.public_key(), Some(private.clone())).unwrap();
        let layout = S3RsaOaep { key };
        let data_key = DataKey::new(vec![7u8; 32]);
        let edk = layout.wrap(&data_key, b"115").unwrap();
        // The plaintext under OAEP is len || key || "115".
        let pseudo = private.decrypt(RsaPadding::OaepSha1, &edk).unwrap();
        let mut expected = vec![32u8];
        expected.extend_from_slice(&[7u8; 32]);
        expected.extend_from_slice(b"115");
        assert_eq!(pseudo.as_bytes(), expected.as_slice());
        assert_eq!(layout.unwrap(&edk, b"115").unwrap(), data_key);
        assert!(layout.unwrap(&edk, b"AES/GCM/NoPadding").is_err());
    }

    const TEST_KEY: &str = include_str!("../../tests/data/s3/rsa2048.pem");
}
