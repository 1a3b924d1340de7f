//! Message header: version 1 and 2 parse and serialize.

use super::reader::{ReadError, Reader};
use super::{edk, ContentType};
use crate::crypto::{IV_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::materials::{AlgorithmSuite, EncryptedDataKey, EncryptionContext};

/// Type byte of a version 1 header ("customer authenticated encrypted data").
const V1_TYPE: u8 = 0x80;
/// Length of the suite data (the commit key) of the committing suites.
pub(crate) const COMMIT_KEY_LEN: usize = 32;

/// Limits applied while a header is parsed, before anything is allocated for it.
#[derive(Debug, Clone, Copy)]
pub struct HeaderLimits {
    /// Largest accepted header, in bytes (authentication included).
    pub max_header_len: usize,
    /// Largest accepted number of encrypted data keys, if any.
    pub max_encrypted_data_keys: Option<usize>,
}

impl Default for HeaderLimits {
    fn default() -> Self {
        HeaderLimits { max_header_len: super::DEFAULT_MAX_HEADER_LEN, max_encrypted_data_keys: None }
    }
}

/// A parsed (or freshly written) message header, with the exact bytes it was
/// read from. Header authentication is checked over those bytes.
#[derive(Clone)]
pub struct Header {
    /// Message format version (1 or 2).
    pub version: u8,
    /// The suite.
    pub suite: AlgorithmSuite,
    /// Message id: 16 bytes (v1) or 32 bytes (v2).
    pub message_id: Vec<u8>,
    /// The stored encryption context.
    pub encryption_context: EncryptionContext,
    /// The encrypted data keys, in order.
    pub encrypted_data_keys: Vec<EncryptedDataKey>,
    /// Framed or not.
    pub content_type: ContentType,
    /// Frame length (0 for non-framed bodies).
    pub frame_length: u32,
    /// Suite data: the commit key for committing suites, else empty.
    pub suite_data: Vec<u8>,
    /// The header authentication IV (v1; all zero for v2, which has none on the wire).
    pub auth_iv: [u8; IV_LEN],
    /// The header authentication tag.
    pub auth_tag: [u8; TAG_LEN],
    body_len: usize,
    raw: Vec<u8>,
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Header")
            .field("version", &self.version)
            .field("suite", &self.suite)
            .field("encryption_context", &self.encryption_context)
            .field("encrypted_data_keys", &self.encrypted_data_keys)
            .field("content_type", &self.content_type)
            .field("frame_length", &self.frame_length)
            .field("len", &self.raw.len())
            .finish()
    }
}

impl Header {
    /// The header exactly as read (or written), authentication included.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The header body: the bytes the authentication tag covers (before the
    /// required-but-unstored context is appended).
    pub fn body(&self) -> &[u8] {
        &self.raw[..self.body_len]
    }

    /// Offset of the frame length field from the start of the message.
    pub(crate) fn frame_length_offset(&self) -> u64 {
        self.body_len.saturating_sub(self.suite_data.len() + 4) as u64
    }

    /// Total header length in bytes.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Always false: a header has at least its fixed fields.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }
}

/// Parse a header at the start of `input`. Bytes after the header are left
/// alone; the header's length is [`Header::len`].
pub fn parse_header(input: &[u8], limits: &HeaderLimits) -> Result<Header> {
    parse(input, limits).map_err(ReadError::into_error)
}

