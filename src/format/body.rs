//! Message body records (regular frame, final frame, non-framed body), the
//! body AAD and the footer.

use super::reader::{ReadError, Reader};
use crate::crypto::{IV_LEN, TAG_LEN};
use crate::error::{Error, Result};

/// First four bytes of a final frame.
pub const FINAL_FRAME_MARKER: u32 = 0xFFFF_FFFF;
/// Largest number of frames in a message (and largest sequence number).
pub const MAX_FRAMES: u32 = u32::MAX;
/// Largest non-framed body content: 2^36 - 32 bytes.
pub const MAX_NON_FRAMED_CONTENT: u64 = (1 << 36) - 32;

/// Bytes of a regular frame before its content: sequence number, IV.
pub const REGULAR_FRAME_PREFIX: usize = 4 + IV_LEN;
/// Bytes of a final frame before its content: marker, sequence number, IV, length.
pub const FINAL_FRAME_PREFIX: usize = 4 + 4 + IV_LEN + 4;

/// Which record a body AAD belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    Regular,
    Final,
    NonFramed,
}

impl BodyKind {
    fn aad_content(self) -> &'static [u8] {
        match self {
            BodyKind::Regular => b"AWSKMSEncryptionClient Frame",
            BodyKind::Final => b"AWSKMSEncryptionClient Final Frame",
            BodyKind::NonFramed => b"AWSKMSEncryptionClient Single Block",
        }
    }
}

/// The IV of frame `seq`: eight zero bytes, then the sequence number.
pub(crate) fn frame_iv(seq: u32) -> [u8; IV_LEN] {
    let mut iv = [0u8; IV_LEN];
    iv[IV_LEN - 4..].copy_from_slice(&seq.to_be_bytes());
    iv
}

/// Write the body AAD into `out` (cleared first, so the buffer is reused).
pub(crate) fn body_aad(out: &mut Vec<u8>, message_id: &[u8], kind: BodyKind, seq: u32, content_len: u64) {
    out.clear();
    out.extend_from_slice(message_id);
    out.extend_from_slice(kind.aad_content());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&content_len.to_be_bytes());
}

/// Write the prefix of a regular frame.
pub(crate) fn regular_prefix(seq: u32) -> [u8; REGULAR_FRAME_PREFIX] {
    let mut p = [0u8; REGULAR_FRAME_PREFIX];
    p[..4].copy_from_slice(&seq.to_be_bytes());
    p[4..].copy_from_slice(&frame_iv(seq));
    p
}

/// Write the prefix of a final frame with `len` content bytes.
pub(crate) fn final_prefix(seq: u32, len: u32) -> [u8; FINAL_FRAME_PREFIX] {
    let mut p = [0u8; FINAL_FRAME_PREFIX];
    p[..4].copy_from_slice(&FINAL_FRAME_MARKER.to_be_bytes());
    p[4..8].copy_from_slice(&seq.to_be_bytes());
    p[8..8 + IV_LEN].copy_from_slice(&frame_iv(seq));
    p[8 + IV_LEN..].copy_from_slice(&len.to_be_bytes());
    p
}

/// A body record as parsed from the wire, content still encrypted.
#[derive(Debug)]
pub(crate) struct Record<'a> {
    pub(crate) kind: BodyKind,
    pub(crate) seq: u32,
    pub(crate) content: &'a [u8],
    pub(crate) tag: [u8; TAG_LEN],
    /// The record's bytes as read (for the signature hash).
    pub(crate) raw: &'a [u8],
}

/// Check the sequence number and IV of a frame read at `offset`.
pub(crate) fn check_frame(seq: u32, expected: u32, iv: &[u8; IV_LEN], seq_at: u64, iv_at: u64) -> Result<()> {
    if seq != expected {
        return Err(Error::malformed("sequence number", seq_at, format!("frame {seq} where frame {expected} was due")));
    }
    if *iv != frame_iv(seq) {
        return Err(Error::malformed("frame IV", iv_at, "the IV is not the frame's sequence number"));
    }
    Ok(())
}

