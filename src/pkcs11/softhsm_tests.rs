//! Tests on a SoftHSM token that need the crate's private primitive seam:
//! the token's AES-GCM wrap against software AES-GCM, and token signatures
//! against software verification.

#[path = "../../tests/common/mod.rs"]
mod common;

use super::{Pkcs11AesKeyring, Pkcs11Operation, Pkcs11RsaKeyring, Pkcs11Signer, Pkcs11Uri, Token, TokenOptions};
use crate::crypto::{self, AeadKey, RsaPadding, SignatureHasher, SoftwareSigner, IV_LEN, TAG_LEN};
use crate::error::Error;
use crate::materials::{
    AlgorithmSuite, DataKey, DecryptionMaterials, EncryptedDataKey, EncryptionContext, EncryptionMaterials,
    FooterSigner, Keyring, SignatureCurve,
};

fn token(hsm: &common::SoftHsm) -> Token {
    let uri = Pkcs11Uri::parse(&hsm.token_uri()).unwrap();
    Token::open_with(&uri, TokenOptions::default().pool_size(2)).unwrap()
}

fn context() -> EncryptionContext {
    EncryptionContext::from_pairs([("department", "x"), ("ü", "ß")]).unwrap()
}

#[test]
fn aes_edks_interoperate_with_software_aes_gcm_both_ways() {
    let Some(hsm) = common::softhsm() else { return };
    let token = token(hsm);
    let mut material = vec![0u8; 32];
    crypto::fill_random(&mut material).unwrap();
    let uri = token.import_aes_key("interop-aes", &material, None).unwrap();
    let keyring = Pkcs11AesKeyring::new(token, &uri).unwrap().with_namespace("interop-ns").unwrap();
    let software = AeadKey::new(&material).unwrap();
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let aad = context().serialize().unwrap();

    // Token wraps, software opens (parsing the raw AES layout by hand).
    let enc = keyring.on_encrypt(EncryptionMaterials::new(suite, context())).unwrap();
    let edk = &enc.encrypted_data_keys[0];
    assert_eq!(edk.provider_id, "interop-ns");
    let info = &edk.provider_info;
    let name_len = info.len() - 4 - 4 - IV_LEN;
    assert_eq!(&info[..name_len], b"interop-aes");
    assert_eq!(u32::from_be_bytes(info[name_len..name_len + 4].try_into().unwrap()), 128);
    assert_eq!(u32::from_be_bytes(info[name_len + 4..name_len + 8].try_into().unwrap()), 12);
    let iv: [u8; IV_LEN] = info[name_len + 8..].try_into().unwrap();
    let (ct, tag) = edk.ciphertext.split_at(edk.ciphertext.len() - TAG_LEN);
    let mut buf = ct.to_vec();
    software.open_in_place(&iv, &aad, &mut buf, tag.try_into().unwrap()).unwrap();
    assert_eq!(Some(&DataKey::new(buf)), enc.plaintext_data_key.as_ref());
    // Wrong AAD fails in software too.
    let mut buf = ct.to_vec();
    assert!(software.open_in_place(&iv, b"other", &mut buf, tag.try_into().unwrap()).is_err());

    // Software wraps, token opens.
    let data_key = DataKey::generate(32).unwrap();
    let mut iv = [0u8; IV_LEN];
    crypto::fill_random(&mut iv).unwrap();
    let mut ciphertext = data_key.as_bytes().to_vec();
    let tag = software.seal_in_place(&iv, &aad, &mut ciphertext).unwrap();
    ciphertext.extend_from_slice(&tag);
    let mut provider_info = b"interop-aes".to_vec();
    provider_info.extend_from_slice(&128u32.to_be_bytes());
    provider_info.extend_from_slice(&12u32.to_be_bytes());
    provider_info.extend_from_slice(&iv);
    let edk = EncryptedDataKey { provider_id: "interop-ns".into(), provider_info, ciphertext };
    let dec = keyring.on_decrypt(DecryptionMaterials::new(suite, context()), &[edk]).unwrap();
    assert_eq!(dec.plaintext_data_key, Some(data_key));
}

