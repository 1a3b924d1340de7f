//! Encrypted objects in any [`object_store`] store (feature `object-store`):
//! S3, GCS, Azure, in-memory, local files. Bodies and metadata are those of
//! the Amazon S3 Encryption Client, so either side reads what the other wrote
//! when the store is S3.
//!
//! The encryption metadata goes into the object's user metadata
//! ([`Attribute::Metadata`]) or into the instruction file `<key>.instruction`
//! ([`S3Store::with_instruction_file`]). A store that keeps no user metadata
//! (`LocalFileSystem`) can hold only V2 objects with an instruction file
//! (V3 keeps three fields on the object itself).
//!
//! Memory stays bounded: [`S3Store::put`] reads and uploads one part at a
//! time (a single `put` below the part size, a multipart upload above it),
//! [`S3Store::get_to_file`] and [`S3Store::get_to_writer`] stream the body.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use hsm_keyring::s3::{store::S3Store, S3Crypto, S3Keyring};
//! use object_store::{memory::InMemory, path::Path};
//!
//! let store = S3Store::new(Arc::new(InMemory::new()), S3Crypto::new(S3Keyring::aes(&[7u8; 32])?));
//! let key = Path::from("reports/q3.csv");
//! store.put_bytes(&key, b"a,b\n1,2\n").await?;
//! assert_eq!(store.get_bytes(&key).await?, b"a,b\n1,2\n");
//! # Ok::<(), hsm_keyring::Error>(())
//! # }).unwrap();
//! ```

mod parts;

use std::path::Path as FsPath;
use std::sync::Arc;

use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    Attribute, AttributeValue, Attributes, ObjectStore, ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use zeroize::Zeroizing;

pub use parts::{BodyDecryptor, EncryptedPart, PartEncryptor};

use super::{instruction_file_key, MetadataLocation, ObjectMetadata, S3Crypto, S3Metadata, INSTRUCTION_FILE_MARKER};
use crate::error::{Error, Result};

/// Default plaintext bytes per part of a multipart upload (8 MiB; S3 needs
/// at least 5 MiB for every part but the last).
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;

/// Default number of final plaintext bytes [`S3Store::get_to_writer`] holds
/// back until the tag verifies.
pub const DEFAULT_WRITER_HOLD_BACK: usize = 64 * 1024;

/// What [`S3Store::put`] stored.
#[derive(Debug, Clone)]
pub struct PutSummary {
    /// Plaintext bytes.
    pub plaintext_len: u64,
    /// Parts uploaded (1 for a single `put`).
    pub parts: usize,
    /// The encryption metadata written.
    pub metadata: S3Metadata,
}

/// Puts and gets encrypted objects through an [`ObjectStore`].
#[derive(Debug, Clone)]
pub struct S3Store {
    store: Arc<dyn ObjectStore>,
    crypto: S3Crypto,
    instruction_file: bool,
    part_size: usize,
    hold_back: usize,
}

fn store_error(operation: &str, key: &str, e: object_store::Error) -> Error {
    Error::Store { operation: operation.to_owned(), key: key.to_owned(), reason: e.to_string() }
}

impl S3Store {
    /// Encrypt and decrypt with `crypto` (its keyring and format) in `store`.
    pub fn new(store: Arc<dyn ObjectStore>, crypto: S3Crypto) -> Self {
        S3Store {
            store,
            crypto,
            instruction_file: false,
            part_size: DEFAULT_PART_SIZE,
            hold_back: DEFAULT_WRITER_HOLD_BACK,
        }
    }

    /// Write the metadata into the instruction file `<key>.instruction`
    /// rather than the object's user metadata (reads find it either way).
    pub fn with_instruction_file(mut self, enable: bool) -> Self {
        self.instruction_file = enable;
        self
    }

    /// Plaintext bytes per multipart-upload part (default
    /// [`DEFAULT_PART_SIZE`]); objects no larger go up in one `put`.
    pub fn with_part_size(mut self, bytes: usize) -> Result<Self> {
        if bytes == 0 {
            return Err(Error::config("the part size must be at least one byte"));
        }
        self.part_size = bytes;
        Ok(self)
    }

