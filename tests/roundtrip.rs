//! Round trips through every suite, size class, context shape and API level.

mod support;

use std::io::{Cursor, Read, Write};
use std::sync::Arc;

use hsm_keyring::cmm::{DefaultCmm, RequiredEncryptionContextCmm};
use hsm_keyring::crypto::SoftwareSigner;
use hsm_keyring::format::{parse_header, HeaderLimits};
use hsm_keyring::{AlgorithmSuite, Client, CommitmentPolicy, EncryptionContext, Error, FooterSigner, SignatureCurve};
use support::{data, io_to_error, ManyEdkKeyring, TestAesKeyring};

const FRAME: u32 = 128;

fn client_for(suite: AlgorithmSuite, frame: u32) -> Client {
    let policy = if suite.is_committing() {
        CommitmentPolicy::RequireEncryptRequireDecrypt
    } else {
        CommitmentPolicy::ForbidEncryptAllowDecrypt
    };
    Client::builder().commitment_policy(policy).algorithm_suite(suite).frame_length(frame).build().unwrap()
}

fn contexts() -> Vec<EncryptionContext> {
    vec![
        EncryptionContext::new(),
        EncryptionContext::from_pairs([("purpose", "test"), ("tenant", "42")]).unwrap(),
        EncryptionContext::from_pairs([("clé", "välue ✓"), ("日本", "語"), ("", "empty key")]).unwrap(),
    ]
}

fn stream_decrypt(client: &Client, keyring: &TestAesKeyring, message: &[u8], ctx: &EncryptionContext) -> Vec<u8> {
    let cmm = DefaultCmm::new(keyring);
    let mut reader = client.decrypt_stream(&cmm, ctx, Cursor::new(message)).unwrap();
    let mut out = Vec::new();
    let mut small = [0u8; 7];
    loop {
        let n = reader.read(&mut small).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&small[..n]);
    }
    out
}

#[test]
fn every_suite_round_trips_at_every_size_class() {
    let keyring = TestAesKeyring::sample();
    let f = FRAME as usize;
    let sizes = [0, 1, f - 1, f, f + 1, 3 * f, 3 * f + 5];
    for suite in AlgorithmSuite::ALL {
        let client = client_for(suite, FRAME);
        for (i, ctx) in contexts().iter().enumerate() {
            for &size in &sizes {
                // Every context with the small sizes; all sizes with the empty context.
                if i > 0 && size > f + 1 {
                    continue;
                }
                let pt = data(size);
                let msg = client.encrypt_with_keyring(&keyring, &pt, ctx).unwrap();
                let out = client.decrypt_with_keyring(&keyring, &msg, ctx).unwrap();
                assert_eq!(out.plaintext, pt, "suite {:04X} size {size}", suite.id());
                let h = &out.header;
                assert_eq!(h.algorithm_suite, suite);
                assert_eq!(h.version, suite.message_format_version());
                assert_eq!(h.message_id.len(), if h.version == 1 { 16 } else { 32 });
                assert_eq!(h.frame_length, FRAME);
                assert_eq!(h.provider_ids(), vec!["test-ns"]);
                for (k, v) in ctx.iter() {
                    assert_eq!(h.encryption_context.get(k), Some(v));
                }
                assert_eq!(h.encryption_context.contains_key("aws-crypto-public-key"), suite.is_signing());
                assert_eq!(&msg[..1], &[h.version]);
                // The same message through the streaming reader, with a tiny buffer.
                assert_eq!(stream_decrypt(&client, &keyring, &msg, ctx), pt);
                // And with no caller context at all.
                let out = client.decrypt_with_keyring(&keyring, &msg, &EncryptionContext::new()).unwrap();
                assert_eq!(out.plaintext, pt);
            }
        }
    }
}

