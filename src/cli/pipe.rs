//! Overlapped input and output for encrypt/decrypt.
//!
//! A reader thread fills large buffers from the input and a writer thread
//! drains large buffers into the output, while the calling thread seals or
//! opens the message in between. Each side holds a bounded channel of a few
//! buffers, and buffers go back to where they came from to be reused, so
//! memory stays bounded (a few MiB) and the steady state allocates nothing.
//! The calling thread never waits on a system call unless a channel is
//! empty (input slower than the work) or full (output slower).

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use zeroize::Zeroize;

use crate::io::Output;

/// Size of one input or output buffer: four times fewer read and write
/// system calls than 64 KiB, while the buffers of both directions (2.5 MiB)
/// still mostly stay in cache. With 1 MiB buffers the kernel's copies to and
/// from them missed the cache and the command spent twice the system time.
pub const CHUNK: usize = 256 << 10;

/// Filled buffers waiting in each direction.
const DEPTH: usize = 3;

/// Buffers per direction: those waiting, one being filled and one being
/// drained. Once made they are reused, never freed and made again.
const BUFFERS: usize = DEPTH + 2;

/// One buffer: its whole length is initialized; the first `len` bytes are data.
struct Chunk {
    buf: Vec<u8>,
    len: usize,
}

impl Chunk {
    fn new() -> Self {
        // Zeroed memory from the allocator: pages are mapped on first use.
        Chunk { buf: vec![0; CHUNK], len: 0 }
    }
}

/// Wipe a buffer that may have held plaintext before it is freed.
fn wipe(mut chunk: Chunk) {
    chunk.buf.zeroize();
}

/// The input, read ahead on its own thread; reads are served from its buffers.
pub struct ChunkReader {
    filled: Receiver<io::Result<Chunk>>,
    empty: SyncSender<Chunk>,
    current: Option<Chunk>,
    pos: usize,
    ended: bool,
}

