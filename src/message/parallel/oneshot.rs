//! One-shot messages on scoped threads: each worker takes the next batch,
//! seals or opens it straight into its own part of the output; the signature
//! hash runs beside them on its own thread.

use std::collections::BTreeMap;
use std::sync::{mpsc, Mutex};
use std::thread;

use super::{batch_frames, regular_record_len, seal_batch, worker_lost};
use crate::crypto::{AeadKey, SignatureHasher, TAG_LEN};
use crate::error::{Error, Result};
use crate::format::body::{self, BodyKind, REGULAR_FRAME_PREFIX};
use crate::message::encrypt::FrameSealer;

/// Take the next job from a shared iterator (a panicked worker poisons nothing
/// the others need: the iterator only hands out disjoint parts).
fn next_job<I: Iterator>(jobs: &Mutex<I>) -> Option<I::Item> {
    jobs.lock().unwrap_or_else(|e| e.into_inner()).next()
}

/// One-shot encryption's regular frames on workers: append `header` and
/// the sealed regular frames of `plaintext` to `out` (`size` bytes are enough
/// for the whole message) and advance `sealer` past them; the caller adds
/// the final frame and the footer.
pub(crate) fn encrypt_regular_frames(
    sealer: &mut FrameSealer,
    workers: usize,
    header: &[u8],
    plaintext: &[u8],
    size: usize,
    out: &mut Vec<u8>,
) -> Result<()> {
    let fl = sealer.frame_length as usize;
    let regular = plaintext.len() / fl;
    let regular_end = |start: usize| start + regular * regular_record_len(fl);
    let start = if out.is_empty() && out.capacity() == 0 {
        // A fresh buffer: zeroed memory from the allocator is not written
        // here, so the workers fault its pages in, in parallel.
        *out = vec![0u8; size];
        out[..header.len()].copy_from_slice(header);
        out.truncate(regular_end(header.len()));
        header.len()
    } else {
        out.reserve(size);
        out.extend_from_slice(header);
        let start = out.len();
        out.resize(regular_end(start), 0);
        start
    };
    let first = sealer.seq;
    let hasher = sealer.signer.as_mut().map(|(h, _)| h);
    let key = FrameKey { aead: &sealer.aead, message_id: &sealer.message_id, frame_length: fl };
    seal_regular_frames(key, first, &plaintext[..regular * fl], &mut out[start..], workers, hasher)?;
    sealer.seq = u32::try_from(regular)
        .ok()
        .and_then(|r| first.checked_add(r))
        .ok_or_else(|| Error::config("the plaintext needs more than 2^32 - 1 frames; use a larger frame length"))?;
    Ok(())
}

/// What seals the frames of one message.
#[derive(Clone, Copy)]
pub(crate) struct FrameKey<'a> {
    pub(crate) aead: &'a AeadKey,
    pub(crate) message_id: &'a [u8],
    pub(crate) frame_length: usize,
}

/// Seal `plaintext` (a whole number of frames) as regular frames from
/// sequence number `first_seq` into `out` (exactly one record per frame),
/// on `workers` threads (the calling thread and `workers - 1` more). With `hasher`, the records are hashed in order on
/// a thread of their own while the others seal.
pub(crate) fn seal_regular_frames(
    frames: FrameKey<'_>,
    first_seq: u32,
    plaintext: &[u8],
    out: &mut [u8],
    workers: usize,
    hasher: Option<&mut SignatureHasher>,
) -> Result<()> {
    let FrameKey { aead, message_id, frame_length } = frames;
    let rec = regular_record_len(frame_length);
    let per_batch = batch_frames(frame_length);
    debug_assert_eq!(plaintext.len() % frame_length, 0);
    debug_assert_eq!(out.len(), plaintext.len() / frame_length * rec);
    let jobs = Mutex::new(out.chunks_mut(per_batch * rec).zip(plaintext.chunks(per_batch * frame_length)).enumerate());
    let (done_tx, done_rx) = mpsc::channel::<(usize, &[u8])>();
    let hashing = hasher.is_some();
    let work = |done: Option<mpsc::Sender<_>>| -> Result<()> {
        let mut aad = Vec::with_capacity(96);
        while let Some((i, (dst, src))) = next_job(&jobs) {
            for (frame, pt) in dst.chunks_exact_mut(rec).zip(src.chunks_exact(frame_length)) {
                frame[REGULAR_FRAME_PREFIX..REGULAR_FRAME_PREFIX + frame_length].copy_from_slice(pt);
            }
            let first = super::seq_at(first_seq, i * per_batch)?;
            seal_batch(aead, message_id, frame_length, first, dst, &mut aad)?;
            if let Some(done) = &done {
                let sealed: &[u8] = dst;
                // The hash thread only stops early if it panicked; the join reports that.
                let _ = done.send((i, sealed));
            }
        }
        Ok(())
    };
    thread::scope(|s| {
        let hash_thread = hasher.map(|h| s.spawn(move || hash_in_order(h, done_rx)));
        // The calling thread is one of the workers.
        let work = &work;
        let threads: Vec<_> = (1..workers)
            .map(|_| {
                let done = hashing.then(|| done_tx.clone());
                s.spawn(move || work(done))
            })
            .collect();
        let mut result = work(hashing.then(|| done_tx.clone()));
        drop(done_tx);
        for t in threads {
            let r = t.join().unwrap_or_else(|_| Err(worker_lost("sealing")));
            if result.is_ok() {
                result = r;
            }
        }
        if let Some(t) = hash_thread {
            let complete = t.join().unwrap_or(false);
            if result.is_ok() && !complete {
                result = Err(worker_lost("hashing"));
            }
        }
        result
    })
}

