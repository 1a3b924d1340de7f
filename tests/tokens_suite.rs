//! The PKCS#11 suite on each software token: every test below runs once on
//! SoftHSM 2 (`softhsm::`) and once on Kryoptic (`kryoptic::`), through one
//! harness (`tests/common/tokens.rs`). Where the tokens differ (SoftHSM runs
//! RSA-OAEP with SHA-1 only), the test says so and checks each one's answer.
//!
//! Keys are made through the crate, with labels unique per test, on the
//! process's token of each backend.

mod common;

use std::sync::Arc;

use hsm_keyring::cmm::DefaultCmm;

use hsm_keyring::crypto::RsaPadding;
use hsm_keyring::pkcs11::{
    GcmIvMode, KeyKind, KeyUsage, ObjectType, Pkcs11AesKeyring, Pkcs11RsaKeyring, Pkcs11Signer, Pkcs11Uri, RsaWrapMode,
    Token, TokenOptions,
};
use hsm_keyring::{
    AlgorithmSuite, Client, DecryptionMaterials, EncryptedDataKey, EncryptionContext, EncryptionMaterials, Error,
    ErrorKind, FooterSigner, Keyring,
};

use common::{Backend, TestToken};

fn open(t: &TestToken) -> Token {
    Token::open_with(&Pkcs11Uri::parse(&t.token_uri()).unwrap(), TokenOptions::default().pool_size(2)).unwrap()
}

fn context() -> EncryptionContext {
    EncryptionContext::from_pairs([("purpose", "suite")]).unwrap()
}

fn wrap_unwrap(keyring: &dyn Keyring) -> Vec<EncryptedDataKey> {
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let enc = keyring.on_encrypt(EncryptionMaterials::new(suite, context())).unwrap();
    let dec = keyring.on_decrypt(DecryptionMaterials::new(suite, context()), enc.encrypted_data_keys()).unwrap();
    assert_eq!(dec.data_key(), enc.data_key());
    enc.encrypted_data_keys().to_vec()
}

fn client_round_trip(keyring: Arc<dyn Keyring>, signer: Option<Arc<dyn FooterSigner>>) {
    let suite = match signer {
        Some(_) => AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        None => AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
    };
    let client = Client::builder().algorithm_suite(suite).build().unwrap();
    let mut cmm = DefaultCmm::new(Arc::clone(&keyring));
    if let Some(signer) = signer.clone() {
        cmm = cmm.with_signer(signer);
    }
    let plaintext = b"a message through a token key".repeat(100);
    let message = client.encrypt(&cmm, &plaintext, &context()).unwrap();
    let opened = client.decrypt(&DefaultCmm::new(Arc::clone(&keyring)), &message, &context()).unwrap();
    assert_eq!(opened.plaintext, plaintext);
    assert_eq!(opened.header.algorithm_suite, suite);
    let mut tampered = message.clone();
    let at = tampered.len() - 20;
    tampered[at] ^= 1;
    let err = client.decrypt(&DefaultCmm::new(Arc::clone(&keyring)), &tampered, &context()).unwrap_err();
    assert!(err.is_authentication_failure(), "{err}");
    // A reader pinning the token signer's key accepts the message.
    if let Some(signer) = signer {
        let pinned = Client::builder().trusted_signers(vec![signer.public_key()]).build().unwrap();
        pinned.decrypt(&DefaultCmm::new(keyring), &message, &context()).unwrap();
    }
}

fn label(t: &TestToken, what: &str) -> String {
    format!("suite-{what}-{:?}", t.backend).to_lowercase()
}

