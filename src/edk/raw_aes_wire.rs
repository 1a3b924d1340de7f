//! The wire layout of raw AES keyring EDKs, shared by every keyring that
//! wraps data keys with AES-GCM in this interoperable form.
//!
//! The in-process [`RawAesKeyring`](crate::keyrings::RawAesKeyring) and a keyring whose
//! AES key lives in a PKCS#11 token produce byte-identical EDKs when both use
//! these functions:
//!
//! * provider id: the key namespace (UTF-8);
//! * provider info: [`serialize_provider_info`] — key name, then the tag
//!   length in *bits* (u32 big-endian, always 128), the IV length in bytes
//!   (u32 big-endian, always 12) and the 12-byte IV;
//! * ciphertext: the AES-GCM ciphertext of the data key followed by the
//!   16-byte tag ([`join_ciphertext`] / [`split_ciphertext`]);
//! * AAD: the serialization of the materials' *full* encryption context
//!   (including pairs that are required but not stored in the header), as
//!   returned by [`EncryptionContext::serialize`](crate::EncryptionContext::serialize).

use crate::crypto::{IV_LEN, TAG_LEN};

/// The tag length field of the provider info: 128, in bits.
pub const TAG_LEN_BITS: u32 = (TAG_LEN as u32) * 8;

/// The IV length field of the provider info: 12, in bytes.
pub const IV_LEN_FIELD: u32 = IV_LEN as u32;

/// Bytes that follow the key name in the provider info: tag length (4), IV length (4), IV (12).
pub const PROVIDER_INFO_SUFFIX_LEN: usize = 4 + 4 + IV_LEN;

/// Serialize the provider info of a raw AES EDK: `key_name || 128 (u32 BE) || 12 (u32 BE) || iv`.
pub fn serialize_provider_info(key_name: &str, iv: &[u8; IV_LEN]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key_name.len() + PROVIDER_INFO_SUFFIX_LEN);
    out.extend_from_slice(key_name.as_bytes());
    out.extend_from_slice(&TAG_LEN_BITS.to_be_bytes());
    out.extend_from_slice(&IV_LEN_FIELD.to_be_bytes());
    out.extend_from_slice(iv);
    out
}

/// Parse the provider info of a raw AES EDK written for `key_name`.
///
/// Returns the IV if `info` is exactly `key_name`, a tag length of 128 bits,
/// an IV length of 12 and a 12-byte IV; `None` otherwise (the EDK belongs to
/// another key or uses parameters this format does not allow).
pub fn parse_provider_info(key_name: &str, info: &[u8]) -> Option<[u8; IV_LEN]> {
    let rest = info.strip_prefix(key_name.as_bytes())?;
    if rest.len() != PROVIDER_INFO_SUFFIX_LEN {
        return None;
    }
    let (tag_bits, rest) = rest.split_at(4);
    let (iv_len, iv) = rest.split_at(4);
    if tag_bits != TAG_LEN_BITS.to_be_bytes() || iv_len != IV_LEN_FIELD.to_be_bytes() {
        return None;
    }
    iv.try_into().ok()
}

/// The key name of a raw AES EDK's provider info, if `info` has the layout
/// (a UTF-8 name followed by the 128-bit tag and 12-byte IV fields).
/// Useful to show which key wrapped an EDK without knowing the key.
pub fn key_name(info: &[u8]) -> Option<&str> {
    let cut = info.len().checked_sub(PROVIDER_INFO_SUFFIX_LEN)?;
    let name = std::str::from_utf8(&info[..cut]).ok()?;
    parse_provider_info(name, info).map(|_| name)
}

/// Join the AES-GCM output into the EDK ciphertext field: `encrypted key || tag`.
pub fn join_ciphertext(encrypted_key: &[u8], tag: &[u8; TAG_LEN]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encrypted_key.len() + TAG_LEN);
    out.extend_from_slice(encrypted_key);
    out.extend_from_slice(tag);
    out
}

/// Split an EDK ciphertext field into the encrypted key and the tag; `None`
/// if it is shorter than a tag.
pub fn split_ciphertext(ciphertext: &[u8]) -> Option<(&[u8], [u8; TAG_LEN])> {
    let cut = ciphertext.len().checked_sub(TAG_LEN)?;
    let (encrypted_key, tag) = ciphertext.split_at(cut);
    Some((encrypted_key, tag.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_info_fields_at_their_offsets() {
        let iv = [7u8, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12];
        let info = serialize_provider_info("name", &iv);
        assert_eq!(info.len(), 4 + 20);
        assert_eq!(&info[..4], b"name");
        assert_eq!(&info[4..8], &[0, 0, 0, 0x80]);
        assert_eq!(&info[8..12], &[0, 0, 0, 0x0C]);
        assert_eq!(&info[12..], &iv);
        assert_eq!(parse_provider_info("name", &info), Some(iv));
    }

    #[test]
    fn provider_info_mismatches_refused() {
        let iv = [0x55u8; IV_LEN];
        let info = serialize_provider_info("name", &iv);
        // Another key name, a prefix of it, or one it is a prefix of.
        assert_eq!(parse_provider_info("other", &info), None);
        assert_eq!(parse_provider_info("nam", &info), None);
        assert_eq!(parse_provider_info("name2", &info), None);
        // Truncated or extended.
        assert_eq!(parse_provider_info("name", &info[..info.len() - 1]), None);
        let mut longer = info.clone();
        longer.push(0);
        assert_eq!(parse_provider_info("name", &longer), None);
        // Tag length in bytes instead of bits, or a 16-byte IV length.
        let mut bad_tag = info.clone();
        bad_tag[7] = 16;
        assert_eq!(parse_provider_info("name", &bad_tag), None);
        let mut bad_iv_len = info.clone();
        bad_iv_len[11] = 16;
        assert_eq!(parse_provider_info("name", &bad_iv_len), None);
        assert_eq!(parse_provider_info("name", b""), None);
    }

    #[test]
    fn ciphertext_split_and_join() {
        let tag = [0xEEu8; TAG_LEN];
        let joined = join_ciphertext(&[1, 2, 3], &tag);
        assert_eq!(joined.len(), 3 + TAG_LEN);
        let (key, t) = split_ciphertext(&joined).unwrap();
        assert_eq!(key, &[1, 2, 3]);
        assert_eq!(t, tag);
        assert!(split_ciphertext(&joined[..TAG_LEN - 1]).is_none());
        assert_eq!(split_ciphertext(&tag).unwrap().0, &[] as &[u8]);
    }
}
