//! Rewrapping a signed message with a long-lived signer: the new header
//! names the signer's public key, and the footer is recomputed over the new
//! header and the unchanged body. The body is read and hashed (twice: the
//! old signature is checked too), never decrypted.

use std::io::{Read, Write};

use base64::Engine as _;

use crate::crypto::{self, SignatureHasher, IV_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::format::body::{self, FINAL_FRAME_MARKER};
use crate::format::{ContentType, Header};
use crate::materials::{FooterSigner, SignatureCurve, PUBLIC_KEY_FIELD};

/// Copies the body from `input` to `output`, hashing it into both hashers.
struct BodyCopy<'a, R, W> {
    input: R,
    output: W,
    old: SignatureHasher,
    new: SignatureHasher,
    offset: u64,
    buf: &'a mut Vec<u8>,
}

impl<R: Read, W: Write> BodyCopy<'_, R, W> {
    /// Copy exactly `n` bytes; the last piece stays in `buf`.
    fn copy(&mut self, mut n: u64, field: &'static str) -> Result<()> {
        while n > 0 {
            let step = n.min(self.buf.capacity() as u64) as usize;
            self.buf.resize(step, 0);
            self.input.read_exact(self.buf).map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => Error::malformed(field, self.offset, "the message ends here"),
                _ => Error::Io(e),
            })?;
            self.old.update(self.buf);
            self.new.update(self.buf);
            self.output.write_all(self.buf)?;
            self.offset += step as u64;
            n -= step as u64;
        }
        Ok(())
    }

    fn fixed<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N]> {
        self.copy(N as u64, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[..N]);
        Ok(out)
    }
}

/// The header context with the signer's public key in place of the old one.
pub(super) fn resign_context(header: &Header, signer: &dyn FooterSigner) -> Result<crate::EncryptionContext> {
    let curve = header.suite.signature().ok_or_else(|| Error::config("the suite does not sign"))?;
    if signer.curve() != curve {
        return Err(Error::config(format!(
            "the signer's curve {:?} is not the suite's {curve:?} (suite 0x{:04X})",
            signer.curve(),
            header.suite.id()
        )));
    }
    let mut ctx = header.encryption_context.clone();
    ctx.insert_reserved(PUBLIC_KEY_FIELD, base64::engine::general_purpose::STANDARD.encode(signer.public_key()));
    Ok(ctx)
}

/// Copy the body after `rest` (the bytes already read past the header) and
/// `input`, check the old footer with `old_key`, and write a footer signed by
/// `signer` over `new_header` and the body.
#[allow(clippy::too_many_arguments)]
pub(super) fn copy_and_resign<R: Read, W: Write>(
    header: &Header,
    new_header: &[u8],
    rest: &[u8],
    input: R,
    output: W,
    curve: SignatureCurve,
    old_key: &[u8],
    signer: &dyn FooterSigner,
) -> Result<u64> {
    let mut old = SignatureHasher::new(curve);
    old.update(header.raw());
    let mut new = SignatureHasher::new(curve);
    new.update(new_header);
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut c = BodyCopy { input: rest.chain(input), output, old, new, offset: header.len() as u64, buf: &mut buf };
    match header.content_type {
        ContentType::Framed => {
            let mut expected = 1u32;
            loop {
                let first = u32::from_be_bytes(c.fixed::<4>("sequence number")?);
                let final_frame = first == FINAL_FRAME_MARKER;
                let seq = if final_frame { u32::from_be_bytes(c.fixed::<4>("sequence number")?) } else { first };
                let iv_at = c.offset;
                let iv = c.fixed::<IV_LEN>("frame IV")?;
                body::check_frame(seq, expected, &iv, iv_at - 4, iv_at)?;
                let len = if final_frame {
                    let at = c.offset;
                    let len = u32::from_be_bytes(c.fixed::<4>("final frame content length")?);
                    body::check_final_len(len, header.frame_length, at)?;
                    len
                } else {
                    header.frame_length
                };
                c.copy(u64::from(len) + TAG_LEN as u64, "frame content")?;
                if final_frame {
                    break;
                }
                expected = expected
                    .checked_add(1)
                    .ok_or_else(|| Error::malformed("sequence number", c.offset, "too many frames"))?;
            }
        }
        _ => {
            let iv_at = c.offset;
            let iv = c.fixed::<IV_LEN>("body IV")?;
            if iv != body::frame_iv(1) {
                return Err(Error::malformed("body IV", iv_at, "the IV is not the sequence number 1"));
            }
            let at = c.offset;
            let len = u64::from_be_bytes(c.fixed::<8>("content length")?);
            body::check_non_framed_len(len, at)?;
            c.copy(len + TAG_LEN as u64, "encrypted content")?;
        }
    }
    // The old footer: read, not copied.
    let mut len = [0u8; 2];
    c.input.read_exact(&mut len).map_err(|_| Error::malformed("signature length", c.offset, "no footer"))?;
    let mut sig = vec![0u8; usize::from(u16::from_be_bytes(len))];
    c.input.read_exact(&mut sig).map_err(|_| Error::malformed("signature", c.offset + 2, "the footer is cut short"))?;
    let mut extra = [0u8; 1];
    if c.input.read(&mut extra)? != 0 {
        return Err(Error::malformed("end of message", c.offset + 2 + sig.len() as u64, "bytes after the footer"));
    }
    crypto::ecdsa_verify_digest(curve, old_key, &c.old.finalize(), &sig)?;
    let signature = signer.sign_digest(&c.new.finalize())?;
    let body_len = c.offset - header.len() as u64;
    c.output.write_all(&body::footer(&signature)?)?;
    c.output.flush()?;
    Ok(body_len)
}