/// Parse the next frame of a framed body; `expected` is the sequence number due.
pub(crate) fn parse_frame<'a>(r: &mut Reader<'a>, frame_length: u32, expected: u32) -> Result<Record<'a>, ReadError> {
    let start = r.position();
    let start_off = r.offset();
    let first = r.u32("sequence number")?;
    let (kind, seq, seq_at) = if first == FINAL_FRAME_MARKER {
        let at = r.offset();
        (BodyKind::Final, r.u32("sequence number")?, at)
    } else {
        (BodyKind::Regular, first, start_off)
    };
    let iv_at = r.offset();
    let iv = r.array::<IV_LEN>("frame IV")?;
    check_frame(seq, expected, &iv, seq_at, iv_at)?;
    let len = if kind == BodyKind::Final {
        let at = r.offset();
        let len = r.u32("final frame content length")?;
        check_final_len(len, frame_length, at)?;
        len
    } else {
        frame_length
    };
    let content = r.take(len as usize, "frame content")?;
    let tag = r.array::<TAG_LEN>("frame authentication tag")?;
    Ok(Record { kind, seq, content, tag, raw: r.slice_from(start) })
}

/// Refuse a final frame longer than the frame length.
pub(crate) fn check_final_len(len: u32, frame_length: u32, at: u64) -> Result<()> {
    if len > frame_length {
        return Err(Error::malformed(
            "final frame content length",
            at,
            format!("{len} bytes exceed the frame length {frame_length}"),
        ));
    }
    Ok(())
}

/// Check the declared length of a non-framed body.
pub(crate) fn check_non_framed_len(len: u64, at: u64) -> Result<()> {
    if len > MAX_NON_FRAMED_CONTENT {
        return Err(Error::malformed("content length", at, format!("{len} bytes exceed the limit of 2^36 - 32")));
    }
    Ok(())
}

/// Parse the fixed-size start of a non-framed body (IV and content length);
/// returns the declared content length.
pub(crate) fn parse_non_framed_prefix(r: &mut Reader<'_>) -> Result<u64, ReadError> {
    let iv_at = r.offset();
    let iv = r.array::<IV_LEN>("body IV")?;
    if iv != frame_iv(1) {
        return Err(Error::malformed("body IV", iv_at, "the IV is not the sequence number 1").into());
    }
    let at = r.offset();
    let len = r.u64("content length")?;
    check_non_framed_len(len, at)?;
    Ok(len)
}

/// Parse a non-framed body.
pub(crate) fn parse_non_framed<'a>(r: &mut Reader<'a>) -> Result<Record<'a>, ReadError> {
    let start = r.position();
    let at = r.offset().saturating_add(IV_LEN as u64);
    let len = parse_non_framed_prefix(r)?;
    let len =
        usize::try_from(len).map_err(|_| Error::malformed("content length", at, "too large for this platform"))?;
    let content = r.take(len, "encrypted content")?;
    let tag = r.array::<TAG_LEN>("body authentication tag")?;
    Ok(Record { kind: BodyKind::NonFramed, seq: 1, content, tag, raw: r.slice_from(start) })
}

/// Parse the footer: the DER signature.
pub(crate) fn parse_footer<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], ReadError> {
    r.bytes_u16("signature length", "signature")
}

