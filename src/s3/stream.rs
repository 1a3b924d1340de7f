//! Streaming adapters: plaintext `Read` -> ciphertext `Read`, plaintext
//! `Write` -> ciphertext `Write`, and ciphertext `Read` -> plaintext `Read`
//! that authenticates before it releases the last bytes.

use std::io::{self, Read, Write};

use super::content::{tag_failed, ObjectDecryptor, ObjectEncryptor};
use super::metadata::S3Metadata;
use crate::crypto::TAG_LEN;
use crate::error::Error;

fn io_err(e: Error) -> io::Error {
    io::Error::other(e)
}

/// Reads plaintext from `R` and yields the object body: ciphertext, then
/// the 16-byte tag. Memory: one read's worth.
#[derive(Debug)]
pub struct EncryptingReader<R> {
    inner: R,
    encryptor: Option<ObjectEncryptor>,
    metadata: S3Metadata,
    tag: Vec<u8>,
}

impl<R: Read> EncryptingReader<R> {
    pub(crate) fn new(inner: R, encryptor: ObjectEncryptor) -> Self {
        let metadata = encryptor.metadata().clone();
        EncryptingReader { inner, encryptor: Some(encryptor), metadata, tag: Vec::new() }
    }

    /// The object's encryption metadata (known before the first byte).
    pub fn metadata(&self) -> &S3Metadata {
        &self.metadata
    }
}

impl<R: Read> Read for EncryptingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(encryptor) = self.encryptor.as_mut() {
            let n = self.inner.read(buf)?;
            if n > 0 {
                encryptor.update(&mut buf[..n]).map_err(io_err)?;
                return Ok(n);
            }
            let encryptor = self.encryptor.take().ok_or_else(|| io::Error::other("encryptor gone"))?;
            self.tag = encryptor.finish().map_err(io_err)?.to_vec();
        }
        let n = self.tag.len().min(buf.len());
        buf[..n].copy_from_slice(&self.tag[..n]);
        self.tag.drain(..n);
        Ok(n)
    }
}

/// Takes plaintext and writes the object body to `W`; [`finish`](Self::finish)
/// writes the tag. Dropping it without `finish` leaves a body without a
/// tag, which no reader accepts.
#[derive(Debug)]
pub struct EncryptingWriter<W: Write> {
    inner: W,
    encryptor: Option<ObjectEncryptor>,
    buf: Vec<u8>,
}

impl<W: Write> EncryptingWriter<W> {
    pub(crate) fn new(inner: W, encryptor: ObjectEncryptor) -> Self {
        EncryptingWriter { inner, encryptor: Some(encryptor), buf: Vec::new() }
    }

    /// The object's encryption metadata.
    pub fn metadata(&self) -> Option<&S3Metadata> {
        self.encryptor.as_ref().map(ObjectEncryptor::metadata)
    }

