//! Data keys, encrypted data keys and the materials that flow between CMMs,
//! keyrings and the message codec.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::context::EncryptionContext;
use super::suite::{AlgorithmSuite, SignatureCurve};
use crate::error::{Error, Result};

/// A plaintext data key (or any secret key bytes): zeroized on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct DataKey(Zeroizing<Vec<u8>>);

impl DataKey {
    /// Wrap existing key bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        DataKey(Zeroizing::new(bytes))
    }

    /// A fresh random key of `len` bytes from the operating system's CSPRNG.
    pub fn generate(len: usize) -> Result<Self> {
        let mut bytes = Zeroizing::new(vec![0u8; len]);
        crate::crypto::fill_random(&mut bytes)?;
        Ok(DataKey(bytes))
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey([REDACTED; {} bytes])", self.0.len())
    }
}

/// A data key encrypted by one keyring: what the message header stores.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EncryptedDataKey {
    /// Who can open it (for raw keyrings, the key namespace). UTF-8 on the wire.
    pub provider_id: String,
    /// Provider-specific information (for raw keyrings, the key name and more).
    pub provider_info: Vec<u8>,
    /// The wrapped data key.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for EncryptedDataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedDataKey")
            .field("provider_id", &self.provider_id)
            .field("provider_info", &String::from_utf8_lossy(&self.provider_info))
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// Something that signs the footer of a signed message: an ephemeral software
/// key made per message, or a long-lived key held in a token.
pub trait FooterSigner: Send + Sync + fmt::Debug {
    /// The curve of the key; must match the suite's.
    fn curve(&self) -> SignatureCurve;
    /// The SEC1 compressed public point (49 bytes for P-384), stored base64 in
    /// the encryption context under `aws-crypto-public-key`.
    fn public_key(&self) -> Vec<u8>;
    /// Sign a digest (SHA-384 for P-384, SHA-256 for P-256) of header and
    /// body; returns the DER-encoded ECDSA signature.
    fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>>;
}

/// What encryption needs: the suite, the context, the data key and its EDKs.
#[derive(Clone, Debug)]
pub struct EncryptionMaterials {
    /// The suite the message will use.
    pub algorithm_suite: AlgorithmSuite,
    /// The full encryption context, including required pairs and the
    /// signing public key. Pairs in `required_encryption_context_keys` are
    /// authenticated but not stored in the header.
    pub encryption_context: EncryptionContext,
    /// Context keys that are authenticated but not stored in the message.
    pub required_encryption_context_keys: Vec<String>,
    /// The plaintext data key, once a generator keyring made it.
    pub plaintext_data_key: Option<DataKey>,
    /// One entry per keyring that wrapped the data key.
    pub encrypted_data_keys: Vec<EncryptedDataKey>,
    /// The footer signer, for signed suites.
    pub signing_key: Option<Arc<dyn FooterSigner>>,
    /// For suites that wrap an intermediate key: one symmetric signing key
    /// per EDK, in EDK order.
    pub(crate) symmetric_signing_keys: Vec<DataKey>,
}

impl EncryptionMaterials {
    /// Materials with no data key yet.
    pub fn new(algorithm_suite: AlgorithmSuite, encryption_context: EncryptionContext) -> Self {
        EncryptionMaterials {
            algorithm_suite,
            encryption_context,
            required_encryption_context_keys: Vec::new(),
            plaintext_data_key: None,
            encrypted_data_keys: Vec::new(),
            signing_key: None,
            symmetric_signing_keys: Vec::new(),
        }
    }

    /// The symmetric signing keys (one per EDK, in EDK order) of suites that
    /// wrap an intermediate key; empty for the message suites.
    pub fn symmetric_signing_keys(&self) -> &[DataKey] {
        &self.symmetric_signing_keys
    }

    /// Append the symmetric signing key of the EDK just appended.
    pub fn add_symmetric_signing_key(&mut self, key: DataKey) {
        self.symmetric_signing_keys.push(key);
    }

