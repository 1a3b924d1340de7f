//! Every altered or cut byte of a message is refused, with the right class of
//! error, by one-shot and streaming decryption; streaming never releases an
//! unauthenticated frame.

mod support;

use std::io::{Cursor, Read};

use hsm_keyring::cmm::DefaultCmm;
use hsm_keyring::format::{parse_header, HeaderLimits};
use hsm_keyring::{AlgorithmSuite, Client, EncryptionContext, Error};
use support::{data, io_to_error, TestAesKeyring};

const FRAME: usize = 64;

struct Sample {
    client: Client,
    keyring: TestAesKeyring,
    plaintext: Vec<u8>,
    message: Vec<u8>,
    header_len: usize,
    body_end: usize,
}

/// Worker counts every test runs with: frames on the calling thread, and on
/// several workers (tests/parallel_frames.rs tampers with messages large
/// enough to fill many batches).
const WORKERS: [usize; 2] = [1, 3];

/// Three frames of 64 bytes (two regular, a final one of 54 bytes).
fn sample(suite: AlgorithmSuite, workers: usize) -> Sample {
    let keyring = TestAesKeyring::sample();
    let client = Client::builder().algorithm_suite(suite).frame_length(FRAME as u32).workers(workers).build().unwrap();
    let plaintext = data(3 * FRAME - 10);
    let ctx = EncryptionContext::from_pairs([("purpose", "tamper test")]).unwrap();
    let message = client.encrypt_with_keyring(&keyring, &plaintext, &ctx).unwrap();
    let header_len = parse_header(&message, &HeaderLimits::default()).unwrap().len();
    let body_end = header_len + 2 * (16 + FRAME + 16) + (24 + FRAME - 10 + 16);
    assert!(body_end <= message.len());
    Sample { client, keyring, plaintext, message, header_len, body_end }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Region {
    Header,
    Frame,
    Footer,
}

fn allowed(region: Region, e: &Error) -> bool {
    match region {
        Region::Header => matches!(
            e,
            Error::Malformed { .. }
                | Error::HeaderAuthentication
                | Error::CommitmentMismatch
                | Error::NoKeyringDecrypted { .. }
                | Error::NotMine { .. }
                | Error::Keyring { .. }
                | Error::UnsupportedSuite(_)
                | Error::Signature { .. }
                // A configured limit (the streaming buffer, the EDK count) applies before the tag is checked.
                | Error::PolicyViolation { .. }
                | Error::TooManyEncryptedDataKeys { .. }
        ),
        Region::Frame => matches!(e, Error::FrameAuthentication { .. } | Error::Malformed { .. }),
        Region::Footer => matches!(e, Error::Signature { .. } | Error::Malformed { .. }),
    }
}

/// Decrypt through the streaming reader; returns what was released and the error.
///
/// Reads twice: with a 5-byte buffer (each frame is opened in the reader's
/// buffer and handed out in pieces) and with a buffer larger than a frame
/// (each regular frame is decrypted straight into the caller's buffer). Both
/// must release the same bytes and fail the same way, and a failed read must
/// leave the caller's buffer untouched or zeroed: no unauthenticated byte.
fn stream(s: &Sample, msg: &[u8]) -> (Vec<u8>, Result<(), Error>) {
    let small = stream_with(s, msg, 5);
    let large = stream_with(s, msg, 4 * FRAME);
    assert_eq!(small.0, large.0, "released bytes depend on the read size");
    assert_eq!(format!("{:?}", small.1), format!("{:?}", large.1), "errors depend on the read size");
    small
}

fn stream_with(s: &Sample, msg: &[u8], read_size: usize) -> (Vec<u8>, Result<(), Error>) {
    const UNTOUCHED: u8 = 0xA5;
    let cmm = DefaultCmm::new(&s.keyring);
    let mut reader = match s.client.decrypt_stream(&cmm, &EncryptionContext::new(), Cursor::new(msg)) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), Err(e)),
    };
    let mut out = Vec::new();
    let mut buf = vec![UNTOUCHED; read_size];
    loop {
        buf.fill(UNTOUCHED);
        match reader.read(&mut buf) {
            Ok(0) => return (out, Ok(())),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => {
                assert!(
                    buf.iter().all(|&b| b == UNTOUCHED || b == 0),
                    "a failed read left bytes in the caller's buffer (read size {read_size})"
                );
                let inner = io_to_error(&e).map(|e| format!("{e:?}")).unwrap_or_else(|| e.to_string());
                // Re-create a comparable error class from the wrapped one.
                let err = e.into_inner().and_then(|b| b.downcast::<Error>().ok()).map(|b| *b);
                return (out, Err(err.unwrap_or(Error::Crypto { reason: inner })));
            }
        }
    }
}

