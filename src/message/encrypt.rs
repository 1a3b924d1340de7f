//! Writing messages: header construction, frame sealing, footer.

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::Arc;

use zeroize::Zeroize;

use super::keys;
use super::parallel::{self, ParallelSealer};
use super::Client;
use crate::crypto::{self, AeadKey, SignatureHasher, TAG_LEN};
use crate::error::{Error, Result};
use crate::format::body::{self, BodyKind, FINAL_FRAME_PREFIX, REGULAR_FRAME_PREFIX};
use crate::format::{self, HeaderFields};
use crate::materials::{
    CryptographicMaterialsManager, EncryptionContext, EncryptionMaterials, EncryptionMaterialsRequest, FooterSigner,
};

/// Seals the frames of one message and signs it.
pub(crate) struct FrameSealer {
    /// Shared with the workers of parallel frames.
    pub(super) aead: Arc<AeadKey>,
    pub(super) message_id: Vec<u8>,
    pub(super) frame_length: u32,
    /// Sequence number of the next frame.
    pub(super) seq: u32,
    pub(super) aad: Vec<u8>,
    pub(super) signer: Option<(SignatureHasher, Arc<dyn FooterSigner>)>,
    /// The signer while the hash runs on its own thread (parallel frames).
    pub(super) parked_signer: Option<Arc<dyn FooterSigner>>,
}

impl FrameSealer {
    /// Ask the CMM for materials and build the header. Returns the sealer
    /// (the header already hashed) and the header bytes.
    pub(crate) fn start(
        client: &Client,
        cmm: &dyn CryptographicMaterialsManager,
        context: &EncryptionContext,
        plaintext_len: Option<u64>,
    ) -> Result<(FrameSealer, Vec<u8>)> {
        if client.frame_length as usize > client.max_body_buffer {
            return Err(Error::config(format!(
                "the frame length {} is over the streaming limit of {} bytes, so streaming readers would \
                 refuse the message (raise max_body_buffer on both sides to use it)",
                client.frame_length, client.max_body_buffer
            )));
        }
        let policy = client.commitment_policy;
        if let Some(suite) = client.algorithm_suite {
            if suite.is_item_suite() {
                return Err(Error::UnsupportedSuite(suite.id()));
            }
            policy.check_encrypt(suite)?;
        }
        let mut request = EncryptionMaterialsRequest::new(context.clone(), policy);
        request.algorithm_suite = client.algorithm_suite;
        request.max_plaintext_length = plaintext_len;
        // One random draw for the data key, its wrapping IVs and the message id.
        crypto::random_batch(|| {
            let materials = cmm.get_encryption_materials(request)?;
            Self::from_materials(client, materials)
        })
    }

