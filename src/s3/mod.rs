//! S3 client-side encryption: objects byte-compatible with the Amazon S3
//! Encryption Client (Java, Python, ...), with the wrapping key in memory or
//! in a PKCS#11 token. A library of formats only: it talks to no S3 service.
//! Bring your own client (or `object_store`), hand this module the bytes
//! and the user metadata, and store what it gives back.
//!
//! * [`S3Keyring`]: the wrapping key (`AES/GCM` or `RSA-OAEP-SHA1`, as the
//!   reference clients' raw AES and RSA keyrings) and its material description.
//! * [`S3Crypto`]: the entry point: format (V3 by default, V2 on request),
//!   the legacy-read and ranged-read opt-ins, and every way in and out:
//!   one-shot ([`S3Crypto::encrypt`], [`S3Crypto::decrypt`]), streaming
//!   ([`EncryptingReader`], [`EncryptingWriter`], [`DecryptingReader`],
//!   [`S3Crypto::decrypt_to_file`]), chunk by chunk for multipart uploads
//!   ([`ObjectEncryptor`]), and ranged reads ([`S3Crypto::decrypt_range`]).
//! * [`S3Metadata`]: the encryption metadata, to and from the object's user
//!   metadata ([`ObjectMetadata`], a `BTreeMap<String, String>`) or an
//!   instruction file (`<key>.instruction`, JSON).
//!
//! ```
//! use hsm_keyring::s3::{S3Crypto, S3Keyring, S3Metadata};
//! let crypto = S3Crypto::new(S3Keyring::aes(&[7u8; 32])?);
//! let (body, metadata) = crypto.encrypt(b"hello")?;
//! let user_metadata = metadata.to_object_metadata()?; // PutObject's Metadata
//! // ... later, from GetObject's body and Metadata:
//! let metadata = S3Metadata::from_object_metadata(&user_metadata)?;
//! assert_eq!(crypto.decrypt(&metadata, &body)?, b"hello");
//! # Ok::<(), hsm_keyring::Error>(())
//! ```
//!
//! The format, the wrapping and what is verified against which peer are in
//! `docs/s3-format.md`.

mod content;
mod gcm;
mod keyring;
mod metadata;
#[cfg(feature = "object-store")]
pub mod store;
mod stream;

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

pub(crate) use content::{content_key, open_object};
pub use content::{ObjectDecryptor, ObjectEncryptor};
pub use keyring::S3Keyring;
pub use metadata::{
    instruction_file_key, MetadataLocation, ObjectMetadata, S3Format, S3Metadata, WrapAlgorithm,
    INSTRUCTION_FILE_MARKER, INSTRUCTION_FILE_SUFFIX, V3_NONCE_LEN, V3_SUITE_ID,
};
pub use stream::{DecryptingReader, EncryptingReader, EncryptingWriter, DEFAULT_HOLD_BACK};

use crate::crypto::TAG_LEN;
use crate::error::{Error, Result};

/// Encrypts and decrypts S3 object bodies with one [`S3Keyring`].
#[derive(Debug, Clone)]
pub struct S3Crypto {
    keyring: S3Keyring,
    format: S3Format,
    legacy_reads: bool,
    ranged_reads: bool,
    hold_back: usize,
}

impl S3Crypto {
    /// Write V3 objects; read V3 and V2 objects.
    pub fn new(keyring: S3Keyring) -> Self {
        S3Crypto {
            keyring,
            format: S3Format::V3,
            legacy_reads: false,
            ranged_reads: false,
            hold_back: DEFAULT_HOLD_BACK,
        }
    }

    /// Write `format` (V3 or V2; V1 is refused).
    pub fn with_format(mut self, format: S3Format) -> Result<Self> {
        if format == S3Format::V1 {
            return Err(Error::config("V1 (AES-CBC) objects cannot be written; choose V3 or V2"));
        }
        self.format = format;
        Ok(self)
    }

    /// Allow reading legacy V1 (AES-CBC, unauthenticated) objects, as the
    /// reference clients' legacy opt-in does, with [`decrypt`](Self::decrypt)
    /// only. Their key wrappings: `AESWrap` and `AES` (ECB) with a memory
    /// AES key, `RSA` (PKCS#1 v1.5) with any RSA key. Off by default.
    pub fn with_legacy_reads(mut self, enable: bool) -> Self {
        self.legacy_reads = enable;
        self
    }

    /// Allow [`decrypt_range`](Self::decrypt_range): ranged reads decrypt
    /// with the AES-CTR equivalent of the GCM body and are NOT
    /// authenticated (the tag covers the whole object). Off by default.
    pub fn with_ranged_reads(mut self, enable: bool) -> Self {
        self.ranged_reads = enable;
        self
    }

    /// How many final plaintext bytes [`DecryptingReader`] holds back until
    /// the tag verifies (default [`DEFAULT_HOLD_BACK`]).
    pub fn with_hold_back(mut self, bytes: usize) -> Self {
        self.hold_back = bytes;
        self
    }

    /// The keyring.
    pub fn keyring(&self) -> &S3Keyring {
        &self.keyring
    }

    /// The format new objects are written in.
    pub fn format(&self) -> S3Format {
        self.format
    }

    /// Start a new object: its metadata, then its body chunk by chunk.
    pub fn encryptor(&self) -> Result<ObjectEncryptor> {
        ObjectEncryptor::new(&self.keyring, self.format)
    }