    /// Write the tag and return the inner writer.
    pub fn finish(mut self) -> crate::Result<W> {
        let encryptor = self.encryptor.take().ok_or_else(|| Error::config("already finished"))?;
        self.inner.write_all(&encryptor.finish()?)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for EncryptingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let encryptor = self.encryptor.as_mut().ok_or_else(|| io::Error::other("the writer has finished"))?;
        self.buf.clear();
        self.buf.extend_from_slice(data);
        encryptor.update(&mut self.buf).map_err(io_err)?;
        self.inner.write_all(&self.buf)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Default number of final plaintext bytes [`DecryptingReader`] releases
/// only after the tag verified.
pub const DEFAULT_HOLD_BACK: usize = 64 * 1024;

/// Reads an object body (ciphertext || tag) from `R` and yields plaintext.
///
/// What it guarantees: the body is one AES-GCM computation, so nothing can
/// be authenticated before its end. The reader keeps the last
/// `hold_back` plaintext bytes (and the tag) back until the tag has
/// verified; only then does it release them and report end of stream. An
/// altered, truncated or extended body makes `read` fail with an
/// [`Error::S3Authentication`] (inside the `io::Error`, kind
/// "not authentic") before the end of the stream, so a consumer that
/// treats an error as failure never accepts a forged object; bytes it read
/// before the error were not authenticated and must be discarded. Objects
/// no longer than `hold_back` release nothing before verification. To
/// release nothing at all on failure, use
/// [`S3Crypto::decrypt`](super::S3Crypto::decrypt) or
/// [`S3Crypto::decrypt_to_file`](super::S3Crypto::decrypt_to_file).
#[derive(Debug)]
pub struct DecryptingReader<R> {
    inner: R,
    decryptor: Option<ObjectDecryptor>,
    hold_back: usize,
    /// Ciphertext read but not yet decrypted (always includes the last 16 bytes seen).
    pending: Vec<u8>,
    /// Decrypted plaintext ready to release.
    ready: Vec<u8>,
    ready_pos: usize,
    /// Plaintext held back until the tag verifies.
    held: Vec<u8>,
    done: bool,
}

impl<R: Read> DecryptingReader<R> {
    pub(crate) fn new(inner: R, decryptor: ObjectDecryptor, hold_back: usize) -> Self {
        DecryptingReader {
            inner,
            decryptor: Some(decryptor),
            hold_back,
            pending: Vec::new(),
            ready: Vec::new(),
            ready_pos: 0,
            held: Vec::new(),
            done: false,
        }
    }

    /// Release plaintext as soon as it is decrypted (a caller that discards
    /// everything on error, like a temporary file, needs no hold-back).
    pub(crate) fn with_hold_back_none(mut self) -> Self {
        self.hold_back = 0;
        self
    }

    fn fill(&mut self) -> io::Result<()> {
        const CHUNK: usize = 64 * 1024;
        loop {
            let start = self.pending.len();
            self.pending.resize(start + CHUNK, 0);
            let n = match self.inner.read(&mut self.pending[start..]) {
                Ok(n) => n,
                Err(e) => {
                    self.pending.truncate(start);
                    return Err(e);
                }
            };
            self.pending.truncate(start + n);
            let decryptor = self.decryptor.as_mut().ok_or_else(|| io::Error::other("decryptor gone"))?;
            if n == 0 {
                // End of body: the last 16 bytes are the tag.
                let decryptor = self.decryptor.take().ok_or_else(|| io::Error::other("decryptor gone"))?;
                if self.pending.len() < TAG_LEN {
                    self.held.clear();
                    return Err(io_err(Error::S3Authentication {
                        reason: "the body is shorter than its 16-byte tag (truncated)".into(),
                    }));
                }
                let split = self.pending.len() - TAG_LEN;
                let tag = self.pending.split_off(split);
                let mut last = std::mem::take(&mut self.pending);
                let mut result = decryptor_update(&mut Some(decryptor), &mut last, &tag);
                if let Ok(()) = result {
                    self.held.extend_from_slice(&last);
                } else {
                    self.held.clear();
                    result = Err(tag_failed());
                }
                result.map_err(io_err)?;
                self.ready = std::mem::take(&mut self.held);
                self.ready_pos = 0;
                self.done = true;
                return Ok(());
            }
            // Decrypt everything but the last 16 bytes (maybe the tag).
            if self.pending.len() > TAG_LEN {
                let keep = self.pending.split_off(self.pending.len() - TAG_LEN);
                let mut chunk = std::mem::replace(&mut self.pending, keep);
                decryptor.update(&mut chunk).map_err(io_err)?;
                self.held.extend_from_slice(&chunk);
            }
            if self.held.len() > self.hold_back {
                let release = self.held.len() - self.hold_back;
                self.ready = self.held.drain(..release).collect();
                self.ready_pos = 0;
                return Ok(());
            }
        }
    }
}

fn decryptor_update(decryptor: &mut Option<ObjectDecryptor>, last: &mut [u8], tag: &[u8]) -> crate::Result<()> {
    let mut decryptor = decryptor.take().ok_or_else(|| Error::config("decryptor gone"))?;
    decryptor.update(last)?;
    decryptor.finish(tag)
}

impl<R: Read> Read for DecryptingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.ready_pos == self.ready.len() {
            if self.done {
                return Ok(0);
            }
            self.fill()?;
        }
        let n = (self.ready.len() - self.ready_pos).min(buf.len());
        buf[..n].copy_from_slice(&self.ready[self.ready_pos..self.ready_pos + n]);
        self.ready_pos += n;
        Ok(n)
    }
}