    fn from_materials(client: &Client, materials: EncryptionMaterials) -> Result<(FrameSealer, Vec<u8>)> {
        let suite = materials.algorithm_suite();
        if suite.is_item_suite() {
            return Err(Error::UnsupportedSuite(suite.id()));
        }
        client.commitment_policy.check_encrypt(suite)?;
        if let Some(want) = client.algorithm_suite {
            if want != suite {
                return Err(Error::PolicyViolation {
                    reason: format!(
                        "the materials use suite 0x{:04X} but 0x{:04X} was configured",
                        suite.id(),
                        want.id()
                    ),
                });
            }
        }
        let edk_count = materials.encrypted_data_keys().len();
        if let Some(max) = client.max_encrypted_data_keys {
            if edk_count > max {
                return Err(Error::TooManyEncryptedDataKeys { count: edk_count, max });
            }
        }
        if edk_count == 0 {
            return Err(Error::config("the materials hold no encrypted data key"));
        }
        let data_key = materials.data_key().ok_or_else(|| Error::config("the materials hold no data key"))?;
        let signer = match (suite.signature(), materials.signing_key()) {
            (Some(curve), Some(signer)) => {
                if signer.curve() != curve {
                    return Err(Error::config(format!(
                        "the signing key is on {:?} but suite 0x{:04X} signs with {curve:?}",
                        signer.curve(),
                        suite.id()
                    )));
                }
                Some((SignatureHasher::new(curve), Arc::clone(signer)))
            }
            (Some(_), None) => return Err(Error::config("a signed suite needs a signing key in the materials")),
            (None, _) => None,
        };
        for key in materials.required_encryption_context_keys() {
            if !materials.encryption_context().contains_key(key) {
                return Err(Error::InvalidEncryptionContext {
                    reason: format!("required key `{key}` is not in the encryption context"),
                });
            }
        }
        // Usually nothing is required-but-not-stored: then the full context
        // is stored as it is, without a copy, and nothing more is authenticated.
        let required_keys = materials.required_encryption_context_keys();
        let (stored, required) = if required_keys.is_empty() {
            (Cow::Borrowed(materials.encryption_context()), Vec::new())
        } else {
            let required =
                materials.encryption_context().subset(required_keys.iter().map(String::as_str)).serialize()?;
            (Cow::Owned(materials.stored_encryption_context()), required)
        };

        let mut message_id = vec![0u8; suite.message_id_len()];
        crypto::fill_random(&mut message_id)?;
        #[cfg(test)]
        parallel::tests::fix_message_id(&mut message_id);
        let keys = keys::derive(suite, data_key, &message_id)?;
        let commit: &[u8] = keys.commit_key.as_ref().map_or(&[], |c| &c[..]);
        let mut header = format::serialize_body(&HeaderFields {
            suite,
            message_id: &message_id,
            stored_context: &stored,
            encrypted_data_keys: materials.encrypted_data_keys(),
            frame_length: client.frame_length,
            suite_data: commit,
        })?;
        let mut scratch = Vec::new();
        let tag = keys::header_tag(&keys, keys::header_aad(&header, &required, &mut scratch))?;
        format::append_auth(&mut header, suite.message_format_version(), &[0; crypto::IV_LEN], &tag);
        // Never write a header that a reader with the same limits would refuse.
        if header.len() > client.max_header_len {
            return Err(Error::PolicyViolation {
                reason: format!(
                    "the message header would be {} bytes, over the configured maximum of {} \
                     (fewer or smaller encrypted data keys or context pairs, or raise max_header_len)",
                    header.len(),
                    client.max_header_len
                ),
            });
        }

        let mut sealer = FrameSealer {
            aead: Arc::new(keys.aead),
            message_id,
            frame_length: client.frame_length,
            seq: 1,
            aad: Vec::with_capacity(96),
            signer,
            parked_signer: None,
        };
        sealer.hash(&header);
        Ok((sealer, header))
    }

    pub(super) fn hash(&mut self, bytes: &[u8]) {
        if let Some((hasher, _)) = &mut self.signer {
            hasher.update(bytes);
        }
    }

    /// `out[frame_start..]` is the prefix of a `kind` frame followed by its
    /// plaintext from `content_start`: encrypt in place, append the tag, hash.
    fn seal(&mut self, out: &mut Vec<u8>, frame_start: usize, content_start: usize, kind: BodyKind) -> Result<()> {
        let seq = self.seq;
        let content_len = out.len() - content_start;
        body::body_aad(&mut self.aad, &self.message_id, kind, seq, content_len as u64);
        let tag = self.aead.seal_in_place(&body::frame_iv(seq), &self.aad, &mut out[content_start..])?;
        out.extend_from_slice(&tag);
        self.hash(&out[frame_start..]);
        Ok(())
    }

    /// Sequence number for a regular frame, refusing to run past the format's limit.
    fn regular_seq(&self) -> Result<u32> {
        // The final frame needs a sequence number too.
        if self.seq == body::MAX_FRAMES {
            return Err(Error::config("the plaintext needs more than 2^32 - 1 frames; use a larger frame length"));
        }
        Ok(self.seq)
    }