#[test]
fn one_mebibyte_round_trips_in_both_formats() {
    let keyring = TestAesKeyring::sample();
    let pt = data(1 << 20);
    for suite in [AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384, AlgorithmSuite::Aes128GcmIv12Tag16HkdfSha256] {
        let client = client_for(suite, 4096);
        let msg = client.encrypt_with_keyring(&keyring, &pt, &EncryptionContext::new()).unwrap();
        assert_eq!(client.decrypt_with_keyring(&keyring, &msg, &EncryptionContext::new()).unwrap().plaintext, pt);
    }
}

#[test]
fn exact_multiple_of_the_frame_length_ends_with_an_empty_final_frame() {
    let keyring = TestAesKeyring::sample();
    let client = client_for(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, 16);
    let msg = client.encrypt_with_keyring(&keyring, &data(32), &EncryptionContext::new()).unwrap();
    let header = parse_header(&msg, &HeaderLimits::default()).unwrap();
    let regular = 4 + 12 + 16 + 16;
    let final_at = header.len() + 2 * regular;
    assert_eq!(&msg[header.len()..header.len() + 4], &[0, 0, 0, 1]);
    assert_eq!(&msg[header.len() + regular..header.len() + regular + 4], &[0, 0, 0, 2]);
    assert_eq!(&msg[final_at..final_at + 8], &[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 3]);
    // IV of the final frame: 8 zero bytes then the sequence number.
    assert_eq!(&msg[final_at + 8..final_at + 20], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3]);
    assert_eq!(&msg[final_at + 20..final_at + 24], &[0, 0, 0, 0]);
    assert_eq!(msg.len(), final_at + 24 + 16);
}

#[test]
fn one_shot_and_streaming_output_interoperate() {
    let keyring = TestAesKeyring::sample();
    let cmm = DefaultCmm::new(&keyring);
    let ctx = EncryptionContext::from_pairs([("a", "b")]).unwrap();
    for suite in
        [AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384, AlgorithmSuite::Aes192GcmIv12Tag16HkdfSha384EcdsaP384]
    {
        let client = client_for(suite, 100);
        for size in [0usize, 1, 99, 100, 101, 1000, 10_007] {
            let pt = data(size);
            // Streaming writer fed in odd chunk sizes.
            let mut w = client.encrypt_stream(&cmm, &ctx, Vec::new()).unwrap();
            let mut pos = 0;
            let mut step = 1;
            while pos < pt.len() {
                let end = (pos + step).min(pt.len());
                w.write_all(&pt[pos..end]).unwrap();
                pos = end;
                step = step * 3 % 257 + 1;
            }
            w.flush().unwrap();
            let streamed = w.finish().unwrap();
            // Same header layout as one-shot; ids, keys and signatures differ.
            let one_shot = client.encrypt(&cmm, &pt, &ctx).unwrap();
            let hs = parse_header(&streamed, &HeaderLimits::default()).unwrap();
            let ho = parse_header(&one_shot, &HeaderLimits::default()).unwrap();
            assert_eq!(hs.len(), ho.len());
            assert_eq!(client.decrypt(&cmm, &streamed, &ctx).unwrap().plaintext, pt);
            assert_eq!(stream_decrypt(&client, &keyring, &one_shot, &ctx), pt);
            assert_eq!(stream_decrypt(&client, &keyring, &streamed, &ctx), pt);
        }
    }
}

#[test]
fn default_policy_refuses_legacy_messages_before_any_keyring_call() {
    let keyring = TestAesKeyring::sample();
    let legacy = client_for(AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha256, 64);
    let msg = legacy.encrypt_with_keyring(&keyring, b"old", &EncryptionContext::new()).unwrap();
    let strict = Client::new();
    let before = keyring.decrypt_calls();
    let err = strict.decrypt_with_keyring(&keyring, &msg, &EncryptionContext::new()).unwrap_err();
    assert!(matches!(err, Error::PolicyViolation { .. }), "{err}");
    assert_eq!(keyring.decrypt_calls(), before);
    // RequireEncryptAllowDecrypt reads it.
    let lenient = Client::builder().commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt).build().unwrap();
    assert_eq!(lenient.decrypt_with_keyring(&keyring, &msg, &EncryptionContext::new()).unwrap().plaintext, b"old");
}

