//! Unit tests of the `aws-esdk` adapters: suite, context, EDK, key and error
//! mappings, driven both through a toy keyring of ours and through the other
//! side's raw AES keyring.

use std::sync::Mutex;

use ::aws_esdk::material_providers::types::AesWrappingAlg;

use super::*;
use crate::materials::context::PUBLIC_KEY_FIELD;

/// What the toy keyring was given: suite, context, required keys, verification key.
type Seen = (AlgorithmSuite, EncryptionContext, Vec<String>, Option<Vec<u8>>);

/// A keyring of ours that "wraps" by XOR with a fixed pad and records what it saw.
#[derive(Debug, Default)]
struct ToyKeyring {
    seen: Mutex<Vec<Seen>>,
    fail_with: Option<&'static str>,
}

const TOY_ID: &str = "toy";

impl ToyKeyring {
    fn xor(bytes: &[u8]) -> Vec<u8> {
        bytes.iter().map(|b| b ^ 0x5A).collect()
    }

    fn record(&self, s: AlgorithmSuite, c: &EncryptionContext, r: &[String], v: Option<Vec<u8>>) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push((s, c.clone(), r.to_vec(), v));
        }
    }
}

impl Keyring for ToyKeyring {
    fn on_encrypt(&self, mut m: EncryptionMaterials) -> Result<EncryptionMaterials> {
        self.record(m.algorithm_suite(), m.encryption_context(), m.required_encryption_context_keys(), None);
        if let Some(reason) = self.fail_with {
            return Err(Error::keyring(self.description(), reason));
        }
        if m.data_key().is_none() {
            m.set_data_key(DataKey::generate(m.algorithm_suite().key_len())?)?;
        }
        let key = m.data_key().map(|k| Self::xor(k.as_bytes())).unwrap_or_default();
        m.add_encrypted_data_key(EncryptedDataKey {
            provider_id: TOY_ID.into(),
            provider_info: b"k1".to_vec(),
            ciphertext: key,
        })?;
        Ok(m)
    }

    fn on_decrypt(&self, mut m: DecryptionMaterials, edks: &[EncryptedDataKey]) -> Result<DecryptionMaterials> {
        self.record(
            m.algorithm_suite(),
            m.encryption_context(),
            m.required_encryption_context_keys(),
            m.verification_key().map(<[u8]>::to_vec),
        );
        if let Some(reason) = self.fail_with {
            return Err(Error::keyring(self.description(), reason));
        }
        let edk = edks
            .iter()
            .find(|e| e.provider_id == TOY_ID)
            .ok_or_else(|| Error::NotMine { keyring: self.description(), edk_count: edks.len() })?;
        m.set_data_key(DataKey::new(Self::xor(&edk.ciphertext)))?;
        Ok(m)
    }

    fn description(&self) -> String {
        "toy keyring".into()
    }
}

fn mpl() -> MplClient {
    let config = MaterialProvidersConfig::builder().build().expect("config");
    MplClient::from_conf(config).expect("mpl client")
}

fn their_raw_aes(key: &[u8], name: &str) -> KeyringRef {
    let fut = mpl()
        .create_raw_aes_keyring()
        .key_namespace("ns")
        .key_name(name)
        .wrapping_key(key.to_vec())
        .wrapping_alg(AesWrappingAlg::AlgAes256GcmIv12Tag16)
        .send();
    resolve_now(fut).expect("synchronous").expect("raw AES keyring")
}

/// A context as a CMM makes it: signed suites carry the public key field.
fn context_for(suite: AlgorithmSuite) -> EncryptionContext {
    let mut ctx = EncryptionContext::from_pairs([("purpose", "test"), ("größe", "groß")]).unwrap();
    if suite.is_signing() {
        ctx.insert_reserved(PUBLIC_KEY_FIELD, "A2Jhc2U2NC1wdWJsaWMta2V5".into());
    }
    ctx
}

fn their_enc_materials(suite: AlgorithmSuite, ctx: &EncryptionContext) -> EsdkEncryptionMaterials {
    EsdkEncryptionMaterials::builder()
        .algorithm_suite(suite_info(suite).unwrap())
        .encryption_context(context_to_esdk(ctx))
        .required_encryption_context_keys(vec!["purpose".to_owned()])
        .encrypted_data_keys(Vec::new())
        .set_signing_key(suite.is_signing().then(|| Blob::new(b"their signing key".to_vec())))
        .build()
        .unwrap()
}

