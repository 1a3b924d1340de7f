//! Encrypted objects through `object_store` stores: in memory and local
//! files; single puts and multipart uploads, metadata in the object and in
//! an instruction file, V3 and V2, tampering refused, failed gets release
//! nothing.

use std::sync::Arc;

use hsm_keyring::s3::store::{from_attributes, to_attributes, S3Store};
use hsm_keyring::s3::{instruction_file_key, S3Crypto, S3Format, S3Keyring, S3Metadata};
use hsm_keyring::ErrorKind;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutOptions, PutPayload};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn crypto(format: S3Format) -> S3Crypto {
    S3Crypto::new(S3Keyring::aes(&[9u8; 32]).unwrap()).with_format(format).unwrap()
}

fn memory(format: S3Format) -> (Arc<InMemory>, S3Store) {
    let mem = Arc::new(InMemory::new());
    let store = S3Store::new(mem.clone(), crypto(format)).with_part_size(64 * 1024).unwrap();
    (mem, store)
}

#[test]
fn round_trips_every_size_format_and_location() {
    runtime().block_on(async {
        for format in [S3Format::V3, S3Format::V2] {
            for instruction in [false, true] {
                for len in [0, 1, 64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1, 300 * 1024 + 7] {
                    let (mem, store) = memory(format);
                    let store = store.with_instruction_file(instruction);
                    let key = Path::from(format!("dir/obj-{len}"));
                    let plain = data(len);
                    let summary = store.put_bytes(&key, &plain).await.unwrap();
                    assert_eq!(summary.plaintext_len, len as u64);
                    assert_eq!(summary.parts, len.div_ceil(64 * 1024).max(1), "len {len}");
                    assert_eq!(store.get_bytes(&key).await.unwrap(), plain, "{format:?} {instruction} {len}");
                    // The stored body is ciphertext || tag.
                    let raw = mem.get(&key).await.unwrap();
                    let attrs = from_attributes(&raw.attributes);
                    let body = raw.bytes().await.unwrap();
                    assert_eq!(body.len(), len + 16);
                    if len > 16 {
                        assert_ne!(&body[..len], &plain[..]);
                    }
                    let has_instruction = mem.head(&Path::from(instruction_file_key(key.as_ref()))).await.is_ok();
                    assert_eq!(has_instruction, instruction);
                    let key_field = if format == S3Format::V3 { "x-amz-3" } else { "x-amz-key-v2" };
                    assert_eq!(attrs.contains_key(key_field), !instruction);
                    // The format library opens what the adapter stored.
                    if !instruction {
                        let metadata = S3Metadata::from_object_metadata(&attrs).unwrap();
                        assert_eq!(store.crypto().decrypt(&metadata, &body).unwrap(), plain);
                    }
                }
            }
        }
    });
}

#[test]
fn reads_objects_the_format_library_wrote() {
    runtime().block_on(async {
        let (mem, store) = memory(S3Format::V3);
        let plain = data(5000);
        let (body, metadata) = crypto(S3Format::V2).encrypt(&plain).unwrap();
        let key = Path::from("from-library");
        let opts =
            PutOptions { attributes: to_attributes(&metadata.to_object_metadata().unwrap()), ..Default::default() };
        mem.put_opts(&key, PutPayload::from(body), opts).await.unwrap();
        assert_eq!(store.get_bytes(&key).await.unwrap(), plain);
    });
}

async fn tamper_body(mem: &InMemory, key: &Path, at: usize) {
    let raw = mem.get(key).await.unwrap();
    let attributes = raw.attributes.clone();
    let mut body = raw.bytes().await.unwrap().to_vec();
    body[at] ^= 1;
    mem.put_opts(key, PutPayload::from(body), PutOptions { attributes, ..Default::default() }).await.unwrap();
}

