//! The streaming reader's input: the header read from a stream, the bytes
//! read past it served first, and a record buffer filled exactly as far as
//! the body parser asks.

use std::io::{self, Read};

use zeroize::Zeroizing;

use super::trailing;
use crate::error::{Error, Result};
use crate::format::reader::{ReadError, Reader};
use crate::format::{self, Header, HeaderLimits};

#[cfg(doc)]
use super::DecryptingReader;

/// Read a header from a stream, reading no more than the limits allow.
/// Returns the header and the bytes read past it.
pub(crate) fn read_header<R: Read>(input: &mut R, limits: &HeaderLimits) -> Result<(Header, Vec<u8>)> {
    read_header_with(input, limits, |bytes| format::parse(bytes, limits))
}

/// [`read_header`] with the parser passed in (tests count its work).
///
/// The parser starts from the first byte every time, so the bytes it is
/// handed grow geometrically: after a parse that ran out of input, reading
/// goes on until the buffer holds at least what the parser asked for and at
/// least twice what it was given (within the header limit), or the stream
/// ends. A header of `n` bytes is thus parsed O(log n) times over O(n) bytes
/// in all, however small the pieces the stream delivers; the price is that up
/// to that much past the header may be read before the header is returned.
fn read_header_with<R: Read>(
    input: &mut R,
    limits: &HeaderLimits,
    mut parse: impl FnMut(&[u8]) -> Result<Header, ReadError>,
) -> Result<(Header, Vec<u8>)> {
    let mut acc: Vec<u8> = Vec::new();
    let mut ended = false;
    let mut chunk = [0u8; 8192];
    loop {
        match parse(&acc) {
            Ok(header) => {
                let rest = acc.split_off(header.len());
                return Ok((header, rest));
            }
            Err(ReadError::Fatal(e)) => return Err(e),
            Err(incomplete @ ReadError::Incomplete { needed, .. }) => {
                format::check_needed(needed, limits)?;
                if ended {
                    return Err(incomplete.into_error());
                }
                let target = needed.max(acc.len().saturating_mul(2)).max(512).min(limits.max_header_len.max(needed));
                while acc.len() < target {
                    let want = (target - acc.len()).min(chunk.len());
                    match input.read(&mut chunk[..want]) {
                        Ok(0) => {
                            ended = true;
                            break;
                        }
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
pub(super) struct Input<R> {
    pub(super) inner: R,
    pub(super) ahead: Vec<u8>,
    pub(super) ahead_pos: usize,
    /// Message offset of the next byte.
    pub(super) offset: u64,
}

/// The reader's reusable buffer: the first `len` bytes are in use. Bytes
/// past `len` keep what an earlier frame left there, so reading the next
/// frame writes each byte once instead of zeroing it first. Wiped on drop.
#[derive(Default)]
pub(super) struct Scratch {
    bytes: Zeroizing<Vec<u8>>,
    len: usize,
}

impl Scratch {
    pub(super) fn clear(&mut self) {
        self.len = 0;
    }

    pub(super) fn capacity(&self) -> usize {
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

    /// Make room for `total` bytes in all, exactly (no doubling), so that a
    /// buffer of known use holds no more than it needs.
    pub(super) fn reserve_total(&mut self, total: usize) {
        let more = total.saturating_sub(self.bytes.len());
        self.bytes.reserve_exact(more);
    }

    /// Append `bytes` to the used part.
    pub(super) fn push(&mut self, bytes: &[u8]) {
        self.spare(bytes.len()).copy_from_slice(bytes);
        self.commit(bytes.len());
    }

    /// Keep only the first `len` bytes in use.
    pub(super) fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
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

    /// Append exactly `n` bytes to `buf`, growing it only as the bytes
    /// arrive; `field` (at message offset `field_at`) names what is missing
    /// if the stream ends first.
    fn fill(&mut self, buf: &mut Scratch, n: usize, field: &'static str, field_at: u64) -> Result<()> {
        const STEP: usize = 64 * 1024;
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

    /// Read a record into `buf`, which holds the record's bytes read so far
    /// (it starts at message offset `start`), exactly as far as `parse` asks:
    /// each time it runs out of input, the bytes it needs are read and it
    /// runs again over the whole buffer, until it succeeds or finds the bytes
    /// malformed. Nothing past what the parser asked for is read.
    pub(super) fn read_record(
        &mut self,
        buf: &mut Scratch,
        start: u64,
        parse: impl FnMut(&mut Reader<'_>) -> Result<(), ReadError>,
    ) -> Result<()> {
        self.read_record_from(buf, 0, start, parse)
    }

    /// [`Input::read_record`] for a record that starts at `from` in `buf`
    /// (after the records before it in a batch).
    pub(super) fn read_record_from(
        &mut self,
        buf: &mut Scratch,
        from: usize,
        start: u64,
        mut parse: impl FnMut(&mut Reader<'_>) -> Result<(), ReadError>,
    ) -> Result<()> {
        loop {
            match parse(&mut Reader::new(&buf[from..], start)) {
                Ok(()) => return Ok(()),
                Err(ReadError::Fatal(e)) => return Err(e),
                Err(ReadError::Incomplete { field, offset, needed }) => {
                    // The parser asks for bytes past what it was given.
                    let more = needed.saturating_sub(buf.len() - from).max(1);
                    self.fill(buf, more, field, offset)?;
                }
            }
        }
    }

    pub(super) fn expect_eof(&mut self) -> Result<()> {
        let mut probe = [0u8; 1];
        match self.read_some(&mut probe)? {
            0 => Ok(()),
            _ => Err(trailing(self.offset)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Trickle;
    use std::cell::Cell;

    use super::*;
    use crate::format::{append_auth, serialize_body, HeaderFields};
    use crate::materials::{AlgorithmSuite, EncryptedDataKey, EncryptionContext};

    /// A header of `edks` entries of about 100 bytes each, then `tail`.
    fn big_header(edks: usize, tail: &[u8]) -> (Vec<u8>, usize) {
        let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
        let keys: Vec<EncryptedDataKey> = (0..edks)
            .map(|i| EncryptedDataKey {
                provider_id: format!("provider-{i}"),
                provider_info: vec![1; 20],
                ciphertext: vec![(i % 251) as u8; 60],
            })
            .collect();
        let context = EncryptionContext::from_pairs([("purpose", "test")]).unwrap();
        let fields = HeaderFields {
            suite,
            message_id: &[9; 32],
            stored_context: &context,
            encrypted_data_keys: &keys,
            frame_length: 4096,
            suite_data: &[5; 32],
        };
        let mut bytes = serialize_body(&fields).unwrap();
        append_auth(&mut bytes, 2, &[0; 12], &[3; 16]);
        let len = bytes.len();
        bytes.extend_from_slice(tail);
        (bytes, len)
    }

    #[test]
    fn a_header_in_small_pieces_is_parsed_a_few_times_over_linear_bytes() {
        let (bytes, len) = big_header(4000, b"first frame bytes");
        assert!(len > 390_000, "{len}");
        let (attempts, parsed) = (Cell::new(0usize), Cell::new(0usize));
        let limits = HeaderLimits::default();
        let counting = |b: &[u8]| {
            attempts.set(attempts.get() + 1);
            parsed.set(parsed.get() + b.len());
            format::parse(b, &limits)
        };
        let mut input = Trickle { data: &bytes, step: 48 };
        let (header, ahead) = read_header_with(&mut input, &limits, counting).unwrap();
        assert_eq!(header.len(), len);
        assert_eq!(header.encrypted_data_keys.len(), 4000);
        assert_eq!(header.encrypted_data_keys[3999].provider_id, "provider-3999");
        // What was read past the header comes back, in order, with the rest.
        let mut rest = ahead;
        rest.extend_from_slice(input.data);
        assert_eq!(rest, b"first frame bytes");
        assert!(attempts.get() <= 2 * usize::BITS as usize, "{} parse attempts", attempts.get());
        assert!(parsed.get() <= 4 * len, "{} bytes parsed for a header of {len}", parsed.get());
    }

    #[test]
    fn a_cut_or_oversized_header_is_refused() {
        let (bytes, len) = big_header(50, b"");
        for cut in [0, 1, 40, len / 2, len - 1] {
            let mut input = Trickle { data: &bytes[..cut], step: 48 };
            match read_header(&mut input, &HeaderLimits::default()) {
                Err(Error::Malformed { .. }) => {}
                other => panic!("cut {cut}: {other:?}"),
            }
        }
        let small = HeaderLimits { max_header_len: len - 1, max_encrypted_data_keys: None };
        let mut input = Trickle { data: &bytes, step: 48 };
        assert!(matches!(read_header(&mut input, &small), Err(Error::PolicyViolation { .. })));
        // A tampered byte early in the header fails at once, whatever follows.
        let mut bad = bytes.clone();
        bad[0] = 9;
        let mut input = Trickle { data: &bad, step: 48 };
        assert!(matches!(read_header(&mut input, &HeaderLimits::default()), Err(Error::Malformed { .. })));
    }
}
