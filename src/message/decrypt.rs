//! Reading messages: header verification, frame opening, footer verification.

use std::io::{self, Read};

use base64::Engine as _;
use zeroize::Zeroizing;

use super::encrypt::into_io;
use super::keys::{self, MessageKeys};
use super::{Client, ContentType, HeaderInfo};
use crate::crypto::{self, SignatureHasher, IV_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::format::body::{self, BodyKind};
use crate::format::reader::{ReadError, Reader};
use crate::format::{self, Header, HeaderLimits};
use crate::materials::context::PUBLIC_KEY_FIELD;
use crate::materials::{CryptographicMaterialsManager, DecryptMaterialsRequest, EncryptionContext, SignatureCurve};

/// Opens the body records of one message whose header verified.
pub(crate) struct FrameOpener {
    keys: MessageKeys,
    message_id: Vec<u8>,
    frame_length: u32,
    /// Sequence number of the next frame.
    next_seq: u32,
    aad: Vec<u8>,
    verifier: Option<Verifier>,
}

struct Verifier {
    hasher: SignatureHasher,
    curve: SignatureCurve,
    key: Vec<u8>,
}

impl FrameOpener {
    fn hash(&mut self, bytes: &[u8]) {
        if let Some(v) = &mut self.verifier {
            v.hasher.update(bytes);
        }
    }

    /// Set `self.aad` for a record and return its IV.
    fn frame_aad_and_iv(&mut self, kind: BodyKind, seq: u32, len: usize) -> [u8; IV_LEN] {
        body::body_aad(&mut self.aad, &self.message_id, kind, seq, len as u64);
        body::frame_iv(seq)
    }

    /// Authenticate and decrypt one record in place. On failure the buffer
    /// holds garbage and must not be released.
    fn open(&mut self, kind: BodyKind, seq: u32, content: &mut [u8], tag: &[u8; TAG_LEN]) -> Result<()> {
        let iv = self.frame_aad_and_iv(kind, seq, content.len());
        self.keys
            .aead
            .open_in_place(&iv, &self.aad, content, tag)
            .map_err(|()| Error::FrameAuthentication { sequence: seq })
    }

    /// Authenticate `ciphertext` and write its plaintext to `out` (same
    /// length). On failure `out` is zeroed.
    fn open_to(
        &mut self,
        kind: BodyKind,
        seq: u32,
        ciphertext: &[u8],
        tag: &[u8; TAG_LEN],
        out: &mut [u8],
    ) -> Result<()> {
        let iv = self.frame_aad_and_iv(kind, seq, ciphertext.len());
        self.keys
            .aead
            .open_to(&iv, &self.aad, ciphertext, tag, out)
            .map_err(|()| Error::FrameAuthentication { sequence: seq })
    }

    /// Authenticate `ciphertext` and append its plaintext to `out`. On
    /// failure `out` keeps its length.
    fn open_append(
        &mut self,
        kind: BodyKind,
        seq: u32,
        ciphertext: &[u8],
        tag: &[u8; TAG_LEN],
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let iv = self.frame_aad_and_iv(kind, seq, ciphertext.len());
        self.keys
            .aead
            .open_append(&iv, &self.aad, ciphertext, tag, out)
            .map_err(|()| Error::FrameAuthentication { sequence: seq })
    }

    /// After a regular frame: the sequence number of the next one.
    fn advance(&mut self, at: u64) -> Result<()> {
        // `checked_add` fails exactly past u32::MAX = MAX_FRAMES.
        self.next_seq = self.next_seq.checked_add(1).ok_or_else(|| {
            Error::malformed("sequence number", at, "more than 2^32 - 1 frames without a final frame")
        })?;
        Ok(())
    }

    fn is_signed(&self) -> bool {
        self.verifier.is_some()
    }

    /// Verify the footer signature over everything hashed so far.
    fn verify_footer(&mut self, signature: &[u8]) -> Result<()> {
        match self.verifier.take() {
            Some(v) => {
                let digest = v.hasher.finalize();
                crypto::ecdsa_verify_digest(v.curve, &v.key, &digest, signature)
            }
            None => Ok(()),
        }
    }
}

pub(crate) fn header_info(h: &Header) -> HeaderInfo {
    HeaderInfo {
        version: h.version,
        algorithm_suite: h.suite,
        message_id: h.message_id.clone(),
        encryption_context: h.encryption_context.clone(),
        encrypted_data_keys: h.encrypted_data_keys.clone(),
        content_type: h.content_type,
        frame_length: h.frame_length,
        header_len: h.len(),
    }
}

fn untrusted() -> Error {
    Error::Signature { reason: "the message was signed by a key that is not among the trusted signers".into() }
}

/// Refuse a verification key outside the trusted set (if one is configured).
fn check_trusted(client: &Client, curve: SignatureCurve, key: &[u8]) -> Result<()> {
    let Some(trusted) = &client.trusted_signers else { return Ok(()) };
    let compressed = crypto::ec_compress_point(curve, key).map_err(|_| Error::Signature {
        reason: format!("the message's verification key is not a valid {curve:?} point"),
    })?;
    if trusted.contains(&compressed) {
        Ok(())
    } else {
        Err(untrusted())
    }
}

/// Everything between a parsed header and its first frame: policy, limits,
/// materials, key derivation, commitment, header authentication, and the
/// caller's context.
pub(crate) fn open_header(
    client: &Client,
    cmm: &dyn CryptographicMaterialsManager,
    header: &Header,
    context: &EncryptionContext,
) -> Result<FrameOpener> {
    let suite = header.suite;
    client.commitment_policy.check_decrypt(suite)?;
    if let Some(max) = client.max_encrypted_data_keys {
        let count = header.encrypted_data_keys.len();
        if count > max {
            return Err(Error::TooManyEncryptedDataKeys { count, max });
        }
    }
    // Refuse an unsigned message, or an untrusted signer, before any keyring
    // is asked for the data key.
    if client.require_signed && suite.signature().is_none() {
        return Err(Error::Signature {
            reason: format!(
                "the message is not signed (suite 0x{:04X}), but only signed messages{} are accepted",
                suite.id(),
                if client.trusted_signers.is_some() { " from the trusted signers" } else { "" }
            ),
        });
    }
    if let (Some(curve), Some(_)) = (suite.signature(), &client.trusted_signers) {
        let encoded = header.encryption_context.get(PUBLIC_KEY_FIELD).ok_or_else(|| Error::Signature {
            reason: format!("the message has no `{PUBLIC_KEY_FIELD}` in its encryption context"),
        })?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| Error::Signature { reason: format!("`{PUBLIC_KEY_FIELD}` is not valid base64") })?;
        check_trusted(client, curve, &key)?;
    }

    let request = DecryptMaterialsRequest::new(
        suite,
        client.commitment_policy,
        header.encrypted_data_keys.clone(),
        header.encryption_context.clone(),
        Some(context.clone()),
    );
    let materials = cmm.decrypt_materials(request)?;
    if materials.algorithm_suite != suite {
        return Err(Error::PolicyViolation {
            reason: format!(
                "the materials use suite 0x{:04X} but the message uses 0x{:04X}",
                materials.algorithm_suite.id(),
                suite.id()
            ),
        });
    }
    client.commitment_policy.check_decrypt(materials.algorithm_suite)?;
    let data_key =
        materials.plaintext_data_key.as_ref().ok_or_else(|| Error::config("the materials hold no data key"))?;

    let keys = keys::derive(suite, data_key, &header.message_id)?;
    keys::verify_commitment(&keys, &header.suite_data)?;

    let required = materials
        .encryption_context
        .subset(materials.required_encryption_context_keys.iter().map(String::as_str))
        .serialize()?;
    let mut scratch = Vec::new();
    let aad = keys::header_aad(header.body(), &required, &mut scratch);
    keys::verify_header(&keys, &header.auth_iv, aad, &header.auth_tag)?;

    // Every pair the caller named must be in the stored or the required context.
    for (k, v) in context.iter() {
        let stored = header.encryption_context.get(k) == Some(v);
        let required = materials.required_encryption_context_keys.iter().any(|r| r == k)
            && materials.encryption_context.get(k) == Some(v);
        if !stored && !required {
            return Err(Error::EncryptionContextMismatch {
                reason: match header.encryption_context.get(k) {
                    Some(_) => format!("the message has a different value for `{k}`"),
                    None => format!("the message does not authenticate `{k}`"),
                },
            });
        }
    }

    let verifier = match suite.signature() {
        Some(curve) => {
            let key = materials.verification_key.clone().ok_or_else(|| Error::Signature {
                reason: "the materials hold no verification key for a signed suite".into(),
            })?;
            check_trusted(client, curve, &key)?;
            let mut hasher = SignatureHasher::new(curve);
            hasher.update(header.raw());
            Some(Verifier { hasher, curve, key })
        }
        None => None,
    };
    Ok(FrameOpener {
        keys,
        message_id: header.message_id.clone(),
        frame_length: header.frame_length,
        next_seq: 1,
        aad: Vec::with_capacity(96),
        verifier,
    })
}