#[test]
fn token_signer_signs_digests_that_verify_with_its_pinned_key_only() {
    let Some(hsm) = common::softhsm() else { return };
    let token = token(hsm);
    let uri = token.generate_ec_p384_key_pair("signer-p384", None).unwrap();
    let signer = Pkcs11Signer::new(token.clone(), &uri).unwrap();
    assert_eq!(signer.curve(), SignatureCurve::P384);
    let public = signer.public_key();
    assert_eq!(public.len(), 49);
    assert!(public[0] == 2 || public[0] == 3);
    assert_eq!(super::trusted_signer_from_pem(&signer.public_key_pem().unwrap()).unwrap(), public);
    assert_eq!(super::trusted_signer_from_token(&token, &uri).unwrap(), public);

    let mut hasher = SignatureHasher::new(SignatureCurve::P384);
    hasher.update(b"header and body bytes");
    let digest = hasher.finalize();
    let der = signer.sign_digest(&digest).unwrap();
    crypto::ecdsa_verify_digest(SignatureCurve::P384, &public, &digest, &der).unwrap();
    // Another key, another digest, a damaged signature: all refused.
    let stranger = SoftwareSigner::generate(SignatureCurve::P384).public_key();
    assert!(crypto::ecdsa_verify_digest(SignatureCurve::P384, &stranger, &digest, &der).is_err());
    let mut other = digest.clone();
    other[0] ^= 1;
    assert!(crypto::ecdsa_verify_digest(SignatureCurve::P384, &public, &other, &der).is_err());
    let mut bad = der.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(crypto::ecdsa_verify_digest(SignatureCurve::P384, &public, &digest, &bad).is_err());
    // A digest of the wrong length is refused before the token is asked.
    assert!(signer.sign_digest(&digest[..32]).is_err());
    // A second key in the token gives a different public key.
    let uri2 = token.generate_ec_p384_key_pair("signer-p384-b", None).unwrap();
    let signer2 = Pkcs11Signer::new(token, &uri2).unwrap();
    assert_ne!(signer2.public_key(), public);
    let der2 = signer2.sign_digest(&digest).unwrap();
    assert!(crypto::ecdsa_verify_digest(SignatureCurve::P384, &public, &digest, &der2).is_err());
}