    /// Final plaintext bytes [`get_to_writer`](Self::get_to_writer) writes
    /// only after the tag verified (default [`DEFAULT_WRITER_HOLD_BACK`]).
    pub fn with_hold_back(mut self, bytes: usize) -> Self {
        self.hold_back = bytes;
        self
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The crypto settings.
    pub fn crypto(&self) -> &S3Crypto {
        &self.crypto
    }

    /// Encrypt everything `plaintext` yields into the object `key`: one
    /// `put` when it fits in a part, else a multipart upload whose parts
    /// are encrypted in order (memory: two parts). A failed upload is
    /// aborted. With an instruction file, it is written after the object.
    pub async fn put(&self, key: &Path, plaintext: impl AsyncRead + Unpin) -> Result<PutSummary> {
        let mut parts = PartEncryptor::new(plaintext, self.crypto.encryptor()?, self.part_size)?;
        let metadata = parts.metadata().cloned().ok_or_else(|| Error::config("no metadata"))?;
        let (object_fields, instruction) = if self.instruction_file {
            let (object, json) = metadata.to_instruction_file()?;
            (object, Some(json))
        } else {
            (metadata.to_object_metadata()?, None)
        };
        let attributes = to_attributes(&object_fields);
        let name = key.as_ref();
        let first = parts.next_part().await?.ok_or_else(|| Error::config("no first part"))?;
        let mut plaintext_len = (first.body.len() - if first.is_last { crate::crypto::TAG_LEN } else { 0 }) as u64;
        let count;
        if first.is_last {
            let opts = PutOptions { attributes, ..Default::default() };
            self.store
                .put_opts(key, PutPayload::from(first.body), opts)
                .await
                .map_err(|e| store_error("put", name, e))?;
            count = 1;
        } else {
            let opts = PutMultipartOptions { attributes, ..Default::default() };
            let mut upload = self
                .store
                .put_multipart_opts(key, opts)
                .await
                .map_err(|e| store_error("create multipart upload", name, e))?;
            let result: Result<usize> = async {
                let mut part = Some(first);
                let mut n = 0;
                while let Some(p) = part {
                    n = p.number;
                    upload
                        .put_part(PutPayload::from(p.body))
                        .await
                        .map_err(|e| store_error(&format!("upload part {n}"), name, e))?;
                    part = parts.next_part().await?;
                    if let Some(p) = &part {
                        plaintext_len += (p.body.len() - if p.is_last { crate::crypto::TAG_LEN } else { 0 }) as u64;
                    }
                }
                upload.complete().await.map_err(|e| store_error("complete multipart upload", name, e))?;
                Ok(n)
            }
            .await;
            match result {
                Ok(n) => count = n,
                Err(e) => {
                    let _ = upload.abort().await;
                    return Err(e);
                }
            }
        }
        if let Some(json) = instruction {
            self.put_instruction_file(key, json).await?;
        }
        Ok(PutSummary { plaintext_len, parts: count, metadata })
    }

    async fn put_instruction_file(&self, key: &Path, json: String) -> Result<()> {
        let instruction_key = Path::from(instruction_file_key(key.as_ref()));
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::Metadata(INSTRUCTION_FILE_MARKER.into()), AttributeValue::from(""));
        let opts = PutOptions { attributes, ..Default::default() };
        let payload = PutPayload::from(json.clone().into_bytes());
        match self.store.put_opts(&instruction_key, payload, opts).await {
            // A store without user metadata (local files) still keeps the
            // instruction file; the marker is informative only.
            Err(object_store::Error::NotImplemented { .. }) => {
                self.store
                    .put(&instruction_key, PutPayload::from(json.into_bytes()))
                    .await
                    .map_err(|e| store_error("put", instruction_key.as_ref(), e))?;
            }
            other => {
                other.map_err(|e| store_error("put", instruction_key.as_ref(), e))?;
            }
        }
        Ok(())
    }

    /// Encrypt `plaintext` into the object `key`.
    pub async fn put_bytes(&self, key: &Path, plaintext: &[u8]) -> Result<PutSummary> {
        self.put(key, plaintext).await
    }

    /// Read the encryption metadata of `key` from an object's user metadata
    /// (or its instruction file).
    async fn metadata_of(&self, key: &Path, object: &ObjectMetadata) -> Result<S3Metadata> {
        match S3Metadata::location(object) {
            MetadataLocation::ObjectMetadata => S3Metadata::from_object_metadata(object),
            MetadataLocation::InstructionFile => {
                let instruction_key = Path::from(instruction_file_key(key.as_ref()));
                let body = match self.store.get(&instruction_key).await {
                    Err(object_store::Error::NotFound { .. }) => return Err(not_encrypted(instruction_key.as_ref())),
                    other => other.map_err(|e| store_error("get", instruction_key.as_ref(), e))?,
                }
                .bytes()
                .await
                .map_err(|e| store_error("get", instruction_key.as_ref(), e))?;
                let json = std::str::from_utf8(&body).map_err(|_| Error::S3Metadata {
                    field: "instruction file".into(),
                    reason: "not UTF-8 text".into(),
                })?;
                S3Metadata::from_instruction_file(object, json)
            }
        }
    }