fn trailing(at: u64) -> Error {
    Error::malformed("end of message", at, "unexpected bytes after the end of the message")
}

/// One-shot decryption of a whole message in memory: the plaintext is
/// appended to `out` only if everything verifies; on failure `out` is
/// restored to its original length (the bytes decrypted meanwhile are wiped).
pub(crate) fn decrypt_into(
    client: &Client,
    cmm: &dyn CryptographicMaterialsManager,
    message: &[u8],
    context: &EncryptionContext,
    out: &mut Vec<u8>,
) -> Result<HeaderInfo> {
    let original = out.len();
    let res = decrypt_append(client, cmm, message, context, out);
    if res.is_err() {
        if let Some(tail) = out.get_mut(original..) {
            tail.fill(0);
        }
        out.truncate(original);
    }
    res
}

fn decrypt_append(
    client: &Client,
    cmm: &dyn CryptographicMaterialsManager,
    message: &[u8],
    context: &EncryptionContext,
    plaintext: &mut Vec<u8>,
) -> Result<HeaderInfo> {
    let header = format::parse(message, &client.header_limits()).map_err(ReadError::into_error)?;
    let mut opener = open_header(client, cmm, &header, context)?;
    let body_bytes = message.get(header.len()..).unwrap_or_default();
    let mut r = Reader::new(body_bytes, header.len() as u64);
    plaintext.reserve(body_bytes.len());
    let e = ReadError::into_error;
    match header.content_type {
        ContentType::NonFramed => {
            let rec = body::parse_non_framed(&mut r).map_err(e)?;
            opener.hash(rec.raw);
            opener.open_append(BodyKind::NonFramed, 1, rec.content, &rec.tag, plaintext)?;
        }
        ContentType::Framed => loop {
            let at = r.offset();
            let rec = body::parse_frame(&mut r, header.frame_length, opener.next_seq).map_err(e)?;
            opener.hash(rec.raw);
            opener.open_append(rec.kind, rec.seq, rec.content, &rec.tag, plaintext)?;
            if rec.kind == BodyKind::Final {
                break;
            }
            opener.advance(at)?;
        },
    }
    if opener.is_signed() {
        let signature = body::parse_footer(&mut r).map_err(e)?;
        opener.verify_footer(signature)?;
    }
    if r.remaining() > 0 {
        return Err(trailing(r.offset()));
    }
    Ok(header_info(&header))
}

