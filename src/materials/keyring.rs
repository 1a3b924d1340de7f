//! The keyring trait: wrap a data key on encrypt, unwrap one on decrypt.

use std::fmt;
use std::sync::Arc;

use super::data::{DecryptionMaterials, EncryptedDataKey, EncryptionMaterials};
use crate::error::Result;

/// A keyring generates or wraps data keys on encrypt and unwraps them on decrypt.
///
/// Keyrings are `Send + Sync` and object-safe, so they are usually shared as
/// `Arc<dyn Keyring>`.
///
/// # Contract
///
/// * [`on_encrypt`](Keyring::on_encrypt): if the materials hold no data key
///   ([`EncryptionMaterials::data_key`]), a generator keyring makes one (of
///   `algorithm_suite().key_len()` bytes) and sets it with
///   [`EncryptionMaterials::set_data_key`]; either way it wraps the data key
///   and appends one EDK with [`EncryptionMaterials::add_encrypted_data_key`].
///   The wrap must be bound to the materials' full encryption context where
///   the keyring's format allows it.
/// * [`on_decrypt`](Keyring::on_decrypt): returns the materials with the data
///   key of the first EDK the keyring can open, set with
///   [`DecryptionMaterials::set_data_key`]. If none of the EDKs is its
///   own, it fails with [`Error::NotMine`](crate::Error::NotMine); if one is
///   its own but unwrapping failed, with [`Error::Keyring`](crate::Error::Keyring)
///   (or a more specific error). Materials that already hold a data key are an error.
pub trait Keyring: Send + Sync + fmt::Debug {
    /// Generate and/or wrap the data key.
    fn on_encrypt(&self, materials: EncryptionMaterials) -> Result<EncryptionMaterials>;

    /// Unwrap the data key from the first EDK this keyring can open.
    fn on_decrypt(&self, materials: DecryptionMaterials, edks: &[EncryptedDataKey]) -> Result<DecryptionMaterials>;

    /// A short human-readable name for errors, e.g. `raw AES keyring ns/name`.
    fn description(&self) -> String;
}

impl<K: Keyring + ?Sized> Keyring for Arc<K> {
    fn on_encrypt(&self, materials: EncryptionMaterials) -> Result<EncryptionMaterials> {
        (**self).on_encrypt(materials)
    }
    fn on_decrypt(&self, materials: DecryptionMaterials, edks: &[EncryptedDataKey]) -> Result<DecryptionMaterials> {
        (**self).on_decrypt(materials, edks)
    }
    fn description(&self) -> String {
        (**self).description()
    }
}

impl<K: Keyring + ?Sized> Keyring for Box<K> {
    fn on_encrypt(&self, materials: EncryptionMaterials) -> Result<EncryptionMaterials> {
        (**self).on_encrypt(materials)
    }
    fn on_decrypt(&self, materials: DecryptionMaterials, edks: &[EncryptedDataKey]) -> Result<DecryptionMaterials> {
        (**self).on_decrypt(materials, edks)
    }
    fn description(&self) -> String {
        (**self).description()
    }
}

impl<K: Keyring + ?Sized> Keyring for &K {
    fn on_encrypt(&self, materials: EncryptionMaterials) -> Result<EncryptionMaterials> {
        (**self).on_encrypt(materials)
    }
    fn on_decrypt(&self, materials: DecryptionMaterials, edks: &[EncryptedDataKey]) -> Result<DecryptionMaterials> {
        (**self).on_decrypt(materials, edks)
    }
    fn description(&self) -> String {
        (**self).description()
    }
}