/// Released plaintext must be whole, verified regular frames, in order.
fn check_released(s: &Sample, released: &[u8], limit_frames: usize) {
    assert_eq!(released.len() % FRAME, 0, "released a partial frame ({} bytes)", released.len());
    assert!(
        released.len() / FRAME <= limit_frames,
        "released {} frames, at most {limit_frames} allowed",
        released.len() / FRAME
    );
    assert_eq!(released, &s.plaintext[..released.len()]);
}

fn region_of(s: &Sample, i: usize) -> Region {
    if i < s.header_len {
        Region::Header
    } else if i < s.body_end {
        Region::Frame
    } else {
        Region::Footer
    }
}

fn frame_index(s: &Sample, i: usize) -> usize {
    (i - s.header_len) / (16 + FRAME + 16)
}

#[test]
fn every_flipped_byte_of_a_signed_message_is_refused() {
    for workers in WORKERS {
        flipped_bytes_of_a_signed_message(workers);
    }
}

fn flipped_bytes_of_a_signed_message(workers: usize) {
    let s = sample(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384, workers);
    assert!(s.message.len() > s.body_end, "signed messages have a footer");
    let cmm = DefaultCmm::new(&s.keyring);
    for i in 0..s.message.len() {
        for mask in [0x01u8, 0x80] {
            let mut bad = s.message.clone();
            bad[i] ^= mask;
            let region = region_of(&s, i);
            let err = s.client.decrypt(&cmm, &bad, &EncryptionContext::new()).unwrap_err();
            assert!(allowed(region, &err), "byte {i} ({region:?}) mask {mask:#x}: unexpected {err:?}");

            let (released, res) = stream(&s, &bad);
            let err = res.expect_err("streaming accepted a tampered message");
            assert!(allowed(region, &err), "stream byte {i} ({region:?}) mask {mask:#x}: unexpected {err:?}");
            let limit = match region {
                Region::Header => 0,
                Region::Frame => frame_index(&s, i).min(2),
                Region::Footer => 2,
            };
            check_released(&s, &released, limit);
        }
    }
}

#[test]
fn every_flipped_byte_of_an_unsigned_message_is_refused() {
    for workers in WORKERS {
        flipped_bytes_of_an_unsigned_message(workers);
    }
}

fn flipped_bytes_of_an_unsigned_message(workers: usize) {
    let s = sample(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, workers);
    assert_eq!(s.message.len(), s.body_end, "unsigned messages end with the final frame");
    let cmm = DefaultCmm::new(&s.keyring);
    for i in 0..s.message.len() {
        let mut bad = s.message.clone();
        bad[i] ^= 0x01;
        let region = region_of(&s, i);
        let err = s.client.decrypt(&cmm, &bad, &EncryptionContext::new()).unwrap_err();
        assert!(allowed(region, &err), "byte {i} ({region:?}): unexpected {err:?}");
        let (released, res) = stream(&s, &bad);
        assert!(res.is_err(), "byte {i}: streaming accepted a tampered message");
        let limit = if region == Region::Header { 0 } else { frame_index(&s, i).min(2) };
        check_released(&s, &released, limit);
    }
}