/// Hash the batches of one message in order as they arrive in any order.
/// Returns false if a batch never came (a sealing worker failed).
fn hash_in_order(hasher: &mut SignatureHasher, done: mpsc::Receiver<(usize, &[u8])>) -> bool {
    let mut waiting = BTreeMap::new();
    let mut next = 0;
    for (i, bytes) in done {
        waiting.insert(i, bytes);
        while let Some(bytes) = waiting.remove(&next) {
            hasher.update(bytes);
            next += 1;
        }
    }
    waiting.is_empty()
}

/// A parsed body record to open.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenRecord<'a> {
    pub(crate) kind: BodyKind,
    pub(crate) seq: u32,
    pub(crate) content: &'a [u8],
    pub(crate) tag: [u8; TAG_LEN],
}

/// Open `records` into `out` (their contents one after the other) on
/// `workers` threads, while `hash` (if any) takes in the raw body on a thread
/// of its own. Every frame is opened; the error is the one of the frame with
/// the lowest sequence number that failed, as on the sequential path. On
/// failure the content of `out` is unspecified: the caller wipes it.
pub(crate) fn open_records(
    aead: &AeadKey,
    message_id: &[u8],
    records: &[OpenRecord<'_>],
    out: &mut [u8],
    workers: usize,
    hash: Option<(&mut SignatureHasher, &[u8])>,
) -> Result<()> {
    let per_batch = batch_frames(records.first().map_or(1, |r| r.content.len()));
    let mut parts = Vec::with_capacity(records.len() / per_batch + 1);
    let mut rest = out;
    for batch in records.chunks(per_batch) {
        let len = batch.iter().map(|r| r.content.len()).sum();
        let (part, tail) = rest.split_at_mut(len);
        parts.push((batch, part));
        rest = tail;
    }
    let jobs = Mutex::new(parts.into_iter());
    let work = || -> Option<u32> {
        let mut aad = Vec::with_capacity(96);
        let mut first_failure: Option<u32> = None;
        while let Some((batch, mut part)) = next_job(&jobs) {
            for r in batch {
                let (dst, tail) = std::mem::take(&mut part).split_at_mut(r.content.len());
                part = tail;
                body::body_aad(&mut aad, message_id, r.kind, r.seq, r.content.len() as u64);
                if aead.open_to(&body::frame_iv(r.seq), &aad, r.content, &r.tag, dst).is_err() {
                    first_failure = Some(first_failure.map_or(r.seq, |f| f.min(r.seq)));
                    break;
                }
            }
        }
        first_failure
    };
    thread::scope(|s| {
        let hash_thread = hash.map(|(h, bytes)| s.spawn(move || h.update(bytes)));
        // The calling thread is one of the workers.
        let work = &work;
        let threads: Vec<_> = (1..workers).map(|_| s.spawn(work)).collect();
        let mut failure: Option<u32> = work();
        let mut lost = false;
        for t in threads {
            match t.join() {
                Ok(Some(seq)) => failure = Some(failure.map_or(seq, |f| f.min(seq))),
                Ok(None) => {}
                Err(_) => lost = true,
            }
        }
        if let Some(t) = hash_thread {
            lost |= t.join().is_err();
        }
        match (failure, lost) {
            (Some(sequence), _) => Err(Error::FrameAuthentication { sequence }),
            (None, true) => Err(worker_lost("opening")),
            (None, false) => Ok(()),
        }
    })
}
