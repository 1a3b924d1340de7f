//! Data keys, encrypted data keys and the materials that flow between CMMs,
//! keyrings and the message codec.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::context::EncryptionContext;
use super::suite::{AlgorithmSuite, SignatureCurve};
use crate::error::{Error, Result};

/// A plaintext data key (or any secret key bytes): zeroized on drop, never printed.
/// Clones share one copy of the bytes, zeroized when the last one drops.
#[derive(Clone, PartialEq, Eq)]
pub struct DataKey(Arc<Zeroizing<Vec<u8>>>);

impl DataKey {
    /// Wrap existing key bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        DataKey(Arc::new(Zeroizing::new(bytes)))
    }

    /// A fresh random key of `len` bytes from the operating system's CSPRNG.
    pub fn generate(len: usize) -> Result<Self> {
        let mut bytes = Zeroizing::new(vec![0u8; len]);
        crate::crypto::fill_random(&mut bytes)?;
        Ok(DataKey(Arc::new(bytes)))
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
///
/// The fields are private: a keyring reads them through the accessors, sets
/// the data key once with [`EncryptionMaterials::set_data_key`] (which checks
/// its length for the suite and refuses a second key) and appends the EDK it
/// wrote with [`EncryptionMaterials::add_encrypted_data_key`].
#[derive(Clone, Debug)]
pub struct EncryptionMaterials {
    algorithm_suite: AlgorithmSuite,
    encryption_context: EncryptionContext,
    required_encryption_context_keys: Vec<String>,
    data_key: Option<DataKey>,
    /// Shared by clones until one of them adds an EDK.
    encrypted_data_keys: Arc<Vec<EncryptedDataKey>>,
    signing_key: Option<Arc<dyn FooterSigner>>,
    /// For suites that wrap an intermediate key: one symmetric signing key
    /// per EDK, in EDK order.
    symmetric_signing_keys: Vec<DataKey>,
}

impl EncryptionMaterials {
    /// Materials with no data key yet.
    pub fn new(algorithm_suite: AlgorithmSuite, encryption_context: EncryptionContext) -> Self {
        EncryptionMaterials {
            algorithm_suite,
            encryption_context,
            required_encryption_context_keys: Vec::new(),
            data_key: None,
            encrypted_data_keys: Arc::default(),
            signing_key: None,
            symmetric_signing_keys: Vec::new(),
        }
    }

    /// The suite the message will use.
    pub fn algorithm_suite(&self) -> AlgorithmSuite {
        self.algorithm_suite
    }

    /// The full encryption context, including required pairs and the signing
    /// public key. Pairs named by
    /// [`required_encryption_context_keys`](Self::required_encryption_context_keys)
    /// are authenticated but not stored in the header.
    pub fn encryption_context(&self) -> &EncryptionContext {
        &self.encryption_context
    }

    /// Context keys that are authenticated but not stored in the message.
    pub fn required_encryption_context_keys(&self) -> &[String] {
        &self.required_encryption_context_keys
    }

    /// The plaintext data key, once a generator keyring made it.
    pub fn data_key(&self) -> Option<&DataKey> {
        self.data_key.as_ref()
    }

    /// One entry per keyring that wrapped the data key, in order.
    pub fn encrypted_data_keys(&self) -> &[EncryptedDataKey] {
        &self.encrypted_data_keys
    }

    /// The footer signer, for signed suites.
    pub fn signing_key(&self) -> Option<&Arc<dyn FooterSigner>> {
        self.signing_key.as_ref()
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
        set_once(&mut self.data_key, self.algorithm_suite, key)
    }

    /// Append the EDK a keyring wrapped the data key into; refused while the
    /// materials hold no data key, since the EDK would wrap nothing.
    pub fn add_encrypted_data_key(&mut self, edk: EncryptedDataKey) -> Result<()> {
        if self.data_key.is_none() {
            return Err(Error::config("an encrypted data key was added to materials that hold no data key"));
        }
        Arc::make_mut(&mut self.encrypted_data_keys).push(edk);
        Ok(())
    }

    /// The encryption context that goes into the header: without the required
    /// (authenticated-only) pairs.
    pub fn stored_encryption_context(&self) -> EncryptionContext {
        self.encryption_context.without(self.required_encryption_context_keys.iter().map(String::as_str))
    }

    /// Set the footer signer; refuses a signer on another curve than the
    /// suite's, or any signer for an unsigned suite.
    pub(crate) fn set_signing_key(&mut self, signer: Arc<dyn FooterSigner>) -> Result<()> {
        match self.algorithm_suite.signature() {
            Some(curve) if curve == signer.curve() => {
                self.signing_key = Some(signer);
                Ok(())
            }
            Some(curve) => Err(Error::config(format!(
                "the signing key is on {:?} but suite 0x{:04X} signs with {curve:?}",
                signer.curve(),
                self.algorithm_suite.id()
            ))),
            None => Err(Error::config(format!("suite 0x{:04X} does not sign", self.algorithm_suite.id()))),
        }
    }

    /// Mark `key` as authenticated but not stored; it must be in the context.
    pub(crate) fn require_encryption_context_key(&mut self, key: &str) -> Result<()> {
        if !self.encryption_context.contains_key(key) {
            return Err(Error::InvalidEncryptionContext {
                reason: format!("required key `{key}` is not in the encryption context"),
            });
        }
        if !self.required_encryption_context_keys.iter().any(|k| k == key) {
            self.required_encryption_context_keys.push(key.to_owned());
        }
        Ok(())
    }

    /// Replace the required keys as another implementation's materials carry them.
    #[cfg(feature = "aws-esdk")]
    pub(crate) fn set_required_encryption_context_keys(&mut self, keys: Vec<String>) {
        self.required_encryption_context_keys = keys;
    }
}

/// What decryption needs: the suite, the context and, once a keyring opened an
/// EDK, the data key.
///
/// The fields are private: a keyring reads them through the accessors and
/// sets the data key it opened, once, with
/// [`DecryptionMaterials::set_data_key`].
#[derive(Clone, Debug)]
pub struct DecryptionMaterials {
    algorithm_suite: AlgorithmSuite,
    encryption_context: EncryptionContext,
    required_encryption_context_keys: Vec<String>,
    data_key: Option<DataKey>,
    verification_key: Option<Vec<u8>>,
    /// For suites that wrap an intermediate key: the symmetric signing key
    /// of the EDK that opened.
    symmetric_signing_key: Option<DataKey>,
}

impl DecryptionMaterials {
    /// Materials with no data key yet.
    pub fn new(algorithm_suite: AlgorithmSuite, encryption_context: EncryptionContext) -> Self {
        DecryptionMaterials {
            algorithm_suite,
            encryption_context,
            required_encryption_context_keys: Vec::new(),
            data_key: None,
            verification_key: None,
            symmetric_signing_key: None,
        }
    }

    /// The message's suite.
    pub fn algorithm_suite(&self) -> AlgorithmSuite {
        self.algorithm_suite
    }

    /// The full encryption context: the header's pairs plus the required
    /// pairs reproduced by the caller.
    pub fn encryption_context(&self) -> &EncryptionContext {
        &self.encryption_context
    }

    /// Context keys that were authenticated but not stored in the message.
    pub fn required_encryption_context_keys(&self) -> &[String] {
        &self.required_encryption_context_keys
    }

    /// The data key, once a keyring opened an EDK.
    pub fn data_key(&self) -> Option<&DataKey> {
        self.data_key.as_ref()
    }

    /// SEC1 compressed public key that must verify the footer, for signed suites.
    pub fn verification_key(&self) -> Option<&[u8]> {
        self.verification_key.as_deref()
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
        set_once(&mut self.data_key, self.algorithm_suite, key)
    }

    /// Set the context keys that were authenticated but not stored.
    pub(crate) fn set_required_encryption_context_keys(&mut self, keys: Vec<String>) {
        self.required_encryption_context_keys = keys;
    }

    /// Set the key that must verify the footer.
    pub(crate) fn set_verification_key(&mut self, key: Option<Vec<u8>>) {
        self.verification_key = key;
    }
}

/// Store `key` in `slot` unless it already holds one or the length does not fit `suite`.
fn set_once(slot: &mut Option<DataKey>, suite: AlgorithmSuite, key: DataKey) -> Result<()> {
    if slot.is_some() {
        return Err(Error::config("the materials already hold a data key"));
    }
    check_data_key_len(suite, &key)?;
    *slot = Some(key);
    Ok(())
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
        assert!(matches!(m.set_data_key(DataKey::new(vec![0; 32])), Err(Error::InvalidKey { .. })));
        assert!(m.data_key().is_none());
        m.set_data_key(DataKey::new(vec![0; 16])).unwrap();
        assert!(matches!(m.set_data_key(DataKey::new(vec![1; 16])), Err(Error::Config { .. })));
        assert_eq!(m.data_key().unwrap().as_bytes(), &[0; 16]);
    }

    #[test]
    fn decryption_materials_take_one_key_of_the_suite_length() {
        let mut m = DecryptionMaterials::new(AlgorithmSuite::default(), EncryptionContext::new());
        assert!(matches!(m.set_data_key(DataKey::new(vec![0; 16])), Err(Error::InvalidKey { .. })));
        assert!(matches!(m.set_data_key(DataKey::new(Vec::new())), Err(Error::InvalidKey { .. })));
        assert!(m.data_key().is_none());
        m.set_data_key(DataKey::new(vec![3; 32])).unwrap();
        assert!(matches!(m.set_data_key(DataKey::new(vec![4; 32])), Err(Error::Config { .. })));
        assert_eq!(m.data_key().unwrap().as_bytes(), &[3; 32]);
    }

    fn edk() -> EncryptedDataKey {
        EncryptedDataKey { provider_id: "p".into(), provider_info: b"i".to_vec(), ciphertext: vec![1] }
    }

    #[test]
    fn an_edk_needs_a_data_key() {
        let mut m = EncryptionMaterials::new(AlgorithmSuite::default(), EncryptionContext::new());
        assert!(m.add_encrypted_data_key(edk()).is_err());
        assert!(m.encrypted_data_keys().is_empty());
        m.set_data_key(DataKey::new(vec![0; 32])).unwrap();
        m.add_encrypted_data_key(edk()).unwrap();
        m.add_encrypted_data_key(edk()).unwrap();
        assert_eq!(m.encrypted_data_keys(), &[edk(), edk()]);
    }

    #[test]
    fn signing_key_must_fit_the_suite() {
        let p384: Arc<dyn FooterSigner> = Arc::new(crate::crypto::SoftwareSigner::generate(SignatureCurve::P384));
        let p256: Arc<dyn FooterSigner> = Arc::new(crate::crypto::SoftwareSigner::generate(SignatureCurve::P256));
        let mut unsigned =
            EncryptionMaterials::new(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, EncryptionContext::new());
        assert!(unsigned.set_signing_key(Arc::clone(&p384)).is_err());
        assert!(unsigned.signing_key().is_none());
        let mut signed =
            EncryptionMaterials::new(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384, EncryptionContext::new());
        assert!(signed.set_signing_key(p256).is_err());
        assert!(signed.signing_key().is_none());
        signed.set_signing_key(Arc::clone(&p384)).unwrap();
        assert!(Arc::ptr_eq(signed.signing_key().unwrap(), &p384));
    }

    #[test]
    fn required_keys_must_be_in_the_context() {
        let context = EncryptionContext::from_pairs([("tenant", "42"), ("purpose", "x")]).unwrap();
        let mut m = EncryptionMaterials::new(AlgorithmSuite::default(), context);
        assert!(matches!(m.require_encryption_context_key("absent"), Err(Error::InvalidEncryptionContext { .. })));
        m.require_encryption_context_key("tenant").unwrap();
        m.require_encryption_context_key("tenant").unwrap();
        assert_eq!(m.required_encryption_context_keys(), ["tenant"]);
        assert_eq!(m.stored_encryption_context(), EncryptionContext::from_pairs([("purpose", "x")]).unwrap());
    }
}