#[test]
fn builder_rejects_bad_configurations() {
    assert!(matches!(Client::builder().frame_length(0).build(), Err(Error::Config { .. })));
    assert!(matches!(Client::builder().max_encrypted_data_keys(0).build(), Err(Error::Config { .. })));
    assert!(matches!(
        Client::builder().algorithm_suite(AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha256).build(),
        Err(Error::PolicyViolation { .. })
    ));
    assert!(matches!(
        Client::builder()
            .commitment_policy(CommitmentPolicy::ForbidEncryptAllowDecrypt)
            .algorithm_suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey)
            .build(),
        Err(Error::PolicyViolation { .. })
    ));
    assert!(matches!(Client::builder().trusted_signers(vec![vec![1, 2, 3]]).build(), Err(Error::InvalidKey { .. })));
}

#[test]
fn default_suite_is_0578_and_forbid_policy_defaults_to_0378() {
    let keyring = TestAesKeyring::sample();
    let msg = Client::new().encrypt_with_keyring(&keyring, b"x", &EncryptionContext::new()).unwrap();
    assert_eq!(&msg[..3], &[0x02, 0x05, 0x78]);
    let legacy = Client::builder().commitment_policy(CommitmentPolicy::ForbidEncryptAllowDecrypt).build().unwrap();
    let msg = legacy.encrypt_with_keyring(&keyring, b"x", &EncryptionContext::new()).unwrap();
    assert_eq!(&msg[..4], &[0x01, 0x80, 0x03, 0x78]);
}

#[test]
fn caller_context_must_match_the_message() {
    let keyring = TestAesKeyring::sample();
    let client = Client::new();
    let ctx = EncryptionContext::from_pairs([("tenant", "a"), ("purpose", "x")]).unwrap();
    let msg = client.encrypt_with_keyring(&keyring, b"data", &ctx).unwrap();
    // A subset is fine.
    let subset = EncryptionContext::from_pairs([("tenant", "a")]).unwrap();
    assert!(client.decrypt_with_keyring(&keyring, &msg, &subset).is_ok());
    // A different value is a mismatch.
    let wrong = EncryptionContext::from_pairs([("tenant", "b")]).unwrap();
    let err = client.decrypt_with_keyring(&keyring, &msg, &wrong).unwrap_err();
    assert!(matches!(err, Error::EncryptionContextMismatch { .. }), "{err}");
    // An extra pair is not authenticated by the message: refused.
    let extra = EncryptionContext::from_pairs([("tenant", "a"), ("other", "1")]).unwrap();
    let err = client.decrypt_with_keyring(&keyring, &msg, &extra).unwrap_err();
    assert!(err.is_authentication_failure() || matches!(err, Error::Keyring { .. }), "{err}");
    // Streaming applies the same checks.
    let cmm = DefaultCmm::new(&keyring);
    assert!(matches!(
        client.decrypt_stream(&cmm, &wrong, Cursor::new(&msg)).unwrap_err(),
        Error::EncryptionContextMismatch { .. }
    ));
}

#[test]
fn reserved_context_key_is_refused_on_encrypt() {
    let keyring = TestAesKeyring::sample();
    // A context with the reserved key can only come from deserialization.
    let bytes =
        [0u8, 1, 0, 21].iter().copied().chain(*b"aws-crypto-public-key").chain([0, 1, b'x']).collect::<Vec<u8>>();
    let ctx = EncryptionContext::deserialize(&bytes, 0).unwrap();
    let err = Client::new().encrypt_with_keyring(&keyring, b"x", &ctx).unwrap_err();
    assert!(matches!(err, Error::InvalidEncryptionContext { .. }), "{err}");
}