/// Read a header from a stream, reading no more than the limits allow.
/// Returns the header and the bytes read past it.
pub(crate) fn read_header<R: Read>(input: &mut R, limits: &HeaderLimits) -> Result<(Header, Vec<u8>)> {
    let mut acc: Vec<u8> = Vec::new();
    loop {
        match format::parse(&acc, limits) {
            Ok(header) => {
                let rest = acc.split_off(header.len());
                return Ok((header, rest));
            }
            Err(ReadError::Fatal(e)) => return Err(e),
            Err(incomplete @ ReadError::Incomplete { needed, .. }) => {
                format::check_needed(needed, limits)?;
                // Grow geometrically so that a large header costs few re-parses.
                let target = needed.max(acc.len().saturating_mul(2)).max(512).min(limits.max_header_len.max(needed));
                let mut chunk = [0u8; 8192];
                while acc.len() < needed {
                    let want = (target - acc.len()).min(chunk.len());
                    match input.read(&mut chunk[..want]) {
                        Ok(0) => return Err(incomplete.into_error()),
                        Ok(n) => acc.extend_from_slice(&chunk[..n]),
                        Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                        Err(err) => return Err(err.into()),
                    }
                }
            }
        }
    }
}

/// The stream behind a [`DecryptingReader`], with the bytes read ahead while
/// the header was parsed served first.
struct Input<R> {
    inner: R,
    ahead: Vec<u8>,
    ahead_pos: usize,
    offset: u64,
}

