//! The S3 keyring: one wrapping key (AES or RSA, in memory or in a token)
//! and its material description, over the S3 EDK layouts of `src/edk/`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::metadata::{S3Format, S3Metadata, WrapAlgorithm, MATDESC, V2_EDK, V3_EDK, V3_MATDESC, V3_WRAP, WRAP};
use crate::crypto::{RsaPrivateKey, RsaPublicKey};
use zeroize::Zeroizing;

use crate::edk::{s3_legacy, S3AesGcm, S3RsaOaep};
use crate::error::{Error, Result};
use crate::master_keys::{AesKey, MemoryAesKey, MemoryRsaKey, RsaKey};
use crate::materials::DataKey;
use crate::pkcs11::{Pkcs11AesKeyring, Pkcs11RsaKeyring};

/// Data key length of every S3 content suite (AES-256).
pub(crate) const DATA_KEY_LEN: usize = 32;

#[derive(Debug, Clone)]
enum WrapKey {
    Aes(S3AesGcm<Arc<dyn AesKey>>),
    Rsa(S3RsaOaep<Arc<dyn RsaKey>>),
}

/// The wrapping key of S3 objects, as the reference clients' raw AES
/// (`AES/GCM`) and raw RSA (`RSA-OAEP-SHA1`) keyrings use theirs: in
/// memory, or in a PKCS#11 token (the same bytes either way).
///
/// A keyring with a material description writes it (`x-amz-m` /
/// `x-amz-matdesc`) and, on decrypt, only opens objects carrying exactly
/// that description (a stricter check than the reference clients, which
/// use it only to choose a key); a keyring without one opens any.
#[derive(Clone)]
pub struct S3Keyring {
    key: WrapKey,
    /// The AES key bytes of a memory key, for the legacy V1 wrappings only.
    legacy_aes: Option<Arc<Zeroizing<Vec<u8>>>>,
    material_description: BTreeMap<String, String>,
    description: String,
}

impl std::fmt::Debug for S3Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key itself is never printed (memory keys redact themselves;
        // the legacy copy of the AES bytes is not shown at all).
        f.debug_struct("S3Keyring")
            .field("description", &self.description)
            .field("wrap", &self.wrap_algorithm())
            .field("material_description", &self.material_description)
            .finish()
    }
}

impl S3Keyring {
    /// An AES wrapping key (16, 24 or 32 bytes) in memory.
    pub fn aes(key: &[u8]) -> Result<Self> {
        let bits = key.len() * 8;
        let mut keyring =
            Self::from_aes_key(Arc::new(MemoryAesKey::new(key)?), format!("S3 AES/GCM keyring (AES-{bits}, memory)"));
        keyring.legacy_aes = Some(Arc::new(Zeroizing::new(key.to_vec())));
        Ok(keyring)
    }

    /// An RSA key pair (or public key only: encrypt only) in memory.
    pub fn rsa(public: RsaPublicKey, private: Option<RsaPrivateKey>) -> Result<Self> {
        let bits = public.bits();
        let key: Arc<dyn RsaKey> = Arc::new(MemoryRsaKey::new(public, private)?);
        Ok(Self::from_rsa_key(key, format!("S3 RSA-OAEP-SHA1 keyring (RSA-{bits}, memory)")))
    }

    /// An RSA key pair from a PEM private key (PKCS#8 or PKCS#1).
    pub fn rsa_from_private_pem(pem: &str) -> Result<Self> {
        let private = RsaPrivateKey::from_pem(pem)?;
        Self::rsa(private.public_key(), Some(private))
    }

    /// An encrypt-only RSA key from a PEM public key.
    pub fn rsa_from_public_pem(pem: &str) -> Result<Self> {
        Self::rsa(RsaPublicKey::from_pem(pem)?, None)
    }

    /// The AES key of a token keyring: AES-GCM runs in the token
    /// (`CKM_AES_GCM`), with the token profile's IV mode.
    pub fn from_pkcs11_aes(keyring: &Pkcs11AesKeyring) -> Self {
        let key: Arc<dyn AesKey> = Arc::new(keyring.master_key().clone());
        Self::from_aes_key(key, format!("S3 AES/GCM keyring ({})", keyring.key_uri().to_path_string()))
    }

    /// The RSA key pair of a token keyring: OAEP-SHA1 (`CKM_RSA_PKCS_OAEP`,
    /// SHA-1, MGF1-SHA1) runs in the token whatever padding that keyring
    /// was built with.
    pub fn from_pkcs11_rsa(keyring: &Pkcs11RsaKeyring) -> Self {
        let key: Arc<dyn RsaKey> = Arc::new(keyring.master_key().clone());
        Self::from_rsa_key(key, format!("S3 RSA-OAEP-SHA1 keyring ({})", keyring.key_uri().to_path_string()))
    }

    /// Any AES key (another kind of key store).
    pub fn from_aes_key(key: Arc<dyn AesKey>, description: impl Into<String>) -> Self {
        S3Keyring {
            key: WrapKey::Aes(S3AesGcm { key }),
            legacy_aes: None,
            material_description: BTreeMap::new(),
            description: description.into(),
        }
    }

    /// Any RSA key (another kind of key store).
    pub fn from_rsa_key(key: Arc<dyn RsaKey>, description: impl Into<String>) -> Self {
        S3Keyring {
            key: WrapKey::Rsa(S3RsaOaep { key }),
            legacy_aes: None,
            material_description: BTreeMap::new(),
            description: description.into(),
        }
    }

