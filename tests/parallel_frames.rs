//! Parallel frames keep every guarantee of the sequential path: a frame that
//! fails to verify releases exactly the frames before it through the
//! streaming reader and nothing through one-shot decryption, whatever batch
//! it is in and whichever worker finds it; the final frame waits for the
//! signature; cut messages release only verified frames; memory stays
//! bounded by the batches in flight.

mod support;

use std::io::{Read, Write};

use hsm_keyring::cmm::DefaultCmm;
use hsm_keyring::format::{parse_header, HeaderLimits};
use hsm_keyring::{AlgorithmSuite, Client, EncryptionContext, Error};
use support::{data, TestAesKeyring};

/// 128 frames of 1 KiB make a batch.
const FRAME: usize = 1024;
const RECORD: usize = 16 + FRAME + 16;
/// Five batches and a bit: 641 regular frames and a final one of 500 bytes.
const REGULAR: usize = 641;
const LEN: usize = REGULAR * FRAME + 500;

struct Sample {
    keyring: TestAesKeyring,
    plaintext: Vec<u8>,
    message: Vec<u8>,
    header_len: usize,
}

fn client(suite: AlgorithmSuite, workers: usize) -> Client {
    Client::builder().algorithm_suite(suite).frame_length(FRAME as u32).workers(workers).build().unwrap()
}

fn sample(suite: AlgorithmSuite) -> Sample {
    let keyring = TestAesKeyring::sample();
    let plaintext = data(LEN);
    let message = client(suite, 3).encrypt_with_keyring(&keyring, &plaintext, &EncryptionContext::new()).unwrap();
    let header_len = parse_header(&message, &HeaderLimits::default()).unwrap().len();
    Sample { keyring, plaintext, message, header_len }
}

/// Everything the streaming reader hands out before it stops, and how it stops.
fn stream(c: &Client, s: &Sample, message: &[u8], read_size: usize) -> (Vec<u8>, Option<Error>) {
    let cmm = DefaultCmm::new(&s.keyring);
    let mut r = match c.decrypt_stream(&cmm, &EncryptionContext::new(), message) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut out = Vec::new();
    let mut buf = vec![0u8; read_size];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => {
                // Nothing more comes out after an error.
                assert!(r.read(&mut buf).is_err());
                return (out, e.into_inner().and_then(|b| b.downcast::<Error>().ok()).map(|b| *b));
            }
        }
    }
}

/// One-shot decryption into a buffer holding `keep`: on failure it holds `keep` only.
fn one_shot(c: &Client, s: &Sample, message: &[u8]) -> Result<(), Error> {
    let cmm = DefaultCmm::new(&s.keyring);
    let mut out = b"keep".to_vec();
    let res = c.decrypt_into(&cmm, message, &EncryptionContext::new(), &mut out).map(drop);
    if res.is_err() {
        assert_eq!(out, b"keep", "one-shot released bytes of a failed message");
    } else {
        assert_eq!(&out[4..], &s.plaintext[..]);
    }
    res
}

/// Offset of the last tag byte of frame `seq` (1-based; the final frame is REGULAR + 1).
fn tag_byte(s: &Sample, seq: usize) -> usize {
    if seq <= REGULAR {
        s.header_len + seq * RECORD - 1
    } else {
        s.header_len + REGULAR * RECORD + 24 + 500 + 16 - 1
    }
}

#[test]
fn a_bad_frame_releases_exactly_the_frames_before_it() {
    for suite in [AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384] {
        let s = sample(suite);
        for seq in [1, 2, 127, 128, 129, 300, 512, 640, REGULAR, REGULAR + 1] {
            let mut bad = s.message.clone();
            bad[tag_byte(&s, seq)] ^= 0x10;
            for workers in [1, 2, 4] {
                let c = client(suite, workers);
                for read_size in [3000, 200_000] {
                    let (out, err) = stream(&c, &s, &bad, read_size);
                    assert!(
                        matches!(err, Some(Error::FrameAuthentication { sequence }) if sequence as usize == seq),
                        "frame {seq}, {workers} workers: {err:?}"
                    );
                    assert_eq!(out.len(), (seq - 1) * FRAME, "frame {seq}, {workers} workers, reads of {read_size}");
                    assert_eq!(out, s.plaintext[..out.len()]);
                }
                let err = one_shot(&c, &s, &bad).unwrap_err();
                assert!(
                    matches!(err, Error::FrameAuthentication { sequence } if sequence as usize == seq),
                    "one-shot frame {seq}, {workers} workers: {err:?}"
                );
            }
        }
    }
}