#[test]
fn required_encryption_context_is_authenticated_but_not_stored() {
    let keyring: Arc<TestAesKeyring> = Arc::new(TestAesKeyring::sample());
    let inner = DefaultCmm::new(Arc::clone(&keyring));
    let cmm = RequiredEncryptionContextCmm::new(inner, vec!["tenant".into()]).unwrap();
    let client = Client::new();
    let ctx = EncryptionContext::from_pairs([("tenant", "acme"), ("kept", "yes")]).unwrap();
    let msg = client.encrypt(&cmm, b"payload", &ctx).unwrap();
    let info = client.inspect(Cursor::new(&msg)).unwrap();
    assert!(!info.encryption_context.contains_key("tenant"));
    assert_eq!(info.encryption_context.get("kept"), Some("yes"));

    // Missing on encrypt.
    let err = client.encrypt(&cmm, b"p", &EncryptionContext::from_pairs([("kept", "yes")]).unwrap()).unwrap_err();
    assert!(matches!(err, Error::InvalidEncryptionContext { .. }), "{err}");
    // Missing on decrypt.
    let err = client.decrypt(&cmm, &msg, &EncryptionContext::new()).unwrap_err();
    assert!(matches!(err, Error::EncryptionContextMismatch { .. }), "{err}");
    // Right value.
    let tenant = EncryptionContext::from_pairs([("tenant", "acme")]).unwrap();
    assert_eq!(client.decrypt(&cmm, &msg, &tenant).unwrap().plaintext, b"payload");
    // The plain default CMM also decrypts when given the reproduced pair.
    assert_eq!(client.decrypt_with_keyring(&*keyring, &msg, &tenant).unwrap().plaintext, b"payload");
    // ... and fails without it.
    assert!(client.decrypt_with_keyring(&*keyring, &msg, &EncryptionContext::new()).is_err());
    // Wrong value: the keyring (bound to the full context) or the header tag refuses.
    let wrong = EncryptionContext::from_pairs([("tenant", "evil")]).unwrap();
    let err = client.decrypt(&cmm, &msg, &wrong).unwrap_err();
    assert!(err.is_authentication_failure() || matches!(err, Error::Keyring { .. }), "{err}");
    // Streaming too.
    let mut r = client.decrypt_stream(&cmm, &tenant, Cursor::new(&msg)).unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    assert_eq!(out, b"payload");
    assert!(
        RequiredEncryptionContextCmm::new(DefaultCmm::new(Arc::clone(&keyring)), vec!["aws-crypto-x".into()]).is_err()
    );
}

#[test]
fn too_many_encrypted_data_keys_fail_before_any_keyring_call() {
    let keyring = ManyEdkKeyring { inner: TestAesKeyring::sample(), extra: 3 };
    let open = Client::new();
    let msg = open.encrypt_with_keyring(&keyring, b"four recipients", &EncryptionContext::new()).unwrap();
    assert_eq!(open.inspect(Cursor::new(&msg)).unwrap().encrypted_data_keys.len(), 4);

    let limited = Client::builder().max_encrypted_data_keys(3).build().unwrap();
    let err = limited.encrypt_with_keyring(&keyring, b"x", &EncryptionContext::new()).unwrap_err();
    assert!(matches!(err, Error::TooManyEncryptedDataKeys { count: 4, max: 3 }), "{err}");

    let before = keyring.inner.decrypt_calls();
    let err = limited.decrypt_with_keyring(&keyring, &msg, &EncryptionContext::new()).unwrap_err();
    assert!(matches!(err, Error::TooManyEncryptedDataKeys { count: 4, max: 3 }), "{err}");
    let cmm = DefaultCmm::new(&keyring);
    let err = limited.decrypt_stream(&cmm, &EncryptionContext::new(), Cursor::new(&msg)).unwrap_err();
    assert!(matches!(err, Error::TooManyEncryptedDataKeys { .. }), "{err}");
    // Inspecting looks at any header within the size limit, whatever its EDK count.
    assert_eq!(limited.inspect(Cursor::new(&msg)).unwrap().encrypted_data_keys.len(), 4);
    assert_eq!(keyring.inner.decrypt_calls(), before, "no keyring call for an over-limit message");

    let four = Client::builder().max_encrypted_data_keys(4).build().unwrap();
    assert!(four.decrypt_with_keyring(&keyring, &msg, &EncryptionContext::new()).is_ok());
    assert_eq!(keyring.inner.decrypt_calls(), before + 1);
}

