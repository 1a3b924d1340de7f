//! One-shot decryption of a message held in memory.

use super::{header_info, open_header, trailing, FrameOpener};
use crate::error::{Error, Result};
use crate::format::body::{self, BodyKind};
use crate::format::reader::{ReadError, Reader};
use crate::format::{self, ContentType};
use crate::materials::{CryptographicMaterialsManager, EncryptionContext};
use crate::message::parallel::{self, OpenRecord};
use crate::message::{Client, HeaderInfo};

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
    let framed = header.content_type == ContentType::Framed;
    let parallel = framed && parallel::worth_it(client.workers, body_bytes.len(), header.frame_length as usize);
    if !parallel {
        plaintext.reserve(body_bytes.len());
    }
    let e = ReadError::into_error;
    match header.content_type {
        ContentType::NonFramed => {
            let rec = body::parse_non_framed(&mut r).map_err(e)?;
            opener.hash(rec.raw);
            opener.open_append(BodyKind::NonFramed, 1, rec.content, &rec.tag, plaintext)?;
        }
        ContentType::Framed if parallel => {
            framed_parallel(client.workers, &mut opener, header.frame_length, body_bytes, &mut r, plaintext)?;
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
    Ok(header_info(header))
}

/// The frames of a large body on worker threads: every frame is parsed
/// first (cheap), then opened in batches while the signature hash (if any)
/// runs over the body on its own thread. The errors are those of the
/// sequential loop: the first frame that fails to verify, else the first
/// frame that fails to parse.
fn framed_parallel<'a>(
    workers: usize,
    opener: &mut FrameOpener,
    frame_length: u32,
    body_bytes: &'a [u8],
    r: &mut Reader<'a>,
    plaintext: &mut Vec<u8>,
) -> Result<()> {
    let mut records = Vec::with_capacity(body_bytes.len() / (frame_length as usize).max(1) + 1);
    let mut total = 0usize;
    let stop: Option<Error> = loop {
        let at = r.offset();
        let rec = match body::parse_frame(r, frame_length, opener.next_seq) {
            Ok(rec) => rec,
            Err(e) => break Some(e.into_error()),
        };
        total += rec.content.len();
        records.push(OpenRecord { kind: rec.kind, seq: rec.seq, content: rec.content, tag: rec.tag });
        if rec.kind == BodyKind::Final {
            break None;
        }
        if let Err(e) = opener.advance(at) {
            break Some(e);
        }
    };
    let consumed = body_bytes.len() - r.remaining();
    let start = plaintext.len();
    if start == 0 && plaintext.capacity() == 0 {
        // A fresh buffer: zeroed memory from the allocator is not written
        // here, so the workers fault its pages in, in parallel.
        *plaintext = vec![0u8; total];
    } else {
        plaintext.resize(start + total, 0);
    }
    let hash = opener.verifier.as_mut().map(|v| (&mut v.hasher, &body_bytes[..consumed]));
    parallel::open_records(&opener.aead, &opener.message_id, &records, &mut plaintext[start..], workers, hash)?;
    match stop {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
