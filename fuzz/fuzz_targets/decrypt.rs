//! Decryption with a fixed test keyring must never panic, and must never
//! return plaintext for anything but an authentic message.
//!
//! Inputs whose first byte is even are decrypted as they are; odd ones are
//! read as `(offset u16, xor u8)` edits applied to a valid sample message, so
//! the fuzzer reaches the body and footer code quickly.
#![no_main]

use std::io::{Cursor, Read};
use std::sync::OnceLock;

use hsm_keyring::{AlgorithmSuite, Client, CommitmentPolicy, EncryptionContext};
use hsm_keyring::cmm::DefaultCmm;
use hsm_keyring::keyrings::RawAesKeyring;
use libfuzzer_sys::fuzz_target;

struct Fixture {
    keyring: RawAesKeyring,
    client: Client,
    sample: Vec<u8>,
    plaintext: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let keyring = RawAesKeyring::new("fuzz-ns", "fuzz-key", &[0x42; 32]).expect("valid AES-256 key");
        let client = Client::builder()
            .commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt)
            .algorithm_suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384)
            .frame_length(32)
            .max_header_len(64 * 1024)
            .max_encrypted_data_keys(8)
            .max_body_buffer(1 << 20)
            .build()
            .expect("client");
        let plaintext: Vec<u8> = (0u8..100).collect();
        let ctx = EncryptionContext::from_pairs([("fuzz", "yes")]).expect("context");
        let sample = client.encrypt_with_keyring(&keyring, &plaintext, &ctx).expect("sample");
        Fixture { keyring, client, sample, plaintext }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&mode, rest)) = data.split_first() else { return };
    let (message, edited) = if mode & 1 == 0 {
        (rest.to_vec(), true)
    } else {
        let mut m = f.sample.clone();
        let mut changed = false;
        for edit in rest.chunks_exact(3) {
            let at = usize::from(u16::from_be_bytes([edit[0], edit[1]])) % m.len();
            m[at] ^= edit[2];
            changed |= edit[2] != 0;
        }
        if mode & 2 != 0 && !m.is_empty() {
            let cut = usize::from(mode >> 2) % m.len();
            m.truncate(m.len() - cut);
            changed |= cut > 0;
        }
        (m, changed)
    };
    let ctx = EncryptionContext::new();
    let one_shot = f.client.decrypt_with_keyring(&f.keyring, &message, &ctx);
    if let Ok(out) = &one_shot {
        assert_eq!(out.plaintext, f.plaintext, "accepted a forged message");
        assert!(!edited || message == f.sample);
    }
    let cmm = DefaultCmm::new(&f.keyring);
    if let Ok(mut reader) = f.client.decrypt_stream(&cmm, &ctx, Cursor::new(&message)) {
        let mut out = Vec::new();
        let streamed = reader.read_to_end(&mut out);
        assert_eq!(streamed.is_ok(), one_shot.is_ok(), "one-shot and streaming disagree");
        assert_eq!(&out[..], &f.plaintext[..out.len()], "released plaintext that is not the original");
    }
});
