//! Keyrings written outside the crate see the materials only through their
//! accessors and checked setters: the data key is set once, at the suite's
//! length, and an EDK needs a data key.

mod support;

use std::sync::Arc;

use hsm_keyring::cmm::DefaultCmm;
use hsm_keyring::keyrings::MultiKeyring;
use hsm_keyring::{
    AlgorithmSuite, Client, CommitmentPolicy, CryptographicMaterialsManager, DataKey, DecryptionMaterials,
    EncryptedDataKey, EncryptionContext, EncryptionMaterials, EncryptionMaterialsRequest, Error, Keyring, Result,
};
use support::TestAesKeyring;

/// What an outside keyring may try to do to the materials it is given.
#[derive(Debug, Clone, Copy)]
enum Attempt {
    /// Set a second data key on encrypt (after the generator made one).
    ReplaceKey,
    /// Set a data key that does not fit the suite.
    WrongLength,
    /// Append an EDK while the materials hold no data key.
    EdkWithoutKey,
    /// Set a second data key on decrypt (after another keyring opened one).
    ReplaceDecryptedKey,
}

#[derive(Debug)]
struct Meddling(Attempt);

impl Keyring for Meddling {
    fn on_encrypt(&self, mut materials: EncryptionMaterials) -> Result<EncryptionMaterials> {
        let len = materials.algorithm_suite().key_len();
        match self.0 {
            Attempt::ReplaceKey => materials.set_data_key(DataKey::new(vec![0; len]))?,
            Attempt::WrongLength => materials.set_data_key(DataKey::new(vec![0; len + 1]))?,
            Attempt::EdkWithoutKey => materials.add_encrypted_data_key(EncryptedDataKey {
                provider_id: "meddling".into(),
                provider_info: Vec::new(),
                ciphertext: vec![0; len],
            })?,
            Attempt::ReplaceDecryptedKey => {}
        }
        Ok(materials)
    }

    fn on_decrypt(&self, mut materials: DecryptionMaterials, _: &[EncryptedDataKey]) -> Result<DecryptionMaterials> {
        let len = materials.algorithm_suite().key_len();
        materials.set_data_key(DataKey::new(vec![0; len]))?;
        Ok(materials)
    }

    fn description(&self) -> String {
        format!("meddling keyring ({:?})", self.0)
    }
}

fn context() -> EncryptionContext {
    EncryptionContext::from_pairs([("purpose", "materials test")]).unwrap()
}

#[test]
fn an_outside_keyring_encrypts_and_decrypts_through_the_accessors() {
    let keyring = TestAesKeyring::sample();
    let client = Client::new();
    let message = client.encrypt_with_keyring(&keyring, b"outside keyring", &context()).unwrap();
    let decrypted = client.decrypt_with_keyring(&keyring, &message, &context()).unwrap();
    assert_eq!(decrypted.plaintext, b"outside keyring");
    assert_eq!(decrypted.header.provider_ids(), ["test-ns"]);

    // What the CMM hands back can be read, not rewritten.
    let cmm = DefaultCmm::new(&keyring);
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;
    let mut request = EncryptionMaterialsRequest::new(context(), CommitmentPolicy::default());
    request.algorithm_suite = Some(suite);
    let materials = cmm.get_encryption_materials(request).unwrap();
    assert_eq!(materials.algorithm_suite(), suite);
    assert_eq!(materials.data_key().map(DataKey::len), Some(suite.key_len()));
    assert_eq!(materials.encrypted_data_keys().len(), 1);
    assert!(materials.signing_key().is_some());
    assert!(materials.required_encryption_context_keys().is_empty());
    assert_eq!(materials.encryption_context().get("purpose"), Some("materials test"));
    assert!(materials.encryption_context().get("aws-crypto-public-key").is_some());
}

#[test]
fn a_second_or_misfit_data_key_and_a_keyless_edk_are_refused() {
    let client = Client::new();
    let generator: Arc<dyn Keyring> = Arc::new(TestAesKeyring::sample());
    // After the generator: a second data key is refused.
    let replacing = MultiKeyring::new(Some(generator.clone()), vec![Arc::new(Meddling(Attempt::ReplaceKey))]).unwrap();
    let err = client.encrypt_with_keyring(&replacing, b"x", &context()).unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert!(err.to_string().contains("already hold a data key"), "{err}");

    // As a generator: a key of the wrong length is refused, and so is an EDK
    // that wraps no data key.
    let err = client.encrypt_with_keyring(&Meddling(Attempt::WrongLength), b"x", &context()).unwrap_err();
    assert!(matches!(err, Error::InvalidKey { .. }), "{err:?}");
    let err = client.encrypt_with_keyring(&Meddling(Attempt::EdkWithoutKey), b"x", &context()).unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");

    // Directly, through the public setters.
    let suite = AlgorithmSuite::default();
    let mut m = EncryptionMaterials::new(suite, context());
    assert!(m.set_data_key(DataKey::new(vec![1; suite.key_len() - 1])).is_err());
    m.set_data_key(DataKey::new(vec![1; suite.key_len()])).unwrap();
    assert!(m.set_data_key(DataKey::new(vec![2; suite.key_len()])).is_err());
    assert_eq!(m.data_key().unwrap().as_bytes(), vec![1; suite.key_len()].as_slice());
}

#[test]
fn a_keyring_cannot_replace_the_key_another_one_opened() {
    let keyring = TestAesKeyring::sample();
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let encrypted = keyring.on_encrypt(EncryptionMaterials::new(suite, context())).unwrap();
    let edks = encrypted.encrypted_data_keys();
    let materials = keyring.on_decrypt(DecryptionMaterials::new(suite, context()), edks).unwrap();
    assert_eq!(materials.data_key(), encrypted.data_key());
    let err = Meddling(Attempt::ReplaceDecryptedKey).on_decrypt(materials.clone(), edks).unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert!(materials.verification_key().is_none());
    assert_eq!(materials.encryption_context(), &context());
}
