//! The streaming reader: [`DecryptingReader`] holds one record at a time,
//! parsed by the same `format::body` code as the one-shot path, and releases
//! its plaintext only once its tag verifies.

use std::io::{self, Read};

mod parallel;

use super::input::{read_header, Input, Scratch};
use super::{header_info, open_header, FrameOpener};
use crate::crypto::TAG_LEN;
use crate::error::{Error, Result};
use crate::format::body::{self, BodyKind};
use crate::format::reader::{ReadError, Reader};
use crate::format::ContentType;
use crate::materials::{CryptographicMaterialsManager, EncryptionContext};
use crate::message::encrypt::into_io;
use crate::message::{Client, HeaderInfo};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Body,
    Done,
    Failed,
}

/// Streaming decryptor: an [`std::io::Read`] that yields only authenticated
/// plaintext.
///
/// The header is read, the data key obtained and the header authenticated
/// when the reader is created ([`Client::decrypt_stream`]). After that, with
/// one worker ([`ClientBuilder::workers`](crate::message::ClientBuilder::workers)),
/// it holds about one frame: it reads a frame, verifies its tag, and only
/// then hands out its plaintext. With more, it reads ahead batches of about
/// 128 KiB of frames (at most `2 × workers` batches in flight, besides the
/// one being handed out) that worker threads open, and hands them out in
/// order. Either way a frame that fails to verify is never released, nor is
/// anything after it: the frames before it come out, then the error.
///
/// # Signed suites: the signature is checked at the end
///
/// **For signed suites (0x0578, 0x0378, 0x0346, 0x0214) the footer signature
/// can only be verified once the whole message has been read.** Regular
/// frames are released as soon as their AES-GCM tag verifies, so a reader
/// may already have received plaintext of a message whose signature later
/// turns out to be bad (or missing, if the stream is cut). That failure is
/// reported as an error from the last `read` call (the final frame is held
/// back until the signature verifies). Plaintext released by a stream that
/// ends in an error **must be discarded**, and any processing done with it
/// rolled back. Use one-shot [`Client::decrypt`], or
/// [`ClientBuilder::refuse_signed_streaming`](crate::message::ClientBuilder::refuse_signed_streaming),
/// if that is not acceptable.
///
/// Errors are returned as [`std::io::Error`]s wrapping the crate's
/// [`Error`]: `err.get_ref().and_then(|e| e.downcast_ref::<hsm_keyring::Error>())`.
/// After an error every further `read` fails.
pub struct DecryptingReader<R: Read> {
    input: Input<R>,
    info: HeaderInfo,
    opener: FrameOpener,
    content_type: ContentType,
    /// Ciphertext read ahead, then the verified plaintext handed out: wiped on drop.
    buf: Scratch,
    footer: Scratch,
    out_start: usize,
    out_end: usize,
    /// A regular frame read (and hashed) but not opened yet.
    pending: Option<Pending>,
    state: State,
    max_body_buffer: usize,
    /// Batches of frames opened by worker threads (more than one worker).
    par: Option<parallel::ParallelOpener>,
}

/// A regular frame waiting in the reader's buffer. It is opened by the next
/// `read`: straight into the caller's buffer when that holds the whole frame
/// (no copy), else in place and handed out from there.
struct Pending {
    seq: u32,
    /// Offset of the frame in the message, for errors.
    at: u64,
    content: std::ops::Range<usize>,
    tag: [u8; TAG_LEN],
}

