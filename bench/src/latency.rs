//! A simulated network HSM: a keyring wrapper that adds a fixed delay to
//! every call of the inner keyring.

use std::time::Duration;

use hsm_keyring::{DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring};

/// Sleeps for `delay` before each `on_encrypt`/`on_decrypt` of the inner
/// keyring, as a round trip to a network HSM would. For the PKCS#11 AES
/// keyring each of those calls is one token operation (`C_Encrypt` or
/// `C_Decrypt` of the data key), so this adds one delay per token call.
#[derive(Debug)]
pub struct Delayed<K> {
    inner: K,
    delay: Duration,
}

impl<K: Keyring> Delayed<K> {
    /// Wrap `inner`.
    pub fn new(inner: K, delay: Duration) -> Self {
        Delayed { inner, delay }
    }
}

impl<K: Keyring> Keyring for Delayed<K> {
    fn on_encrypt(&self, materials: EncryptionMaterials) -> hsm_keyring::Result<EncryptionMaterials> {
        std::thread::sleep(self.delay);
        self.inner.on_encrypt(materials)
    }

    fn on_decrypt(
        &self,
        materials: DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> hsm_keyring::Result<DecryptionMaterials> {
        std::thread::sleep(self.delay);
        self.inner.on_decrypt(materials, edks)
    }

    fn description(&self) -> String {
        format!("{} (+{:?} per call)", self.inner.description(), self.delay)
    }
}
