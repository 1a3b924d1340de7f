//! The bytes of the EDKs the token keyrings write, checked against an
//! independent computation: a token AES key writes exactly the raw AES
//! layout (AES-GCM computed here with the `aes-gcm` crate over the same key
//! material and the IV the EDK carries), so the in-memory raw AES keyring
//! with the same key opens it and writes the same bytes for the same IV; a
//! token RSA key writes the raw RSA layout (provider info = key name) that
//! the in-memory raw RSA keyring over the exported public key matches.

mod common;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use hsm_keyring::crypto::RsaPadding;
use hsm_keyring::keyrings::{RawAesKeyring, RawRsaKeyring};
use hsm_keyring::pkcs11::{Pkcs11AesKeyring, Pkcs11RsaKeyring, Pkcs11Uri, Token, TokenOptions};
use hsm_keyring::{AlgorithmSuite, DataKey, DecryptionMaterials, EncryptionContext, EncryptionMaterials, Keyring};

const SUITE: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;

fn token(hsm: &common::SoftHsm) -> Token {
    let uri = Pkcs11Uri::parse(&hsm.token_uri()).unwrap();
    Token::open_with(&uri, TokenOptions::default().pool_size(2)).unwrap()
}

fn context() -> EncryptionContext {
    EncryptionContext::from_pairs([("purpose", "edk bytes"), ("tenant", "b")]).unwrap()
}

fn wrap(keyring: &dyn Keyring, data_key: &DataKey) -> hsm_keyring::EncryptedDataKey {
    let mut materials = EncryptionMaterials::new(SUITE, context());
    materials.set_data_key(data_key.clone()).unwrap();
    let materials = keyring.on_encrypt(materials).unwrap();
    materials.encrypted_data_keys()[0].clone()
}

#[test]
fn token_aes_edk_is_the_raw_aes_layout_byte_for_byte() {
    let hsm = softhsm_or_skip!();
    let token = token(hsm);
    let key = [0x5Au8; 32];
    let uri = token.import_aes_key("edk-bytes-aes", &key, None).unwrap();
    let ours = Pkcs11AesKeyring::new(token, &uri).unwrap().with_namespace("bytes-ns").unwrap();
    let data_key = DataKey::new((100u8..132).collect());
    let edk = wrap(&ours, &data_key);

    // provider info = name || 128 (u32 BE) || 12 (u32 BE) || IV
    let name = b"edk-bytes-aes";
    assert_eq!(edk.provider_id, "bytes-ns");
    assert_eq!(&edk.provider_info[..name.len()], name);
    assert_eq!(&edk.provider_info[name.len()..name.len() + 8], &[0, 0, 0, 128, 0, 0, 0, 12]);
    let iv: [u8; 12] = edk.provider_info[name.len() + 8..].try_into().unwrap();
    // ciphertext = AES-256-GCM(key, IV, AAD = serialized context) of the data key, then the tag.
    let aad = context().serialize().unwrap();
    let mut expected = data_key.as_bytes().to_vec();
    let tag = Aes256Gcm::new_from_slice(&key)
        .unwrap()
        .encrypt_in_place_detached(Nonce::from_slice(&iv), &aad, &mut expected)
        .unwrap();
    expected.extend_from_slice(&tag);
    assert_eq!(edk.ciphertext, expected);

    // The in-memory keyring over the same key material opens it.
    let memory = RawAesKeyring::new("bytes-ns", "edk-bytes-aes", &key).unwrap();
    let opened = memory.on_decrypt(DecryptionMaterials::new(SUITE, context()), std::slice::from_ref(&edk)).unwrap();
    assert_eq!(opened.data_key(), Some(&data_key));
    // And the token opens what the memory keyring writes.
    let theirs = wrap(&memory, &data_key);
    let opened = ours.on_decrypt(DecryptionMaterials::new(SUITE, context()), std::slice::from_ref(&theirs)).unwrap();
    assert_eq!(opened.data_key(), Some(&data_key));
}

#[test]
fn token_rsa_edk_is_the_raw_rsa_layout() {
    let hsm = softhsm_or_skip!();
    let token = token(hsm);
    let uri = token.generate_rsa_key_pair("edk-bytes-rsa", 2048, None).unwrap();
    let pem = token.export_public_key_pem(&uri).unwrap();
    let ours = Pkcs11RsaKeyring::new(token, &uri, RsaPadding::OaepSha1).unwrap();
    let public = RawRsaKeyring::from_public_pem("hsm-keyring", "edk-bytes-rsa", RsaPadding::OaepSha1, &pem).unwrap();
    let data_key = DataKey::new((0u8..32).collect());
    let mine = wrap(&ours, &data_key);
    let theirs = wrap(&public, &data_key);
    // Same provider id and info; the ciphertext is randomized (OAEP), of the modulus size.
    assert_eq!((mine.provider_id.as_str(), mine.provider_info.as_slice()), ("hsm-keyring", &b"edk-bytes-rsa"[..]));
    assert_eq!((&theirs.provider_id, &theirs.provider_info), (&mine.provider_id, &mine.provider_info));
    assert_eq!(mine.ciphertext.len(), 256);
    assert_eq!(theirs.ciphertext.len(), 256);
    // The token opens both.
    for edk in [mine, theirs] {
        let opened = ours.on_decrypt(DecryptionMaterials::new(SUITE, context()), &[edk]).unwrap();
        assert_eq!(opened.data_key(), Some(&data_key));
    }
}
