//! The streaming writer's parallel frames: plaintext is laid out in batches
//! of whole frames, each batch sealed by a worker, and sealed batches are
//! written out (and hashed, on their own thread) in order.

use std::io::Write;
use std::sync::{mpsc, Arc};

use zeroize::{Zeroize, Zeroizing};

use super::{batch_frames, regular_record_len, seal_batch, seq_at, HashThread, Pool, IN_FLIGHT_PER_WORKER};
use crate::crypto::{AeadKey, TAG_LEN};
use crate::error::Result;
use crate::format::body::REGULAR_FRAME_PREFIX;
use crate::message::encrypt::FrameSealer;

/// A batch buffer; what it holds (plaintext until sealed) is wiped on drop.
pub(crate) struct BatchBuf(Vec<u8>);

impl Drop for BatchBuf {
    fn drop(&mut self) {
        self.0.as_mut_slice().zeroize();
    }
}

struct SealJob {
    first_seq: u32,
    buf: BatchBuf,
}

type SealPool = Pool<SealJob, Result<BatchBuf>>;

/// The parallel part of an `EncryptingWriter` (more than one worker).
pub(crate) struct ParallelSealer {
    workers: usize,
    frame_length: usize,
    rec: usize,
    per_batch: usize,
    /// Frames being filled: `[prefix room][plaintext][tag room]` each, the
    /// last one possibly partial (no tag room yet).
    batch: BatchBuf,
    /// Started with the second full batch: shorter messages never start threads.
    pool: Option<SealPool>,
    hash: Option<HashThread<BatchBuf>>,
    /// Buffers back from the hash thread, for reuse.
    returned: Option<mpsc::Receiver<BatchBuf>>,
    spare: Vec<BatchBuf>,
    /// Batch buffers made so far, and how many of them the hash thread holds:
    /// when hashing is slower than sealing, the writer waits for a buffer to
    /// come back rather than making more.
    made: usize,
    at_hash: usize,
}

impl ParallelSealer {
    pub(crate) fn new(frame_length: usize, workers: usize) -> Self {
        ParallelSealer {
            workers,
            frame_length,
            rec: regular_record_len(frame_length),
            per_batch: batch_frames(frame_length),
            batch: BatchBuf(Vec::new()),
            pool: None,
            hash: None,
            returned: None,
            spare: Vec::new(),
            made: 0,
            at_hash: 0,
        }
    }

    /// Bytes held in batch buffers by the caller's side (workers hold at
    /// most `IN_FLIGHT_PER_WORKER * workers` more batches).
    pub(crate) fn capacity(&self) -> usize {
        self.batch.0.capacity() + self.spare.iter().map(|b| b.0.capacity()).sum::<usize>()
    }

    fn fresh(&mut self) -> BatchBuf {
        if let Some(rx) = &self.returned {
            while let Ok(b) = rx.try_recv() {
                self.at_hash -= 1;
                self.spare.push(b);
            }
            // The batches in flight, the one being filled and one more.
            if self.spare.is_empty() && self.at_hash > 0 && self.made >= IN_FLIGHT_PER_WORKER * self.workers + 2 {
                if let Ok(b) = rx.recv() {
                    self.at_hash -= 1;
                    self.spare.push(b);
                }
            }
        }
        match self.spare.pop() {
            Some(mut b) => {
                b.0.clear();
                b
            }
            None => {
                self.made += 1;
                BatchBuf(Vec::with_capacity(self.per_batch * self.rec))
            }
        }
    }

    /// Take in plaintext; full batches go to the workers, and sealed ones
    /// are written out as soon as every earlier one is.
    pub(crate) fn write<W: Write>(&mut self, s: &mut FrameSealer, mut data: &[u8], inner: &mut W) -> Result<()> {
        let (fl, rec) = (self.frame_length, self.rec);
        if self.batch.0.capacity() == 0 {
            self.batch = self.fresh();
        }
        while !data.is_empty() {
            if self.batch.0.len() % rec == 0 {
                self.batch.0.extend_from_slice(&[0; REGULAR_FRAME_PREFIX]);
            }
            let filled = self.batch.0.len() % rec - REGULAR_FRAME_PREFIX;
            let n = (fl - filled).min(data.len());
            self.batch.0.extend_from_slice(&data[..n]);
            data = &data[n..];
            if filled + n == fl {
                self.batch.0.extend_from_slice(&[0; TAG_LEN]);
                if self.batch.0.len() == self.per_batch * rec {
                    let fresh = self.fresh();
                    let full = std::mem::replace(&mut self.batch, fresh);
                    self.dispatch(s, full, inner)?;
                }
            }
        }
        Ok(())
    }

