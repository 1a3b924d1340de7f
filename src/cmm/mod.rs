//! Cryptographic materials managers.
//!
//! STUB: signatures are fixed; bodies are being implemented.
#![allow(unused_variables, missing_docs)]

use std::sync::Arc;

mod caching;
pub use caching::{
    CacheStats, CachingCmm, CachingCmmBuilder, Clock, MaterialsCache, SystemClock, DEFAULT_CAPACITY, DEFAULT_MAX_BYTES,
    DEFAULT_MAX_MESSAGES,
};

use crate::error::Result;
use crate::materials::{
    CryptographicMaterialsManager, DecryptMaterialsRequest, DecryptionMaterials, EncryptionMaterials,
    EncryptionMaterialsRequest, FooterSigner, Keyring,
};

/// The default CMM: asks one keyring for the data key, makes the footer
/// signing key (a fresh software key, or a configured long-lived signer).
#[derive(Debug, Clone)]
pub struct DefaultCmm<K = Arc<dyn Keyring>> {
    keyring: K,
    signer: Option<Arc<dyn FooterSigner>>,
}

impl<K: Keyring> DefaultCmm<K> {
    pub fn new(keyring: K) -> Self {
        DefaultCmm { keyring, signer: None }
    }
    /// Sign signed-suite messages with this long-lived key instead of a fresh one.
    pub fn with_signer(self, signer: Arc<dyn FooterSigner>) -> Self {
        todo!()
    }
}

impl<K: Keyring> CryptographicMaterialsManager for DefaultCmm<K> {
    fn get_encryption_materials(&self, request: EncryptionMaterialsRequest) -> Result<EncryptionMaterials> {
        todo!()
    }
    fn decrypt_materials(&self, request: DecryptMaterialsRequest) -> Result<DecryptionMaterials> {
        todo!()
    }
}

/// Wraps a CMM; the listed context keys are authenticated but not stored.
#[derive(Debug, Clone)]
pub struct RequiredEncryptionContextCmm<C = Arc<dyn CryptographicMaterialsManager>> {
    inner: C,
    required_keys: Vec<String>,
}

impl<C: CryptographicMaterialsManager> RequiredEncryptionContextCmm<C> {
    pub fn new(inner: C, required_keys: Vec<String>) -> Result<Self> {
        todo!()
    }
}

impl<C: CryptographicMaterialsManager> CryptographicMaterialsManager for RequiredEncryptionContextCmm<C> {
    fn get_encryption_materials(&self, request: EncryptionMaterialsRequest) -> Result<EncryptionMaterials> {
        todo!()
    }
    fn decrypt_materials(&self, request: DecryptMaterialsRequest) -> Result<DecryptionMaterials> {
        todo!()
    }
}
