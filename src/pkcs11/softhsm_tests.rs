//! Tests on a SoftHSM token that need the crate's private primitive seam:
//! the token's AES-GCM wrap against software AES-GCM, and token signatures
//! against software verification.

#[path = "../../tests/common/mod.rs"]
mod common;

use super::{Pkcs11AesKeyring, Pkcs11Signer, Pkcs11Uri, Token, TokenOptions};
use crate::crypto::{self, AeadKey, SignatureHasher, SoftwareSigner, IV_LEN, TAG_LEN};
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
    let edk = &enc.encrypted_data_keys()[0];
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
    assert_eq!(Some(&DataKey::new(buf)), enc.data_key());
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
    assert_eq!(dec.data_key(), Some(&data_key));
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