    /// Open `key`: its metadata, its data key, and the body stream.
    async fn open(
        &self,
        key: &Path,
    ) -> Result<(BodyDecryptor, futures::stream::BoxStream<'static, object_store::Result<bytes::Bytes>>)> {
        let result = self.store.get(key).await.map_err(|e| store_error("get", key.as_ref(), e))?;
        let object = from_attributes(&result.attributes);
        let metadata = self.metadata_of(key, &object).await?;
        let decryptor = BodyDecryptor::new(self.crypto.decryptor(&metadata)?);
        Ok((decryptor, result.into_stream()))
    }

    /// Decrypt the object `key` into memory; nothing is returned unless the
    /// tag verifies.
    pub async fn get_bytes(&self, key: &Path) -> Result<Vec<u8>> {
        let (mut decryptor, mut body) = self.open(key).await?;
        let mut plaintext = Zeroizing::new(Vec::new());
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| store_error("get", key.as_ref(), e))?;
            plaintext.extend_from_slice(&decryptor.update(&chunk)?);
        }
        decryptor.finish()?;
        Ok(std::mem::take(&mut *plaintext))
    }

    /// Decrypt the object `key` into the file `path`, streaming: written to
    /// a new temporary file beside it and renamed onto `path` only once the
    /// tag verified; on any failure the temporary file is removed and
    /// `path` is untouched. Returns the plaintext length.
    pub async fn get_to_file(&self, key: &Path, path: &FsPath) -> Result<u64> {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(FsPath::new("."));
        let name = path.file_name().ok_or_else(|| Error::config("get_to_file needs a file path"))?;
        let mut suffix = [0u8; 8];
        crate::crypto::fill_random(&mut suffix)?;
        let hex: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        let temp = dir.join(format!(".{}.{hex}.partial", name.to_string_lossy()));
        let result = async {
            let (mut decryptor, mut body) = self.open(key).await?;
            let mut file = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&temp).await?;
            let mut written = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| store_error("get", key.as_ref(), e))?;
                let plaintext = decryptor.update(&chunk)?;
                file.write_all(&plaintext).await?;
                written += plaintext.len() as u64;
            }
            decryptor.finish()?;
            file.sync_all().await?;
            drop(file);
            tokio::fs::rename(&temp, path).await?;
            Ok(written)
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        result
    }

    /// Decrypt the object `key` into `writer`, streaming, holding the last
    /// [`with_hold_back`](Self::with_hold_back) plaintext bytes back until
    /// the tag verified: an altered or truncated body makes this fail
    /// before those bytes are written (bytes written earlier were not
    /// authenticated and must be discarded; objects no longer than the
    /// hold-back write nothing before verification). Returns the plaintext
    /// length.
    pub async fn get_to_writer(&self, key: &Path, mut writer: impl AsyncWrite + Unpin) -> Result<u64> {
        let (mut decryptor, mut body) = self.open(key).await?;
        let mut held: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::new());
        let mut written = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| store_error("get", key.as_ref(), e))?;
            held.extend_from_slice(&decryptor.update(&chunk)?);
            if held.len() > self.hold_back {
                let release = held.len() - self.hold_back;
                writer.write_all(&held[..release]).await?;
                written += release as u64;
                held.drain(..release);
            }
        }
        decryptor.finish()?;
        writer.write_all(&held).await?;
        writer.flush().await?;
        Ok(written + held.len() as u64)
    }
}

/// An object without encryption metadata whose instruction file is missing.
pub(crate) fn not_encrypted(instruction_key: &str) -> Error {
    Error::S3Metadata {
        field: "instruction file".into(),
        reason: format!(
            "the object carries no encryption metadata and `{instruction_key}` does not exist: \
             the object is not encrypted, or its instruction file is missing"
        ),
    }
}

/// User metadata as object_store attributes.
pub fn to_attributes(metadata: &ObjectMetadata) -> Attributes {
    let mut attributes = Attributes::with_capacity(metadata.len());
    for (k, v) in metadata {
        attributes.insert(Attribute::Metadata(k.clone().into()), AttributeValue::from(v.clone()));
    }
    attributes
}

/// The user metadata among object_store attributes (keys lower-cased, as
/// S3 returns them).
pub fn from_attributes(attributes: &Attributes) -> ObjectMetadata {
    attributes
        .iter()
        .filter_map(|(k, v)| match k {
            Attribute::Metadata(name) => Some((name.to_ascii_lowercase(), v.to_string())),
            _ => None,
        })
        .collect()
}