/// Serialize the footer.
pub(crate) fn footer(signature: &[u8]) -> Result<Vec<u8>> {
    let len = u16::try_from(signature.len())
        .map_err(|_| Error::crypto(format!("signature of {} bytes is too long", signature.len())))?;
    let mut out = Vec::with_capacity(2 + signature.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(signature);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iv_and_aad_layout() {
        assert_eq!(frame_iv(0x01020304), [0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
        let mut aad = Vec::new();
        body_aad(&mut aad, &[0xAA; 2], BodyKind::Final, 3, 5);
        let mut expected = vec![0xAA, 0xAA];
        expected.extend_from_slice(b"AWSKMSEncryptionClient Final Frame");
        expected.extend_from_slice(&[0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 5]);
        assert_eq!(aad, expected);
    }

    #[test]
    fn frames_parse_and_bad_ones_are_refused() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&regular_prefix(1));
        bytes.extend_from_slice(&[1, 2, 3, 4]);
        bytes.extend_from_slice(&[9; 16]);
        bytes.extend_from_slice(&final_prefix(2, 2));
        bytes.extend_from_slice(&[5, 6]);
        bytes.extend_from_slice(&[8; 16]);
        let mut r = Reader::new(&bytes, 100);
        let f = parse_frame(&mut r, 4, 1).unwrap();
        assert_eq!((f.kind, f.seq, f.content, f.raw.len()), (BodyKind::Regular, 1, &[1u8, 2, 3, 4][..], 36));
        let f = parse_frame(&mut r, 4, 2).unwrap();
        assert_eq!((f.kind, f.seq, f.content, f.tag), (BodyKind::Final, 2, &[5u8, 6][..], [8; 16]));
        assert_eq!(r.remaining(), 0);

        // Out of order.
        let mut r = Reader::new(&bytes, 100);
        assert!(matches!(
            parse_frame(&mut r, 4, 2),
            Err(ReadError::Fatal(Error::Malformed { field: "sequence number", offset: 100, .. }))
        ));
        // Final frame longer than the frame length.
        let mut r = Reader::new(&bytes[36..], 0);
        assert!(matches!(
            parse_frame(&mut r, 1, 2),
            Err(ReadError::Fatal(Error::Malformed { field: "final frame content length", offset: 20, .. }))
        ));
        // Wrong IV.
        let mut b = bytes.clone();
        b[15] ^= 1;
        let mut r = Reader::new(&b, 0);
        assert!(matches!(
            parse_frame(&mut r, 4, 1),
            Err(ReadError::Fatal(Error::Malformed { field: "frame IV", offset: 4, .. }))
        ));
    }

    /// The stream reader feeds these parsers exactly the bytes they ask
    /// for: each incomplete parse names the total it needs next.
    #[test]
    fn incomplete_records_ask_for_the_next_field() {
        let mut frame = Vec::new();
        frame.extend_from_slice(&final_prefix(1, 3));
        frame.extend_from_slice(&[1, 2, 3]);
        frame.extend_from_slice(&[9; 16]);
        let mut have = 0;
        let mut asked = Vec::new();
        loop {
            match parse_frame(&mut Reader::new(&frame[..have], 0), 4, 1) {
                Ok(f) => {
                    assert_eq!((f.kind, f.content, f.raw.len()), (BodyKind::Final, &[1u8, 2, 3][..], frame.len()));
                    break;
                }
                Err(ReadError::Incomplete { needed, .. }) => {
                    assert!(needed > have && needed <= frame.len());
                    asked.push(needed);
                    have = needed;
                }
                Err(ReadError::Fatal(e)) => panic!("{e:?}"),
            }
        }
        assert_eq!(asked, [4, 8, 20, 24, 27, 43]);

        let mut body = frame_iv(1).to_vec();
        body.extend_from_slice(&5u64.to_be_bytes());
        body.extend_from_slice(&[7; 5 + 16]);
        assert_eq!(parse_non_framed_prefix(&mut Reader::new(&body, 0)).unwrap(), 5);
        assert!(matches!(
            parse_non_framed_prefix(&mut Reader::new(&body[..19], 0)),
            Err(ReadError::Incomplete { field: "content length", needed: 20, .. })
        ));
        let rec = parse_non_framed(&mut Reader::new(&body, 0)).unwrap();
        assert_eq!((rec.content, rec.raw.len()), (&[7u8; 5][..], body.len()));
        // A wrong IV or an over-long length is refused from the prefix alone.
        let mut bad_iv = body.clone();
        bad_iv[0] = 1;
        assert!(matches!(
            parse_non_framed_prefix(&mut Reader::new(&bad_iv[..20], 0)),
            Err(ReadError::Fatal(Error::Malformed { field: "body IV", .. }))
        ));
        let mut too_long = body[..12].to_vec();
        too_long.extend_from_slice(&(MAX_NON_FRAMED_CONTENT + 1).to_be_bytes());
        assert!(matches!(
            parse_non_framed_prefix(&mut Reader::new(&too_long, 0)),
            Err(ReadError::Fatal(Error::Malformed { field: "content length", offset: 12, .. }))
        ));
    }
}
