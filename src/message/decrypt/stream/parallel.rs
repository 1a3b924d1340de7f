//! The streaming reader's parallel frames: regular frames are read ahead in
//! batches, hashed in order on their own thread (signed suites), opened by
//! workers, and handed out strictly in order, each batch only up to its first
//! frame that fails to verify. The final frame is held back, as on the
//! sequential path, until every earlier frame is out and the signature
//! verifies.

use std::io::{self, Read};
use std::ops::Range;
use std::sync::Arc;

use super::super::input::Scratch;
use super::super::Verifier;
use super::{content_range, DecryptingReader};
use crate::crypto::{AeadKey, TAG_LEN};
use crate::error::{Error, Result};
use crate::format::body::{self, BodyKind};
use crate::format::reader::Reader;
use crate::message::parallel::{batch_frames, Pool, IN_FLIGHT_PER_WORKER};

/// A regular frame in a batch buffer.
struct Frame {
    seq: u32,
    content: Range<usize>,
    tag: [u8; TAG_LEN],
}

/// Regular frames read ahead, one after the other in `buf`.
struct Batch {
    buf: Scratch,
    frames: Vec<Frame>,
}

/// A batch after its workers: the first `ok` frames verified and are
/// plaintext; `failure` is the sequence number of the frame that did not.
struct Opened {
    batch: Batch,
    ok: usize,
    failure: Option<u32>,
}

/// The final frame, read into the reader's own buffer.
struct Final {
    seq: u32,
    content: Range<usize>,
    tag: [u8; TAG_LEN],
}

/// The parallel state of a [`DecryptingReader`] (more than one worker).
pub(super) struct ParallelOpener {
    workers: usize,
    per_batch: usize,
    pool: Option<Pool<Batch, Opened>>,
    /// The batch being handed out, the frame after the one handed out, and
    /// the part of that frame not handed out yet.
    current: Option<(Opened, usize, Range<usize>)>,
    /// What stopped the read-ahead: the final frame, or an error to report
    /// once every frame before it is out.
    final_frame: Option<Final>,
    stop: Option<Error>,
    /// The verifier's key while its hash runs on the pool's thread.
    parked: Option<(crate::materials::SignatureCurve, Vec<u8>)>,
    /// The calling thread opens batches too (no hash in front of the workers).
    caller_helps: bool,
    spare: Vec<Scratch>,
}

impl ParallelOpener {
    pub(super) fn new(workers: usize, frame_length: u32) -> Self {
        ParallelOpener {
            workers,
            per_batch: batch_frames(frame_length as usize),
            pool: None,
            current: None,
            final_frame: None,
            stop: None,
            parked: None,
            caller_helps: false,
            spare: Vec::new(),
        }
    }

    pub(super) fn capacity(&self) -> usize {
        let current = self.current.as_ref().map_or(0, |(o, _, _)| o.batch.buf.capacity());
        current + self.spare.iter().map(Scratch::capacity).sum::<usize>()
    }

    /// Drop every batch and stop the workers: nothing more is handed out.
    pub(super) fn clear(&mut self) {
        self.current = None;
        self.pool = None;
        self.final_frame = None;
        self.stop = None;
    }

    fn read_ahead_done(&self) -> bool {
        self.final_frame.is_some() || self.stop.is_some()
    }
}

/// Open the frames of a batch in order, stopping at the first that fails.
fn open_batch(aead: &AeadKey, message_id: &[u8], mut batch: Batch, aad: &mut Vec<u8>) -> Opened {
    let mut ok = 0;
    let mut failure = None;
    for f in &batch.frames {
        body::body_aad(aad, message_id, BodyKind::Regular, f.seq, f.content.len() as u64);
        if aead.open_in_place(&body::frame_iv(f.seq), aad, &mut batch.buf[f.content.clone()], &f.tag).is_err() {
            failure = Some(f.seq);
            break;
        }
        ok += 1;
    }
    Opened { batch, ok, failure }
}

