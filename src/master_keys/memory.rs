//! Master keys held in process memory.

use std::fmt;

use zeroize::Zeroizing;

use super::{AesKey, RsaKey, Sealed};
use crate::crypto::{fill_random, AeadKey, RsaPadding, RsaPrivateKey, RsaPublicKey, IV_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::materials::DataKey;

/// An AES key (128, 192 or 256 bits) in memory, its key schedule expanded
/// once and wiped on drop. `Debug` prints its size only.
pub struct MemoryAesKey {
    key: AeadKey,
    bits: usize,
}

impl fmt::Debug for MemoryAesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryAesKey").field("bits", &self.bits).field("key", &"[REDACTED]").finish()
    }
}

impl MemoryAesKey {
    /// A key from 16, 24 or 32 bytes.
    pub fn new(key: &[u8]) -> Result<Self> {
        if !matches!(key.len(), 16 | 24 | 32) {
            return Err(Error::InvalidKey {
                reason: format!(
                    "an AES wrapping key must be 128, 192 or 256 bits; this one has {} bits",
                    key.len().saturating_mul(8)
                ),
            });
        }
        Ok(MemoryAesKey { key: AeadKey::new(key)?, bits: key.len() * 8 })
    }
}

/// The one reason an AES-GCM unwrap fails, whatever the cause.
pub(crate) fn aes_open_failed() -> Error {
    Error::keyring(
        "AES key",
        "AES-GCM authentication failed: wrong wrapping key, altered EDK, or a different encryption context",
    )
}

impl AesKey for MemoryAesKey {
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Sealed> {
        let mut iv = [0u8; IV_LEN];
        fill_random(&mut iv)?;
        // Sealed in place: the buffer holds the plaintext until the seal succeeds.
        let mut buf = Zeroizing::new(plaintext.to_vec());
        let tag = self.key.seal_in_place(&iv, aad, &mut buf)?;
        Ok(Sealed { iv, ciphertext: std::mem::take(&mut *buf), tag })
    }

    fn open(&self, iv: &[u8; IV_LEN], aad: &[u8], ciphertext: &[u8], tag: &[u8; TAG_LEN]) -> Result<DataKey> {
        // Decrypt in a zeroizing buffer; it becomes a key only once the tag verified.
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        self.key.open_in_place(iv, aad, &mut buf, tag).map_err(|()| aes_open_failed())?;
        Ok(DataKey::new(std::mem::take(&mut *buf)))
    }

    fn bits(&self) -> Option<usize> {
        Some(self.bits)
    }
}

/// An RSA public key in memory, with its private key when it can decrypt.
pub struct MemoryRsaKey {
    public: RsaPublicKey,
    private: Option<RsaPrivateKey>,
}

impl fmt::Debug for MemoryRsaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRsaKey")
            .field("bits", &self.public.bits())
            .field("private_key", &if self.private.is_some() { "[REDACTED]" } else { "none" })
            .finish()
    }
}

impl MemoryRsaKey {
    /// A key from a public key and, optionally, its private key (which must match).
    pub fn new(public: RsaPublicKey, private: Option<RsaPrivateKey>) -> Result<Self> {
        if let Some(private) = &private {
            if private.public_key() != public {
                return Err(Error::InvalidKey { reason: "the RSA private key does not match the public key".into() });
            }
        }
        Ok(MemoryRsaKey { public, private })
    }

    /// The public half.
    pub fn public_key(&self) -> &RsaPublicKey {
        &self.public
    }
}

impl RsaKey for MemoryRsaKey {
    fn encrypt(&self, padding: RsaPadding, plaintext: &[u8]) -> Result<Vec<u8>> {
        self.public.encrypt(padding, plaintext)
    }

    fn decrypt(&self, padding: RsaPadding, ciphertext: &[u8]) -> Result<DataKey> {
        let private = self.private.as_ref().ok_or_else(|| {
            Error::keyring("RSA key", "no private key here (built from a public key, it can only encrypt)")
        })?;
        // One reason for every failure, on purpose: no padding oracle.
        private.decrypt(padding, ciphertext).map_err(|_| {
            Error::keyring(
                "RSA key",
                format!("RSA decryption ({padding:?}) failed: wrong key, wrong padding or altered EDK"),
            )
        })
    }

    fn can_decrypt(&self) -> bool {
        self.private.is_some()
    }
}
