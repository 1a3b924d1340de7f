//! One-shot decryption of a message held in memory.

use super::{header_info, open_header, trailing};
use crate::error::Result;
use crate::format::body::{self, BodyKind};
use crate::format::reader::{ReadError, Reader};
use crate::format::{self, ContentType};
use crate::materials::{CryptographicMaterialsManager, EncryptionContext};
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
