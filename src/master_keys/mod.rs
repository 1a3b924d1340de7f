//! Master keys: what a wrapping key can do, wherever it lives.
//!
//! This is the lowest layer of the keyring core. An [`AesKey`] seals and
//! opens short secrets with AES-GCM; an [`RsaKey`] encrypts and decrypts
//! them with a given padding; a signing key is a
//! [`FooterSigner`](crate::FooterSigner). Each has one implementation in
//! memory (this module) and one in a PKCS#11 token
//! ([`crate::pkcs11`]); nothing above this layer knows where a key lives.
//!
//! The EDK layouts of each format (`src/edk/`) are written once against
//! these traits, so a token key and a memory key holding the same key
//! material produce the same bytes by construction.
//!
//! Errors: a failed authentication (wrong key, altered input, different
//! AAD) is [`Error::Keyring`](crate::Error::Keyring) from the memory keys
//! and a classified [`Error::Pkcs11`](crate::Error::Pkcs11) from token keys;
//! token faults are never reported as a wrong key.

mod legacy;
mod memory;

pub(crate) use legacy::bad_signature;
pub use legacy::{
    LegacySigningAlgorithm, LegacyUnwrapKey, LegacyVerifyKey, LegacyWrapAlgorithm, MemoryAesWrapKey, MemoryHmacKey,
    MemoryLegacyRsaKey,
};
#[cfg(test)]
pub(crate) use memory::aes_open_failed;
pub use memory::{MemoryAesKey, MemoryRsaKey};

use std::fmt;

use crate::crypto::{RsaPadding, IV_LEN, TAG_LEN};
use crate::error::Result;
use crate::materials::DataKey;

/// The output of [`AesKey::seal`]: the IV used, the ciphertext and the tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The 12-byte IV (drawn by this process, or by the token where it insists).
    pub iv: [u8; IV_LEN],
    /// The ciphertext, as long as the plaintext.
    pub ciphertext: Vec<u8>,
    /// The 16-byte GCM tag.
    pub tag: [u8; TAG_LEN],
}

/// An AES key that seals and opens with AES-GCM (12-byte IV, 16-byte tag).
pub trait AesKey: Send + Sync + fmt::Debug {
    /// Encrypt `plaintext` with `aad`. The key chooses the IV: a fresh
    /// random one, or the token's own where the token generates IVs.
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Sealed>;

    /// Authenticate and decrypt. A wrong key, an altered ciphertext, tag or
    /// IV, or different AAD fail without releasing anything.
    fn open(&self, iv: &[u8; IV_LEN], aad: &[u8], ciphertext: &[u8], tag: &[u8; TAG_LEN]) -> Result<DataKey>;

    /// Key size in bits, when known.
    fn bits(&self) -> Option<usize>;
}

/// An RSA key pair (or only its public half) that encrypts and decrypts
/// short secrets with a padding.
pub trait RsaKey: Send + Sync + fmt::Debug {
    /// Encrypt `plaintext` with the public key.
    fn encrypt(&self, padding: RsaPadding, plaintext: &[u8]) -> Result<Vec<u8>>;

    /// Decrypt with the private key. Every padding failure gives the same
    /// error, so that the error is no padding oracle.
    fn decrypt(&self, padding: RsaPadding, ciphertext: &[u8]) -> Result<DataKey>;

    /// True when the private key is available.
    fn can_decrypt(&self) -> bool;
}

impl<K: AesKey + ?Sized> AesKey for std::sync::Arc<K> {
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Sealed> {
        (**self).seal(aad, plaintext)
    }
    fn open(&self, iv: &[u8; IV_LEN], aad: &[u8], ciphertext: &[u8], tag: &[u8; TAG_LEN]) -> Result<DataKey> {
        (**self).open(iv, aad, ciphertext, tag)
    }
    fn bits(&self) -> Option<usize> {
        (**self).bits()
    }
}

impl<K: RsaKey + ?Sized> RsaKey for std::sync::Arc<K> {
    fn encrypt(&self, padding: RsaPadding, plaintext: &[u8]) -> Result<Vec<u8>> {
        (**self).encrypt(padding, plaintext)
    }
    fn decrypt(&self, padding: RsaPadding, ciphertext: &[u8]) -> Result<DataKey> {
        (**self).decrypt(padding, ciphertext)
    }
    fn can_decrypt(&self) -> bool {
        (**self).can_decrypt()
    }
}
