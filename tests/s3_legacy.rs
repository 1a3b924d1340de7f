//! Legacy V1 objects (AES-CBC, `x-amz-key`): refused without the legacy
//! opt-in, read with it, for each legacy key wrapping (`AESWrap`, `AES`
//! ECB inferred from a short key, `RSA` PKCS#1 v1.5 inferred from a long
//! one). The objects are built here from the primitives, as the old clients
//! wrote them.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockEncrypt, BlockEncryptMut, KeyInit, KeyIvInit};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hsm_keyring::crypto::{RsaPadding, RsaPrivateKey};
use hsm_keyring::s3::{ObjectMetadata, S3Crypto, S3Format, S3Keyring, S3Metadata};
use hsm_keyring::ErrorKind;

const RSA_2048: &str = include_str!("data/s3/rsa2048.pem");
const DATA_KEY: [u8; 32] = [0x44; 32];
const IV: [u8; 16] = [0x55; 16];
const PLAINTEXT: &[u8] = b"a legacy object, forty-something bytes long";

fn cbc_body() -> Vec<u8> {
    let mut buf = PLAINTEXT.to_vec();
    buf.resize(PLAINTEXT.len() + 16, 0);
    let len = cbc::Encryptor::<aes::Aes256>::new_from_slices(&DATA_KEY, &IV)
        .unwrap()
        .encrypt_padded_mut::<Pkcs7>(&mut buf, PLAINTEXT.len())
        .unwrap()
        .len();
    buf.truncate(len);
    buf
}

fn v1(edk: &[u8], wrap: Option<&str>) -> S3Metadata {
    let mut map = ObjectMetadata::new();
    map.insert("x-amz-key".into(), B64.encode(edk));
    map.insert("x-amz-iv".into(), B64.encode(IV));
    map.insert("x-amz-matdesc".into(), "{}".into());
    map.insert("x-amz-unencrypted-content-length".into(), PLAINTEXT.len().to_string());
    if let Some(wrap) = wrap {
        map.insert("x-amz-wrap-alg".into(), wrap.into());
    }
    let metadata = S3Metadata::from_object_metadata(&map).unwrap();
    assert_eq!(metadata.format(), S3Format::V1);
    metadata
}

fn aes_wrap(kek: &[u8; 32]) -> Vec<u8> {
    let mut out = vec![0u8; 40];
    aes_kw::KekAes256::from(*kek).wrap(&DATA_KEY, &mut out).unwrap();
    out
}

fn aes_ecb(kek: &[u8; 32]) -> Vec<u8> {
    let cipher = aes::Aes256::new_from_slice(kek).unwrap();
    let mut buf = DATA_KEY.to_vec();
    buf.extend_from_slice(&[16u8; 16]);
    for block in buf.chunks_exact_mut(16) {
        cipher.encrypt_block(GenericArray::from_mut_slice(block));
    }
    buf
}

#[test]
fn every_legacy_wrapping_reads_with_the_opt_in_only() {
    let kek = [0x66u8; 32];
    let rsa = RsaPrivateKey::from_pem(RSA_2048).unwrap();
    let cases = [
        ("AESWrap", v1(&aes_wrap(&kek), Some("AESWrap")), S3Keyring::aes(&kek).unwrap()),
        ("AES (inferred)", v1(&aes_ecb(&kek), None), S3Keyring::aes(&kek).unwrap()),
        (
            "RSA (inferred)",
            v1(&rsa.public_key().encrypt(RsaPadding::Pkcs1, &DATA_KEY).unwrap(), None),
            S3Keyring::rsa_from_private_pem(RSA_2048).unwrap(),
        ),
    ];
    let body = cbc_body();
    for (what, metadata, keyring) in cases {
        let crypto = S3Crypto::new(keyring);
        let err = crypto.decrypt(&metadata, &body).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage, "{what}: {err}");
        assert!(err.to_string().contains("legacy"), "{what}: {err}");
        let legacy = crypto.with_legacy_reads(true);
        assert_eq!(legacy.decrypt(&metadata, &body).unwrap(), PLAINTEXT, "{what}");
        // One shot only; no streaming or ranged reads of CBC bodies.
        assert!(legacy.decrypting_reader(&metadata, &body[..]).is_err(), "{what}");
        // A truncated body is refused.
        let err = legacy.decrypt(&metadata, &body[..body.len() - 1]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotAuthentic, "{what}: {err}");
    }
}

#[test]
fn legacy_wrong_keys_are_not_this_key() {
    let body = cbc_body();
    let metadata = v1(&aes_wrap(&[0x66; 32]), Some("AESWrap"));
    let other = S3Crypto::new(S3Keyring::aes(&[0x67; 32]).unwrap()).with_legacy_reads(true);
    let err = other.decrypt(&metadata, &body).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotThisKey, "{err}");
    assert!(err.to_string().contains("x-amz-key"), "{err}");
    let rsa = S3Crypto::new(S3Keyring::rsa_from_private_pem(RSA_2048).unwrap()).with_legacy_reads(true);
    let err = rsa.decrypt(&metadata, &body).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotThisKey, "{err}");
    // KMS-wrapped legacy objects need a KMS keyring.
    let kms = v1(&[0u8; 64], Some("kms"));
    let aes = S3Crypto::new(S3Keyring::aes(&[0x66; 32]).unwrap()).with_legacy_reads(true);
    assert_eq!(aes.decrypt(&kms, &body).unwrap_err().kind(), ErrorKind::NotThisKey);
}