    /// Seal a batch of whole frames: on this thread before the pool runs,
    /// else by a worker.
    fn dispatch<W: Write>(&mut self, s: &mut FrameSealer, mut buf: BatchBuf, inner: &mut W) -> Result<()> {
        let frames = buf.0.len() / self.rec;
        if frames == 0 {
            return Ok(());
        }
        let first_seq = s.seq;
        let last = seq_at(first_seq, frames - 1)?;
        s.seq = last + 1;
        let first_batch = first_seq == 1 && frames == self.per_batch;
        if self.pool.is_none() && (first_batch || frames < self.per_batch) {
            seal_batch(&s.aead, &s.message_id, self.frame_length, first_seq, &mut buf.0, &mut s.aad)?;
            s.hash(&buf.0);
            inner.write_all(&buf.0)?;
            self.spare.push(buf);
            return Ok(());
        }
        if self.pool.is_none() {
            self.start(s)?;
        }
        while self.pool.as_ref().is_some_and(Pool::is_full) {
            let sealed = self.pool.as_mut().and_then(|p| p.next().transpose());
            if let Some(sealed) = sealed {
                self.release(sealed??, inner)?;
            }
        }
        if let Some(pool) = &mut self.pool {
            if pool.backlogged() {
                // The calling thread is one of the workers.
                seal_batch(&s.aead, &s.message_id, self.frame_length, first_seq, &mut buf.0, &mut s.aad)?;
                pool.submit_done(Ok(buf));
            } else {
                pool.submit(SealJob { first_seq, buf })?;
            }
        }
        while let Some(sealed) = self.pool.as_mut().and_then(Pool::ready) {
            self.release(sealed?, inner)?;
        }
        Ok(())
    }

    fn start(&mut self, s: &mut FrameSealer) -> Result<()> {
        let aead: Arc<AeadKey> = Arc::clone(&s.aead);
        let message_id: Arc<[u8]> = Arc::from(&s.message_id[..]);
        let fl = self.frame_length;
        let work = Arc::new(move |job: SealJob, aad: &mut Vec<u8>| -> Result<BatchBuf> {
            let mut buf = job.buf;
            seal_batch(&aead, &message_id, fl, job.first_seq, &mut buf.0, aad)?;
            Ok(buf)
        });
        // The calling thread seals too when the others are behind.
        let pool = Pool::start(self.workers - 1, IN_FLIGHT_PER_WORKER * self.workers, work, None)?;
        if let Some((hasher, signer)) = s.signer.take() {
            let (tx, rx) = mpsc::channel();
            self.hash = Some(HashThread::start(hasher, tx, |b: &BatchBuf| &b.0)?);
            self.returned = Some(rx);
            s.parked_signer = Some(signer);
        }
        self.pool = Some(pool);
        Ok(())
    }

    /// Write out a sealed batch (the oldest not written yet) and hash it.
    fn release<W: Write>(&mut self, buf: BatchBuf, inner: &mut W) -> Result<()> {
        inner.write_all(&buf.0)?;
        match &self.hash {
            Some(hash) => {
                self.at_hash += 1;
                hash.send(buf)
            }
            None => {
                self.spare.push(buf);
                Ok(())
            }
        }
    }

    /// Seal and write out every whole frame; give the sealer back its hash;
    /// return the plaintext of the last, partial frame (for the final frame).
    pub(crate) fn finish<W: Write>(&mut self, s: &mut FrameSealer, inner: &mut W) -> Result<Zeroizing<Vec<u8>>> {
        let whole = self.batch.0.len() / self.rec * self.rec;
        let tail = Zeroizing::new(self.batch.0.get(whole + REGULAR_FRAME_PREFIX..).unwrap_or_default().to_vec());
        self.batch.0[whole..].zeroize();
        self.batch.0.truncate(whole);
        let fresh = BatchBuf(Vec::new());
        let rest = std::mem::replace(&mut self.batch, fresh);
        self.dispatch(s, rest, inner)?;
        if let Some(mut pool) = self.pool.take() {
            while let Some(sealed) = pool.next()? {
                self.release(sealed?, inner)?;
            }
        }
        if let Some(hash) = self.hash.take() {
            let hasher = hash.finish()?;
            if let Some(signer) = s.parked_signer.take() {
                s.signer = Some((hasher, signer));
            }
        }
        Ok(tail)
    }
}