    /// Set the data key; refuses a key of the wrong length or a second key.
    pub fn set_data_key(&mut self, key: DataKey) -> Result<()> {
        if self.plaintext_data_key.is_some() {
            return Err(Error::config("the materials already hold a data key"));
        }
        check_data_key_len(self.algorithm_suite, &key)?;
        self.plaintext_data_key = Some(key);
        Ok(())
    }

    /// The encryption context that goes into the header: without the required
    /// (authenticated-only) pairs.
    pub fn stored_encryption_context(&self) -> EncryptionContext {
        self.encryption_context.without(self.required_encryption_context_keys.iter().map(String::as_str))
    }
}

/// What decryption needs: the suite, the context and, once a keyring opened an
/// EDK, the data key.
#[derive(Clone, Debug)]
pub struct DecryptionMaterials {
    /// The message's suite.
    pub algorithm_suite: AlgorithmSuite,
    /// The full encryption context: the header's pairs plus the required pairs
    /// reproduced by the caller.
    pub encryption_context: EncryptionContext,
    /// Context keys that were authenticated but not stored in the message.
    pub required_encryption_context_keys: Vec<String>,
    /// The data key, once a keyring opened an EDK.
    pub plaintext_data_key: Option<DataKey>,
    /// SEC1 compressed public key that must verify the footer, for signed suites.
    pub verification_key: Option<Vec<u8>>,
    /// For suites that wrap an intermediate key: the symmetric signing key
    /// of the EDK that opened.
    pub(crate) symmetric_signing_key: Option<DataKey>,
}

impl DecryptionMaterials {
    /// Materials with no data key yet.
    pub fn new(algorithm_suite: AlgorithmSuite, encryption_context: EncryptionContext) -> Self {
        DecryptionMaterials {
            algorithm_suite,
            encryption_context,
            required_encryption_context_keys: Vec::new(),
            plaintext_data_key: None,
            verification_key: None,
            symmetric_signing_key: None,
        }
    }

    /// The symmetric signing key of the EDK that opened (suites that wrap an
    /// intermediate key only).
    pub fn symmetric_signing_key(&self) -> Option<&DataKey> {
        self.symmetric_signing_key.as_ref()
    }

    /// Set the symmetric signing key of the EDK that opened.
    pub fn set_symmetric_signing_key(&mut self, key: DataKey) {
        self.symmetric_signing_key = Some(key);
    }

    /// Set the data key; refuses a key of the wrong length or a second key.
    pub fn set_data_key(&mut self, key: DataKey) -> Result<()> {
        if self.plaintext_data_key.is_some() {
            return Err(Error::config("the materials already hold a data key"));
        }
        check_data_key_len(self.algorithm_suite, &key)?;
        self.plaintext_data_key = Some(key);
        Ok(())
    }
}

fn check_data_key_len(suite: AlgorithmSuite, key: &DataKey) -> Result<()> {
    if key.len() != suite.key_len() {
        return Err(Error::InvalidKey {
            reason: format!(
                "data key of {} bytes does not fit suite 0x{:04X}, which needs {}",
                key.len(),
                suite.id(),
                suite.key_len()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_key_bytes() {
        let key = DataKey::new(vec![0xAB; 32]);
        let text = format!("{key:?}");
        assert!(!text.contains("171") && !text.to_lowercase().contains("ab"), "{text}");
        let mut m = DecryptionMaterials::new(AlgorithmSuite::default(), EncryptionContext::new());
        m.set_data_key(key).unwrap();
        let text = format!("{m:?}");
        assert!(text.contains("REDACTED") && !text.contains("171, 171"), "{text}");
    }

    #[test]
    fn data_key_length_checked() {
        let mut m = EncryptionMaterials::new(AlgorithmSuite::Aes128GcmIv12Tag16NoKdf, EncryptionContext::new());
        assert!(m.set_data_key(DataKey::new(vec![0; 32])).is_err());
        m.set_data_key(DataKey::new(vec![0; 16])).unwrap();
        assert!(m.set_data_key(DataKey::new(vec![0; 16])).is_err());
    }
}
