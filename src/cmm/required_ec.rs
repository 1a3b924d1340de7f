//! The required-encryption-context CMM.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::materials::context::RESERVED_PREFIX;
use crate::materials::{
    CryptographicMaterialsManager, DecryptMaterialsRequest, DecryptionMaterials, EncryptionMaterials,
    EncryptionMaterialsRequest,
};

/// Wraps a CMM; the listed context keys are authenticated but not stored.
///
/// On encrypt every listed key must be in the caller's context; its pair is
/// then left out of the message header but still authenticated (and bound to
/// the data key by keyrings that use the context). On decrypt the caller must
/// supply every listed key again.
#[derive(Debug, Clone)]
pub struct RequiredEncryptionContextCmm<C = Arc<dyn CryptographicMaterialsManager>> {
    inner: C,
    required_keys: Vec<String>,
}

impl<C: CryptographicMaterialsManager> RequiredEncryptionContextCmm<C> {
    /// Wrap `inner`, requiring `required_keys`. Keys with the reserved
    /// `aws-crypto-` prefix are refused.
    pub fn new(inner: C, required_keys: Vec<String>) -> Result<Self> {
        let mut keys: Vec<String> = Vec::with_capacity(required_keys.len());
        for key in required_keys {
            if key.starts_with(RESERVED_PREFIX) {
                return Err(Error::config(format!(
                    "required key `{key}` uses the reserved prefix `{RESERVED_PREFIX}`"
                )));
            }
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        Ok(RequiredEncryptionContextCmm { inner, required_keys: keys })
    }

    /// The required keys.
    pub fn required_keys(&self) -> &[String] {
        &self.required_keys
    }
}

impl<C: CryptographicMaterialsManager> CryptographicMaterialsManager for RequiredEncryptionContextCmm<C> {
    fn get_encryption_materials(&self, request: EncryptionMaterialsRequest) -> Result<EncryptionMaterials> {
        for key in &self.required_keys {
            if !request.encryption_context.contains_key(key) {
                return Err(Error::InvalidEncryptionContext {
                    reason: format!("required key `{key}` is missing from the encryption context"),
                });
            }
        }
        let mut materials = self.inner.get_encryption_materials(request)?;
        for key in &self.required_keys {
            if !materials.encryption_context().contains_key(key) {
                return Err(Error::InvalidEncryptionContext {
                    reason: format!("the underlying CMM dropped required key `{key}`"),
                });
            }
            materials.require_encryption_context_key(key)?;
        }
        Ok(materials)
    }

    fn decrypt_materials(&self, request: DecryptMaterialsRequest) -> Result<DecryptionMaterials> {
        for key in &self.required_keys {
            let present = request.reproduced_encryption_context.as_ref().is_some_and(|c| c.contains_key(key));
            if !present {
                return Err(Error::EncryptionContextMismatch {
                    reason: format!("required key `{key}` was not supplied to decrypt"),
                });
            }
        }
        let materials = self.inner.decrypt_materials(request)?;
        for key in &self.required_keys {
            if !materials.encryption_context().contains_key(key) {
                return Err(Error::EncryptionContextMismatch {
                    reason: format!("the decryption materials lack required key `{key}`"),
                });
            }
        }
        Ok(materials)
    }
}
