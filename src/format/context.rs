//! The wire encoding of an encryption context: pair count (u16), then
//! `len key len value` per pair (u16 lengths) sorted by key bytes; the empty
//! context is zero bytes. The header, the keyrings' AAD and the caching CMM's
//! entry identifiers all use this one encoding.

use std::collections::BTreeMap;

use super::reader::{ReadError, Reader};
use crate::error::{Error, Result};
use crate::materials::EncryptionContext;

const FIELD: &str = "encryption context";

fn invalid(reason: String) -> Error {
    Error::InvalidEncryptionContext { reason }
}

/// Serialize `context`; refuses more than 65535 pairs, a key or value longer
/// than 65535 bytes, or an encoding longer than 65535 bytes.
pub(crate) fn serialize(context: &EncryptionContext) -> Result<Vec<u8>> {
    if context.is_empty() {
        return Ok(Vec::new());
    }
    let count = u16::try_from(context.len())
        .map_err(|_| invalid(format!("{} pairs exceed the format's limit of 65535", context.len())))?;
    let mut out = Vec::with_capacity(2 + context.iter().map(|(k, v)| 4 + k.len() + v.len()).sum::<usize>());
    out.extend_from_slice(&count.to_be_bytes());
    for (k, v) in context.iter() {
        for part in [k, v] {
            let len = u16::try_from(part.len())
                .map_err(|_| invalid(format!("a key or value of {} bytes exceeds 65535", part.len())))?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
    }
    if out.len() > usize::from(u16::MAX) {
        return Err(invalid(format!("serialized context of {} bytes exceeds 65535", out.len())));
    }
    Ok(out)
}

/// Parse an encoding (the bytes after the header's u16 length field);
/// `offset` is where those bytes start in the message, for error reports.
/// Duplicate keys, invalid UTF-8, a zero pair count and trailing bytes are
/// refused.
pub(crate) fn parse(bytes: &[u8], offset: u64) -> Result<EncryptionContext> {
    if bytes.is_empty() {
        return Ok(EncryptionContext::new());
    }
    // A bounded reader: running out of bytes is malformed, not incomplete.
    let mut r = Reader::new(bytes, offset).sub(bytes.len(), FIELD).map_err(ReadError::into_error)?;
    parse_pairs(&mut r, offset).map_err(ReadError::into_error)
}

fn parse_pairs(r: &mut Reader<'_>, offset: u64) -> Result<EncryptionContext, ReadError> {
    let count = r.u16(FIELD)?;
    if count == 0 {
        return Err(Error::malformed(FIELD, offset, "a non-empty context must have at least one pair").into());
    }
    let mut pairs = BTreeMap::new();
    for _ in 0..count {
        let at = r.offset();
        let k = r.bytes_u16(FIELD, FIELD)?;
        let v = r.bytes_u16(FIELD, FIELD)?;
        let k = std::str::from_utf8(k).map_err(|_| Error::malformed(FIELD, at, "key is not UTF-8"))?;
        let v = std::str::from_utf8(v).map_err(|_| Error::malformed(FIELD, at, "value is not UTF-8"))?;
        // Writers sort the pairs; readers only insist on unique keys, as the
        // other implementations do. Authentication covers the bytes as read.
        if pairs.insert(k.to_owned(), v.to_owned()).is_some() {
            return Err(Error::malformed(FIELD, at, "duplicate key").into());
        }
    }
    if r.remaining() > 0 {
        return Err(Error::malformed(FIELD, r.offset(), "trailing bytes after the last pair").into());
    }
    Ok(EncryptionContext::from_map(pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_sorted_and_round_trips() {
        let ctx = EncryptionContext::from_pairs([("b", "2"), ("a", "1")]).unwrap();
        let bytes = serialize(&ctx).unwrap();
        assert_eq!(bytes, [0, 2, 0, 1, b'a', 0, 1, b'1', 0, 1, b'b', 0, 1, b'2']);
        assert_eq!(parse(&bytes, 0).unwrap(), ctx);
        assert!(serialize(&EncryptionContext::new()).unwrap().is_empty());
        assert!(parse(&[], 0).unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_field_and_offset() {
        let at = |bytes: &[u8]| match parse(bytes, 100) {
            Err(Error::Malformed { field: FIELD, offset, .. }) => offset,
            other => panic!("{other:?}"),
        };
        // Truncated inside the second pair, which starts at offset 100 + 7.
        assert_eq!(at(&[0, 2, 0, 1, b'a', 0, 0, 0, 1]), 109);
        assert_eq!(at(&[0, 2, 0, 1, b'a', 0, 0, 0, 1, b'a', 0, 0]), 107, "duplicate key");
        assert_eq!(at(&[0, 1, 0, 1, b'a', 0, 0, 9]), 107, "trailing byte");
        assert_eq!(at(&[0, 0]), 100, "zero pairs");
        assert_eq!(at(&[0, 1, 0, 1, 0xff, 0, 0]), 102, "key not UTF-8");
        assert_eq!(at(&[0, 1, 0, 0, 0, 1, 0xff]), 102, "value not UTF-8");
        assert_eq!(at(&[0]), 100);
    }

    #[test]
    fn oversized_contexts_are_refused() {
        let long = EncryptionContext::from_pairs([("k", "v".repeat(65_536))]).unwrap();
        assert!(matches!(serialize(&long), Err(Error::InvalidEncryptionContext { .. })));
        let wide = EncryptionContext::from_pairs([("a", "v".repeat(40_000)), ("b", "v".repeat(40_000))]).unwrap();
        assert!(matches!(serialize(&wide), Err(Error::InvalidEncryptionContext { .. })));
    }
}
