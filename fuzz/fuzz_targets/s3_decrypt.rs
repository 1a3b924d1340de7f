//! The S3 metadata parser and decryptor must never panic, and must never
//! return plaintext for anything but an authentic object.
//!
//! Input: a mode byte, then sections separated by 0x00 bytes: object
//! metadata as `key=value` lines, an instruction file (JSON, may be empty),
//! the body. Even modes use the input as it is; odd modes read the rest as
//! `(offset u16, xor u8)` edits to one of the target's own valid samples
//! (chosen by `mode >> 1`: V3 in the object metadata, V3 with an
//! instruction file, V2), so the fuzzer reaches the decryptor quickly.
#![no_main]

use std::io::Read;
use std::sync::OnceLock;

use hsm_keyring::s3::{MetadataLocation, ObjectMetadata, S3Crypto, S3Format, S3Keyring, S3Metadata};
use libfuzzer_sys::fuzz_target;

const HOLD_BACK: usize = 16;
const PLAINTEXT: &[u8] = b"fuzzing the S3 object decryptor, forty-odd bytes";

struct Fixture {
    crypto: S3Crypto,
    samples: Vec<Vec<u8>>,
}

fn encode(object: &ObjectMetadata, instruction: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in object {
        out.extend_from_slice(format!("{k}={v}\n").as_bytes());
    }
    out.push(0);
    out.extend_from_slice(instruction.as_bytes());
    out.push(0);
    out.extend_from_slice(body);
    out
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let keyring = S3Keyring::aes(&[0x42; 32]).expect("key");
        let crypto = S3Crypto::new(keyring).with_hold_back(HOLD_BACK);
        let (body, v3) = crypto.encrypt(PLAINTEXT).expect("v3");
        let (object, json) = v3.to_instruction_file().expect("split");
        let v2_crypto = crypto.clone().with_format(S3Format::V2).expect("v2");
        let (v2_body, v2) = v2_crypto.encrypt(PLAINTEXT).expect("v2");
        let samples = vec![
            encode(&v3.to_object_metadata().expect("map"), "", &body),
            encode(&object, &json, &body),
            encode(&v2.to_object_metadata().expect("map"), "", &v2_body),
        ];
        Fixture { crypto, samples }
    })
}

fn decode(input: &[u8]) -> Option<(ObjectMetadata, String, Vec<u8>)> {
    let mut parts = input.splitn(3, |&b| b == 0);
    let (meta, instruction, body) = (parts.next()?, parts.next()?, parts.next()?);
    let mut object = ObjectMetadata::new();
    for line in std::str::from_utf8(meta).ok()?.lines() {
        let (k, v) = line.split_once('=')?;
        object.insert(k.to_owned(), v.to_owned());
    }
    Some((object, String::from_utf8(instruction.to_vec()).ok()?, body.to_vec()))
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&mode, rest)) = data.split_first() else { return };
    let (input, edited) = if mode & 1 == 0 {
        (rest.to_vec(), true)
    } else {
        let sample = &f.samples[usize::from(mode >> 1) % f.samples.len()];
        let mut m = sample.clone();
        for edit in rest.chunks_exact(3) {
            let at = usize::from(u16::from_be_bytes([edit[0], edit[1]])) % m.len();
            m[at] ^= edit[2];
        }
        let changed = &m != sample;
        (m, changed)
    };
    let Some((object, instruction, body)) = decode(&input) else { return };
    let metadata = match S3Metadata::location(&object) {
        MetadataLocation::InstructionFile => S3Metadata::from_instruction_file(&object, &instruction),
        _ => S3Metadata::from_object_metadata(&object),
    };
    let Ok(metadata) = metadata else { return };
    let one_shot = f.crypto.decrypt(&metadata, &body);
    if let Ok(out) = &one_shot {
        // Metadata fields the format does not authenticate (a material
        // description, an unused key) may change; the plaintext may not.
        assert_eq!(out, PLAINTEXT, "accepted a forged object");
        let _ = edited;
    }
    if let Ok(mut reader) = f.crypto.decrypting_reader(&metadata, &body[..]) {
        let mut out = Vec::new();
        let streamed = reader.read_to_end(&mut out);
        assert_eq!(streamed.is_ok(), one_shot.is_ok(), "one-shot and streaming disagree");
        if streamed.is_ok() {
            assert_eq!(out, PLAINTEXT, "streamed a forged object");
        } else {
            // What the reader guarantees: the last HOLD_BACK plaintext bytes
            // are never released before the tag verified.
            let plaintext_len = body.len().saturating_sub(16);
            assert!(out.len() + HOLD_BACK <= plaintext_len || out.is_empty(), "released the held-back bytes");
        }
    }
});