#[test]
fn of_two_bad_frames_the_first_one_counts() {
    let s = sample(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey);
    // The later frame is in an earlier batch's neighbour, so a worker may find it first.
    for (first, second) in [(200, 130), (130, 129), (600, 2), (400, 399)] {
        let (first, second) = (first.max(second), first.min(second));
        let mut bad = s.message.clone();
        bad[tag_byte(&s, first)] ^= 1;
        bad[tag_byte(&s, second)] ^= 1;
        for workers in [1, 2, 4] {
            let c = client(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, workers);
            let (out, err) = stream(&c, &s, &bad, 5000);
            assert!(matches!(err, Some(Error::FrameAuthentication { sequence }) if sequence as usize == second));
            assert_eq!(out.len(), (second - 1) * FRAME);
            let err = one_shot(&c, &s, &bad).unwrap_err();
            assert!(matches!(err, Error::FrameAuthentication { sequence } if sequence as usize == second), "{err:?}");
        }
    }
}

#[test]
fn the_final_frame_waits_for_the_signature() {
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;
    let s = sample(suite);
    let body_end = tag_byte(&s, REGULAR + 1) + 1;
    assert!(s.message.len() > body_end);
    let mut bad = s.message.clone();
    let last = bad.len() - 3;
    bad[last] ^= 0x40;
    for workers in [1, 2, 4] {
        let c = client(suite, workers);
        let (out, err) = stream(&c, &s, &bad, 4096);
        assert!(matches!(err, Some(Error::Signature { .. }) | Some(Error::Malformed { .. })), "{err:?}");
        assert_eq!(out, s.plaintext[..REGULAR * FRAME], "{workers} workers");
        assert!(one_shot(&c, &s, &bad).is_err());
        // The footer cut off: the same.
        let (out, err) = stream(&c, &s, &s.message[..body_end + 1], 4096);
        assert!(matches!(err, Some(Error::Malformed { .. })), "{err:?}");
        assert_eq!(out.len(), REGULAR * FRAME);
        // Intact, everything comes out.
        let (out, err) = stream(&c, &s, &s.message, 4096);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(out, s.plaintext);
        one_shot(&c, &s, &s.message).unwrap();
    }
}

#[test]
fn a_cut_message_releases_only_whole_verified_frames() {
    for suite in [AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384] {
        let s = sample(suite);
        let cuts = [
            s.header_len,
            s.header_len + 1,
            s.header_len + 128 * RECORD,
            s.header_len + 128 * RECORD + 17,
            s.header_len + 300 * RECORD - 1,
            s.header_len + REGULAR * RECORD + 30,
        ];
        for cut in cuts {
            for workers in [1, 3] {
                let c = client(suite, workers);
                let (out, err) = stream(&c, &s, &s.message[..cut], 10_000);
                assert!(matches!(err, Some(Error::Malformed { .. })), "cut {cut}: {err:?}");
                let whole = (cut - s.header_len) / RECORD;
                assert_eq!(out.len(), whole.min(REGULAR) * FRAME, "cut {cut}, {workers} workers");
                assert_eq!(out, s.plaintext[..out.len()]);
                assert!(matches!(one_shot(&c, &s, &s.message[..cut]), Err(Error::Malformed { .. })));
            }
        }
    }
}

#[test]
fn streaming_memory_stays_within_the_batches_in_flight() {
    let keyring = TestAesKeyring::sample();
    let cmm = DefaultCmm::new(&keyring);
    let frame = 4096usize;
    let workers = 2;
    // What the caller's side may hold: the batch being filled, the batches
    // in flight, one being written or handed out, and a frame.
    let batch = 32 * (16 + frame + 16);
    let bound = (2 * workers + 2) * batch + 2 * (frame + 64) + 8192;
    let c = Client::builder()
        .algorithm_suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384)
        .frame_length(frame as u32)
        .workers(workers)
        .build()
        .unwrap();
    let total = 8 << 20;
    let chunk = data(10_000);
    let mut w = c.encrypt_stream(&cmm, &EncryptionContext::new(), Vec::with_capacity(total + total / 64)).unwrap();
    let mut written = 0;
    let mut max_w = 0;
    while written < total {
        let n = chunk.len().min(total - written);
        w.write_all(&chunk[..n]).unwrap();
        written += n;
        max_w = max_w.max(w.buffer_capacity());
    }
    assert!(max_w <= bound, "writer holds {max_w} bytes, bound {bound}");
    let msg = w.finish().unwrap();

    let mut r = c.decrypt_stream(&cmm, &EncryptionContext::new(), &msg[..]).unwrap();
    let mut buf = vec![0u8; 3000];
    let (mut read, mut max_r) = (0usize, 0);
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(buf[..n].iter().enumerate().all(|(i, b)| *b == chunk[(read + i) % chunk.len()]));
        read += n;
        max_r = max_r.max(r.buffer_capacity());
    }
    assert_eq!(read, total);
    assert!(max_r <= bound, "reader holds {max_r} bytes, bound {bound}");
}
