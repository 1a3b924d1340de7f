//! S3 objects: round trips for every format and keyring kind (in memory),
//! through every way in and out, instruction files, multipart parts, the
//! ranged-read and legacy opt-ins.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use hsm_keyring::s3::{
    instruction_file_key, MetadataLocation, ObjectMetadata, S3Crypto, S3Format, S3Keyring, S3Metadata, WrapAlgorithm,
};
use hsm_keyring::{Error, ErrorKind};
use proptest::prelude::*;

const RSA_2048: &str = include_str!("data/s3/rsa2048.pem");
const RSA_3072: &str = include_str!("data/s3/rsa3072.pem");

fn keyrings() -> Vec<(&'static str, S3Keyring)> {
    vec![
        ("aes-128", S3Keyring::aes(&[1u8; 16]).unwrap()),
        ("aes-192", S3Keyring::aes(&[2u8; 24]).unwrap()),
        ("aes-256", S3Keyring::aes(&[3u8; 32]).unwrap()),
        ("rsa-2048", S3Keyring::rsa_from_private_pem(RSA_2048).unwrap()),
        ("rsa-3072", S3Keyring::rsa_from_private_pem(RSA_3072).unwrap()),
    ]
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn every_format_and_keyring_round_trips_through_object_metadata() {
    for (name, keyring) in keyrings() {
        for format in [S3Format::V3, S3Format::V2] {
            let crypto = S3Crypto::new(keyring.clone()).with_format(format).unwrap();
            for len in [0usize, 1, 15, 16, 17, 1000] {
                let plaintext = data(len);
                let (body, metadata) = crypto.encrypt(&plaintext).unwrap();
                assert_eq!(body.len(), len + 16, "{name} {format:?}");
                assert_eq!(metadata.plaintext_len(body.len() as u64), Some(len as u64));
                let map = metadata.to_object_metadata().unwrap();
                assert_eq!(S3Metadata::location(&map), MetadataLocation::ObjectMetadata);
                let parsed = S3Metadata::from_object_metadata(&map).unwrap();
                assert_eq!(parsed, metadata);
                assert_eq!(crypto.decrypt(&parsed, &body).unwrap(), plaintext, "{name} {format:?} {len}");
            }
        }
    }
}

#[test]
fn metadata_keys_are_the_reference_clients() {
    let keyring = S3Keyring::aes(&[3u8; 32]).unwrap();
    let (_, v3) = S3Crypto::new(keyring.clone()).encrypt(b"x").unwrap();
    let map = v3.to_object_metadata().unwrap();
    let keys: Vec<&str> = map.keys().map(String::as_str).collect();
    assert_eq!(keys, ["x-amz-3", "x-amz-c", "x-amz-d", "x-amz-i", "x-amz-w"]);
    assert_eq!(map["x-amz-c"], "115");
    assert_eq!(map["x-amz-w"], "02");

    let crypto = S3Crypto::new(S3Keyring::rsa_from_private_pem(RSA_2048).unwrap()).with_format(S3Format::V2).unwrap();
    let (_, v2) = crypto.encrypt(b"x").unwrap();
    let map = v2.to_object_metadata().unwrap();
    let keys: Vec<&str> = map.keys().map(String::as_str).collect();
    assert_eq!(keys, ["x-amz-cek-alg", "x-amz-iv", "x-amz-key-v2", "x-amz-matdesc", "x-amz-tag-len", "x-amz-wrap-alg"]);
    assert_eq!(map["x-amz-cek-alg"], "AES/GCM/NoPadding");
    assert_eq!(map["x-amz-wrap-alg"], "RSA-OAEP-SHA1");
    assert_eq!(map["x-amz-tag-len"], "128");
    assert_eq!(map["x-amz-matdesc"], "{}");
    assert_eq!(v2.wrap_algorithm(), &WrapAlgorithm::RsaOaepSha1);
}

#[test]
fn material_description_is_written_and_required() {
    let desc: BTreeMap<String, String> = [("purpose".to_owned(), "backup".to_owned())].into();
    let keyring = S3Keyring::aes(&[3u8; 32]).unwrap().with_material_description(desc.clone());
    for format in [S3Format::V3, S3Format::V2] {
        let crypto = S3Crypto::new(keyring.clone()).with_format(format).unwrap();
        let (body, metadata) = crypto.encrypt(b"abc").unwrap();
        let map = metadata.to_object_metadata().unwrap();
        let field = if format == S3Format::V3 { "x-amz-m" } else { "x-amz-matdesc" };
        assert_eq!(map[field], r#"{"purpose":"backup"}"#);
        assert_eq!(S3Metadata::from_object_metadata(&map).unwrap().material_description(), &desc);
        // The same key without a description opens it; another description does not.
        assert_eq!(S3Crypto::new(S3Keyring::aes(&[3u8; 32]).unwrap()).decrypt(&metadata, &body).unwrap(), b"abc");
        let other = S3Keyring::aes(&[3u8; 32])
            .unwrap()
            .with_material_description([("purpose".to_owned(), "other".to_owned())].into());
        let err = S3Crypto::new(other).decrypt(&metadata, &body).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotThisKey);
        assert!(err.to_string().contains(field), "{err}");
    }
}

#[test]
fn instruction_file_round_trip() {
    for (name, keyring) in keyrings() {
        for format in [S3Format::V3, S3Format::V2] {
            let crypto = S3Crypto::new(keyring.clone()).with_format(format).unwrap();
            let (body, metadata) = crypto.encrypt(b"instruction file").unwrap();
            let (object, json) = metadata.to_instruction_file().unwrap();
            let kept: Vec<&str> = object.keys().map(String::as_str).collect();
            match format {
                S3Format::V3 => assert_eq!(kept, ["x-amz-c", "x-amz-d", "x-amz-i"], "{name}"),
                _ => assert!(kept.is_empty(), "{name}"),
            }
            // The user's own metadata lives beside it.
            let mut user: ObjectMetadata = [("owner".to_owned(), "me".to_owned())].into();
            user.extend(object);
            assert_eq!(S3Metadata::location(&user), MetadataLocation::InstructionFile);
            assert!(S3Metadata::from_object_metadata(&user).is_err());
            let parsed = S3Metadata::from_instruction_file(&user, &json).unwrap();
            assert_eq!(parsed, metadata);
            assert_eq!(crypto.decrypt(&parsed, &body).unwrap(), b"instruction file");
        }
    }
    assert_eq!(instruction_file_key("a/b.txt"), "a/b.txt.instruction");
}

#[test]
fn instruction_file_refuses_foreign_keys_and_non_strings() {
    let crypto = S3Crypto::new(S3Keyring::aes(&[3u8; 32]).unwrap());
    let (_, metadata) = crypto.encrypt(b"x").unwrap();
    let (object, json) = metadata.to_instruction_file().unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
    value["owner"] = "me".into();
    let err = S3Metadata::from_instruction_file(&object, &value.to_string()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Malformed);
    let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
    value["x-amz-w"] = 2.into();
    let err = S3Metadata::from_instruction_file(&object, &value.to_string()).unwrap_err();
    assert!(err.to_string().contains("x-amz-w"), "{err}");
    assert!(S3Metadata::from_instruction_file(&object, "not json").is_err());
    // The V3 content fields belong to the object metadata only.
    let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
    value["x-amz-d"] = object["x-amz-d"].clone().into();
    let err = S3Metadata::from_instruction_file(&object, &value.to_string()).unwrap_err();
    assert!(err.to_string().contains("x-amz-d"), "{err}");
}

#[test]
fn streaming_reader_and_writer_match_one_shot() {
    let keyring = S3Keyring::aes(&[3u8; 32]).unwrap();
    for format in [S3Format::V3, S3Format::V2] {
        let crypto = S3Crypto::new(keyring.clone()).with_format(format).unwrap().with_hold_back(1000);
        let plaintext = data(300_000);
        // Read -> Read.
        let mut reader = crypto.encrypting_reader(&plaintext[..]).unwrap();
        let metadata = reader.metadata().clone();
        let mut body = Vec::new();
        reader.read_to_end(&mut body).unwrap();
        assert_eq!(crypto.decrypt(&metadata, &body).unwrap(), plaintext);
        // Write -> Write, in odd pieces.
        let mut writer = crypto.encrypting_writer(Vec::new()).unwrap();
        let metadata = writer.metadata().unwrap().clone();
        for piece in plaintext.chunks(7777) {
            writer.write_all(piece).unwrap();
        }
        let body = writer.finish().unwrap();
        // Decrypting reader, read in small buffers.
        let mut reader = crypto.decrypting_reader(&metadata, &body[..]).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 333];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, plaintext);
    }
}