/// The reader's reusable buffer: the first `len` bytes are in use. Bytes
/// past `len` keep what an earlier frame left there, so reading the next
/// frame writes each byte once instead of zeroing it first. Wiped on drop.
#[derive(Default)]
struct Scratch {
    bytes: Zeroizing<Vec<u8>>,
    len: usize,
}

impl Scratch {
    fn clear(&mut self) {
        self.len = 0;
    }

    fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// The `n` bytes after the used part, to be filled and then committed.
    fn spare(&mut self, n: usize) -> &mut [u8] {
        let end = self.len + n;
        if self.bytes.len() < end {
            self.bytes.resize(end, 0);
        }
        &mut self.bytes[self.len..end]
    }

    /// Count `n` more bytes (written through [`spare`](Scratch::spare)) as used.
    fn commit(&mut self, n: usize) {
        self.len += n;
    }
}

impl std::ops::Deref for Scratch {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl std::ops::DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[..self.len]
    }
}

impl<R: Read> Input<R> {
    fn read_some(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.ahead_pos < self.ahead.len() {
            let n = out.len().min(self.ahead.len() - self.ahead_pos);
            out[..n].copy_from_slice(&self.ahead[self.ahead_pos..self.ahead_pos + n]);
            self.ahead_pos += n;
            if self.ahead_pos == self.ahead.len() {
                self.ahead = Vec::new();
                self.ahead_pos = 0;
            }
            return Ok(n);
        }
        loop {
            match self.inner.read(out) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    /// Append exactly `n` bytes of `field` to `buf`, growing it only as the
    /// bytes arrive.
    fn fill(&mut self, buf: &mut Scratch, n: usize, field: &'static str) -> Result<()> {
        const STEP: usize = 64 * 1024;
        let field_at = self.offset;
        let mut remaining = n;
        while remaining > 0 {
            let step = remaining.min(STEP);
            let mut filled = 0;
            while filled < step {
                match self.read_some(buf.spare(step - filled)) {
                    Ok(0) => {
                        return Err(Error::malformed(
                            field,
                            field_at,
                            format!("the message ends early ({} of {n} bytes present)", n - remaining + filled),
                        ));
                    }
                    Ok(k) => {
                        buf.commit(k);
                        filled += k;
                        self.offset += k as u64;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            remaining -= step;
        }
        Ok(())
    }

    fn expect_eof(&mut self) -> Result<()> {
        let mut probe = [0u8; 1];
        match self.read_some(&mut probe)? {
            0 => Ok(()),
            _ => Err(trailing(self.offset)),
        }
    }
}

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
/// when the reader is created ([`Client::decrypt_stream`]). After that it
/// holds about one frame: it reads a frame, verifies its tag, and only then
/// hands out its plaintext. A frame that fails to verify is never released.
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
/// [`ClientBuilder::refuse_signed_streaming`](super::ClientBuilder::refuse_signed_streaming),
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
        Ok(DecryptingReader {
            input: Input { inner, ahead, ahead_pos: 0, offset },
            info: header_info(&header),
            opener,
            content_type: header.content_type,
            buf: Scratch::default(),
            footer: Scratch::default(),
            out_start: 0,
            out_end: 0,
            pending: None,
            state: State::Body,
            max_body_buffer: client.max_body_buffer,
        })
    }

    /// The verified header.
    pub fn header(&self) -> &HeaderInfo {
        &self.info
    }

    /// Bytes of memory held for the current frame (for tests of the memory bound).
    #[doc(hidden)]
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity() + self.input.ahead.capacity()
    }

    /// Read, verify and decrypt the next record; set the output range.
    fn next_record(&mut self) -> Result<()> {
        self.buf.clear();
        let last = match self.content_type {
            ContentType::Framed => self.next_frame()?,
            ContentType::NonFramed => self.non_framed()?,
        };
        if last {
            if self.opener.is_signed() {
                self.footer.clear();
                self.input.fill(&mut self.footer, 2, "signature length")?;
                let len = usize::from(u16::from_be_bytes([self.footer[0], self.footer[1]]));
                self.footer.clear();
                self.input.fill(&mut self.footer, len, "signature")?;
                self.opener.verify_footer(&self.footer)?;
            }
            self.input.expect_eof()?;
            self.state = State::Done;
        }
        Ok(())
    }

    fn be32(bytes: &[u8]) -> u32 {
        let mut a = [0u8; 4];
        a.copy_from_slice(bytes);
        u32::from_be_bytes(a)
    }

    /// Returns true for the final frame. The final frame's plaintext is
    /// released only by the caller after the footer and end checks.
    fn next_frame(&mut self) -> Result<bool> {
        let start_at = self.input.offset;
        let expected = self.opener.next_seq;
        let fl = self.opener.frame_length;
        self.input.fill(&mut self.buf, 4, "sequence number")?;
        let first = Self::be32(&self.buf[0..4]);
        let (kind, seq, seq_at) = if first == body::FINAL_FRAME_MARKER {
            let at = self.input.offset;
            self.input.fill(&mut self.buf, 4, "sequence number")?;
            (BodyKind::Final, Self::be32(&self.buf[4..8]), at)
        } else {
            (BodyKind::Regular, first, start_at)
        };
        let iv_at = self.input.offset;
        let iv_start = self.buf.len();
        self.input.fill(&mut self.buf, IV_LEN, "frame IV")?;
        let mut iv = [0u8; IV_LEN];
        iv.copy_from_slice(&self.buf[iv_start..]);
        body::check_frame(seq, expected, &iv, seq_at, iv_at)?;
        let len = if kind == BodyKind::Final {
            let at = self.input.offset;
            self.input.fill(&mut self.buf, 4, "final frame content length")?;
            let len = Self::be32(&self.buf[self.buf.len() - 4..]);
            body::check_final_len(len, fl, at)?;
            len
        } else {
            fl
        };
        let content_start = self.buf.len();
        self.input.fill(&mut self.buf, len as usize, "frame content")?;
        let content_end = self.buf.len();
        self.input.fill(&mut self.buf, TAG_LEN, "frame authentication tag")?;
        self.opener.hash(&self.buf);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&self.buf[content_end..]);
        if kind == BodyKind::Regular {
            self.pending = Some(Pending { seq, at: start_at, content: content_start..content_end, tag });
            return Ok(false);
        }
        self.opener.open(kind, seq, &mut self.buf[content_start..content_end], &tag)?;
        self.out_start = content_start;
        self.out_end = content_end;
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
        self.out_start = 0;
        self.out_end = 0;
        self.buf.clear();
        into_io(e)
    }

    fn non_framed(&mut self) -> Result<bool> {
        let iv_at = self.input.offset;
        self.input.fill(&mut self.buf, IV_LEN, "body IV")?;
        if self.buf[..] != body::frame_iv(1) {
            return Err(Error::malformed("body IV", iv_at, "the IV is not the sequence number 1"));
        }
        let at = self.input.offset;
        self.input.fill(&mut self.buf, 8, "content length")?;
        let mut len = [0u8; 8];
        len.copy_from_slice(&self.buf[IV_LEN..]);
        let len = u64::from_be_bytes(len);
        body::check_non_framed_len(len, at)?;
        let len =
            usize::try_from(len).ok().filter(|&l| l <= self.max_body_buffer).ok_or_else(|| Error::PolicyViolation {
                reason: format!(
                    "non-framed body of {len} bytes exceeds the streaming buffer limit of {} bytes",
                    self.max_body_buffer
                ),
            })?;
        let content_start = self.buf.len();
        self.input.fill(&mut self.buf, len, "encrypted content")?;
        let content_end = self.buf.len();
        self.input.fill(&mut self.buf, TAG_LEN, "body authentication tag")?;
        self.opener.hash(&self.buf);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&self.buf[content_end..]);
        self.opener.open(BodyKind::NonFramed, 1, &mut self.buf[content_start..content_end], &tag)?;
        self.out_start = content_start;
        self.out_end = content_end;
        Ok(true)
    }
}

impl<R: Read> Read for DecryptingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.out_start < self.out_end {
                let n = out.len().min(self.out_end - self.out_start);
                out[..n].copy_from_slice(&self.buf[self.out_start..self.out_start + n]);
                self.out_start += n;
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
            match self.state {
                State::Done => return Ok(0),
                State::Failed => {
                    return Err(io::Error::other(Error::config("the message failed to decrypt; no more output")))
                }
                State::Body => {}
            }
            if let Err(e) = self.next_record() {
                return Err(self.fail(e));
            }
        }
    }
}