/// The message of a configuration error, or a panic naming what came instead.
fn config_reason<T: std::fmt::Debug>(result: crate::error::Result<T>) -> String {
    match result {
        Err(Error::Config { reason }) => reason,
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[test]
fn constructors_check_the_key_uri_alike_and_name_the_key_canonically() {
    let Some(hsm) = common::softhsm() else { return };
    let token = token(hsm);
    let aes = token.generate_aes_key("resolve-aes", Some(b"ra")).unwrap();
    let rsa = token.generate_rsa_key_pair("resolve-rsa", 2048, Some(b"rr")).unwrap();
    let ec = token.generate_ec_p384_key_pair("resolve-ec", Some(b"re")).unwrap();
    let with = |uri: &Pkcs11Uri, f: &dyn Fn(&mut Pkcs11Uri)| {
        let mut uri = uri.clone();
        f(&mut uri);
        uri
    };

    // Found by label alone, named by that label and the type on this token.
    let by_label = |uri: &Pkcs11Uri| with(uri, &|u| (u.id, u.object_type) = (None, None));
    let canonical = |uri: &Pkcs11Uri| with(uri, &|u| u.id = None);
    let keyring = Pkcs11AesKeyring::new(token.clone(), &by_label(&aes)).unwrap();
    assert_eq!(keyring.key_uri(), &canonical(&aes));
    let described = format!("PKCS#11 AES keyring hsm-keyring/resolve-aes ({})", canonical(&aes).to_path_string());
    assert_eq!(keyring.description(), described);
    let keyring = Pkcs11RsaKeyring::new(token.clone(), &by_label(&rsa), RsaPadding::OaepSha1).unwrap();
    assert_eq!(keyring.key_uri(), &canonical(&rsa));
    let described = format!("PKCS#11 RSA keyring hsm-keyring/resolve-rsa ({})", canonical(&rsa).to_path_string());
    assert_eq!(keyring.description(), described);
    // The private key is named whichever half the URI names.
    let public = with(&rsa, &|u| u.object_type = Some(super::ObjectType::Public));
    assert_eq!(Pkcs11RsaKeyring::new(token.clone(), &public, RsaPadding::OaepSha1).unwrap().key_uri(), &rsa);
    let by_id = with(&ec, &|u| (u.object, u.object_type) = (None, Some(super::ObjectType::Public)));
    let signer = Pkcs11Signer::new(token.clone(), &by_id).unwrap();
    assert_eq!(signer.key_uri(), &with(&ec, &|u| u.object = None));

    // A type the constructor does not take.
    let reason = config_reason(Pkcs11AesKeyring::new(token.clone(), &rsa));
    assert_eq!(reason, format!("an AES keyring needs a secret key, but {} names type=private", rsa.to_path_string()));
    let reason = config_reason(Pkcs11RsaKeyring::new(token.clone(), &aes, RsaPadding::OaepSha1));
    assert_eq!(reason, format!("an RSA keyring needs a key pair, but {} names type=secret-key", aes.to_path_string()));
    let reason = config_reason(Pkcs11Signer::new(token.clone(), &aes));
    assert_eq!(reason, format!("a signer needs an EC key pair, but {} names type=secret-key", aes.to_path_string()));
    // Another token, or no key at all.
    let elsewhere = with(&aes, &|u| u.token = Some("another-token".into()));
    assert!(config_reason(Pkcs11AesKeyring::new(token.clone(), &elsewhere)).contains("names token `another-token`"));
    let nameless = with(&aes, &|u| (u.object, u.id) = (None, None));
    assert!(matches!(Pkcs11AesKeyring::new(token.clone(), &nameless), Err(Error::InvalidUri { .. })));
    // A key that is not there is reported now.
    let missing = with(&aes, &|u| (u.object, u.id) = (Some("resolve-missing".into()), None));
    match Pkcs11AesKeyring::new(token.clone(), &missing) {
        Err(Error::Pkcs11(e)) => assert!(matches!(e.operation, Pkcs11Operation::FindKey), "{e:?}"),
        other => panic!("expected a failed lookup, got {other:?}"),
    }
    let missing_pair = with(&missing, &|u| u.object_type = None);
    assert!(matches!(Pkcs11RsaKeyring::new(token.clone(), &missing_pair, RsaPadding::OaepSha1), Err(Error::Pkcs11(_))));
}

#[test]
fn rsa_keyring_on_a_public_key_alone_wraps_but_does_not_unwrap() {
    let Some(hsm) = common::softhsm() else { return };
    let token = token(hsm);
    let rsa = token.generate_rsa_key_pair("resolve-rsa-public-only", 2048, None).unwrap();
    assert_eq!(token.delete_keys(&rsa).unwrap(), 1);
    // The keyring still names the private key; wrapping uses the public one.
    let keyring = Pkcs11RsaKeyring::new(token.clone(), &rsa, RsaPadding::OaepSha1).unwrap();
    assert_eq!(keyring.key_uri(), &rsa);
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let enc = keyring.on_encrypt(EncryptionMaterials::new(suite, context())).unwrap();
    assert_eq!(enc.encrypted_data_keys.len(), 1);
    let dec = keyring.on_decrypt(DecryptionMaterials::new(suite, context()), &enc.encrypted_data_keys);
    assert!(matches!(dec, Err(Error::Pkcs11(_))), "{dec:?}");
    // The signer has no such fallback.
    let ec = token.generate_ec_p384_key_pair("resolve-ec-public-only", None).unwrap();
    assert_eq!(token.delete_keys(&ec).unwrap(), 1);
    assert!(matches!(Pkcs11Signer::new(token, &ec), Err(Error::Pkcs11(_))));
}