#[test]
fn multipart_parts_in_order_make_one_object() {
    let crypto = S3Crypto::new(S3Keyring::rsa_from_private_pem(RSA_2048).unwrap());
    let plaintext = data(5 * 1024 * 1024 + 123);
    let mut encryptor = crypto.encryptor().unwrap();
    let metadata = encryptor.metadata().clone();
    let parts: Vec<&[u8]> = plaintext.chunks(2 * 1024 * 1024).collect();
    let mut body = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let mut part = part.to_vec();
        encryptor.encrypt_part(&mut part, i + 1 == parts.len()).unwrap();
        body.extend_from_slice(&part);
    }
    assert_eq!(body.len(), plaintext.len() + 16);
    assert_eq!(crypto.decrypt(&metadata, &body).unwrap(), plaintext);
    // After the last part nothing more is accepted.
    assert!(encryptor.update(&mut [0u8; 4]).is_err());
}

#[test]
fn decrypt_to_file_renames_only_authentic_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let crypto = S3Crypto::new(S3Keyring::aes(&[3u8; 32]).unwrap());
    let plaintext = data(200_000);
    let (mut body, metadata) = crypto.encrypt(&plaintext).unwrap();
    let path = dir.path().join("out.bin");
    assert_eq!(crypto.decrypt_to_file(&metadata, &body[..], &path).unwrap(), plaintext.len() as u64);
    assert_eq!(std::fs::read(&path).unwrap(), plaintext);

    body[10] ^= 1;
    let bad = dir.path().join("bad.bin");
    let err = crypto.decrypt_to_file(&metadata, &body[..], &bad).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotAuthentic, "{err}");
    assert!(matches!(err, Error::S3Authentication { .. }), "{err:?}");
    // Nothing left behind: neither the file nor a temporary one.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, [std::ffi::OsString::from("out.bin")]);
}