impl ChunkReader {
    /// Start reading `input` ahead. `fill`: wait for a whole buffer before
    /// handing it on (regular files); otherwise each read is handed on as it
    /// arrives (pipes and terminals, so that a slow producer is not held up).
    pub fn spawn(mut input: Box<dyn Read + Send>, fill: bool) -> io::Result<Self> {
        let (filled_tx, filled) = mpsc::sync_channel::<io::Result<Chunk>>(DEPTH);
        let (empty, empty_rx) = mpsc::sync_channel::<Chunk>(BUFFERS);
        let mut made = 0;
        thread::Builder::new().name("input".into()).spawn(move || loop {
            let next = match empty_rx.try_recv() {
                Err(TryRecvError::Empty) if made < BUFFERS => {
                    made += 1;
                    Ok(Chunk::new())
                }
                Err(TryRecvError::Empty) => empty_rx.recv().map_err(|_| ()),
                Ok(chunk) => Ok(chunk),
                Err(TryRecvError::Disconnected) => Err(()),
            };
            // Nobody reads any more.
            let Ok(mut chunk) = next else { return };
            chunk.len = 0;
            let result = loop {
                match input.read(&mut chunk.buf[chunk.len..]) {
                    Ok(0) => break Ok(()),
                    Ok(n) => {
                        chunk.len += n;
                        if !fill || chunk.len == chunk.buf.len() {
                            break Ok(());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            let end = chunk.len == 0;
            let sent = match result {
                Ok(()) => filled_tx.send(Ok(chunk)),
                Err(e) => {
                    wipe(chunk);
                    let _ = filled_tx.send(Err(e));
                    return;
                }
            };
            if end || sent.is_err() {
                // The end of the input (an empty chunk), or nobody reads any more.
                if let Err(mpsc::SendError(Ok(chunk))) = sent {
                    wipe(chunk);
                }
                return;
            }
        })?;
        Ok(ChunkReader { filled, empty, current: None, pos: 0, ended: false })
    }

    /// Make sure the current buffer has unread bytes; `false` at the end of the input.
    fn refill(&mut self) -> io::Result<bool> {
        loop {
            if self.current.as_ref().is_some_and(|c| self.pos < c.len) {
                return Ok(true);
            }
            if let Some(done) = self.current.take() {
                // Back to the reader thread; if it is gone or has enough, wipe it here.
                if let Err(mpsc::TrySendError::Full(c) | mpsc::TrySendError::Disconnected(c)) =
                    self.empty.try_send(done)
                {
                    wipe(c);
                }
            }
            if self.ended {
                return Ok(false);
            }
            match self.filled.recv() {
                Ok(Ok(chunk)) if chunk.len == 0 => {
                    self.ended = true;
                    wipe(chunk);
                }
                Ok(Ok(chunk)) => {
                    self.current = Some(chunk);
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.ended = true;
                    return Err(e);
                }
                Err(_) => {
                    self.ended = true;
                    return Err(io::Error::other("the input thread stopped"));
                }
            }
        }
    }

    /// The unread bytes of the current buffer.
    fn unread(&self) -> &[u8] {
        self.current.as_ref().map_or(&[][..], |c| &c.buf[self.pos..c.len])
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if !self.refill()? {
            return Ok(0);
        }
        let data = self.unread();
        let n = data.len().min(out.len());
        out[..n].copy_from_slice(&data[..n]);
        self.pos += n;
        Ok(n)
    }
}

impl Drop for ChunkReader {
    fn drop(&mut self) {
        if let Some(c) = self.current.take() {
            wipe(c);
        }
        // Buffers still queued: the reader thread stops at its next send.
        while let Ok(Ok(c)) = self.filled.try_recv() {
            wipe(c);
        }
    }
}

/// Feed every buffer of `reader` to `f`, in order, without copying it.
pub fn for_each_chunk(reader: &mut ChunkReader, mut f: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
    while reader.refill()? {
        f(reader.unread())?;
        reader.pos = reader.current.as_ref().map_or(0, |c| c.len);
    }
    Ok(())
}

/// The output, written on its own thread from large buffers.
pub struct ChunkWriter {
    filled: Option<SyncSender<Chunk>>,
    empty: Receiver<Chunk>,
    current: Chunk,
    /// Tells the writer thread to drop what is queued (the work failed).
    abort: Arc<AtomicBool>,
    /// The output releases what is written at once (stdout, a device, a FIFO).
    releases_early: bool,
    /// Buffers made so far (at most [`BUFFERS`]).
    made: usize,
    thread: Option<JoinHandle<(Output, io::Result<()>)>>,
}

impl ChunkWriter {
    /// Start writing to `output`.
    pub fn spawn(mut output: Output) -> io::Result<Self> {
        let releases_early = output.releases_early();
        let (filled, filled_rx) = mpsc::sync_channel::<Chunk>(DEPTH);
        let (empty_tx, empty) = mpsc::sync_channel::<Chunk>(BUFFERS);
        let abort = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&abort);
        let thread = thread::Builder::new().name("output".into()).spawn(move || {
            for chunk in filled_rx.iter() {
                if stop.load(Ordering::Relaxed) {
                    wipe(chunk);
                    continue;
                }
                if let Err(e) = output.write_all(&chunk.buf[..chunk.len]) {
                    wipe(chunk);
                    // Dropping the receiver makes the next send fail.
                    return (output, Err(e));
                }
                if let Err(mpsc::TrySendError::Full(c) | mpsc::TrySendError::Disconnected(c)) = empty_tx.try_send(chunk)
                {
                    wipe(c);
                }
            }
            (output, Ok(()))
        })?;
        Ok(ChunkWriter {
            filled: Some(filled),
            empty,
            current: Chunk::new(),
            abort,
            releases_early,
            made: 1,
            thread: Some(thread),
        })
    }

    /// The free part of the current buffer, at least one byte long.
    pub fn space(&mut self) -> io::Result<&mut [u8]> {
        if self.current.len == self.current.buf.len() {
            self.send()?;
        }
        Ok(&mut self.current.buf[self.current.len..])
    }

    /// Count `n` bytes written into [`ChunkWriter::space`].
    pub fn advance(&mut self, n: usize) {
        self.current.len = (self.current.len + n).min(self.current.buf.len());
    }

    /// Hand the current buffer to the writer thread and take a free one.
    fn send(&mut self) -> io::Result<()> {
        if self.current.len == 0 {
            return Ok(());
        }
        let next = match self.empty.try_recv() {
            Err(TryRecvError::Empty) if self.made < BUFFERS => {
                self.made += 1;
                Ok(Chunk::new())
            }
            Err(TryRecvError::Empty) => self.empty.recv().map_err(|_| ()),
            Ok(c) => Ok(c),
            Err(TryRecvError::Disconnected) => Err(()),
        };
        // The writer thread is gone: the send below reports why.
        let mut next = next.unwrap_or_else(|()| Chunk { buf: vec![0; 1], len: 0 });
        next.len = 0;
        let full = std::mem::replace(&mut self.current, next);
        let sender = self.filled.as_ref().ok_or_else(|| io::Error::other("output already finished"))?;
        if let Err(mpsc::SendError(c)) = sender.send(full) {
            wipe(c);
            // The writer thread stopped on an error: report it.
            return Err(self.join().err().unwrap_or_else(|| io::Error::other("the output thread stopped")));
        }
        Ok(())
    }

    /// Stop the writer thread and take the output back, with the first write error.
    fn join(&mut self) -> io::Result<Output> {
        self.filled = None;
        let thread = self.thread.take().ok_or_else(|| io::Error::other("output already finished"))?;
        match thread.join() {
            Ok((output, Ok(()))) => Ok(output),
            Ok((_, Err(e))) => Err(e),
            Err(_) => Err(io::Error::other("the output thread panicked")),
        }
    }

    /// Write what is buffered, wait for the writer thread and return the
    /// output (still to be committed).
    pub fn finish(mut self) -> io::Result<Output> {
        self.send()?;
        self.join()
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let space = self.space()?;
        let n = space.len().min(data.len());
        space[..n].copy_from_slice(&data[..n]);
        self.advance(n);
        Ok(n)
    }

    /// Buffers are written when full or at [`ChunkWriter::finish`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for ChunkWriter {
    /// Without `finish`: an output that releases at once (stdout, a device,
    /// a FIFO) still gets what was written before (as an unbuffered write
    /// would have); a temporary file gets nothing more and is removed. The
    /// output is dropped before this returns.
    fn drop(&mut self) {
        if self.thread.is_some() {
            if !self.releases_early || self.send().is_err() {
                self.abort.store(true, Ordering::Relaxed);
            }
            let _ = self.join();
        }
        wipe(std::mem::replace(&mut self.current, Chunk { buf: Vec::new(), len: 0 }));
        while let Ok(c) = self.empty.try_recv() {
            wipe(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its data in pieces of `step`, then fails if `fail` is set.
    struct Source {
        data: Vec<u8>,
        pos: usize,
        step: usize,
        fail: bool,
    }

    impl Read for Source {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.pos == self.data.len() {
                return if self.fail { Err(io::Error::other("disk on fire")) } else { Ok(0) };
            }
            let n = out.len().min(self.step).min(self.data.len() - self.pos);
            out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn the_reader_delivers_every_byte_in_order_whole_or_in_pieces() {
        let expected = data(3 * CHUNK + 12345);
        for (step, fill) in [(CHUNK, true), (1000, true), (1000, false), (7, false)] {
            let source = Source { data: expected.clone(), pos: 0, step, fail: false };
            let mut reader = ChunkReader::spawn(Box::new(source), fill).unwrap();
            let mut got = Vec::new();
            if step == 7 {
                reader.read_to_end(&mut got).unwrap();
            } else {
                for_each_chunk(&mut reader, |d| {
                    got.extend_from_slice(d);
                    Ok(())
                })
                .unwrap();
            }
            assert_eq!(got.len(), expected.len(), "step {step} fill {fill}");
            assert!(got == expected, "step {step} fill {fill}");
        }
    }

    #[test]
    fn a_read_error_arrives_after_the_data_before_it() {
        let expected = data(CHUNK + 10);
        let source = Source { data: expected.clone(), pos: 0, step: 4096, fail: true };
        let mut reader = ChunkReader::spawn(Box::new(source), true).unwrap();
        let mut got = Vec::new();
        let err = for_each_chunk(&mut reader, |d| {
            got.extend_from_slice(d);
            Ok(())
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "disk on fire");
        // The full buffer before the failure was delivered, nothing invented after it.
        assert!(expected.starts_with(&got) && got.len() >= CHUNK);
        // Once failed, the reader stays at its end.
        assert_eq!(reader.read(&mut [0u8; 8]).unwrap(), 0);
    }

    #[test]
    fn a_write_error_is_reported_with_its_cause() {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let mut writer = ChunkWriter::spawn(Output::Direct(io::BufWriter::new(full))).unwrap();
        // Small writes stay buffered; the error comes with a full buffer or at the end.
        let mut result = Ok(());
        for _ in 0..(BUFFERS + 2) {
            result = writer.write_all(&data(CHUNK));
            if result.is_err() {
                break;
            }
        }
        let err = match result {
            Err(e) => e,
            Ok(()) => writer.finish().err().expect("writing to /dev/full must fail"),
        };
        assert_eq!(err.raw_os_error(), Some(28), "{err}"); // ENOSPC
    }

    #[test]
    fn what_the_writer_is_given_arrives_in_order() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let out = Output::Direct(io::BufWriter::new(file.reopen().unwrap()));
        let mut writer = ChunkWriter::spawn(out).unwrap();
        let expected = data(2 * CHUNK + 77);
        // Through `Write` in odd pieces, then straight into the buffer.
        let (first, rest) = expected.split_at(CHUNK + 5);
        for piece in first.chunks(4133) {
            writer.write_all(piece).unwrap();
        }
        let mut rest = rest;
        while !rest.is_empty() {
            let space = writer.space().unwrap();
            let n = space.len().min(rest.len()).min(1000);
            space[..n].copy_from_slice(&rest[..n]);
            writer.advance(n);
            rest = &rest[n..];
        }
        writer.finish().unwrap().commit().unwrap();
        assert!(std::fs::read(file.path()).unwrap() == expected);
    }
}