impl<R: Read> DecryptingReader<R> {
    /// `read` with parallel frames.
    pub(super) fn read_parallel(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            // The final frame (and the footer) is handed out by the sequential code.
            if let Some(n) = self.hand_out(out) {
                return Ok(n);
            }
            if out.is_empty() {
                return Ok(0);
            }
            if !self.body_goes_on()? {
                return Ok(0);
            }
            match self.step_parallel(out) {
                Ok(Some(n)) => return Ok(n),
                Ok(None) => {}
                Err(e) => return Err(self.fail(e)),
            }
        }
    }

    /// One step: hand out verified plaintext (`Some(n)`), or move the
    /// batches along (`None`).
    fn step_parallel(&mut self, out: &mut [u8]) -> Result<Option<usize>> {
        let Some(par) = self.par.as_mut() else { return Err(Error::config("no parallel state")) };
        if let Some((opened, next, part)) = &mut par.current {
            // As many verified frames of this batch as `out` holds.
            let mut n = 0;
            loop {
                if part.start < part.end {
                    let k = (out.len() - n).min(part.len());
                    out[n..n + k].copy_from_slice(&opened.batch.buf[part.start..part.start + k]);
                    part.start += k;
                    n += k;
                }
                if n == out.len() || *next >= opened.ok {
                    break;
                }
                *part = opened.batch.frames[*next].content.clone();
                *next += 1;
            }
            if n > 0 {
                return Ok(Some(n));
            }
            if let Some(sequence) = opened.failure {
                return Err(Error::FrameAuthentication { sequence });
            }
            if let Some((opened, _, _)) = par.current.take() {
                par.spare.push(opened.batch.buf);
            }
        }
        if let Some(opened) = par.pool.as_mut().and_then(Pool::ready) {
            par.current = Some((opened, 0, 0..0));
            return Ok(None);
        }
        if !par.read_ahead_done() && !par.pool.as_ref().is_some_and(Pool::is_full) {
            let batch = self.read_batch();
            return self.dispatch(batch).map(|()| None);
        }
        if let Some(opened) = par.pool.as_mut().map(Pool::next).transpose()?.flatten() {
            par.current = Some((opened, 0, 0..0));
            return Ok(None);
        }
        // Every frame before the final one (or the error) is out.
        if let Some(e) = par.stop.take() {
            return Err(e);
        }
        let fin = par.final_frame.take().ok_or_else(|| Error::config("the message has no final frame"))?;
        if let Some(mut pool) = par.pool.take() {
            if let (Some(hasher), Some((curve, key))) = (pool.close()?, par.parked.take()) {
                self.opener.verifier = Some(Verifier { hasher, curve, key });
            }
        }
        self.opener.hash(&self.buf);
        self.opener.open(BodyKind::Final, fin.seq, &mut self.buf[fin.content.clone()], &fin.tag)?;
        self.out_start = fin.content.start;
        self.out_end = fin.content.end;
        self.end_of_message()?;
        Ok(None)
    }

    /// Read up to a batch of regular frames; the final frame goes to the
    /// reader's own buffer, and an error stops the read-ahead.
    fn read_batch(&mut self) -> Batch {
        let Some(par) = self.par.as_mut() else { return Batch { buf: Scratch::default(), frames: Vec::new() } };
        let mut buf = par.spare.pop().unwrap_or_default();
        buf.clear();
        // The batch and the final frame, which is read into it before it is known to be final.
        let record = self.opener.frame_length as usize + body::FINAL_FRAME_PREFIX + TAG_LEN;
        buf.reserve_total((par.per_batch + 1).saturating_mul(record));
        let mut frames = Vec::with_capacity(par.per_batch);
        while frames.len() < par.per_batch {
            let (at, from) = (self.input.offset, buf.len());
            let (frame_length, expected) = (self.opener.frame_length, self.opener.next_seq);
            // Parsed once: the fields are kept by the parse that succeeds.
            let mut fields = None;
            let parse = |r: &mut Reader<'_>| {
                let rec = body::parse_frame(r, frame_length, expected)?;
                fields = Some((rec.kind, rec.seq, rec.tag, content_range(rec.raw.len(), rec.content.len())));
                Ok(())
            };
            let rec = self
                .input
                .read_record_from(&mut buf, from, at, parse)
                .and_then(|()| fields.ok_or_else(|| Error::malformed("frame", at, "the frame could not be parsed")));
            let (kind, seq, tag, content) = match rec {
                Ok(rec) => rec,
                Err(e) => {
                    par.stop = Some(e);
                    break;
                }
            };
            if kind == BodyKind::Final {
                self.buf.clear();
                self.buf.push(&buf[from..]);
                buf.truncate(from);
                par.final_frame = Some(Final { seq, content, tag });
                break;
            }
            // Past the last sequence number the frame is refused before opening.
            if let Err(e) = self.opener.advance(at) {
                buf.truncate(from);
                par.stop = Some(e);
                break;
            }
            frames.push(Frame { seq, content: from + content.start..from + content.end, tag });
        }
        Batch { buf, frames }
    }

    /// Send a batch to the workers; a message that fits in its first batch
    /// is opened on this thread and starts none.
    fn dispatch(&mut self, batch: Batch) -> Result<()> {
        let Some(par) = self.par.as_mut() else { return Err(Error::config("no parallel state")) };
        if batch.frames.is_empty() {
            par.spare.push(batch.buf);
            return Ok(());
        }
        if par.pool.is_none() && par.read_ahead_done() {
            self.opener.hash(&batch.buf);
            let mut aad = Vec::with_capacity(96);
            let opened = open_batch(&self.opener.aead, &self.opener.message_id, batch, &mut aad);
            par.current = Some((opened, 0, 0..0));
            return Ok(());
        }
        if par.pool.is_none() {
            let aead: Arc<AeadKey> = Arc::clone(&self.opener.aead);
            let message_id: Arc<[u8]> = Arc::from(&self.opener.message_id[..]);
            let work = Arc::new(move |b: Batch, aad: &mut Vec<u8>| open_batch(&aead, &message_id, b, aad));
            let front = self.opener.verifier.take().map(|v| {
                par.parked = Some((v.curve, v.key));
                (v.hasher, (|(_, b): &(u64, Batch)| &b.buf[..]) as fn(&(u64, Batch)) -> &[u8])
            });
            // Without a hash in front, the calling thread opens batches too when the others are behind.
            let threads = par.workers - usize::from(front.is_none());
            par.pool = Some(Pool::start(threads, IN_FLIGHT_PER_WORKER * par.workers, work, front)?);
            par.caller_helps = par.parked.is_none();
        }
        match &mut par.pool {
            Some(pool) if par.caller_helps && pool.backlogged() => {
                let mut aad = Vec::with_capacity(96);
                pool.submit_done(open_batch(&self.opener.aead, &self.opener.message_id, batch, &mut aad));
                Ok(())
            }
            Some(pool) => pool.submit(batch),
            None => Err(Error::config("no worker pool")),
        }
    }
}