#[test]
fn trusted_signers_pin_the_footer_key() {
    let keyring = TestAesKeyring::sample();
    let signer = Arc::new(SoftwareSigner::generate(SignatureCurve::P384));
    let cmm = DefaultCmm::new(&keyring).with_signer(signer.clone());
    let msg = Client::new().encrypt(&cmm, b"signed by a known key", &EncryptionContext::new()).unwrap();
    let info = Client::new().inspect(Cursor::new(&msg)).unwrap();
    use base64::Engine as _;
    let advertised = base64::engine::general_purpose::STANDARD
        .decode(info.encryption_context.get("aws-crypto-public-key").unwrap())
        .unwrap();
    assert_eq!(advertised, signer.public_key());

    let trusting = Client::builder().trusted_signers(vec![signer.public_key()]).build().unwrap();
    assert_eq!(trusting.decrypt(&cmm, &msg, &EncryptionContext::new()).unwrap().plaintext, b"signed by a known key");

    let other = SoftwareSigner::generate(SignatureCurve::P384);
    let pinned_elsewhere = Client::builder().trusted_signers(vec![other.public_key()]).build().unwrap();
    let before = keyring.decrypt_calls();
    let err = pinned_elsewhere.decrypt(&cmm, &msg, &EncryptionContext::new()).unwrap_err();
    assert!(matches!(err, Error::Signature { .. }), "{err}");
    let err = pinned_elsewhere.decrypt_stream(&cmm, &EncryptionContext::new(), Cursor::new(&msg)).unwrap_err();
    assert!(matches!(err, Error::Signature { .. }), "{err}");
    assert_eq!(keyring.decrypt_calls(), before);

    // A fresh per-message key is refused by a pinned client too.
    let fresh = Client::new().encrypt_with_keyring(&keyring, b"x", &EncryptionContext::new()).unwrap();
    assert!(matches!(
        trusting.decrypt_with_keyring(&keyring, &fresh, &EncryptionContext::new()),
        Err(Error::Signature { .. })
    ));
}

#[test]
fn signer_on_the_wrong_curve_is_refused() {
    let keyring = TestAesKeyring::sample();
    let cmm = DefaultCmm::new(&keyring).with_signer(Arc::new(SoftwareSigner::generate(SignatureCurve::P256)));
    let err = Client::new().encrypt(&cmm, b"x", &EncryptionContext::new()).unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err}");
    // The P-256 suite accepts it.
    let client = client_for(AlgorithmSuite::Aes128GcmIv12Tag16HkdfSha256EcdsaP256, 64);
    let msg = client.encrypt(&cmm, b"x", &EncryptionContext::new()).unwrap();
    assert_eq!(client.decrypt(&cmm, &msg, &EncryptionContext::new()).unwrap().plaintext, b"x");
}

#[test]
fn header_size_limit_applies_to_decrypt_and_inspect() {
    let keyring = ManyEdkKeyring { inner: TestAesKeyring::sample(), extra: 20 };
    let msg = Client::new().encrypt_with_keyring(&keyring, b"x", &EncryptionContext::new()).unwrap();
    let small = Client::builder().max_header_len(512).build().unwrap();
    assert!(matches!(small.inspect(Cursor::new(&msg)), Err(Error::PolicyViolation { .. })));
    assert!(matches!(
        small.decrypt_with_keyring(&keyring, &msg, &EncryptionContext::new()),
        Err(Error::PolicyViolation { .. })
    ));
    assert_eq!(keyring.inner.decrypt_calls(), 0);
}