    /// Append a regular frame of exactly one frame length of `plaintext`.
    pub(crate) fn regular_frame(&mut self, out: &mut Vec<u8>, plaintext: &[u8]) -> Result<()> {
        debug_assert_eq!(plaintext.len(), self.frame_length as usize);
        let seq = self.regular_seq()?;
        let start = out.len();
        out.extend_from_slice(&body::regular_prefix(seq));
        let content_start = out.len();
        out.extend_from_slice(plaintext);
        self.seal(out, start, content_start, BodyKind::Regular)?;
        self.seq += 1;
        Ok(())
    }

    /// Append the final frame (fewer bytes than one frame length, maybe none).
    pub(crate) fn final_frame(&mut self, out: &mut Vec<u8>, plaintext: &[u8]) -> Result<()> {
        let len = u32::try_from(plaintext.len())
            .ok()
            .filter(|&l| l <= self.frame_length)
            .ok_or_else(|| Error::crypto("final frame longer than the frame length"))?;
        let start = out.len();
        out.extend_from_slice(&body::final_prefix(self.seq, len));
        let content_start = out.len();
        out.extend_from_slice(plaintext);
        self.seal(out, start, content_start, BodyKind::Final)
    }

    /// The footer (empty for unsigned suites). Consumes the sealer.
    pub(crate) fn footer(self) -> Result<Vec<u8>> {
        match self.signer {
            Some((hasher, signer)) => {
                let digest = hasher.finalize();
                body::footer(&signer.sign_digest(&digest)?)
            }
            None => Ok(Vec::new()),
        }
    }
}

/// One-shot encryption, appended to `out` (left as it was on failure).
pub(crate) fn encrypt_into(
    client: &Client,
    cmm: &dyn CryptographicMaterialsManager,
    plaintext: &[u8],
    context: &EncryptionContext,
    out: &mut Vec<u8>,
) -> Result<()> {
    let original = out.len();
    let res = encrypt_append(client, cmm, plaintext, context, out);
    if res.is_err() {
        out.truncate(original);
    }
    res
}

fn encrypt_append(
    client: &Client,
    cmm: &dyn CryptographicMaterialsManager,
    plaintext: &[u8],
    context: &EncryptionContext,
    out: &mut Vec<u8>,
) -> Result<()> {
    let (mut sealer, header) = FrameSealer::start(client, cmm, context, Some(plaintext.len() as u64))?;
    let fl = client.frame_length as usize;
    let regular = plaintext.len() / fl;
    let frames = regular.checked_add(1).filter(|&n| n <= body::MAX_FRAMES as usize);
    if frames.is_none() {
        return Err(Error::config("the plaintext needs more than 2^32 - 1 frames; use a larger frame length"));
    }
    let size = header
        .len()
        .saturating_add(plaintext.len())
        .saturating_add(regular.saturating_mul(REGULAR_FRAME_PREFIX + TAG_LEN))
        .saturating_add(FINAL_FRAME_PREFIX + TAG_LEN + 2 + 120);
    let mut chunks = plaintext.chunks_exact(fl);
    if parallel::worth_it(client.workers, plaintext.len(), fl) {
        parallel::encrypt_regular_frames(&mut sealer, client.workers, &header, plaintext, size, out)?;
        chunks = plaintext[regular * fl..].chunks_exact(fl);
    } else {
        out.reserve(size);
        out.extend_from_slice(&header);
    }
    for chunk in &mut chunks {
        sealer.regular_frame(out, chunk)?;
    }
    sealer.final_frame(out, chunks.remainder())?;
    let footer = sealer.footer()?;
    out.extend_from_slice(&footer);
    Ok(())
}

/// The writer's frame buffer. Frames are sealed in place, so plaintext only
/// ever sits in the initialized part (a partly filled frame); that part is
/// wiped on drop, without paying to clear the whole frame-sized capacity.
struct FrameBuf(Vec<u8>);

impl Drop for FrameBuf {
    fn drop(&mut self) {
        self.0.as_mut_slice().zeroize();
    }
}

