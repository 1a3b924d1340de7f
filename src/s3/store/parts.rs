//! The two halves of a streamed object, independent of any store: parts
//! encrypted in order from an async reader, and a body decrypted chunk by
//! chunk with its tag split off the end.

use tokio::io::{AsyncRead, AsyncReadExt};
use zeroize::Zeroizing;

use crate::crypto::TAG_LEN;
use crate::error::{Error, Result};
use crate::s3::{ObjectDecryptor, ObjectEncryptor, S3Metadata};

/// Reads plaintext from an async reader one part at a time and yields the
/// encrypted parts of the object body, in order; the last part carries the
/// tag. It reads one part ahead (to know which part is the last), so memory
/// is two parts.
#[derive(Debug)]
pub struct PartEncryptor<R> {
    reader: R,
    encryptor: Option<ObjectEncryptor>,
    part_size: usize,
    next: Option<Vec<u8>>,
    number: usize,
    done: bool,
}

/// One encrypted part of an object body.
#[derive(Debug)]
pub struct EncryptedPart {
    /// 1 for the first part.
    pub number: usize,
    /// Ciphertext (and, for the last part, the tag).
    pub body: Vec<u8>,
    /// True for the last part.
    pub is_last: bool,
}

impl<R: AsyncRead + Unpin> PartEncryptor<R> {
    /// Encrypt what `reader` yields with `encryptor`, in parts of
    /// `part_size` plaintext bytes (the last may be shorter, or empty for
    /// an empty object).
    pub fn new(reader: R, encryptor: ObjectEncryptor, part_size: usize) -> Result<Self> {
        if part_size == 0 {
            return Err(Error::config("the part size must be at least one byte"));
        }
        Ok(PartEncryptor { reader, encryptor: Some(encryptor), part_size, next: None, number: 0, done: false })
    }

    /// The object's encryption metadata.
    pub fn metadata(&self) -> Option<&S3Metadata> {
        self.encryptor.as_ref().map(ObjectEncryptor::metadata)
    }

    async fn fill(&mut self) -> Result<Vec<u8>> {
        let mut part = Vec::with_capacity(self.part_size + TAG_LEN);
        let mut limited = (&mut self.reader).take(self.part_size as u64);
        limited.read_to_end(&mut part).await?;
        Ok(part)
    }

    /// The next encrypted part, or `None` after the last.
    pub async fn next_part(&mut self) -> Result<Option<EncryptedPart>> {
        if self.done {
            return Ok(None);
        }
        let mut current = match self.next.take() {
            Some(part) => part,
            None => self.fill().await?,
        };
        let is_last = if current.len() < self.part_size {
            true
        } else {
            let next = self.fill().await?;
            let empty = next.is_empty();
            self.next = Some(next);
            empty
        };
        let encryptor = self.encryptor.as_mut().ok_or_else(|| Error::config("the object is complete"))?;
        encryptor.encrypt_part(&mut current, is_last)?;
        self.number += 1;
        if is_last {
            self.done = true;
            self.encryptor = None;
        }
        Ok(Some(EncryptedPart { number: self.number, body: current, is_last }))
    }
}

/// Decrypts an object body (ciphertext || tag) fed in chunks of any size:
/// keeps the last 16 bytes seen back as the candidate tag. Plaintext from
/// [`update`](Self::update) is not authenticated until
/// [`finish`](Self::finish) returns `Ok`.
#[derive(Debug)]
pub struct BodyDecryptor {
    decryptor: ObjectDecryptor,
    tail: Vec<u8>,
    seen: u64,
}

impl BodyDecryptor {
    /// Decrypt with `decryptor` (from [`crate::s3::S3Crypto::decryptor`]).
    pub fn new(decryptor: ObjectDecryptor) -> Self {
        BodyDecryptor { decryptor, tail: Vec::with_capacity(TAG_LEN), seen: 0 }
    }

    /// Feed the next body bytes; returns the plaintext they release (all but
    /// the last 16 body bytes seen so far).
    pub fn update(&mut self, chunk: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.seen += chunk.len() as u64;
        let mut joined = Zeroizing::new(Vec::with_capacity(self.tail.len() + chunk.len()));
        joined.extend_from_slice(&self.tail);
        joined.extend_from_slice(chunk);
        let keep = joined.len().min(TAG_LEN);
        let split = joined.len() - keep;
        self.tail.clear();
        self.tail.extend_from_slice(&joined[split..]);
        joined.truncate(split);
        self.decryptor.update(&mut joined)?;
        Ok(joined)
    }

    /// Verify the tag (the last 16 bytes fed).
    pub fn finish(self) -> Result<()> {
        if self.tail.len() < TAG_LEN {
            return Err(Error::S3Authentication {
                reason: format!("a body of {} bytes is shorter than its 16-byte tag (truncated)", self.seen),
            });
        }
        self.decryptor.finish(&self.tail)
    }
}
