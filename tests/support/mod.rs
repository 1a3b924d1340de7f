//! Test-only helpers: a small AES-256-GCM keyring using the raw AES keyring's
//! EDK layout, a counting wrapper, and error helpers.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hsm_keyring::{
    DataKey, DecryptionMaterials, EncryptedDataKey, EncryptionContext, EncryptionMaterials, Error, Keyring, Result,
};

/// AES-256-GCM wrapping keyring; provider info = name || 128 (u32) || 12 (u32) || IV,
/// ciphertext = wrapped key || tag, AAD = serialized full encryption context.
#[derive(Debug)]
pub struct TestAesKeyring {
    pub namespace: String,
    pub name: String,
    key: [u8; 32],
    pub decrypt_calls: AtomicUsize,
    pub encrypt_calls: AtomicUsize,
}

impl TestAesKeyring {
    pub fn new(namespace: &str, name: &str, key: [u8; 32]) -> Self {
        TestAesKeyring {
            namespace: namespace.into(),
            name: name.into(),
            key,
            decrypt_calls: AtomicUsize::new(0),
            encrypt_calls: AtomicUsize::new(0),
        }
    }

    pub fn sample() -> Self {
        Self::new("test-ns", "test-key", [0x42; 32])
    }

    pub fn decrypt_calls(&self) -> usize {
        self.decrypt_calls.load(Ordering::SeqCst)
    }

    fn wrap(&self, data_key: &[u8], context: &EncryptionContext) -> Result<EncryptedDataKey> {
        let aad = context.serialize()?;
        let iv_bytes = DataKey::generate(12)?;
        let iv = iv_bytes.as_bytes().to_vec();
        let cipher = Aes256Gcm::new_from_slice(&self.key).expect("key length");
        let mut ct = data_key.to_vec();
        let tag = cipher.encrypt_in_place_detached(Nonce::from_slice(&iv), &aad, &mut ct).expect("seal");
        ct.extend_from_slice(&tag);
        let mut info = self.name.as_bytes().to_vec();
        info.extend_from_slice(&128u32.to_be_bytes());
        info.extend_from_slice(&12u32.to_be_bytes());
        info.extend_from_slice(&iv);
        Ok(EncryptedDataKey { provider_id: self.namespace.clone(), provider_info: info, ciphertext: ct })
    }

    fn unwrap_key(&self, edk: &EncryptedDataKey, context: &EncryptionContext) -> Option<Vec<u8>> {
        let n = self.name.len();
        let info = &edk.provider_info;
        if info.len() != n + 20 || &info[..n] != self.name.as_bytes() || edk.ciphertext.len() < 16 {
            return None;
        }
        let iv = &info[n + 8..];
        let aad = context.serialize().ok()?;
        let (ct, tag) = edk.ciphertext.split_at(edk.ciphertext.len() - 16);
        let mut buf = ct.to_vec();
        let cipher = Aes256Gcm::new_from_slice(&self.key).expect("key length");
        cipher.decrypt_in_place_detached(Nonce::from_slice(iv), &aad, &mut buf, Tag::from_slice(tag)).ok()?;
        Some(buf)
    }
}

impl Keyring for TestAesKeyring {
    fn on_encrypt(&self, mut materials: EncryptionMaterials) -> Result<EncryptionMaterials> {
        self.encrypt_calls.fetch_add(1, Ordering::SeqCst);
        if materials.data_key().is_none() {
            materials.set_data_key(DataKey::generate(materials.algorithm_suite().key_len())?)?;
        }
        let dk = materials.data_key().expect("data key").as_bytes().to_vec();
        let edk = self.wrap(&dk, materials.encryption_context())?;
        materials.add_encrypted_data_key(edk)?;
        Ok(materials)
    }

    fn on_decrypt(&self, mut materials: DecryptionMaterials, edks: &[EncryptedDataKey]) -> Result<DecryptionMaterials> {
        self.decrypt_calls.fetch_add(1, Ordering::SeqCst);
        let mut mine = false;
        for edk in edks.iter().filter(|e| e.provider_id == self.namespace) {
            mine = true;
            if let Some(dk) = self.unwrap_key(edk, materials.encryption_context()) {
                materials.set_data_key(DataKey::new(dk))?;
                return Ok(materials);
            }
        }
        if mine {
            Err(Error::Keyring { keyring: self.description(), reason: "unwrapping failed".into() })
        } else {
            Err(Error::NotMine { keyring: self.description(), edk_count: edks.len() })
        }
    }

    fn description(&self) -> String {
        format!("test AES keyring {}/{}", self.namespace, self.name)
    }
}

/// A keyring that wraps the data key for several extra "recipients" (same key,
/// different names), to make messages with many EDKs.
#[derive(Debug)]
pub struct ManyEdkKeyring {
    pub inner: TestAesKeyring,
    pub extra: usize,
}

impl Keyring for ManyEdkKeyring {
    fn on_encrypt(&self, materials: EncryptionMaterials) -> Result<EncryptionMaterials> {
        let mut m = self.inner.on_encrypt(materials)?;
        let dk = m.data_key().expect("data key").as_bytes().to_vec();
        for _ in 0..self.extra {
            let edk = self.inner.wrap(&dk, m.encryption_context())?;
            m.add_encrypted_data_key(edk)?;
        }
        Ok(m)
    }
    fn on_decrypt(&self, materials: DecryptionMaterials, edks: &[EncryptedDataKey]) -> Result<DecryptionMaterials> {
        self.inner.on_decrypt(materials, edks)
    }
    fn description(&self) -> String {
        self.inner.description()
    }
}

/// The crate error inside an `std::io::Error` from the streaming API.
pub fn io_to_error(e: &std::io::Error) -> Option<&Error> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<Error>())
}

/// Deterministic test data.
pub fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[1]).collect()
}

/// A client writing `suite` in frames of `frame_length`, under the commitment
/// policy that suite needs (committing suites required, others allowed).
pub fn client_for(suite: hsm_keyring::AlgorithmSuite, frame_length: u32) -> hsm_keyring::Client {
    use hsm_keyring::CommitmentPolicy;
    let policy = if suite.is_committing() {
        CommitmentPolicy::RequireEncryptRequireDecrypt
    } else {
        CommitmentPolicy::ForbidEncryptAllowDecrypt
    };
    hsm_keyring::Client::builder()
        .commitment_policy(policy)
        .algorithm_suite(suite)
        .frame_length(frame_length)
        .build()
        .unwrap()
}