impl std::ops::Deref for FrameBuf {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl std::ops::DerefMut for FrameBuf {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

/// Streaming encryptor: an [`std::io::Write`] that turns plaintext into a
/// framed message on the wrapped writer.
///
/// With one worker ([`ClientBuilder::workers`](crate::message::ClientBuilder::workers))
/// it holds at most one frame of plaintext, and every full frame is sealed
/// and written as soon as it is complete. With more, full frames are
/// gathered into batches of about 128 KiB that worker threads seal; batches
/// are written in order as soon as they and every earlier one are sealed,
/// and at most `2 × workers` batches are in flight besides the one being
/// filled. [`EncryptingWriter::finish`] writes what is left, the final frame
/// (possibly empty) and, for signed suites, the footer.
/// **Dropping the writer without calling `finish` leaves an incomplete
/// message** that every reader refuses; a streaming reader may have
/// released its earlier frames before it finds that out. Such a drop is
/// reported on standard error; call [`EncryptingWriter::abandon`] to give up
/// on a message deliberately (for example after an error of your own).
#[must_use = "call `finish()`: without it the message is truncated and no reader accepts it"]
pub struct EncryptingWriter<W: Write> {
    inner: W,
    sealer: Option<FrameSealer>,
    /// Plaintext bytes still allowed, when a maximum length was given.
    remaining: Option<u64>,
    /// Reports a drop before `finish` or `abandon`.
    unfinished: Unfinished,
    /// `[FINAL_FRAME_PREFIX bytes of room][plaintext of the current frame]`,
    /// then the tag while a frame is written out.
    /// The frame being filled (sealed in place): its plaintext is wiped on drop.
    buf: FrameBuf,
    frame_length: usize,
    failed: bool,
    /// Batches of frames sealed by worker threads (more than one worker).
    par: Option<ParallelSealer>,
}

impl<W: Write> std::fmt::Debug for EncryptingWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptingWriter")
            .field("frame_length", &self.frame_length)
            .field("buffered", &(self.buf.len() - FINAL_FRAME_PREFIX))
            .finish_non_exhaustive()
    }
}

impl<W: Write> EncryptingWriter<W> {
    pub(crate) fn new(
        client: &Client,
        cmm: &dyn CryptographicMaterialsManager,
        context: &EncryptionContext,
        mut inner: W,
        max_plaintext_length: Option<u64>,
    ) -> Result<Self> {
        let (sealer, header) = FrameSealer::start(client, cmm, context, max_plaintext_length)?;
        inner.write_all(&header)?;
        let frame_length = client.frame_length as usize;
        let mut buf = Vec::with_capacity(FINAL_FRAME_PREFIX + frame_length + TAG_LEN);
        buf.resize(FINAL_FRAME_PREFIX, 0);
        Ok(EncryptingWriter {
            inner,
            sealer: Some(sealer),
            remaining: max_plaintext_length,
            unfinished: Unfinished { armed: true },
            buf: FrameBuf(buf),
            frame_length,
            failed: false,
            par: (client.workers > 1).then(|| ParallelSealer::new(frame_length, client.workers)),
        })
    }

    fn sealer(&mut self) -> Result<&mut FrameSealer> {
        if self.failed {
            return Err(Error::config("an earlier write failed; the message cannot be completed"));
        }
        self.sealer.as_mut().ok_or_else(|| Error::config("the message is already finished"))
    }

    /// Seal the buffered full frame and write it out.
    fn flush_regular(&mut self) -> Result<()> {
        let frame_start = FINAL_FRAME_PREFIX - REGULAR_FRAME_PREFIX;
        let sealer = self.sealer.as_mut().ok_or_else(|| Error::config("the message is already finished"))?;
        let seq = sealer.regular_seq()?;
        self.buf[frame_start..FINAL_FRAME_PREFIX].copy_from_slice(&body::regular_prefix(seq));
        sealer.seal(&mut self.buf, frame_start, FINAL_FRAME_PREFIX, BodyKind::Regular)?;
        sealer.seq += 1;
        let res = self.inner.write_all(&self.buf[frame_start..]);
        self.buf.truncate(FINAL_FRAME_PREFIX);
        res.map_err(Error::from)
    }

