//! S3 objects: every metadata field and the body altered, each refused with
//! an error naming the field and of the right kind ("malformed", "not
//! authentic", "not this key"); wrong keys.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hsm_keyring::s3::{ObjectMetadata, S3Crypto, S3Format, S3Keyring, S3Metadata};
use hsm_keyring::ErrorKind;

const RSA_2048: &str = include_str!("data/s3/rsa2048.pem");
const RSA_3072: &str = include_str!("data/s3/rsa3072.pem");

fn desc() -> BTreeMap<String, String> {
    [("purpose".to_owned(), "test".to_owned())].into()
}

fn keyrings() -> Vec<(&'static str, S3Keyring)> {
    vec![
        ("aes", S3Keyring::aes(&[3u8; 32]).unwrap().with_material_description(desc())),
        ("rsa", S3Keyring::rsa_from_private_pem(RSA_2048).unwrap().with_material_description(desc())),
    ]
}

fn flip_b64(value: &str, at: usize) -> String {
    let mut bytes = B64.decode(value).unwrap();
    let at = at % bytes.len();
    bytes[at] ^= 0x01;
    B64.encode(bytes)
}

/// Decrypt `body` with `map` as the object metadata; the error, which must exist.
fn refused(crypto: &S3Crypto, map: &ObjectMetadata, body: &[u8]) -> hsm_keyring::Error {
    match S3Metadata::from_object_metadata(map) {
        Err(e) => e,
        Ok(metadata) => crypto.decrypt(&metadata, body).expect_err("altered object accepted"),
    }
}

fn check(crypto: &S3Crypto, map: &ObjectMetadata, body: &[u8], field: &str, kind: ErrorKind, what: &str) {
    let err = refused(crypto, map, body);
    assert_eq!(err.kind(), kind, "{what}: {err}");
    assert!(err.to_string().contains(field), "{what}: error does not name `{field}`: {err}");
}

#[test]
fn every_v3_field_altered_is_refused() {
    for (name, keyring) in keyrings() {
        let crypto = S3Crypto::new(keyring);
        let (body, metadata) = crypto.encrypt(b"tamper me, V3").unwrap();
        let map = metadata.to_object_metadata().unwrap();
        let with = |key: &str, value: &str| {
            let mut m = map.clone();
            m.insert(key.to_owned(), value.to_owned());
            m
        };
        let without = |key: &str| {
            let mut m = map.clone();
            m.remove(key);
            m
        };
        let what = |s: &str| format!("{name}: {s}");
        check(&crypto, &with("x-amz-c", "114"), &body, "x-amz-c", ErrorKind::Malformed, &what("suite"));
        check(
            &crypto,
            &with("x-amz-3", &flip_b64(&map["x-amz-3"], 20)),
            &body,
            "x-amz-3",
            ErrorKind::NotThisKey,
            &what("edk"),
        );
        check(&crypto, &with("x-amz-3", "!!"), &body, "x-amz-3", ErrorKind::Malformed, &what("edk base64"));
        let other_wrap = if name == "aes" { "22" } else { "02" };
        check(&crypto, &with("x-amz-w", other_wrap), &body, "x-amz-w", ErrorKind::NotThisKey, &what("wrap"));
        check(&crypto, &with("x-amz-w", "12"), &body, "x-amz-w", ErrorKind::NotThisKey, &what("wrap kms"));
        check(&crypto, &with("x-amz-w", "99"), &body, "x-amz-w", ErrorKind::Malformed, &what("wrap unknown"));
        check(
            &crypto,
            &with("x-amz-d", &flip_b64(&map["x-amz-d"], 3)),
            &body,
            "x-amz-d",
            ErrorKind::NotAuthentic,
            &what("commitment"),
        );
        check(
            &crypto,
            &with("x-amz-i", &flip_b64(&map["x-amz-i"], 5)),
            &body,
            "x-amz-i",
            ErrorKind::NotAuthentic,
            &what("message id"),
        );
        check(&crypto, &with("x-amz-i", "AAAA"), &body, "x-amz-i", ErrorKind::Malformed, &what("message id length"));
        check(
            &crypto,
            &with("x-amz-m", r#"{"purpose":"other"}"#),
            &body,
            "x-amz-m",
            ErrorKind::NotThisKey,
            &what("matdesc"),
        );
        check(&crypto, &with("x-amz-m", "[1]"), &body, "x-amz-m", ErrorKind::Malformed, &what("matdesc json"));
        for key in ["x-amz-c", "x-amz-w", "x-amz-d", "x-amz-i"] {
            check(&crypto, &without(key), &body, key, ErrorKind::Malformed, &what("missing"));
        }
        check(&crypto, &with("x-amz-key-v2", &map["x-amz-3"]), &body, "x-amz-3", ErrorKind::Malformed, &what("mixed"));
    }
}

#[test]
fn every_v2_field_altered_is_refused() {
    for (name, keyring) in keyrings() {
        let crypto = S3Crypto::new(keyring).with_format(S3Format::V2).unwrap();
        let (body, metadata) = crypto.encrypt(b"tamper me, V2").unwrap();
        let map = metadata.to_object_metadata().unwrap();
        let with = |key: &str, value: &str| {
            let mut m = map.clone();
            m.insert(key.to_owned(), value.to_owned());
            m
        };
        let what = |s: &str| format!("{name}: {s}");
        check(
            &crypto,
            &with("x-amz-key-v2", &flip_b64(&map["x-amz-key-v2"], 20)),
            &body,
            "x-amz-key-v2",
            ErrorKind::NotThisKey,
            &what("edk"),
        );
        check(
            &crypto,
            &with("x-amz-iv", &flip_b64(&map["x-amz-iv"], 0)),
            &body,
            "x-amz-iv",
            ErrorKind::NotAuthentic,
            &what("iv"),
        );
        check(&crypto, &with("x-amz-iv", "AAAA"), &body, "x-amz-iv", ErrorKind::Malformed, &what("iv length"));
        check(
            &crypto,
            &with("x-amz-cek-alg", "AES/CTR/NoPadding"),
            &body,
            "x-amz-cek-alg",
            ErrorKind::Malformed,
            &what("cek"),
        );
        check(&crypto, &with("x-amz-tag-len", "96"), &body, "x-amz-tag-len", ErrorKind::Malformed, &what("tag len"));
        let other_wrap = if name == "aes" { "RSA-OAEP-SHA1" } else { "AES/GCM" };
        check(
            &crypto,
            &with("x-amz-wrap-alg", other_wrap),
            &body,
            "x-amz-wrap-alg",
            ErrorKind::NotThisKey,
            &what("wrap"),
        );
        check(
            &crypto,
            &with("x-amz-wrap-alg", "kms+context"),
            &body,
            "x-amz-wrap-alg",
            ErrorKind::NotThisKey,
            &what("kms"),
        );
        check(&crypto, &with("x-amz-matdesc", "{}"), &body, "x-amz-matdesc", ErrorKind::NotThisKey, &what("matdesc"));
        let mut no_tag_len = map.clone();
        no_tag_len.remove("x-amz-tag-len");
        let metadata = S3Metadata::from_object_metadata(&no_tag_len).unwrap();
        assert_eq!(crypto.decrypt(&metadata, &body).unwrap(), b"tamper me, V2", "{name}: x-amz-tag-len is optional");
        for key in ["x-amz-iv", "x-amz-cek-alg", "x-amz-wrap-alg"] {
            let mut m = map.clone();
            m.remove(key);
            check(&crypto, &m, &body, key, ErrorKind::Malformed, &what("missing"));
        }
    }
}

#[test]
fn v3_metadata_from_another_object_is_refused() {
    // The wrapped key and commitment of one object with the body of another.
    let crypto = S3Crypto::new(S3Keyring::aes(&[3u8; 32]).unwrap());
    let (body_a, _) = crypto.encrypt(b"object a").unwrap();
    let (_, metadata_b) = crypto.encrypt(b"object b").unwrap();
    let err = crypto.decrypt(&metadata_b, &body_a).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotAuthentic, "{err}");
}