#[test]
fn altered_body_or_metadata_is_refused_and_releases_nothing() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (mem, store) = memory(S3Format::V3);
        let key = Path::from("big");
        let plain = data(200 * 1024);
        store.put_bytes(&key, &plain).await.unwrap();
        tamper_body(&mem, &key, 150 * 1024).await;
        let err = store.get_bytes(&key).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotAuthentic, "{err}");
        let out = dir.path().join("out.bin");
        let err = store.get_to_file(&key, &out).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotAuthentic);
        assert!(!out.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "temporary file left behind");
        // To a stream: the error comes before the last hold-back bytes.
        let mut sink = Vec::new();
        let err = store.get_to_writer(&key, &mut sink).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotAuthentic);
        assert!(sink.len() <= plain.len() - 64 * 1024, "released {} bytes", sink.len());

        // The tag itself, and a truncated body.
        let key2 = Path::from("small");
        store.put_bytes(&key2, b"hello").await.unwrap();
        tamper_body(&mem, &key2, 5 + 3).await;
        assert_eq!(store.get_bytes(&key2).await.unwrap_err().kind(), ErrorKind::NotAuthentic);
        let mut sink = Vec::new();
        assert!(store.get_to_writer(&key2, &mut sink).await.is_err());
        assert!(sink.is_empty());

        // Metadata: the message id (V3 commitment) altered.
        let key3 = Path::from("meta");
        store.put_bytes(&key3, b"metadata tamper").await.unwrap();
        let raw = mem.get(&key3).await.unwrap();
        let mut fields = from_attributes(&raw.attributes);
        let body = raw.bytes().await.unwrap();
        let id = fields.get_mut("x-amz-i").unwrap();
        let replacement = if id.starts_with('A') { "B" } else { "A" };
        id.replace_range(0..1, replacement);
        let opts = PutOptions { attributes: to_attributes(&fields), ..Default::default() };
        mem.put_opts(&key3, PutPayload::from(body), opts).await.unwrap();
        let err = store.get_bytes(&key3).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotAuthentic, "{err}");

        // Wrong key.
        let other = S3Store::new(mem.clone(), S3Crypto::new(S3Keyring::aes(&[1u8; 32]).unwrap()));
        let err = other.get_bytes(&key2).await.unwrap_err();
        assert!(err.is_authentication_failure(), "{err}");
    });
}

#[test]
fn missing_object_or_instruction_file_is_a_store_error() {
    runtime().block_on(async {
        let (mem, store) = memory(S3Format::V3);
        let err = store.get_bytes(&Path::from("absent")).await.unwrap_err();
        assert!(err.to_string().contains("absent"), "{err}");
        let store = store.with_instruction_file(true);
        let key = Path::from("with-instruction");
        store.put_bytes(&key, b"x").await.unwrap();
        mem.delete(&Path::from(instruction_file_key(key.as_ref()))).await.unwrap();
        let err = store.get_bytes(&key).await.unwrap_err();
        assert!(err.to_string().contains(".instruction"), "{err}");
        assert_eq!(err.kind(), ErrorKind::Malformed);
        // A plain object (no encryption metadata, no instruction file).
        mem.put(&Path::from("plain"), PutPayload::from_static(b"not encrypted")).await.unwrap();
        let err = store.get_bytes(&Path::from("plain")).await.unwrap_err();
        assert!(err.to_string().contains("not encrypted"), "{err}");
    });
}

#[test]
fn streams_from_a_reader_in_parts() {
    runtime().block_on(async {
        let (_, store) = memory(S3Format::V3);
        let plain = data(1024 * 1024 + 3);
        let key = Path::from("streamed");
        let summary = store.put(&key, &plain[..]).await.unwrap();
        assert_eq!(summary.parts, 17);
        let mut out = Vec::new();
        assert_eq!(store.get_to_writer(&key, &mut out).await.unwrap(), plain.len() as u64);
        assert_eq!(out, plain);
        assert!(S3Store::new(Arc::new(InMemory::new()), crypto(S3Format::V3)).with_part_size(0).is_err());
    });
}

/// `LocalFileSystem` keeps no user metadata: it refuses metadata in the
/// object, and holds V2 objects whose metadata is all in the instruction file.
#[test]
fn local_files_hold_v2_objects_with_an_instruction_file() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let local = Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let store = S3Store::new(local.clone(), crypto(S3Format::V2)).with_part_size(4096).unwrap();
        let key = Path::from("a/b.bin");
        let plain = data(10_000);
        let err = store.put_bytes(&key, &plain).await.unwrap_err();
        assert!(err.to_string().contains("attributes"), "{err}");
        let store = store.with_instruction_file(true);
        store.put_bytes(&key, &plain).await.unwrap();
        let out = dir.path().join("plain.out");
        assert_eq!(store.get_to_file(&key, &out).await.unwrap(), plain.len() as u64);
        assert_eq!(std::fs::read(&out).unwrap(), plain);
        assert!(dir.path().join("a/b.bin.instruction").exists());
    });
}