#[test]
fn suite_names_and_ids_agree_with_the_other_side() {
    for suite in AlgorithmSuite::ALL {
        let theirs = esdk_algorithm_suite_id(suite);
        // Their Display prints the canonical name, which must be ours.
        assert_eq!(theirs.to_string(), suite.name(), "suite 0x{:04X}", suite.id());
        assert_eq!(suite_from_esdk(theirs), suite);
        // Their description of the suite carries our two-byte id.
        let info = suite_info(suite).unwrap();
        assert_eq!(info.binary_id.as_ref().map(|b| b.as_ref().to_vec()), Some(suite.id().to_be_bytes().to_vec()));
        assert_eq!(info.message_version, Some(i32::from(suite.message_format_version())));
        assert_eq!(suite_from_info(Some(&info)).unwrap(), suite);
    }
    assert_eq!(esdk_commitment_policy(CommitmentPolicy::default()), EsdkCommitmentPolicy::RequireEncryptRequireDecrypt);
    assert_eq!(
        esdk_commitment_policy(CommitmentPolicy::ForbidEncryptAllowDecrypt),
        EsdkCommitmentPolicy::ForbidEncryptAllowDecrypt
    );
}

#[test]
fn inconsistent_or_foreign_suites_are_refused() {
    let mut info = suite_info(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey).unwrap();
    info.binary_id = Some(Blob::new(vec![0x05, 0x78]));
    assert!(suite_from_info(Some(&info)).is_err(), "binary id and name disagree");
    info.binary_id = Some(Blob::new(vec![0x04]));
    assert!(suite_from_info(Some(&info)).is_err(), "one-byte id");
    info.binary_id = Some(Blob::new(vec![0x67, 0x00]));
    info.id = None;
    assert!(matches!(suite_from_info(Some(&info)), Err(Error::UnsupportedSuite(0x6700))));
    assert!(suite_from_info(None).is_err());
}

#[test]
fn context_keeps_reserved_keys_and_non_ascii() {
    let ctx = context_for(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384);
    let map = context_to_esdk(&ctx);
    assert_eq!(map.len(), 3);
    assert_eq!(map.get("größe").map(String::as_str), Some("groß"));
    let back = context_from_esdk(Some(&map));
    assert_eq!(back, ctx);
    assert!(back.get(PUBLIC_KEY_FIELD).is_some());
    assert!(context_from_esdk(None).is_empty());
}

#[test]
fn edks_map_both_ways_and_incomplete_ones_are_refused() {
    let ours = EncryptedDataKey { provider_id: "p".into(), provider_info: vec![0, 1, 0xff], ciphertext: vec![9; 40] };
    let theirs = edk_to_esdk(&ours).unwrap();
    assert_eq!(theirs.key_provider_info.as_ref().map(|b| b.as_ref()), Some(&[0u8, 1, 0xff][..]));
    assert_eq!(edk_from_esdk(&theirs).unwrap(), ours);
    let mut missing = theirs.clone();
    missing.ciphertext = None;
    assert!(edk_from_esdk(&missing).is_err());
}

#[test]
fn our_keyring_inside_theirs_maps_materials_faithfully() {
    for suite in [AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384, AlgorithmSuite::Aes128GcmIv12Tag16HkdfSha256] {
        let toy = Arc::new(ToyKeyring::default());
        let adapter = AwsEsdkKeyring::new(toy.clone());
        let ctx = context_for(suite);
        let input = OnEncryptInput::builder().materials(their_enc_materials(suite, &ctx)).build().unwrap();
        let out = adapter.on_encrypt(input).unwrap().materials.unwrap();
        let key = out.plaintext_data_key.clone().expect("data key set");
        assert_eq!(key.as_ref().len(), suite.key_len());
        let edks = out.encrypted_data_keys.clone().unwrap();
        assert_eq!(edks.len(), 1);
        assert_eq!(edks[0].key_provider_id.as_deref(), Some(TOY_ID));
        assert_eq!(edks[0].ciphertext.as_ref().map(|c| ToyKeyring::xor(c.as_ref())), Some(key.as_ref().to_vec()));
        // Everything a keyring must not touch came back unchanged.
        let before = their_enc_materials(suite, &ctx);
        assert_eq!(out.signing_key, before.signing_key);
        assert_eq!(out.encryption_context, before.encryption_context);
        assert_eq!(out.algorithm_suite, before.algorithm_suite);
        assert_eq!(out.required_encryption_context_keys, before.required_encryption_context_keys);
        // Our keyring saw the full context, reserved field included.
        let seen = toy.seen.lock().unwrap().pop().unwrap();
        assert_eq!(seen.0, suite);
        assert_eq!(seen.1, ctx);
        assert_eq!(seen.2, vec!["purpose".to_owned()]);

        // Decrypt through the adapter with the verification key passed along.
        let dm = EsdkDecryptionMaterials::builder()
            .algorithm_suite(suite_info(suite).unwrap())
            .encryption_context(context_to_esdk(&ctx))
            .required_encryption_context_keys(Vec::new())
            .set_verification_key(suite.is_signing().then(|| Blob::new(vec![2; 49])))
            .build()
            .unwrap();
        let input = OnDecryptInput::builder().materials(dm.clone()).encrypted_data_keys(edks.clone()).build().unwrap();
        let back = adapter.on_decrypt(input).unwrap().materials.unwrap();
        assert_eq!(back.plaintext_data_key, Some(key));
        assert_eq!(back.verification_key, dm.verification_key);
        let seen = toy.seen.lock().unwrap().pop().unwrap();
        assert_eq!(seen.3, suite.is_signing().then(|| vec![2; 49]));

        // EDKs of someone else: our "not mine" text reaches the other side.
        let mut foreign = edks[0].clone();
        foreign.key_provider_id = Some("other".into());
        let input = OnDecryptInput::builder().materials(dm).encrypted_data_keys(vec![foreign]).build().unwrap();
        let err = adapter.on_decrypt(input).unwrap_err();
        assert!(esdk_error_text(&err).contains("none of the 1 encrypted data keys"), "{err}");
    }
}

