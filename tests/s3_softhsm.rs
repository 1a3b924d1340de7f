//! S3 objects with the wrapping key in a token (SoftHSM): a token AES key
//! (AES-GCM in the token) and a token RSA key pair (OAEP-SHA1 in the token)
//! write objects that memory keys holding the same key material open, and
//! the reverse; tampering and wrong keys keep their error kinds.

mod common;

use std::io::Read;

use hsm_keyring::crypto::RsaPadding;
use hsm_keyring::pkcs11::{Pkcs11AesKeyring, Pkcs11RsaKeyring, Pkcs11Uri, Token, TokenOptions};
use hsm_keyring::s3::{S3Crypto, S3Format, S3Keyring, S3Metadata};
use hsm_keyring::ErrorKind;

fn token(hsm: &common::SoftHsm) -> Token {
    let uri = Pkcs11Uri::parse(&hsm.token_uri()).unwrap();
    Token::open_with(&uri, TokenOptions::default().pool_size(2)).unwrap()
}

#[test]
fn token_aes_key_and_memory_key_open_each_others_objects() {
    let hsm = softhsm_or_skip!();
    let token = token(hsm);
    for (label, key) in [("s3-aes-128", vec![0x11u8; 16]), ("s3-aes-256", vec![0x22u8; 32])] {
        let uri = token.import_aes_key(label, &key, None).unwrap();
        let ours = S3Keyring::from_pkcs11_aes(&Pkcs11AesKeyring::new(token.clone(), &uri).unwrap());
        let memory = S3Keyring::aes(&key).unwrap();
        for format in [S3Format::V3, S3Format::V2] {
            let in_token = S3Crypto::new(ours.clone()).with_format(format).unwrap();
            let in_memory = S3Crypto::new(memory.clone()).with_format(format).unwrap();
            let plaintext = vec![7u8; 100_000];
            let (body, metadata) = in_token.encrypt(&plaintext).unwrap();
            let map = metadata.to_object_metadata().unwrap();
            let parsed = S3Metadata::from_object_metadata(&map).unwrap();
            assert_eq!(in_memory.decrypt(&parsed, &body).unwrap(), plaintext, "{label} {format:?}");
            let (body, metadata) = in_memory.encrypt(&plaintext).unwrap();
            let mut out = Vec::new();
            in_token.decrypting_reader(&metadata, &body[..]).unwrap().read_to_end(&mut out).unwrap();
            assert_eq!(out, plaintext, "{label} {format:?}");
            // Another key in the token: not this key.
            let mut tampered = map.clone();
            let edk_key = if format == S3Format::V3 { "x-amz-3" } else { "x-amz-key-v2" };
            let mut edk: Vec<u8> = base64_decode(&tampered[edk_key]);
            edk[20] ^= 1;
            tampered.insert(edk_key.into(), base64_encode(&edk));
            let err = in_token.decrypt(&S3Metadata::from_object_metadata(&tampered).unwrap(), &body).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotThisKey, "{err}");
        }
    }
}

#[test]
fn token_rsa_key_pair_and_memory_public_key() {
    let hsm = softhsm_or_skip!();
    let token = token(hsm);
    let uri = token.generate_rsa_key_pair("s3-rsa", 2048, None).unwrap();
    let pem = token.export_public_key_pem(&uri).unwrap();
    let ours = S3Keyring::from_pkcs11_rsa(&Pkcs11RsaKeyring::new(token, &uri, RsaPadding::OaepSha1).unwrap());
    let public = S3Keyring::rsa_from_public_pem(&pem).unwrap();
    for format in [S3Format::V3, S3Format::V2] {
        // Wrapped in process with the public key, unwrapped in the token.
        let (body, metadata) = S3Crypto::new(public.clone()).with_format(format).unwrap().encrypt(b"rsa").unwrap();
        let in_token = S3Crypto::new(ours.clone()).with_format(format).unwrap();
        assert_eq!(in_token.decrypt(&metadata, &body).unwrap(), b"rsa");
        let (body, metadata) = in_token.encrypt(b"rsa again").unwrap();
        assert_eq!(in_token.decrypt(&metadata, &body).unwrap(), b"rsa again");
        // Another RSA key's object.
        let other = S3Keyring::rsa_from_private_pem(include_str!("data/s3/rsa2048.pem")).unwrap();
        let (body, metadata) = S3Crypto::new(other).with_format(format).unwrap().encrypt(b"x").unwrap();
        let err = in_token.decrypt(&metadata, &body).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotThisKey, "{err}");
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}