#[test]
fn body_altered_truncated_or_extended_is_not_authentic() {
    for format in [S3Format::V3, S3Format::V2] {
        let crypto = S3Crypto::new(S3Keyring::aes(&[3u8; 32]).unwrap()).with_format(format).unwrap();
        let (body, metadata) = crypto.encrypt(b"the body").unwrap();
        let mut flipped = body.clone();
        flipped[0] ^= 0x80;
        let mut tag_flipped = body.clone();
        *tag_flipped.last_mut().unwrap() ^= 1;
        let mut extended = body.clone();
        extended.push(0);
        for (what, bad) in [
            ("flipped", flipped),
            ("tag", tag_flipped),
            ("truncated", body[..body.len() - 1].to_vec()),
            ("extended", extended),
            ("short", body[..5].to_vec()),
        ] {
            let err = crypto.decrypt(&metadata, &bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotAuthentic, "{format:?} {what}: {err}");
        }
    }
}

#[test]
fn wrong_keys_are_not_this_key() {
    for format in [S3Format::V3, S3Format::V2] {
        let aes = S3Crypto::new(S3Keyring::aes(&[3u8; 32]).unwrap()).with_format(format).unwrap();
        let rsa = S3Crypto::new(S3Keyring::rsa_from_private_pem(RSA_2048).unwrap()).with_format(format).unwrap();
        let (aes_body, aes_meta) = aes.encrypt(b"k").unwrap();
        let (rsa_body, rsa_meta) = rsa.encrypt(b"k").unwrap();
        let other_aes = S3Crypto::new(S3Keyring::aes(&[4u8; 32]).unwrap());
        let other_rsa = S3Crypto::new(S3Keyring::rsa_from_private_pem(RSA_3072).unwrap());
        for (what, crypto, meta, body) in [
            ("other aes", &other_aes, &aes_meta, &aes_body),
            ("other rsa", &other_rsa, &rsa_meta, &rsa_body),
            ("rsa for aes", &rsa, &aes_meta, &aes_body),
            ("aes for rsa", &aes, &rsa_meta, &rsa_body),
        ] {
            let err = crypto.decrypt(meta, body).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotThisKey, "{format:?} {what}: {err}");
        }
    }
    // An encrypt-only RSA keyring refuses to decrypt, as not this key.
    let public_pem = hsm_keyring::crypto::RsaPrivateKey::from_pem(RSA_2048).unwrap().public_key().to_pem().unwrap();
    let encrypt_only = S3Crypto::new(S3Keyring::rsa_from_public_pem(&public_pem).unwrap());
    let (body, metadata) = encrypt_only.encrypt(b"one way").unwrap();
    assert_eq!(encrypt_only.decrypt(&metadata, &body).unwrap_err().kind(), ErrorKind::NotThisKey);
    let full = S3Crypto::new(S3Keyring::rsa_from_private_pem(RSA_2048).unwrap());
    assert_eq!(full.decrypt(&metadata, &body).unwrap(), b"one way");
}