#[test]
fn header_size_limit_applies_to_encrypt() {
    let keyring = ManyEdkKeyring { inner: TestAesKeyring::sample(), extra: 20 };
    let small = Client::builder().max_header_len(512).build().unwrap();
    let err = small.encrypt_with_keyring(&keyring, b"x", &EncryptionContext::new()).unwrap_err();
    assert!(matches!(err, Error::PolicyViolation { .. }), "{err}");
    let mut sink = Vec::new();
    let cmm = DefaultCmm::new(&keyring);
    assert!(small.encrypt_stream(&cmm, &EncryptionContext::new(), &mut sink).is_err());
    assert!(sink.is_empty(), "nothing is written when the header is refused");
    // The same materials fit a larger limit.
    let roomy = Client::builder().max_header_len(8192).build().unwrap();
    let msg = roomy.encrypt_with_keyring(&keyring, b"x", &EncryptionContext::new()).unwrap();
    assert_eq!(roomy.decrypt_with_keyring(&keyring, &msg, &EncryptionContext::new()).unwrap().plaintext, b"x");
}

#[test]
fn refuse_signed_streaming_stops_after_the_header() {
    let keyring = TestAesKeyring::sample();
    let msg = Client::new().encrypt_with_keyring(&keyring, b"x", &EncryptionContext::new()).unwrap();
    let client = Client::builder().refuse_signed_streaming(true).build().unwrap();
    let cmm = DefaultCmm::new(&keyring);
    assert!(matches!(
        client.decrypt_stream(&cmm, &EncryptionContext::new(), Cursor::new(&msg)),
        Err(Error::PolicyViolation { .. })
    ));
    // One-shot still works.
    assert!(client.decrypt(&cmm, &msg, &EncryptionContext::new()).is_ok());
}

#[test]
fn streaming_memory_stays_about_one_frame() {
    let keyring = TestAesKeyring::sample();
    let cmm = DefaultCmm::new(&keyring);
    let frame = 4096usize;
    // One worker: one frame at a time (tests/parallel_frames.rs bounds several workers).
    let client = Client::builder()
        .algorithm_suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384)
        .frame_length(frame as u32)
        .workers(1)
        .build()
        .unwrap();
    let total = 8 << 20;
    let chunk = data(10_000);
    let mut w = client.encrypt_stream(&cmm, &EncryptionContext::new(), Vec::with_capacity(total + total / 64)).unwrap();
    let mut written = 0;
    while written < total {
        let n = chunk.len().min(total - written);
        w.write_all(&chunk[..n]).unwrap();
        written += n;
        assert!(w.buffer_capacity() <= frame + 64, "writer holds {}", w.buffer_capacity());
    }
    let msg = w.finish().unwrap();

    let mut r = client.decrypt_stream(&cmm, &EncryptionContext::new(), Cursor::new(&msg)).unwrap();
    let mut buf = vec![0u8; 3000];
    let mut read = 0usize;
    let mut max_cap = 0;
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        let expected_start = read % chunk.len();
        // Compare against the repeating input pattern.
        for (i, b) in buf[..n].iter().enumerate() {
            assert_eq!(*b, chunk[(expected_start + i) % chunk.len()]);
        }
        read += n;
        max_cap = max_cap.max(r.buffer_capacity());
    }
    assert_eq!(read, total);
    assert!(max_cap <= 2 * (frame + 64) + 8192, "reader held {max_cap} bytes");
}

