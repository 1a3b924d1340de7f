//! Parallel frames: the frames of a message are independent (each has its own
//! IV, from its sequence number, and its own AAD), so batches of them are
//! sealed and opened on several threads while the output keeps the order of
//! the sequential path, byte for byte.
//!
//! - One-shot encryption and decryption (`oneshot.rs`) split the message
//!   into batches on scoped threads (`std::thread::scope`) that write
//!   straight into disjoint parts of the output.
//! - The streaming writer and reader keep a [`Pool`] of worker threads for
//!   the life of the message; batches travel to the workers and back in owned
//!   buffers, and are released strictly in order.
//! - The calling thread counts as one of the workers: one-shot calls start
//!   `workers - 1` threads and work too; streams seal or open a batch on the
//!   calling thread when the pool's threads are behind (not for a signed
//!   reader, whose batches must pass the hash thread before they are opened).
//! - For signed suites the signature hash runs on its own thread
//!   ([`HashThread`]), in message order, beside the workers.
//!
//! A batch is about [`BATCH_BYTES`] of plaintext (at least one frame), so that
//! small frames still amortize the hand-over. Messages shorter than
//! [`PARALLEL_MIN_BYTES`] stay on the calling thread.

mod oneshot;
mod pool;
#[cfg(test)]
pub(crate) mod tests;
mod writer;

pub(crate) use oneshot::{encrypt_regular_frames, open_records, OpenRecord};
pub(crate) use pool::{HashThread, Pool};
pub(crate) use writer::ParallelSealer;

use crate::crypto::{AeadKey, TAG_LEN};
use crate::error::{Error, Result};
use crate::format::body::{self, BodyKind, REGULAR_FRAME_PREFIX};

/// Plaintext bytes per batch handed to a worker (at least one frame).
pub const BATCH_BYTES: usize = 128 << 10;

/// Smallest body, in bytes, worth sending to worker threads; shorter
/// messages (a frame or two at the default frame length) are sealed and
/// opened on the calling thread, as with one worker.
pub const PARALLEL_MIN_BYTES: usize = 2 * BATCH_BYTES;

/// Batches a streaming pool holds at once, per worker: one being worked on,
/// one waiting, so that no worker waits for the caller.
pub(crate) const IN_FLIGHT_PER_WORKER: usize = 2;

/// The default number of workers: the cores available to this process.
pub(crate) fn default_workers() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Frames per batch for this frame length.
pub(crate) fn batch_frames(frame_length: usize) -> usize {
    (BATCH_BYTES / frame_length.max(1)).max(1)
}

/// Whether a body of `len` bytes in frames of `frame_length` goes to the workers.
pub(crate) fn worth_it(workers: usize, len: usize, frame_length: usize) -> bool {
    workers > 1 && len >= PARALLEL_MIN_BYTES && len / frame_length.max(1) >= 2
}

/// Bytes of one sealed regular frame.
pub(crate) fn regular_record_len(frame_length: usize) -> usize {
    REGULAR_FRAME_PREFIX + frame_length + TAG_LEN
}

/// Seal, in place, the regular frames laid out in `buf`: each is
/// `[prefix room][plaintext][tag room]` of [`regular_record_len`] bytes. The
/// first has sequence number `first_seq`.
pub(crate) fn seal_batch(
    aead: &AeadKey,
    message_id: &[u8],
    frame_length: usize,
    first_seq: u32,
    buf: &mut [u8],
    aad: &mut Vec<u8>,
) -> Result<()> {
    let rec = regular_record_len(frame_length);
    for (i, frame) in buf.chunks_exact_mut(rec).enumerate() {
        let seq = seq_at(first_seq, i)?;
        frame[..REGULAR_FRAME_PREFIX].copy_from_slice(&body::regular_prefix(seq));
        body::body_aad(aad, message_id, BodyKind::Regular, seq, frame_length as u64);
        let (content, tag) = frame[REGULAR_FRAME_PREFIX..].split_at_mut(frame_length);
        let t = aead.seal_in_place(&body::frame_iv(seq), aad, content)?;
        tag.copy_from_slice(&t);
    }
    Ok(())
}

/// Sequence number `first + i`, refusing to run past the format's limit
/// (the final frame needs a number too).
pub(crate) fn seq_at(first: u32, i: usize) -> Result<u32> {
    u32::try_from(i)
        .ok()
        .and_then(|i| first.checked_add(i))
        .filter(|&s| s < body::MAX_FRAMES)
        .ok_or_else(|| Error::config("the plaintext needs more than 2^32 - 1 frames; use a larger frame length"))
}

/// The error of a worker thread that stopped without an answer.
pub(crate) fn worker_lost(what: &str) -> Error {
    Error::crypto(format!("a {what} worker thread stopped unexpectedly"))
}