#[test]
fn our_errors_are_carried_into_theirs() {
    let adapter = AwsEsdkKeyring::new(ToyKeyring { fail_with: Some("token unplugged"), ..Default::default() });
    let ctx = EncryptionContext::new();
    let input = OnEncryptInput::builder()
        .materials(their_enc_materials(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, &ctx))
        .build()
        .unwrap();
    let err = adapter.on_encrypt(input).unwrap_err();
    assert!(matches!(&err, MplError::AwsCryptographicMaterialProvidersException { message }
        if message.contains("token unplugged") && message.contains("toy keyring")));
    let input = OnEncryptInput::builder().build().unwrap();
    assert!(adapter.on_encrypt(input).is_err(), "missing materials");
}

#[test]
fn their_raw_aes_keyring_inside_ours() {
    let theirs = FromAwsEsdk::new(their_raw_aes(&[7; 32], "k"), "aws-esdk raw AES ns/k");
    for suite in [AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384, AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha256] {
        let ctx = context_for(suite);
        let em = theirs.on_encrypt(EncryptionMaterials::new(suite, ctx.clone())).unwrap();
        let key = em.data_key().cloned().expect("generated");
        assert_eq!(key.len(), suite.key_len());
        assert_eq!(em.encrypted_data_keys().len(), 1);
        assert_eq!(em.encrypted_data_keys()[0].provider_id, "ns");
        assert!(em.signing_key().is_none(), "no placeholder leaks back");

        // A second wrap of the same key appends an EDK and keeps the key.
        let em2 = theirs.on_encrypt(em.clone()).unwrap();
        assert_eq!(em2.encrypted_data_keys().len(), 2);
        assert_eq!(em2.data_key(), em.data_key());

        let dm = theirs.on_decrypt(DecryptionMaterials::new(suite, ctx.clone()), em.encrypted_data_keys()).unwrap();
        assert_eq!(dm.data_key(), Some(&key));

        // The wrap is bound to the context: another context fails as "mine but failed".
        let mut other = ctx.clone();
        other.insert("purpose", "changed").unwrap();
        let err = theirs.on_decrypt(DecryptionMaterials::new(suite, other), em.encrypted_data_keys()).unwrap_err();
        assert!(matches!(err, Error::Keyring { .. }), "{err:?}");

        // EDKs that are not theirs: "not mine".
        let foreign = vec![EncryptedDataKey { provider_id: "x".into(), provider_info: vec![1], ciphertext: vec![2] }];
        let err = theirs.on_decrypt(DecryptionMaterials::new(suite, ctx.clone()), &foreign).unwrap_err();
        assert!(err.is_not_mine(), "{err:?}");

        // A tampered EDK of theirs fails too.
        let mut tampered = em.encrypted_data_keys().to_vec();
        if let Some(b) = tampered[0].ciphertext.last_mut() {
            *b ^= 1;
        }
        assert!(theirs.on_decrypt(DecryptionMaterials::new(suite, ctx), &tampered).is_err());
    }
}