#[test]
fn ranged_reads_need_the_opt_in() {
    let keyring = S3Keyring::aes(&[3u8; 32]).unwrap();
    for format in [S3Format::V3, S3Format::V2] {
        let crypto = S3Crypto::new(keyring.clone()).with_format(format).unwrap();
        let plaintext = data(10_000);
        let (body, metadata) = crypto.encrypt(&plaintext).unwrap();
        let err = crypto.decrypt_range(&metadata, 100, &body[100..200]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage);
        assert!(err.to_string().contains("ranged reads"), "{err}");
        let ranged = crypto.clone().with_ranged_reads(true);
        for (from, to) in [(0, 1), (100, 200), (15, 17), (9_990, 10_000), (0, 10_000)] {
            assert_eq!(ranged.decrypt_range(&metadata, from as u64, &body[from..to]).unwrap(), &plaintext[from..to]);
        }
    }
}

#[test]
fn v1_objects_need_the_legacy_opt_in() {
    let mut map = ObjectMetadata::new();
    map.insert("x-amz-key".into(), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into());
    map.insert("x-amz-iv".into(), "AAAAAAAAAAAAAAAAAAAAAA==".into());
    map.insert("x-amz-matdesc".into(), "{}".into());
    let metadata = S3Metadata::from_object_metadata(&map).unwrap();
    assert_eq!(metadata.format(), S3Format::V1);
    let crypto = S3Crypto::new(S3Keyring::aes(&[3u8; 32]).unwrap());
    let err = crypto.decrypt(&metadata, &[0u8; 32]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Usage);
    assert!(err.to_string().contains("legacy"), "{err}");
    assert!(S3Crypto::new(S3Keyring::aes(&[3u8; 32]).unwrap()).with_format(S3Format::V1).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn any_plaintext_any_chunking_round_trips(
        plaintext in proptest::collection::vec(any::<u8>(), 0..5000),
        chunk in 1usize..700, v2 in any::<bool>(), hold_back in 0usize..3000,
    ) {
        let format = if v2 { S3Format::V2 } else { S3Format::V3 };
        let crypto = S3Crypto::new(S3Keyring::aes(&[9u8; 32]).unwrap()).with_format(format).unwrap()
            .with_hold_back(hold_back);
        let mut encryptor = crypto.encryptor().unwrap();
        let metadata = encryptor.metadata().clone();
        let mut body = Vec::new();
        for piece in plaintext.chunks(chunk) {
            let mut piece = piece.to_vec();
            encryptor.update(&mut piece).unwrap();
            body.extend_from_slice(&piece);
        }
        body.extend_from_slice(&encryptor.finish().unwrap());
        prop_assert_eq!(&crypto.decrypt(&metadata, &body).unwrap(), &plaintext);
        let mut out = Vec::new();
        crypto.decrypting_reader(&metadata, &body[..]).unwrap().read_to_end(&mut out).unwrap();
        prop_assert_eq!(&out, &plaintext);
    }

    #[test]
    fn any_flipped_body_bit_is_refused(len in 0usize..2000, at in any::<usize>(), bit in 0u8..8) {
        let crypto = S3Crypto::new(S3Keyring::aes(&[9u8; 32]).unwrap()).with_hold_back(0);
        let (mut body, metadata) = crypto.encrypt(&data(len)).unwrap();
        let at = at % body.len();
        body[at] ^= 1 << bit;
        let err = crypto.decrypt(&metadata, &body).unwrap_err();
        prop_assert_eq!(err.kind(), ErrorKind::NotAuthentic);
        let mut out = Vec::new();
        let err = crypto.decrypting_reader(&metadata, &body[..]).unwrap().read_to_end(&mut out).unwrap_err();
        let inner = err.get_ref().and_then(|e| e.downcast_ref::<Error>()).unwrap();
        prop_assert_eq!(inner.kind(), ErrorKind::NotAuthentic);
    }
}

#[test]
fn debug_output_shows_no_key_material() {
    let keyring = S3Keyring::aes(&[0xAB; 32]).unwrap();
    let crypto = S3Crypto::new(keyring.clone());
    for text in [format!("{keyring:?}"), format!("{crypto:?}"), format!("{:?}", crypto.encryptor().unwrap())] {
        assert!(!text.contains("171") && !text.to_lowercase().contains("abab"), "{text}");
    }
}