token_suite! {
    fn profile_is_detected(t) {
        let token = open(t);
        let expected = match t.backend {
            Backend::SoftHsm => "softhsm",
            Backend::Kryoptic => "kryoptic",
        };
        assert_eq!(token.profile().name, expected);
    }

    fn generated_keys_have_safe_attributes(t) {
        let token = open(t);
        let aes = token.generate_aes_key(&label(t, "gen-aes"), None).unwrap();
        let rsa = token.generate_rsa_key_pair(&label(t, "gen-rsa"), 2048, None).unwrap();
        let ec = token.generate_ec_p384_key_pair(&label(t, "gen-ec"), None).unwrap();
        assert_eq!(aes.id.as_ref().map(Vec::len), Some(8));
        let keys = token.list_keys().unwrap();
        let find = |uri: &Pkcs11Uri, ty: ObjectType| {
            keys.iter()
                .find(|k| Some(&k.label) == uri.object.as_ref() && k.object_type == ty)
                .unwrap_or_else(|| panic!("{uri} {ty:?} listed"))
        };
        let secret = find(&aes, ObjectType::SecretKey);
        assert_eq!((secret.kind, secret.bits), (KeyKind::Aes, Some(256)));
        assert_eq!(secret.usages, vec![KeyUsage::Encrypt, KeyUsage::Decrypt]);
        for private in [secret, find(&rsa, ObjectType::Private), find(&ec, ObjectType::Private)] {
            assert_eq!(private.sensitive, Some(true), "{}", private.label);
            assert_eq!(private.extractable, Some(false), "{}", private.label);
        }
        assert_eq!(find(&rsa, ObjectType::Private).usages, vec![KeyUsage::Decrypt]);
        assert_eq!(find(&rsa, ObjectType::Public).usages, vec![KeyUsage::Encrypt]);
        assert_eq!(find(&ec, ObjectType::Private).usages, vec![KeyUsage::Sign]);
        // The public half can be exported (not private on either token).
        assert!(token.export_public_key_pem(&rsa).unwrap().starts_with("-----BEGIN PUBLIC KEY-----"));
        // A label in use is refused.
        assert_eq!(token.generate_aes_key(&label(t, "gen-aes"), None).unwrap_err().kind(), ErrorKind::Usage);
    }

    fn aes_keyring_wraps_and_unwraps(t) {
        let token = open(t);
        let uri = token.generate_aes_key(&label(t, "aes"), None).unwrap();
        let keyring = Pkcs11AesKeyring::new(token.clone(), &uri).unwrap();
        assert_eq!(keyring.iv_mode(), GcmIvMode::CallerRandom);
        let edks = wrap_unwrap(&keyring);
        // Tampered: the token refuses on a healthy session, "not this key".
        let mut bad = edks[0].clone();
        bad.ciphertext[3] ^= 0x10;
        let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
        let err = keyring.on_decrypt(DecryptionMaterials::new(suite, context()), &[bad]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotThisKey, "{err}");
        // Another context: also not this key.
        let other = EncryptionContext::from_pairs([("purpose", "other")]).unwrap();
        let err = keyring.on_decrypt(DecryptionMaterials::new(suite, other), &edks).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotThisKey, "{err}");
    }

    fn rsa_keyring_oaep_sha1_and_pkcs1_in_token(t) {
        let token = open(t);
        let uri = token.generate_rsa_key_pair(&label(t, "rsa1"), 2048, None).unwrap();
        for padding in [RsaPadding::OaepSha1, RsaPadding::Pkcs1] {
            let keyring = Pkcs11RsaKeyring::new(token.clone(), &uri, padding).unwrap();
            wrap_unwrap(&keyring);
            let in_process = keyring.with_wrap_mode(RsaWrapMode::InProcess).unwrap();
            wrap_unwrap(&in_process);
        }
    }

    fn rsa_keyring_oaep_sha256(t) {
        let token = open(t);
        let uri = token.generate_rsa_key_pair(&label(t, "rsa256"), 2048, None).unwrap();
        let keyring = Pkcs11RsaKeyring::new(token.clone(), &uri, RsaPadding::OaepSha256).unwrap();
        match t.backend {
            // Kryoptic runs OAEP-SHA-256 both ways.
            Backend::Kryoptic => {
                let edks = wrap_unwrap(&keyring);
                // A bad padding comes back as CKR_DEVICE_ERROR; on a healthy
                // session that is the token's refusal: "not this key".
                let mut bad = edks[0].clone();
                bad.ciphertext[7] ^= 0x10;
                let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
                let err = keyring.on_decrypt(DecryptionMaterials::new(suite, context()), &[bad]).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::NotThisKey, "{err}");
                wrap_unwrap(&keyring.with_wrap_mode(RsaWrapMode::InProcess).unwrap());
            }
            // SoftHSM 2.6 runs OAEP with SHA-1 only: its profile refuses
            // before calling the token, naming what it runs instead.
            Backend::SoftHsm => {
                let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
                let err = keyring.on_encrypt(EncryptionMaterials::new(suite, context())).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Token, "{err}");
                assert!(err.to_string().contains("RSA-OAEP with SHA-1"), "{err}");
                let in_process = keyring.with_wrap_mode(RsaWrapMode::InProcess).unwrap();
                let enc = in_process.on_encrypt(EncryptionMaterials::new(suite, context())).unwrap();
                let err = in_process
                    .on_decrypt(DecryptionMaterials::new(suite, context()), enc.encrypted_data_keys())
                    .unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Token, "{err}");
                assert!(!err.is_authentication_failure(), "{err}");
                let Error::Pkcs11(e) = &err else { panic!("{err:?}") };
                assert_eq!(e.operation_name(), "C_Decrypt", "{err}");
                assert!(err.to_string().contains("profile softhsm"), "{err}");
            }
        }
    }

    fn key_lookup_by_uri(t) {
        let token = open(t);
        let name = label(t, "lookup");
        let by_id = token.generate_aes_key(&name, Some(b"\x0a\x0b\x0c")).unwrap();
        // Label only, id only, and both.
        let by_label = Pkcs11Uri::parse(&t.key_uri(&name, "secret-key")).unwrap();
        let id_only = Pkcs11Uri { object: None, ..by_id.clone() };
        let a = Pkcs11AesKeyring::new(token.clone(), &by_label).unwrap();
        let b = Pkcs11AesKeyring::new(token.clone(), &id_only).unwrap().with_key_name(name.clone()).unwrap();
        let c = Pkcs11AesKeyring::new(token.clone(), &by_id).unwrap();
        // One key: what one wraps, the others unwrap.
        let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
        let enc = a.on_encrypt(EncryptionMaterials::new(suite, context())).unwrap();
        for k in [&b, &c] {
            k.on_decrypt(DecryptionMaterials::new(suite, context()), enc.encrypted_data_keys()).unwrap();
        }
        // An unknown label or id is a clear token error naming the lookup.
        let missing = Pkcs11Uri::parse(&t.key_uri("no-such-key", "secret-key")).unwrap();
        let err = Pkcs11AesKeyring::new(token.clone(), &missing).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Token, "{err}");
        assert!(err.to_string().contains("no-such-key"), "{err}");
        let wrong_id = Pkcs11Uri { id: Some(vec![0xee; 3]), ..by_id };
        assert!(Pkcs11AesKeyring::new(token, &wrong_id).is_err());
    }

    fn messages_with_token_keys_and_signer(t) {
        let token = open(t);
        let aes = token.generate_aes_key(&label(t, "msg-aes"), None).unwrap();
        let rsa = token.generate_rsa_key_pair(&label(t, "msg-rsa"), 2048, None).unwrap();
        let ec = token.generate_ec_p384_key_pair(&label(t, "msg-ec"), None).unwrap();
        let signer: Arc<dyn FooterSigner> = Arc::new(Pkcs11Signer::new(token.clone(), &ec).unwrap());
        client_round_trip(Arc::new(Pkcs11AesKeyring::new(token.clone(), &aes).unwrap()), None);
        client_round_trip(Arc::new(Pkcs11AesKeyring::new(token.clone(), &aes).unwrap()), Some(signer));
        let rsa = Pkcs11RsaKeyring::new(token, &rsa, RsaPadding::OaepSha1).unwrap();
        client_round_trip(Arc::new(rsa), None);
    }
}