#[test]
fn every_truncation_is_refused_and_streaming_releases_only_verified_frames() {
    let suites = [AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384, AlgorithmSuite::Aes256GcmHkdfSha512CommitKey];
    for (suite, workers) in suites.into_iter().flat_map(|s| WORKERS.map(|w| (s, w))) {
        let s = sample(suite, workers);
        let cmm = DefaultCmm::new(&s.keyring);
        for cut in 0..s.message.len() {
            let short = &s.message[..cut];
            let err = s.client.decrypt(&cmm, short, &EncryptionContext::new()).unwrap_err();
            assert!(matches!(err, Error::Malformed { .. }), "cut {cut}: {err:?}");
            let (released, res) = stream(&s, short);
            let err = res.expect_err("streaming accepted a truncated message");
            assert!(matches!(err, Error::Malformed { .. }), "stream cut {cut}: {err:?}");
            let complete_frames = if cut < s.header_len { 0 } else { (cut - s.header_len) / (16 + FRAME + 16) };
            check_released(&s, &released, complete_frames.min(2));
        }
        // A trailing byte is refused too.
        let mut long = s.message.clone();
        long.push(0);
        let err = s.client.decrypt(&cmm, &long, &EncryptionContext::new()).unwrap_err();
        assert!(matches!(err, Error::Malformed { field: "end of message", .. }), "{err:?}");
        let (released, res) = stream(&s, &long);
        assert!(matches!(res, Err(Error::Malformed { field: "end of message", .. })), "{res:?}");
        check_released(&s, &released, 2);
    }
}

#[test]
fn malformed_errors_name_field_and_offset() {
    for workers in WORKERS {
        malformed_errors_with(workers);
    }
}

fn malformed_errors_with(workers: usize) {
    let s = sample(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, workers);
    let cmm = DefaultCmm::new(&s.keyring);
    // Second frame's sequence number changed from 2 to 3.
    let at = s.header_len + 16 + FRAME + 16;
    let mut bad = s.message.clone();
    bad[at + 3] = 3;
    match s.client.decrypt(&cmm, &bad, &EncryptionContext::new()).unwrap_err() {
        Error::Malformed { field, offset, .. } => {
            assert_eq!(field, "sequence number");
            assert_eq!(offset, at as u64);
        }
        other => panic!("{other:?}"),
    }
    // Header cut inside the EDK section.
    match s.client.decrypt(&cmm, &s.message[..80], &EncryptionContext::new()).unwrap_err() {
        Error::Malformed { field, offset, .. } => {
            assert!(field.contains("key") || field.contains("context"), "{field}");
            assert!(offset < 80);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn swapping_frames_between_messages_is_refused() {
    let s = sample(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, 3);
    let t = sample(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, 1);
    let cmm = DefaultCmm::new(&s.keyring);
    // Same key, same layout, different message id: frame 1 of t inside s.
    let mut spliced = s.message.clone();
    let f = s.header_len..s.header_len + 16 + FRAME + 16;
    spliced[f.clone()].copy_from_slice(&t.message[t.header_len..t.header_len + f.len()]);
    assert!(matches!(
        s.client.decrypt(&cmm, &spliced, &EncryptionContext::new()),
        Err(Error::FrameAuthentication { sequence: 1 })
    ));
    // Frames 1 and 2 swapped (after fixing sequence numbers and IVs) still fail.
    let mut swapped = s.message.clone();
    let len = 16 + FRAME + 16;
    let (a, b) = (s.header_len, s.header_len + len);
    let first: Vec<u8> = s.message[a..a + len].to_vec();
    swapped[a + 16..a + len].copy_from_slice(&s.message[b + 16..b + len]);
    swapped[b + 16..b + len].copy_from_slice(&first[16..]);
    assert!(matches!(
        s.client.decrypt(&cmm, &swapped, &EncryptionContext::new()),
        Err(Error::FrameAuthentication { sequence: 1 })
    ));
}

#[test]
fn wrong_keyring_is_refused() {
    let s = sample(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, 1);
    let other = TestAesKeyring::new("test-ns", "test-key", [0x43; 32]);
    let err = s.client.decrypt_with_keyring(&other, &s.message, &EncryptionContext::new()).unwrap_err();
    assert!(matches!(err, Error::Keyring { .. }), "{err:?}");
    let stranger = TestAesKeyring::new("other-ns", "k", [0x42; 32]);
    let err = s.client.decrypt_with_keyring(&stranger, &s.message, &EncryptionContext::new()).unwrap_err();
    assert!(err.is_not_mine(), "{err:?}");
}