#[test]
fn streaming_errors_carry_the_crate_error() {
    let keyring = TestAesKeyring::sample();
    let client = client_for(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, 64);
    let mut msg = client.encrypt_with_keyring(&keyring, &data(100), &EncryptionContext::new()).unwrap();
    let n = msg.len();
    msg[n - 1] ^= 1;
    let cmm = DefaultCmm::new(&keyring);
    let mut r = client.decrypt_stream(&cmm, &EncryptionContext::new(), Cursor::new(&msg)).unwrap();
    let mut out = Vec::new();
    let err = r.read_to_end(&mut out).unwrap_err();
    assert!(matches!(io_to_error(&err), Some(Error::FrameAuthentication { sequence: 2 })), "{err}");
    assert_eq!(out, data(64), "only the verified first frame was released");
    assert!(r.read(&mut [0u8; 16]).is_err(), "a failed reader stays failed");
}

#[test]
fn inspect_reads_only_the_header() {
    let keyring = TestAesKeyring::sample();
    let ctx = EncryptionContext::from_pairs([("k", "v")]).unwrap();
    let msg = Client::new().encrypt_with_keyring(&keyring, &data(5000), &ctx).unwrap();
    let info = Client::new().inspect(Cursor::new(&msg)).unwrap();
    assert_eq!(info.algorithm_suite, AlgorithmSuite::default());
    assert_eq!(info.encryption_context.get("k"), Some("v"));
    assert_eq!(info.header_len, parse_header(&msg, &HeaderLimits::default()).unwrap().len());
    assert_eq!(keyring.decrypt_calls(), 0);
    assert!(matches!(Client::new().inspect(Cursor::new(&msg[..20])), Err(Error::Malformed { .. })));
}

#[test]
fn non_framed_v1_messages_decrypt() {
    // Build a legacy non-framed message by hand: suite 0x0078 (identity KDF),
    // so the data key is the AES key.
    use aes_gcm::aead::{AeadInPlace, KeyInit};
    use aes_gcm::{Aes256Gcm, Nonce};
    let keyring = TestAesKeyring::sample();
    let suite = AlgorithmSuite::Aes256GcmIv12Tag16NoKdf;
    let ctx = EncryptionContext::from_pairs([("legacy", "yes")]).unwrap();
    // Let the keyring make and wrap a data key.
    let cmm = DefaultCmm::new(&keyring);
    let mut req =
        hsm_keyring::EncryptionMaterialsRequest::new(ctx.clone(), CommitmentPolicy::ForbidEncryptAllowDecrypt);
    req.algorithm_suite = Some(suite);
    use hsm_keyring::CryptographicMaterialsManager as _;
    let mat = cmm.get_encryption_materials(req).unwrap();
    let dk = mat.data_key().cloned().unwrap();
    let edk = &mat.encrypted_data_keys()[0];
    let mid = [0x11u8; 16];
    let mut h = vec![0x01, 0x80, 0x00, 0x78];
    h.extend_from_slice(&mid);
    let c = ctx.serialize().unwrap();
    h.extend_from_slice(&(c.len() as u16).to_be_bytes());
    h.extend_from_slice(&c);
    h.extend_from_slice(&[0, 1]);
    for part in [edk.provider_id.as_bytes(), &edk.provider_info, &edk.ciphertext] {
        h.extend_from_slice(&(part.len() as u16).to_be_bytes());
        h.extend_from_slice(part);
    }
    h.extend_from_slice(&[0x01, 0, 0, 0, 0, 12, 0, 0, 0, 0]);
    let aes = Aes256Gcm::new_from_slice(dk.as_bytes()).unwrap();
    let header_iv = [0x22u8; 12];
    let tag = aes.encrypt_in_place_detached(Nonce::from_slice(&header_iv), &h, &mut []).unwrap();
    h.extend_from_slice(&header_iv);
    h.extend_from_slice(&tag);
    let pt = data(1000);
    let mut body_iv = [0u8; 12];
    body_iv[11] = 1;
    let mut aad = mid.to_vec();
    aad.extend_from_slice(b"AWSKMSEncryptionClient Single Block");
    aad.extend_from_slice(&1u32.to_be_bytes());
    aad.extend_from_slice(&(pt.len() as u64).to_be_bytes());
    let mut ct = pt.clone();
    let tag = aes.encrypt_in_place_detached(Nonce::from_slice(&body_iv), &aad, &mut ct).unwrap();
    let mut msg = h.clone();
    msg.extend_from_slice(&body_iv);
    msg.extend_from_slice(&(pt.len() as u64).to_be_bytes());
    msg.extend_from_slice(&ct);
    msg.extend_from_slice(&tag);

    let client = Client::builder().commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt).build().unwrap();
    let out = client.decrypt(&cmm, &msg, &ctx).unwrap();
    assert_eq!(out.plaintext, pt);
    assert_eq!(out.header.content_type, hsm_keyring::format::ContentType::NonFramed);
    let mut r = client.decrypt_stream(&cmm, &ctx, Cursor::new(&msg)).unwrap();
    let mut streamed = Vec::new();
    r.read_to_end(&mut streamed).unwrap();
    assert_eq!(streamed, pt);

    // Tampered body: refused by both paths.
    let mut bad = msg.clone();
    let n = bad.len();
    bad[n - 20] ^= 1;
    assert!(matches!(client.decrypt(&cmm, &bad, &ctx), Err(Error::FrameAuthentication { sequence: 1 })));
    let mut r = client.decrypt_stream(&cmm, &ctx, Cursor::new(&bad)).unwrap();
    let mut out = Vec::new();
    assert!(r.read_to_end(&mut out).is_err());
    assert!(out.is_empty());
    // Above the streaming buffer limit: refused.
    let tight = Client::builder()
        .commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt)
        .max_body_buffer(999)
        .build()
        .unwrap();
    let mut r = tight.decrypt_stream(&cmm, &ctx, Cursor::new(&msg)).unwrap();
    let err = r.read_to_end(&mut Vec::new()).unwrap_err();
    assert!(matches!(io_to_error(&err), Some(Error::PolicyViolation { .. })), "{err}");
}