impl<R: Read> std::fmt::Debug for DecryptingReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptingReader")
            .field("header", &self.info)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<R: Read> DecryptingReader<R> {
    pub(crate) fn new(
        client: &Client,
        cmm: &dyn CryptographicMaterialsManager,
        context: &EncryptionContext,
        mut inner: R,
    ) -> Result<Self> {
        let (header, ahead) = read_header(&mut inner, &client.header_limits())?;
        if client.refuse_signed_streaming && header.suite.is_signing() {
            return Err(Error::PolicyViolation {
                reason: format!(
                    "suite 0x{:04X} is signed and streaming decryption of signed messages is disabled",
                    header.suite.id()
                ),
            });
        }
        if header.content_type == ContentType::Framed && header.frame_length as usize > client.max_body_buffer {
            return Err(Error::malformed(
                "frame length",
                header.frame_length_offset(),
                format!(
                    "{} exceeds the streaming buffer limit of {} bytes",
                    header.frame_length, client.max_body_buffer
                ),
            ));
        }
        let opener = open_header(client, cmm, &header, context)?;
        let offset = header.len() as u64;
        let par = (client.workers > 1 && header.content_type == ContentType::Framed)
            .then(|| parallel::ParallelOpener::new(client.workers, header.frame_length));
        let content_type = header.content_type;
        Ok(DecryptingReader {
            input: Input { inner, ahead, ahead_pos: 0, offset },
            info: header_info(header),
            opener,
            content_type,
            buf: Scratch::default(),
            footer: Scratch::default(),
            out_start: 0,
            out_end: 0,
            pending: None,
            state: State::Body,
            max_body_buffer: client.max_body_buffer,
            par,
        })
    }

    /// The verified header.
    pub fn header(&self) -> &HeaderInfo {
        &self.info
    }

    /// Bytes of memory held for the current frame (for tests of the memory bound).
    #[doc(hidden)]
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity() + self.input.ahead.capacity() + self.par.as_ref().map_or(0, |p| p.capacity())
    }

    /// Read, verify and decrypt the next record; set the output range.
    fn next_record(&mut self) -> Result<()> {
        let last = match self.content_type {
            ContentType::Framed => self.next_frame()?,
            ContentType::NonFramed => self.non_framed()?,
        };
        if last {
            self.end_of_message()?;
        }
        Ok(())
    }

    /// After the last record: verify the footer, check the end of the stream.
    fn end_of_message(&mut self) -> Result<()> {
        if self.opener.is_signed() {
            let at = self.input.offset;
            self.footer.clear();
            self.input.read_record(&mut self.footer, at, |r| body::parse_footer(r).map(drop))?;
            let signature = body::parse_footer(&mut Reader::new(&self.footer, at)).map_err(ReadError::into_error)?;
            self.opener.verify_footer(signature)?;
        }
        self.input.expect_eof()?;
        self.state = State::Done;
        Ok(())
    }

    /// Read the next frame into the buffer; returns true for the final frame.
    /// A regular frame is left pending (hashed, not opened); the final
    /// frame is opened in place, and its plaintext is released only by the
    /// caller after the footer and end checks.
    fn next_frame(&mut self) -> Result<bool> {
        let at = self.input.offset;
        let (frame_length, expected) = (self.opener.frame_length, self.opener.next_seq);
        self.buf.clear();
        self.input.read_record(&mut self.buf, at, |r| body::parse_frame(r, frame_length, expected).map(drop))?;
        let rec = body::parse_frame(&mut Reader::new(&self.buf, at), frame_length, expected)
            .map_err(ReadError::into_error)?;
        let (kind, seq, tag) = (rec.kind, rec.seq, rec.tag);
        let content = content_range(rec.raw.len(), rec.content.len());
        self.opener.hash(&self.buf);
        if kind == BodyKind::Regular {
            self.pending = Some(Pending { seq, at, content, tag });
            return Ok(false);
        }
        self.opener.open(kind, seq, &mut self.buf[content.clone()], &tag)?;
        self.out_start = content.start;
        self.out_end = content.end;
        Ok(true)
    }

    /// Open the pending regular frame: into `out` when it holds the whole
    /// frame (returns its length), else in place for the read loop to hand
    /// out (returns `None`). If the tag does not verify, the part of `out`
    /// written is zeroed before the error is returned, so nothing
    /// unauthenticated reaches the caller.
    fn open_pending(&mut self, p: Pending, out: &mut [u8]) -> Result<Option<usize>> {
        // Past the last sequence number the frame is refused before opening.
        self.opener.advance(p.at)?;
        let len = p.content.len();
        if len > 0 && out.len() >= len {
            self.opener.open_to(BodyKind::Regular, p.seq, &self.buf[p.content], &p.tag, &mut out[..len])?;
            return Ok(Some(len));
        }
        self.opener.open(BodyKind::Regular, p.seq, &mut self.buf[p.content.clone()], &p.tag)?;
        self.out_start = p.content.start;
        self.out_end = p.content.end;
        Ok(None)
    }

    /// Enter the failed state; nothing more is handed out.
    fn fail(&mut self, e: Error) -> io::Error {
        self.state = State::Failed;
        self.pending = None;
        if let Some(par) = &mut self.par {
            par.clear();
        }
        self.out_start = 0;
        self.out_end = 0;
        self.buf.clear();
        into_io(e)
    }

    /// Read, verify and decrypt a non-framed body (refused before its
    /// content is read if it exceeds the streaming buffer limit).
    fn non_framed(&mut self) -> Result<bool> {
        let at = self.input.offset;
        let max = self.max_body_buffer;
        self.buf.clear();
        // The prefix first: the limit applies before the content is read.
        self.input.read_record(&mut self.buf, at, |r| {
            let len = body::parse_non_framed_prefix(r)?;
            if usize::try_from(len).map_or(true, |l| l > max) {
                return Err(Error::PolicyViolation {
                    reason: format!("non-framed body of {len} bytes exceeds the streaming buffer limit of {max} bytes"),
                }
                .into());
            }
            Ok(())
        })?;
        self.input.read_record(&mut self.buf, at, |r| body::parse_non_framed(r).map(drop))?;
        let rec = body::parse_non_framed(&mut Reader::new(&self.buf, at)).map_err(ReadError::into_error)?;
        let tag = rec.tag;
        let content = content_range(rec.raw.len(), rec.content.len());
        self.opener.hash(&self.buf);
        self.opener.open(BodyKind::NonFramed, 1, &mut self.buf[content.clone()], &tag)?;
        self.out_start = content.start;
        self.out_end = content.end;
        Ok(true)
    }
}