    fn write_inner(&mut self, data: &[u8]) -> Result<usize> {
        self.sealer()?;
        if let Some(remaining) = self.remaining {
            let len = data.len() as u64;
            if len > remaining {
                return Err(Error::config(format!(
                    "more plaintext than the maximum length given when the message was started \
                     ({remaining} bytes were left, {len} written)"
                )));
            }
            self.remaining = Some(remaining - len);
        }
        if let Some(par) = &mut self.par {
            let sealer = self.sealer.as_mut().ok_or_else(|| Error::config("the message is already finished"))?;
            par.write(sealer, data, &mut self.inner)?;
            return Ok(data.len());
        }
        let mut written = 0;
        while written < data.len() {
            let room = self.frame_length - (self.buf.len() - FINAL_FRAME_PREFIX);
            let n = room.min(data.len() - written);
            self.buf.extend_from_slice(&data[written..written + n]);
            written += n;
            if self.buf.len() - FINAL_FRAME_PREFIX == self.frame_length {
                self.flush_regular()?;
            }
        }
        Ok(written)
    }

    /// Write the final frame and the footer, flush, and return the inner writer.
    pub fn finish(mut self) -> Result<W> {
        if self.failed {
            return Err(Error::config("an earlier write failed; the message cannot be completed"));
        }
        // From here on a failure is returned to the caller, who sees it.
        self.unfinished.armed = false;
        let mut sealer = self.sealer.take().ok_or_else(|| Error::config("the message is already finished"))?;
        if let Some(par) = &mut self.par {
            let tail = par.finish(&mut sealer, &mut self.inner)?;
            self.buf.extend_from_slice(&tail);
        }
        let len = self.buf.len() - FINAL_FRAME_PREFIX;
        let len = u32::try_from(len).map_err(|_| Error::crypto("frame too long"))?;
        self.buf[..FINAL_FRAME_PREFIX].copy_from_slice(&body::final_prefix(sealer.seq, len));
        sealer.seal(&mut self.buf, 0, FINAL_FRAME_PREFIX, BodyKind::Final)?;
        self.inner.write_all(&self.buf)?;
        let footer = sealer.footer()?;
        self.inner.write_all(&footer)?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    /// Give up on the message: nothing more is written and the buffered
    /// plaintext is wiped. What was written so far is a truncated message
    /// that every reader refuses (a streaming reader only after releasing
    /// its earlier frames): delete it.
    pub fn abandon(mut self) {
        self.unfinished.armed = false;
    }

    /// Bytes of memory held for the current frame (for tests of the memory bound).
    #[doc(hidden)]
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity() + self.par.as_ref().map_or(0, ParallelSealer::capacity)
    }
}

impl<W: Write> Write for EncryptingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_inner(data).map_err(|e| {
            self.failed = true;
            // The caller has this error in hand.
            self.unfinished.armed = false;
            into_io(e)
        })
    }

    /// Flushes the wrapped writer. A partly filled frame stays buffered: only
    /// [`EncryptingWriter::finish`] may write a short frame.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Makes a writer dropped without `finish` visible: a truncated message is
/// otherwise only noticed when someone tries to read it.
#[derive(Debug)]
struct Unfinished {
    armed: bool,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        // A panic already tells; a failed write already returned its error.
        if self.armed && !std::thread::panicking() {
            eprintln!(
                "hsm-keyring: an EncryptingWriter was dropped without finish(); the message it wrote is \
                 truncated and no reader accepts it"
            );
        }
    }
}

/// Carry a crate error through `std::io`; `get_ref()` + `downcast_ref::<Error>()` recovers it.
pub(crate) fn into_io(e: Error) -> io::Error {
    match e {
        Error::Io(io) => io,
        other => io::Error::other(other),
    }
}