#[test]
fn client_and_streams_are_send_and_clients_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Client>();
    send::<hsm_keyring::EncryptingWriter<Vec<u8>>>();
    send::<hsm_keyring::DecryptingReader<Cursor<Vec<u8>>>>();
}

#[test]
fn into_variants_append_and_leave_the_buffer_alone_on_failure() {
    let keyring = TestAesKeyring::sample();
    let cmm = DefaultCmm::new(&keyring);
    let client = client_for(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384, 50);
    let ctx = EncryptionContext::new();
    let mut msg = b"prefix".to_vec();
    client.encrypt_into(&cmm, &data(170), &ctx, &mut msg).unwrap();
    assert_eq!(&msg[..6], b"prefix");
    let message = msg[6..].to_vec();
    let mut out = b"kept".to_vec();
    let info = client.decrypt_into(&cmm, &message, &ctx, &mut out).unwrap();
    assert_eq!(info.frame_length, 50);
    assert_eq!(&out[..4], b"kept");
    assert_eq!(&out[4..], &data(170)[..]);

    // A bad signature: the frames decrypted before it are withdrawn.
    let mut bad = message.clone();
    let n = bad.len();
    bad[n - 5] ^= 1;
    let mut out = b"kept".to_vec();
    assert!(matches!(client.decrypt_into(&cmm, &bad, &ctx, &mut out), Err(Error::Signature { .. })));
    assert_eq!(out, b"kept");
    // Encrypt failure leaves the buffer alone too.
    let mut buf = b"kept".to_vec();
    let reserved =
        EncryptionContext::deserialize(&[&[0u8, 1, 0, 21][..], b"aws-crypto-public-key", &[0, 1, b'x']].concat(), 0)
            .unwrap();
    assert!(client.encrypt_into(&cmm, b"x", &reserved, &mut buf).is_err());
    assert_eq!(buf, b"kept");
}
