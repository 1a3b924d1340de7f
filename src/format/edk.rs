//! The wire encoding of encrypted data keys: each entry is three
//! u16-length-prefixed fields (key provider id, key provider info, encrypted
//! data key); a list is a u16 count followed by its entries. The header and
//! the caching CMM's entry identifiers use this one encoding.

use super::header::HeaderLimits;
use super::reader::{ReadError, Reader};
use crate::error::{Error, Result};
use crate::materials::EncryptedDataKey;

/// Bytes of the fixed part of one entry: three u16 lengths.
const ENTRY_OVERHEAD: usize = 6;

/// Append a u16 length and `bytes`; `what` names the field in the error.
pub(super) fn put_u16_prefixed(out: &mut Vec<u8>, bytes: &[u8], what: &str) -> Result<()> {
    let len = u16::try_from(bytes.len())
        .map_err(|_| Error::config(format!("{what} of {} bytes exceeds the format's limit of 65535", bytes.len())))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// Encoded length of one entry.
pub(crate) fn encoded_len(edk: &EncryptedDataKey) -> usize {
    ENTRY_OVERHEAD + edk.provider_id.len() + edk.provider_info.len() + edk.ciphertext.len()
}

/// Append one entry to `out`; refuses a field longer than 65535 bytes.
pub(crate) fn write(out: &mut Vec<u8>, edk: &EncryptedDataKey) -> Result<()> {
    put_u16_prefixed(out, edk.provider_id.as_bytes(), "key provider id")?;
    put_u16_prefixed(out, &edk.provider_info, "key provider info")?;
    put_u16_prefixed(out, &edk.ciphertext, "encrypted data key")
}

/// One entry on its own.
pub(crate) fn serialize(edk: &EncryptedDataKey) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(encoded_len(edk));
    write(&mut out, edk)?;
    Ok(out)
}

/// Append a list (count, then entries) to `out`; refuses more than 65535 entries.
pub(crate) fn write_list(out: &mut Vec<u8>, edks: &[EncryptedDataKey]) -> Result<()> {
    let count = u16::try_from(edks.len())
        .map_err(|_| Error::config(format!("{} encrypted data keys exceed the format's limit", edks.len())))?;
    out.extend_from_slice(&count.to_be_bytes());
    edks.iter().try_for_each(|edk| write(out, edk))
}

/// Parse one entry.
pub(crate) fn parse(r: &mut Reader<'_>) -> Result<EncryptedDataKey, ReadError> {
    let at = r.offset();
    let provider_id = r.bytes_u16("key provider id length", "key provider id")?;
    let provider_id = std::str::from_utf8(provider_id)
        .map_err(|_| Error::malformed("key provider id", at.saturating_add(2), "not UTF-8"))?
        .to_owned();
    let provider_info = r.bytes_u16("key provider info length", "key provider info")?.to_vec();
    let ciphertext = r.bytes_u16("encrypted data key length", "encrypted data key")?.to_vec();
    Ok(EncryptedDataKey { provider_id, provider_info, ciphertext })
}

/// Parse a list: at least one entry, at most the limit's count.
pub(crate) fn parse_list(r: &mut Reader<'_>, limits: &HeaderLimits) -> Result<Vec<EncryptedDataKey>, ReadError> {
    let at = r.offset();
    let count = usize::from(r.u16("encrypted data key count")?);
    if count == 0 {
        return Err(Error::malformed("encrypted data key count", at, "a message needs at least one").into());
    }
    if let Some(max) = limits.max_encrypted_data_keys {
        if count > max {
            return Err(Error::TooManyEncryptedDataKeys { count, max }.into());
        }
    }
    // Cap the reservation by what the input can hold.
    let mut edks = Vec::with_capacity(count.min(r.remaining() / ENTRY_OVERHEAD));
    for _ in 0..count {
        edks.push(parse(r)?);
    }
    Ok(edks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edk(id: &str, info: &[u8], ct: &[u8]) -> EncryptedDataKey {
        EncryptedDataKey { provider_id: id.into(), provider_info: info.to_vec(), ciphertext: ct.to_vec() }
    }

    #[test]
    fn list_layout_and_round_trip() {
        let edks = vec![edk("p", b"ab", &[7; 3]), edk("", b"", b"")];
        let mut out = Vec::new();
        write_list(&mut out, &edks).unwrap();
        assert_eq!(out, [0, 2, 0, 1, b'p', 0, 2, b'a', b'b', 0, 3, 7, 7, 7, 0, 0, 0, 0, 0, 0]);
        assert_eq!(serialize(&edks[0]).unwrap(), out[2..14]);
        assert_eq!(encoded_len(&edks[0]), 12);
        let mut r = Reader::new(&out, 0);
        assert_eq!(parse_list(&mut r, &HeaderLimits::default()).unwrap(), edks);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn bad_lists_are_refused() {
        let limits = HeaderLimits::default();
        let zero = [0u8, 0];
        assert!(matches!(
            parse_list(&mut Reader::new(&zero, 0), &limits),
            Err(ReadError::Fatal(Error::Malformed { field: "encrypted data key count", .. }))
        ));
        let mut two = Vec::new();
        write_list(&mut two, &[edk("a", b"", b""), edk("b", b"", b"")]).unwrap();
        let one = HeaderLimits { max_encrypted_data_keys: Some(1), ..limits };
        assert!(matches!(
            parse_list(&mut Reader::new(&two, 0), &one),
            Err(ReadError::Fatal(Error::TooManyEncryptedDataKeys { count: 2, max: 1 }))
        ));
        for cut in 0..two.len() {
            assert!(matches!(parse_list(&mut Reader::new(&two[..cut], 0), &limits), Err(ReadError::Incomplete { .. })));
        }
        let bad_utf8 = [0u8, 1, 0, 1, 0xff, 0, 0, 0, 0];
        assert!(matches!(
            parse_list(&mut Reader::new(&bad_utf8, 10), &limits),
            Err(ReadError::Fatal(Error::Malformed { field: "key provider id", offset: 14, .. }))
        ));
        let long = edk("p", b"", &vec![0; 65_536]);
        assert!(matches!(serialize(&long), Err(Error::Config { .. })));
    }
}
