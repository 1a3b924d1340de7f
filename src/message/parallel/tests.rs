//! Parallel and sequential frames write the same bytes, for every suite and
//! for sizes around frame and batch boundaries, and read each other's
//! messages; one-shot and streaming alike.

use std::cell::Cell;
use std::io::{Read, Write};

use proptest::prelude::*;

use super::{batch_frames, PARALLEL_MIN_BYTES};
use crate::cmm::DefaultCmm;
use crate::format::body::{FINAL_FRAME_PREFIX, REGULAR_FRAME_PREFIX};
use crate::keyrings::RawAesKeyring;
use crate::materials::{
    AlgorithmSuite, CommitmentPolicy, DataKey, DecryptionMaterials, EncryptedDataKey, EncryptionContext,
    EncryptionMaterials, Keyring,
};
use crate::{Client, Result};

/// A raw AES keyring whose data key is always the same, so that with a fixed
/// message id two messages have the same body.
#[derive(Debug)]
struct FixedDataKey(RawAesKeyring);

impl Keyring for FixedDataKey {
    fn on_encrypt(&self, mut materials: EncryptionMaterials) -> Result<EncryptionMaterials> {
        let len = materials.algorithm_suite().key_len();
        materials.set_data_key(DataKey::new(vec![0x33; len]))?;
        self.0.on_encrypt(materials)
    }
    fn on_decrypt(&self, materials: DecryptionMaterials, edks: &[EncryptedDataKey]) -> Result<DecryptionMaterials> {
        self.0.on_decrypt(materials, edks)
    }
    fn description(&self) -> String {
        self.0.description()
    }
}

thread_local! {
    /// When set, messages encrypted on this thread get this message id byte
    /// (repeated), so that two encryptions can be compared byte for byte.
    static FIXED_ID: Cell<Option<u8>> = const { Cell::new(None) };
}

/// The message id seam: called right after the random id is drawn.
pub(crate) fn fix_message_id(id: &mut [u8]) {
    if let Some(b) = FIXED_ID.with(Cell::get) {
        id.fill(b);
    }
}

fn client(suite: AlgorithmSuite, frame: u32, workers: usize) -> Client {
    let policy = if suite.is_committing() {
        CommitmentPolicy::RequireEncryptRequireDecrypt
    } else {
        CommitmentPolicy::ForbidEncryptAllowDecrypt
    };
    Client::builder()
        .commitment_policy(policy)
        .algorithm_suite(suite)
        .frame_length(frame)
        .workers(workers)
        .build()
        .unwrap()
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(131) ^ (i >> 9)) as u8).collect()
}

/// Where the body starts and ends (the footer follows).
fn body(message: &[u8], frame: usize, len: usize) -> std::ops::Range<usize> {
    let header = crate::format::parse_header(message, &crate::format::HeaderLimits::default()).unwrap().len();
    header..header + len / frame * (REGULAR_FRAME_PREFIX + frame + 16) + FINAL_FRAME_PREFIX + len % frame + 16
}

/// Sizes around frame and batch boundaries, from a frame count `k` and an offset.
fn size(frame: usize, batches: usize, frames: usize, delta: i64) -> usize {
    let per_batch = batch_frames(frame);
    let base = (batches * per_batch + frames.min(per_batch)) * frame;
    (base as i64 + delta).max(0) as usize
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn parallel_frames_write_the_sequential_bytes(
        suite in prop::sample::select(AlgorithmSuite::ALL.to_vec()),
        frame in prop::sample::select(vec![1000u32, 4096, 4099, 65536, 131072, 131073, 300_000]),
        batches in 0usize..4,
        frames in prop::sample::select(vec![0usize, 1, 2, 1000]),
        delta in -1i64..=1,
        workers in 2usize..=4,
        write_chunk in 1usize..200_000,
        read_chunk in 1usize..200_000,
    ) {
        let len = size(frame as usize, batches, frames, delta);
        let pt = plaintext(len);
        let keyring = FixedDataKey(RawAesKeyring::new("ns", "name", &[7; 32]).unwrap());
        let cmm = DefaultCmm::new(&keyring);
        let ctx = EncryptionContext::from_pairs([("purpose", "parallel")]).unwrap();
        let (one, many) = (client(suite, frame, 1), client(suite, frame, workers));

        FIXED_ID.with(|c| c.set(Some(0x5A)));
        let sequential = one.encrypt(&cmm, &pt, &ctx).unwrap();
        let parallel = many.encrypt(&cmm, &pt, &ctx).unwrap();
        let mut w = many.encrypt_stream(&cmm, &ctx, Vec::new()).unwrap();
        for chunk in pt.chunks(write_chunk) {
            w.write_all(chunk).unwrap();
        }
        let streamed = w.finish().unwrap();
        // Appended to a buffer already in use (not a fresh one).
        let mut appended = b"in use".to_vec();
        many.encrypt_into(&cmm, &pt, &ctx, &mut appended).unwrap();
        FIXED_ID.with(|c| c.set(None));
        prop_assert_eq!(&appended[..6], b"in use");
        let appended = appended[6..].to_vec();

        // The header holds a freshly wrapped EDK (random IV) and the footer
        // an ECDSA signature, which may differ between two signings; the
        // bodies are equal byte for byte.
        let b = body(&sequential, frame as usize, len);
        prop_assert!(b.end <= sequential.len());
        prop_assert_eq!(sequential.len() > b.end, suite.is_signing());
        for (name, other) in [("one-shot", &parallel), ("streamed", &streamed), ("appended", &appended)] {
            let o = body(other, frame as usize, len);
            prop_assert!(sequential[b.clone()] == other[o.clone()], "{name} body differs ({len} bytes)");
            prop_assert_eq!(other.len() > o.end, suite.is_signing());
        }

        for message in [&sequential, &parallel, &streamed] {
            for c in [&one, &many] {
                prop_assert!(c.decrypt(&cmm, message, &ctx).unwrap().plaintext == pt);
                let mut into = b"in use".to_vec();
                c.decrypt_into(&cmm, message, &ctx, &mut into).unwrap();
                prop_assert!(into[..6] == b"in use"[..] && into[6..] == pt[..]);
                let mut r = c.decrypt_stream(&cmm, &ctx, &message[..]).unwrap();
                let mut out = Vec::with_capacity(len);
                let mut buf = vec![0u8; read_chunk];
                loop {
                    let n = r.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    out.extend_from_slice(&buf[..n]);
                }
                prop_assert!(out == pt, "streamed plaintext differs ({len} bytes)");
            }
        }
    }
}

#[test]
fn the_threshold_lets_small_messages_stay_sequential_and_large_ones_go_parallel() {
    assert!(!super::worth_it(1, 64 << 20, 4096));
    assert!(!super::worth_it(4, PARALLEL_MIN_BYTES - 1, 4096));
    assert!(!super::worth_it(4, 8 << 20, 8 << 20), "a single frame stays on the calling thread");
    assert!(super::worth_it(2, PARALLEL_MIN_BYTES, 4096));
    assert_eq!(batch_frames(4096), 32);
    assert_eq!(batch_frames(1 << 20), 1);
    assert!(Client::builder().workers(0).build().is_err());
    assert!(Client::new().workers() >= 1);
}