#[test]
fn adapters_compose_both_ways() {
    // Ours -> theirs -> ours: the toy keyring seen through both adapters.
    let toy = Arc::new(ToyKeyring::default());
    let round = FromAwsEsdk::new(AwsEsdkKeyring::keyring_ref(toy.clone() as Arc<dyn Keyring>), "round trip");
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;
    let ctx = context_for(suite);
    let mut m = EncryptionMaterials::new(suite, ctx.clone());
    m.require_encryption_context_key("purpose").unwrap();
    let em = round.on_encrypt(m).unwrap();
    let seen = toy.seen.lock().unwrap().pop().unwrap();
    assert_eq!(seen.1, ctx);
    assert_eq!(seen.2, vec!["purpose".to_owned()]);
    let dm = round.on_decrypt(DecryptionMaterials::new(suite, ctx), em.encrypted_data_keys()).unwrap();
    assert_eq!(dm.data_key(), em.data_key());
    // Their wrapper of our failing keyring: our text survives the round trip.
    let failing = FromAwsEsdk::new(
        AwsEsdkKeyring::keyring_ref(ToyKeyring { fail_with: Some("slot 3 is gone"), ..Default::default() }),
        "failing",
    );
    let err = failing.on_encrypt(EncryptionMaterials::new(suite, EncryptionContext::new())).unwrap_err();
    assert!(err.to_string().contains("slot 3 is gone"), "{err}");
}

#[test]
fn their_not_mine_is_told_apart_from_their_failures() {
    let not_matched = |i: usize| MplError::AwsCryptographicMaterialProvidersException {
        message: format!("EncryptedDataKey {i} did not match RawAESKeyring. Expected: keyProviderId: ns"),
    };
    let all_foreign = MplError::CollectionOfErrors { list: vec![not_matched(0), not_matched(1)], message: "m".into() };
    assert!(error_from_esdk("k", &all_foreign, Some(2)).is_not_mine());
    // On encrypt there is no "not mine".
    assert!(!error_from_esdk("k", &all_foreign, None).is_not_mine());
    let one_failed = MplError::CollectionOfErrors {
        list: vec![
            not_matched(0),
            MplError::AwsCryptographicMaterialProvidersException { message: "AES-GCM tag mismatch".into() },
        ],
        message: "m".into(),
    };
    let err = error_from_esdk("k", &one_failed, Some(2));
    assert!(matches!(&err, Error::Keyring { reason, .. } if reason.contains("tag mismatch")), "{err:?}");
    let empty = MplError::CollectionOfErrors { list: Vec::new(), message: "m".into() };
    assert!(error_from_esdk("k", &empty, Some(0)).is_not_mine());
    // Our "not mine" survives a trip through their error type.
    let ours = Error::NotMine { keyring: "toy".into(), edk_count: 3 };
    assert!(error_from_esdk("toy", &error_to_esdk(&ours), Some(3)).is_not_mine());
}

/// Waits in `on_encrypt` until `n` callers are inside at once (or gives up).
#[derive(Debug)]
struct Rendezvous {
    n: usize,
    inside: Mutex<usize>,
    all_in: std::sync::Condvar,
}

impl Keyring for Rendezvous {
    fn on_encrypt(&self, m: EncryptionMaterials) -> Result<EncryptionMaterials> {
        let mut inside = self.inside.lock().map_err(|_| Error::crypto("poisoned"))?;
        *inside += 1;
        self.all_in.notify_all();
        let (inside, timeout) = self
            .all_in
            .wait_timeout_while(inside, std::time::Duration::from_secs(10), |count| *count < self.n)
            .map_err(|_| Error::crypto("poisoned"))?;
        drop(inside);
        if timeout.timed_out() {
            return Err(Error::keyring(self.description(), "callers were serialized"));
        }
        ToyKeyring::default().on_encrypt(m)
    }

    fn on_decrypt(&self, m: DecryptionMaterials, edks: &[EncryptedDataKey]) -> Result<DecryptionMaterials> {
        ToyKeyring::default().on_decrypt(m, edks)
    }

    fn description(&self) -> String {
        "rendezvous keyring".into()
    }
}

#[test]
fn adapter_does_not_serialize_callers() {
    let shared: Arc<dyn Keyring> = Arc::new(Rendezvous { n: 2, inside: Mutex::new(0), all_in: Default::default() });
    let adapter = AwsEsdkKeyring::new(shared);
    let handles: Vec<_> = (0..2)
        .map(|_| {
            // One KeyringRef per thread (each has its own lock on the other side).
            let keyring_ref = KeyringRef::from(adapter.clone());
            std::thread::spawn(move || {
                let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
                let input = OnEncryptInput::builder()
                    .materials(their_enc_materials(suite, &context_for(suite)))
                    .build()
                    .unwrap();
                let guard = keyring_ref.inner.lock().unwrap();
                guard.on_encrypt(input).map(|_| ()).map_err(|e| esdk_error_text(&e))
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), Ok(()));
    }
}