/// Parse a header; running out of input is reported as incomplete so that a
/// stream can read more and try again.
pub(crate) fn parse(input: &[u8], limits: &HeaderLimits) -> Result<Header, ReadError> {
    let mut r = Reader::new(input, 0);
    let version = r.u8("version")?;
    if version != 1 && version != 2 {
        return Err(
            Error::malformed("version", 0, format!("unsupported message format version 0x{version:02X}")).into()
        );
    }
    if version == 1 {
        let at = r.offset();
        let ty = r.u8("type")?;
        if ty != V1_TYPE {
            return Err(Error::malformed("type", at, format!("unsupported type 0x{ty:02X} (expected 0x80)")).into());
        }
    }
    let at = r.offset();
    let suite = AlgorithmSuite::from_id(r.u16("algorithm suite id")?)?;
    if suite.message_format_version() != version {
        return Err(Error::malformed(
            "algorithm suite id",
            at,
            format!("suite 0x{:04X} is not used with message format version {version}", suite.id()),
        )
        .into());
    }
    let message_id = r.take(suite.message_id_len(), "message id")?.to_vec();

    let mut aad = r.sub_u16("encryption context length", "encryption context")?;
    let ctx_offset = aad.offset();
    let encryption_context = super::context::parse(aad.rest(), ctx_offset)?;

    let encrypted_data_keys = super::edk::parse_list(&mut r, limits)?;

    let at = r.offset();
    let content_type = match r.u8("content type")? {
        0x01 => ContentType::NonFramed,
        0x02 => ContentType::Framed,
        other => return Err(Error::malformed("content type", at, format!("unknown content type 0x{other:02X}")).into()),
    };
    if version == 1 {
        let at = r.offset();
        if r.array::<4>("reserved")? != [0; 4] {
            return Err(Error::malformed("reserved", at, "the reserved bytes must be zero").into());
        }
        let at = r.offset();
        let iv_len = r.u8("IV length")?;
        if usize::from(iv_len) != IV_LEN {
            return Err(
                Error::malformed("IV length", at, format!("IV length {iv_len}, the suite uses {IV_LEN}")).into()
            );
        }
    }
    let at = r.offset();
    let frame_length = r.u32("frame length")?;
    match content_type {
        ContentType::NonFramed if frame_length != 0 => {
            return Err(Error::malformed("frame length", at, "must be 0 for a non-framed body").into())
        }
        ContentType::Framed if frame_length == 0 => {
            return Err(Error::malformed("frame length", at, "must not be 0 for a framed body").into())
        }
        _ => {}
    }
    let suite_data = if version == 2 && suite.is_committing() {
        r.take(COMMIT_KEY_LEN, "algorithm suite data")?.to_vec()
    } else {
        Vec::new()
    };
    let body_len = r.position();
    let auth_iv = if version == 1 { r.array::<IV_LEN>("header IV")? } else { [0; IV_LEN] };
    let auth_tag = r.array::<TAG_LEN>("header authentication tag")?;
    let len = r.position();
    check_len(len, limits)?;
    Ok(Header {
        version,
        suite,
        message_id,
        encryption_context,
        encrypted_data_keys,
        content_type,
        frame_length,
        suite_data,
        auth_iv,
        auth_tag,
        body_len,
        raw: input[..len].to_vec(),
    })
}

fn check_len(len: usize, limits: &HeaderLimits) -> Result<()> {
    if len > limits.max_header_len {
        return Err(Error::PolicyViolation {
            reason: format!("header of {len} bytes exceeds the configured maximum of {}", limits.max_header_len),
        });
    }
    Ok(())
}

/// Refuse a header known to need at least `needed` bytes.
pub(crate) fn check_needed(needed: usize, limits: &HeaderLimits) -> Result<()> {
    if needed > limits.max_header_len {
        return Err(Error::PolicyViolation {
            reason: format!(
                "header of at least {needed} bytes exceeds the configured maximum of {}",
                limits.max_header_len
            ),
        });
    }
    Ok(())
}

/// What goes into a new header body.
pub(crate) struct HeaderFields<'a> {
    pub(crate) suite: AlgorithmSuite,
    pub(crate) message_id: &'a [u8],
    pub(crate) stored_context: &'a EncryptionContext,
    pub(crate) encrypted_data_keys: &'a [EncryptedDataKey],
    pub(crate) frame_length: u32,
    pub(crate) suite_data: &'a [u8],
}

/// Serialize a framed header body in the suite's format version.
pub(crate) fn serialize_body(fields: &HeaderFields<'_>) -> Result<Vec<u8>> {
    let suite = fields.suite;
    let version = suite.message_format_version();
    if fields.message_id.len() != suite.message_id_len() {
        return Err(Error::crypto("message id of the wrong length"));
    }
    let expected_suite_data = if version == 2 && suite.is_committing() { COMMIT_KEY_LEN } else { 0 };
    if fields.suite_data.len() != expected_suite_data {
        return Err(Error::crypto("suite data of the wrong length"));
    }
    if fields.encrypted_data_keys.is_empty() {
        return Err(Error::config("a message needs at least one encrypted data key"));
    }
    let ctx = super::context::serialize(fields.stored_context)?;
    let mut out =
        Vec::with_capacity(64 + ctx.len() + fields.encrypted_data_keys.iter().map(edk::encoded_len).sum::<usize>());
    out.push(version);
    if version == 1 {
        out.push(V1_TYPE);
    }
    out.extend_from_slice(&suite.id().to_be_bytes());
    out.extend_from_slice(fields.message_id);
    edk::put_u16_prefixed(&mut out, &ctx, "serialized encryption context")?;
    edk::write_list(&mut out, fields.encrypted_data_keys)?;
    out.push(0x02); // framed
    if version == 1 {
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.push(IV_LEN as u8);
    }
    out.extend_from_slice(&fields.frame_length.to_be_bytes());
    out.extend_from_slice(fields.suite_data);
    Ok(out)
}