    /// Write `description` as the material description, and require it on decrypt.
    pub fn with_material_description(mut self, description: BTreeMap<String, String>) -> Self {
        self.material_description = description;
        self
    }

    /// The material description written with each object.
    pub fn material_description(&self) -> &BTreeMap<String, String> {
        &self.material_description
    }

    /// The wrapping algorithm this keyring writes.
    pub fn wrap_algorithm(&self) -> WrapAlgorithm {
        match self.key {
            WrapKey::Aes(_) => WrapAlgorithm::AesGcm,
            WrapKey::Rsa(_) => WrapAlgorithm::RsaOaepSha1,
        }
    }

    /// What this keyring is, for error messages.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Wrap a data key for `format`.
    pub(crate) fn wrap(&self, data_key: &DataKey, format: S3Format) -> Result<Vec<u8>> {
        let binding = binding(format)?;
        match &self.key {
            WrapKey::Aes(layout) => layout.wrap(data_key, binding),
            WrapKey::Rsa(layout) => layout.wrap(data_key, binding),
        }
    }

    /// Unwrap the data key of a legacy V1 object (`AESWrap`, `AES` with a
    /// memory AES key; `RSA` with any RSA key).
    pub(crate) fn unwrap_legacy(&self, metadata: &S3Metadata) -> Result<DataKey> {
        let edk = &metadata.encrypted_data_key;
        let name = metadata.wrap.name();
        let key = match (&self.key, name) {
            (WrapKey::Aes(_), "AESWrap" | "AES") => {
                let Some(bytes) = &self.legacy_aes else {
                    return Err(Error::keyring(
                        &self.description,
                        format!("the legacy `{name}` wrapping needs the AES key in memory; this key cannot do it"),
                    ));
                };
                if name == "AESWrap" {
                    s3_legacy::unwrap_aes_wrap(bytes, edk)?
                } else {
                    s3_legacy::unwrap_aes_ecb(bytes, edk)?
                }
            }
            (WrapKey::Rsa(layout), "RSA") => s3_legacy::unwrap_rsa_pkcs1(&layout.key, edk).map_err(|e| match e {
                Error::Keyring { reason, .. } => Error::keyring(
                    &self.description,
                    format!("`x-amz-key` did not open (wrong key, or `x-amz-key` altered): {reason}"),
                ),
                other => other,
            })?,
            _ => {
                return Err(Error::keyring(
                    &self.description,
                    format!("`{WRAP}` says the data key is wrapped with {name}; this keyring cannot unwrap that"),
                ))
            }
        };
        if !matches!(key.len(), 16 | 24 | 32) {
            return Err(Error::keyring(&self.description, "`x-amz-key` did not open to an AES key"));
        }
        Ok(key)
    }

    /// Unwrap the data key of `metadata`: "not this key" (the kind
    /// [`crate::ErrorKind::NotThisKey`]) when the wrapping algorithm or the
    /// material description is not this keyring's, or the key does not open.
    pub(crate) fn unwrap(&self, metadata: &S3Metadata) -> Result<DataKey> {
        let (wrap_field, edk_field, matdesc_field) = match metadata.format {
            S3Format::V3 => (V3_WRAP, V3_EDK, V3_MATDESC),
            _ => (WRAP, V2_EDK, MATDESC),
        };
        if metadata.wrap != self.wrap_algorithm() {
            return Err(Error::keyring(
                &self.description,
                format!(
                    "`{wrap_field}` says the data key is wrapped with {}; this keyring wraps with {}",
                    metadata.wrap.name(),
                    self.wrap_algorithm().name()
                ),
            ));
        }
        if !self.material_description.is_empty() && metadata.material_description != self.material_description {
            return Err(Error::keyring(
                &self.description,
                format!("`{matdesc_field}` is not this keyring's material description"),
            ));
        }
        let binding = binding(metadata.format)?;
        let result = match &self.key {
            WrapKey::Aes(layout) => layout.unwrap(&metadata.encrypted_data_key, binding, DATA_KEY_LEN),
            WrapKey::Rsa(layout) => layout.unwrap(&metadata.encrypted_data_key, binding),
        };
        let key = result.map_err(|e| match e {
            Error::Keyring { reason, .. } => Error::keyring(
                &self.description,
                format!("`{edk_field}` did not open (wrong wrapping key, or `{edk_field}` altered): {reason}"),
            ),
            other => other,
        })?;
        if key.len() != DATA_KEY_LEN {
            return Err(Error::keyring(
                &self.description,
                format!("`{edk_field}` holds a {}-byte data key; S3 content is AES-256", key.len()),
            ));
        }
        Ok(key)
    }
}

/// What the wrapped key is bound to: the content suite, as the reference
/// keyrings write it (AAD of `AES/GCM`, suffix of the `RSA-OAEP-SHA1`
/// pseudo key).
fn binding(format: S3Format) -> Result<&'static [u8]> {
    match format {
        S3Format::V3 => Ok(b"115"),
        S3Format::V2 => Ok(b"AES/GCM/NoPadding"),
        S3Format::V1 => Err(Error::config("V1 objects use legacy wrapping (AES, AESWrap, RSA), not these layouts")),
    }
}
