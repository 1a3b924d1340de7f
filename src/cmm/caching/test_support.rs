//! Test doubles of the caching CMM's tests: a counting CMM and a clock.

use std::thread;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{CachingCmm, CachingCmmBuilder, Clock};
use crate::crypto::{AeadKey, SoftwareSigner, IV_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::materials::context::PUBLIC_KEY_FIELD;
use crate::materials::{AlgorithmSuite, DataKey, FooterSigner};
use crate::materials::{
    CommitmentPolicy, CryptographicMaterialsManager, DecryptMaterialsRequest, DecryptionMaterials, EncryptedDataKey,
    EncryptionContext, EncryptionMaterials, EncryptionMaterialsRequest,
};

pub(super) const SUITE: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
pub(super) const POLICY: CommitmentPolicy = CommitmentPolicy::RequireEncryptRequireDecrypt;

/// A tiny AES-GCM "keyring" CMM that counts its calls.
#[derive(Debug)]
pub(super) struct TestCmm {
    wrapping: AeadKey,
    encrypt_calls: AtomicU64,
    pub(super) decrypt_calls: AtomicU64,
    pub(super) delay: Duration,
    pub(super) fail: bool,
    pub(super) last_max_len: Mutex<Option<u64>>,
}

impl TestCmm {
    pub(super) fn new() -> Self {
        TestCmm {
            wrapping: AeadKey::new(&[0x11; 32]).unwrap(),
            encrypt_calls: AtomicU64::new(0),
            decrypt_calls: AtomicU64::new(0),
            delay: Duration::ZERO,
            fail: false,
            last_max_len: Mutex::new(None),
        }
    }
    pub(super) fn calls(&self) -> u64 {
        self.encrypt_calls.load(Ordering::SeqCst)
    }
}

impl CryptographicMaterialsManager for TestCmm {
    fn get_encryption_materials(&self, request: EncryptionMaterialsRequest) -> Result<EncryptionMaterials> {
        self.encrypt_calls.fetch_add(1, Ordering::SeqCst);
        *self.last_max_len.lock().unwrap() = request.max_plaintext_length;
        thread::sleep(self.delay);
        if self.fail {
            return Err(Error::keyring("test", "refused"));
        }
        let suite = request.algorithm_suite.unwrap_or(request.commitment_policy.default_suite());
        let mut context = request.encryption_context.clone();
        let signer = suite.signature().map(SoftwareSigner::generate);
        if let Some(signer) = &signer {
            context.insert_reserved(PUBLIC_KEY_FIELD, format!("{:?}", signer.public_key()));
        }
        let mut materials = EncryptionMaterials::new(suite, context);
        if let Some(signer) = signer {
            materials.set_signing_key(Arc::new(signer))?;
        }
        let key = DataKey::generate(suite.key_len())?;
        let mut iv = [0u8; IV_LEN];
        crate::crypto::fill_random(&mut iv)?;
        let mut ct = key.as_bytes().to_vec();
        let tag = self.wrapping.seal_in_place(&iv, b"test", &mut ct)?;
        ct.extend_from_slice(&tag);
        materials.set_data_key(key)?;
        materials.add_encrypted_data_key(EncryptedDataKey {
            provider_id: "test".into(),
            provider_info: iv.to_vec(),
            ciphertext: ct,
        })?;
        Ok(materials)
    }

    fn decrypt_materials(&self, request: DecryptMaterialsRequest) -> Result<DecryptionMaterials> {
        self.decrypt_calls.fetch_add(1, Ordering::SeqCst);
        thread::sleep(self.delay);
        for edk in &request.encrypted_data_keys {
            let (Ok(iv), Some(split)) =
                (<[u8; IV_LEN]>::try_from(&edk.provider_info[..]), edk.ciphertext.len().checked_sub(TAG_LEN))
            else {
                continue;
            };
            let mut key = edk.ciphertext[..split].to_vec();
            let tag = <[u8; TAG_LEN]>::try_from(&edk.ciphertext[split..]).unwrap();
            if edk.provider_id == "test" && self.wrapping.open_in_place(&iv, b"test", &mut key, &tag).is_ok() {
                let mut m = DecryptionMaterials::new(request.algorithm_suite, request.encryption_context.clone());
                m.set_data_key(DataKey::new(key))?;
                return Ok(m);
            }
        }
        Err(Error::NotMine { keyring: "test".into(), edk_count: request.encrypted_data_keys.len() })
    }
}

#[derive(Debug)]
pub(super) struct TestClock {
    base: Instant,
    offset: Mutex<Duration>,
}

impl TestClock {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(TestClock { base: Instant::now(), offset: Mutex::new(Duration::ZERO) })
    }
    pub(super) fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap() += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> Instant {
        self.base + *self.offset.lock().unwrap()
    }
}

pub(super) fn ctx(value: &str) -> EncryptionContext {
    EncryptionContext::from_pairs([("purpose", value)]).unwrap()
}

pub(super) fn enc_request(context: &EncryptionContext, len: Option<u64>) -> EncryptionMaterialsRequest {
    let mut r = EncryptionMaterialsRequest::new(context.clone(), POLICY);
    r.algorithm_suite = Some(SUITE);
    r.max_plaintext_length = len;
    r
}

pub(super) fn key_of(m: &EncryptionMaterials) -> Vec<u8> {
    m.data_key().unwrap().as_bytes().to_vec()
}

pub(super) fn caching(inner: TestCmm) -> CachingCmmBuilder<TestCmm> {
    CachingCmm::builder(inner).max_age(Duration::from_secs(600))
}