    /// Encrypt a whole body: returns ciphertext || tag and the metadata.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<(Vec<u8>, S3Metadata)> {
        let mut encryptor = self.encryptor()?;
        let mut body = Vec::with_capacity(plaintext.len() + TAG_LEN);
        body.extend_from_slice(plaintext);
        encryptor.update(&mut body)?;
        let metadata = encryptor.metadata().clone();
        body.extend_from_slice(&encryptor.finish()?);
        Ok((body, metadata))
    }

    /// A reader of the object body (ciphertext || tag) over a plaintext reader.
    pub fn encrypting_reader<R: Read>(&self, plaintext: R) -> Result<EncryptingReader<R>> {
        Ok(EncryptingReader::new(plaintext, self.encryptor()?))
    }

    /// A writer that encrypts into `body`; call [`EncryptingWriter::finish`].
    pub fn encrypting_writer<W: Write>(&self, body: W) -> Result<EncryptingWriter<W>> {
        Ok(EncryptingWriter::new(body, self.encryptor()?))
    }

    fn check_readable(&self, metadata: &S3Metadata) -> Result<()> {
        if metadata.format == S3Format::V1 && !self.legacy_reads {
            return Err(Error::PolicyViolation {
                reason: "this object is in the legacy V1 format (AES-CBC, `x-amz-key`), not authenticated; \
                         enable legacy reads to open it"
                    .into(),
            });
        }
        Ok(())
    }

    /// V1 objects decrypt in one shot only.
    fn refuse_v1(&self, metadata: &S3Metadata) -> Result<()> {
        self.check_readable(metadata)?;
        if metadata.format == S3Format::V1 {
            return Err(Error::config("legacy V1 objects are decrypted in one shot only (`decrypt`)"));
        }
        Ok(())
    }

    /// Unwrap the data key of an object (and check its commitment) and
    /// return a chunk-by-chunk decryptor.
    pub fn decryptor(&self, metadata: &S3Metadata) -> Result<ObjectDecryptor> {
        self.refuse_v1(metadata)?;
        ObjectDecryptor::new(&self.keyring, metadata)
    }

    /// Decrypt a whole body (ciphertext || tag). Nothing is returned unless
    /// the tag verifies.
    /// Legacy V1 objects (with the opt-in) decrypt here, unauthenticated.
    pub fn decrypt(&self, metadata: &S3Metadata, body: &[u8]) -> Result<Vec<u8>> {
        self.check_readable(metadata)?;
        if metadata.format == S3Format::V1 {
            return content::decrypt_v1(&self.keyring, metadata, body);
        }
        let mut decryptor = self.decryptor(metadata)?;
        let split = body.len().checked_sub(TAG_LEN).ok_or_else(|| Error::S3Authentication {
            reason: format!("a body of {} bytes is shorter than its 16-byte tag (truncated)", body.len()),
        })?;
        let mut plaintext = zeroize::Zeroizing::new(body[..split].to_vec());
        decryptor.update(&mut plaintext)?;
        decryptor.finish(&body[split..])?;
        Ok(std::mem::take(&mut *plaintext))
    }

    /// A plaintext reader over a body reader; see [`DecryptingReader`] for
    /// what it guarantees.
    pub fn decrypting_reader<R: Read>(&self, metadata: &S3Metadata, body: R) -> Result<DecryptingReader<R>> {
        Ok(DecryptingReader::new(body, self.decryptor(metadata)?, self.hold_back))
    }

    /// Decrypt a body read from `body` into the file `path`: written to a
    /// new temporary file beside it and renamed into place only once the tag
    /// verified; on any failure the temporary file is removed and `path` is
    /// untouched. Memory stays bounded. Returns the plaintext length.
    pub fn decrypt_to_file(&self, metadata: &S3Metadata, body: impl Read, path: &Path) -> Result<u64> {
        let mut decryptor = self.decrypting_reader(metadata, body)?.with_hold_back_none();
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = path.file_name().ok_or_else(|| Error::config("decrypt_to_file needs a file path"))?;
        let mut suffix = [0u8; 8];
        crate::crypto::fill_random(&mut suffix)?;
        let hex: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        let temp = dir.join(format!(".{}.{hex}.partial", name.to_string_lossy()));
        let result = (|| -> Result<u64> {
            let mut file = fs::OpenOptions::new().write(true).create_new(true).open(&temp)?;
            let written = std::io::copy(&mut decryptor, &mut file).map_err(unwrap_io)?;
            file.sync_all()?;
            drop(file);
            fs::rename(&temp, path)?;
            Ok(written)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    /// Decrypt the bytes `ciphertext` found at byte `offset` of a GCM body
    /// (V3 or V2; the bytes must not reach into the tag, which is the last
    /// 16 bytes of the object). NOT authenticated: needs
    /// [`with_ranged_reads`](Self::with_ranged_reads). The caller fetches
    /// the same byte range of the object as the plaintext range it wants.
    pub fn decrypt_range(&self, metadata: &S3Metadata, offset: u64, ciphertext: &[u8]) -> Result<Vec<u8>> {
        if !self.ranged_reads {
            return Err(Error::PolicyViolation {
                reason:
                    "ranged reads are not authenticated (AES-CTR over the GCM body); enable ranged reads to use them"
                        .into(),
            });
        }
        self.refuse_v1(metadata)?;
        let content = content::open_object(&self.keyring, metadata)?;
        let mut plaintext = ciphertext.to_vec();
        gcm::ctr_at(&content.key, &content.iv, offset)?.apply(&mut plaintext)?;
        Ok(plaintext)
    }
}

/// The crate error inside an `io::Error` from the streaming adapters, as itself.
fn unwrap_io(e: std::io::Error) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        match e.into_inner().map(|inner| inner.downcast::<Error>()) {
            Some(Ok(inner)) => *inner,
            Some(Err(other)) => Error::Io(std::io::Error::other(other)),
            None => Error::crypto("lost I/O error"),
        }
    } else {
        Error::Io(e)
    }
}