/// Append the header authentication to a serialized body (v1: the zero IV
/// then the tag; v2: the tag).
pub(crate) fn append_auth(body: &mut Vec<u8>, version: u8, iv: &[u8; IV_LEN], tag: &[u8; TAG_LEN]) {
    if version == 1 {
        body.extend_from_slice(iv);
    }
    body.extend_from_slice(tag);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(suite: AlgorithmSuite) -> Vec<u8> {
        let ctx = EncryptionContext::from_pairs([("a", "1"), ("ü", "ß")]).unwrap();
        let edks = vec![
            EncryptedDataKey { provider_id: "p".into(), provider_info: b"info".to_vec(), ciphertext: vec![7; 40] },
            EncryptedDataKey { provider_id: "q".into(), provider_info: vec![], ciphertext: vec![] },
        ];
        let mid = vec![9u8; suite.message_id_len()];
        let sd = if suite.is_committing() { vec![5u8; 32] } else { vec![] };
        let fields = HeaderFields {
            suite,
            message_id: &mid,
            stored_context: &ctx,
            encrypted_data_keys: &edks,
            frame_length: 4096,
            suite_data: &sd,
        };
        let mut body = serialize_body(&fields).unwrap();
        append_auth(&mut body, suite.message_format_version(), &[0; 12], &[3; 16]);
        body
    }

    #[test]
    fn v1_and_v2_round_trip_and_keep_exact_bytes() {
        for suite in AlgorithmSuite::ALL {
            let mut bytes = sample(suite);
            let len = bytes.len();
            bytes.extend_from_slice(b"body follows");
            let h = parse_header(&bytes, &HeaderLimits::default()).unwrap();
            assert_eq!(h.len(), len);
            assert_eq!(h.raw(), &bytes[..len]);
            assert_eq!(h.version, suite.message_format_version());
            assert_eq!(h.suite, suite);
            assert_eq!(h.encryption_context.get("ü"), Some("ß"));
            assert_eq!(h.encrypted_data_keys.len(), 2);
            assert_eq!(h.encrypted_data_keys[0].ciphertext, vec![7; 40]);
            assert_eq!(h.frame_length, 4096);
            assert_eq!(h.auth_tag, [3; 16]);
            assert_eq!(h.body().len(), len - if h.version == 1 { 28 } else { 16 });
        }
    }

    #[test]
    fn v1_layout_matches_the_specification() {
        let bytes = sample(AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha256);
        assert_eq!(&bytes[..4], &[0x01, 0x80, 0x01, 0x78]);
        // content type, reserved, IV length, frame length, then IV and tag.
        let tail = &bytes[bytes.len() - 28 - 10..bytes.len() - 28];
        assert_eq!(tail, &[0x02, 0, 0, 0, 0, 12, 0, 0, 0x10, 0]);
    }

    #[test]
    fn every_truncation_fails_and_limits_apply() {
        let bytes = sample(AlgorithmSuite::default());
        for cut in 0..bytes.len() {
            match parse(&bytes[..cut], &HeaderLimits::default()) {
                Err(ReadError::Incomplete { needed, .. }) => assert!(needed > cut, "cut {cut}"),
                other => panic!("cut {cut}: {other:?}"),
            }
        }
        let limits = HeaderLimits { max_header_len: 1 << 20, max_encrypted_data_keys: Some(1) };
        assert!(matches!(parse_header(&bytes, &limits), Err(Error::TooManyEncryptedDataKeys { count: 2, max: 1 })));
        let limits = HeaderLimits { max_header_len: 100, max_encrypted_data_keys: None };
        assert!(matches!(parse_header(&bytes, &limits), Err(Error::PolicyViolation { .. })));
    }

    #[test]
    fn bad_fields_are_named() {
        let good = sample(AlgorithmSuite::default());
        let expect = |bytes: &[u8], field: &str, offset: u64| match parse_header(bytes, &HeaderLimits::default()) {
            Err(Error::Malformed { field: f, offset: o, .. }) => assert_eq!((f, o), (field, offset)),
            other => panic!("{other:?}"),
        };
        let mut b = good.clone();
        b[0] = 3;
        expect(&b, "version", 0);
        // Suite 0x0178 inside a v2 header.
        let mut b = good.clone();
        b[1..3].copy_from_slice(&[0x01, 0x78]);
        expect(&b, "algorithm suite id", 1);
        // Context length larger than the context: the EDK section is misread.
        let mut b = good.clone();
        b[35..37].copy_from_slice(&[0, 1]);
        assert!(parse_header(&b, &HeaderLimits::default()).is_err());
        let mut b = sample(AlgorithmSuite::Aes128GcmIv12Tag16NoKdf);
        let n = b.len();
        b[n - 28 - 5] = 16; // IV length
        expect(&b, "IV length", (n - 33) as u64);
    }
}