/// Where a record's content lies in the record: just before its tag.
fn content_range(record_len: usize, content_len: usize) -> std::ops::Range<usize> {
    let end = record_len - TAG_LEN;
    end - content_len..end
}

impl<R: Read> DecryptingReader<R> {
    /// Copy out plaintext already opened into the reader's buffer, if any.
    fn hand_out(&mut self, out: &mut [u8]) -> Option<usize> {
        if self.out_start == self.out_end {
            return None;
        }
        let n = out.len().min(self.out_end - self.out_start);
        out[..n].copy_from_slice(&self.buf[self.out_start..self.out_start + n]);
        self.out_start += n;
        Some(n)
    }

    /// Whether there is more body to read: `false` once the message is done,
    /// an error once it failed.
    fn body_goes_on(&self) -> io::Result<bool> {
        match self.state {
            State::Done => Ok(false),
            State::Failed => Err(io::Error::other(Error::config("the message failed to decrypt; no more output"))),
            State::Body => Ok(true),
        }
    }
}

impl<R: Read> Read for DecryptingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.par.is_some() {
            return self.read_parallel(out);
        }
        loop {
            if let Some(n) = self.hand_out(out) {
                return Ok(n);
            }
            if out.is_empty() {
                return Ok(0);
            }
            if let Some(p) = self.pending.take() {
                match self.open_pending(p, out) {
                    Ok(Some(n)) => return Ok(n),
                    Ok(None) => continue,
                    Err(e) => return Err(self.fail(e)),
                }
            }
            if !self.body_goes_on()? {
                return Ok(0);
            }
            if let Err(e) = self.next_record() {
                return Err(self.fail(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Trickle;
    use std::io::Read;

    use crate::cmm::DefaultCmm;
    use crate::keyrings::RawAesKeyring;
    use crate::materials::{AlgorithmSuite, EncryptionContext};
    use crate::{Client, Error};

    fn read_all(r: &mut impl Read, chunk: usize) -> (Vec<u8>, Option<Error>) {
        let mut out = Vec::new();
        let mut buf = vec![0u8; chunk];
        loop {
            match r.read(&mut buf) {
                Ok(0) => return (out, None),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => return (out, e.into_inner().and_then(|b| b.downcast::<Error>().ok()).map(|b| *b)),
            }
        }
    }

    #[test]
    fn frames_arriving_byte_by_byte_decrypt_and_a_bad_tag_releases_nothing_of_its_frame() {
        let keyring = RawAesKeyring::new("ns", "name", &[7; 32]).unwrap();
        let cmm = DefaultCmm::new(&keyring);
        let plain: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        for suite in
            [AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384]
        {
            let client = Client::builder().algorithm_suite(suite).frame_length(100).build().unwrap();
            let ctx = EncryptionContext::new();
            let message = client.encrypt(&cmm, &plain, &ctx).unwrap();
            for (step, chunk) in [(1, 3), (7, 1000), (4096, 50)] {
                let mut input = Trickle { data: &message, step };
                let mut r = client.decrypt_stream(&cmm, &ctx, &mut input).unwrap();
                let (out, err) = read_all(&mut r, chunk);
                assert!(err.is_none(), "{err:?}");
                assert_eq!(out, plain);
            }
            // The tag of the third frame (of 100 bytes) is flipped: two frames come out, then the error.
            let header_len = client.inspect(&message[..]).unwrap().header_len;
            let mut bad = message.clone();
            bad[header_len + 3 * (16 + 100 + 16) - 1] ^= 1;
            let mut input = Trickle { data: &bad, step: 5 };
            let mut r = client.decrypt_stream(&cmm, &ctx, &mut input).unwrap();
            let (out, err) = read_all(&mut r, 256);
            assert_eq!(out, plain[..200]);
            assert!(matches!(err, Some(Error::FrameAuthentication { sequence: 3 })), "{err:?}");
            // A frame out of order is refused, at its sequence number.
            let mut swapped = message.clone();
            swapped[header_len + 3] = 5;
            let mut input = Trickle { data: &swapped, step: 5 };
            let mut r = client.decrypt_stream(&cmm, &ctx, &mut input).unwrap();
            let (out, err) = read_all(&mut r, 256);
            assert!(out.is_empty());
            match err {
                Some(Error::Malformed { field: "sequence number", offset, .. }) => {
                    assert_eq!(offset, header_len as u64)
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
