//! Random sizes, frame lengths, chunkings and suites round-trip, and one-shot
//! and streaming agree.

mod support;

use std::io::{Cursor, Read, Write};

use hsm_keyring::cmm::DefaultCmm;
use hsm_keyring::{AlgorithmSuite, Client, CommitmentPolicy, EncryptionContext};
use proptest::prelude::*;
use support::TestAesKeyring;

fn suites() -> impl Strategy<Value = AlgorithmSuite> {
    prop::sample::select(vec![
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        AlgorithmSuite::Aes128GcmIv12Tag16HkdfSha256,
        AlgorithmSuite::Aes192GcmIv12Tag16NoKdf,
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, .. ProptestConfig::default() })]

    #[test]
    fn random_messages_round_trip(
        plaintext in prop::collection::vec(any::<u8>(), 0..6000),
        frame in 1u32..700,
        write_chunk in 1usize..1000,
        read_chunk in 1usize..1000,
        suite in suites(),
        pairs in prop::collection::btree_map("[a-z\u{e9}\u{4e00}]{0,6}", ".{0,8}", 0..4),
    ) {
        let policy = if suite.is_committing() {
            CommitmentPolicy::RequireEncryptRequireDecrypt
        } else {
            CommitmentPolicy::ForbidEncryptAllowDecrypt
        };
        let client = Client::builder().commitment_policy(policy).algorithm_suite(suite).frame_length(frame).build().unwrap();
        let keyring = TestAesKeyring::sample();
        let cmm = DefaultCmm::new(&keyring);
        let ctx = EncryptionContext::from_pairs(pairs).unwrap();

        let one_shot = client.encrypt(&cmm, &plaintext, &ctx).unwrap();
        let mut w = client.encrypt_stream(&cmm, &ctx, Vec::new()).unwrap();
        for chunk in plaintext.chunks(write_chunk) {
            w.write_all(chunk).unwrap();
        }
        let streamed = w.finish().unwrap();
        // Same length: same header layout, same frames, same-size signature up to DER variation.
        if !suite.is_signing() {
            prop_assert_eq!(one_shot.len(), streamed.len());
        }

        for msg in [&one_shot, &streamed] {
            prop_assert_eq!(&client.decrypt(&cmm, msg, &ctx).unwrap().plaintext, &plaintext);
            let mut r = client.decrypt_stream(&cmm, &ctx, Cursor::new(msg)).unwrap();
            let mut out = Vec::new();
            let mut buf = vec![0u8; read_chunk];
            loop {
                let n = r.read(&mut buf).unwrap();
                if n == 0 { break; }
                out.extend_from_slice(&buf[..n]);
            }
            prop_assert_eq!(&out, &plaintext);
        }
    }

    #[test]
    fn random_bytes_never_panic_the_parser(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let keyring = TestAesKeyring::sample();
        let client = Client::builder().commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt).build().unwrap();
        let _ = hsm_keyring::format::parse_header(&bytes, &Default::default());
        prop_assert!(client.decrypt_with_keyring(&keyring, &bytes, &EncryptionContext::new()).is_err());
        prop_assert!(client.inspect(Cursor::new(&bytes)).is_err());
    }
}
