//! Encrypting and decrypting whole messages: one-shot and streaming.
//!
//! A [`Client`] holds the configuration (commitment policy, suite, frame
//! length, limits, trusted signers). It writes messages in the format of the
//! AWS Encryption SDK (version 2 for the committing suites, version 1 for the
//! legacy suites when the policy allows them) and reads both versions.
//!
//! ```
//! # fn demo(keyring: &dyn hsm_keyring::Keyring) -> hsm_keyring::Result<()> {
//! use hsm_keyring::{Client, EncryptionContext};
//! let client = Client::new();
//! let context = EncryptionContext::from_pairs([("purpose", "demo")])?;
//! let message = client.encrypt_with_keyring(keyring, b"secret", &context)?;
//! let decrypted = client.decrypt_with_keyring(keyring, &message, &context)?;
//! assert_eq!(decrypted.plaintext, b"secret");
//! # Ok(()) }
//! ```

pub(crate) mod decrypt;
mod encrypt;
pub(crate) mod keys;
mod parallel;

use std::io::{Read, Write};
use std::sync::Arc;

use crate::cmm::DefaultCmm;
use crate::error::{Error, Result};
use crate::format::HeaderLimits;
use crate::materials::{
    AlgorithmSuite, CommitmentPolicy, CryptographicMaterialsManager, EncryptedDataKey, EncryptionContext,
    SignatureCurve,
};

use crate::format::ContentType;
pub use decrypt::DecryptingReader;
pub use encrypt::EncryptingWriter;

/// Default frame length, as in the AWS SDKs.
pub const DEFAULT_FRAME_LENGTH: u32 = 4096;

/// Default largest header accepted when decrypting: 1 MiB.
pub const DEFAULT_MAX_HEADER_LEN: usize = crate::format::DEFAULT_MAX_HEADER_LEN;

/// Default largest frame (or non-framed body) the streaming decryptor buffers: 64 MiB.
pub const DEFAULT_MAX_BODY_BUFFER: usize = 64 << 20;

/// Default largest number of encrypted data keys a message may carry: 32.
///
/// Each EDK that names one of the reader's keys may cost a private-key
/// operation in a token, so a hostile message with thousands of them would
/// keep an HSM busy for seconds. Raise it with
/// [`ClientBuilder::max_encrypted_data_keys`] (or the command's
/// `--max-encrypted-data-keys`) when your messages carry more.
pub const DEFAULT_MAX_ENCRYPTED_DATA_KEYS: usize = 32;

/// What the header of a message says (returned by decrypt and by [`Client::inspect`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HeaderInfo {
    /// Message format version (1 or 2).
    pub version: u8,
    /// The suite.
    pub algorithm_suite: AlgorithmSuite,
    /// The message id (16 bytes for v1, 32 for v2).
    pub message_id: Vec<u8>,
    /// The context stored in the header (required-but-unstored pairs are not here).
    pub encryption_context: EncryptionContext,
    /// The EDKs.
    pub encrypted_data_keys: Vec<EncryptedDataKey>,
    /// Framed or not.
    pub content_type: ContentType,
    /// Frame length (0 for non-framed).
    pub frame_length: u32,
    /// Total header length in bytes, including the authentication tag.
    pub header_len: usize,
}

impl HeaderInfo {
    /// Provider ids of the EDKs, in order.
    pub fn provider_ids(&self) -> Vec<&str> {
        self.encrypted_data_keys.iter().map(|e| e.provider_id.as_str()).collect()
    }
}

/// The result of a one-shot decrypt.
#[derive(Debug)]
#[non_exhaustive]
pub struct Decrypted {
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// The parsed header.
    pub header: HeaderInfo,
}

/// Encrypt/decrypt configuration. Cheap to clone, `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Client {
    commitment_policy: CommitmentPolicy,
    algorithm_suite: Option<AlgorithmSuite>,
    frame_length: u32,
    max_encrypted_data_keys: Option<usize>,
    max_header_len: usize,
    max_body_buffer: usize,
    refuse_signed_streaming: bool,
    /// Refuse unsigned suites on decrypt (always on with trusted signers).
    require_signed: bool,
    /// Compressed public keys, if pinning is on.
    trusted_signers: Option<Arc<[Vec<u8>]>>,
    /// Threads sealing and opening frames (1: all on the calling thread).
    workers: usize,
}

/// Builder for [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    commitment_policy: CommitmentPolicy,
    algorithm_suite: Option<AlgorithmSuite>,
    frame_length: u32,
    max_encrypted_data_keys: Option<usize>,
    max_header_len: usize,
    max_body_buffer: usize,
    refuse_signed_streaming: bool,
    require_signed: bool,
    trusted_signers: Option<Vec<Vec<u8>>>,
    workers: Option<usize>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            commitment_policy: CommitmentPolicy::default(),
            algorithm_suite: None,
            frame_length: DEFAULT_FRAME_LENGTH,
            max_encrypted_data_keys: Some(DEFAULT_MAX_ENCRYPTED_DATA_KEYS),
            max_header_len: DEFAULT_MAX_HEADER_LEN,
            max_body_buffer: DEFAULT_MAX_BODY_BUFFER,
            refuse_signed_streaming: false,
            require_signed: false,
            trusted_signers: None,
            workers: None,
        }
    }
}

impl ClientBuilder {
    /// Which suites may encrypt and decrypt (default: `RequireEncryptRequireDecrypt`).
    pub fn commitment_policy(mut self, policy: CommitmentPolicy) -> Self {
        self.commitment_policy = policy;
        self
    }

    /// Encrypt with this suite instead of the policy's default (0x0578, or
    /// 0x0378 under `ForbidEncryptAllowDecrypt`). Must be allowed by the policy.
    pub fn algorithm_suite(mut self, suite: AlgorithmSuite) -> Self {
        self.algorithm_suite = Some(suite);
        self
    }

    /// Plaintext bytes per frame (default 4096; at least 1). Encryption
    /// refuses a frame length above the streaming buffer limit,
    /// [`ClientBuilder::max_body_buffer`] (64 MiB by default), so that every
    /// message written can be read as a stream by a reader with the same
    /// limits.
    pub fn frame_length(mut self, frame_length: u32) -> Self {
        self.frame_length = frame_length;
        self
    }

    /// Refuse to write or read messages with more encrypted data keys than
    /// `max` (default [`DEFAULT_MAX_ENCRYPTED_DATA_KEYS`], 32). On decrypt
    /// the limit is applied while the header is parsed, before any keyring
    /// (and so any token) is called. [`Client::inspect`] does not apply it.
    pub fn max_encrypted_data_keys(mut self, max: usize) -> Self {
        self.max_encrypted_data_keys = Some(max);
        self
    }

    /// Largest header accepted on decrypt, in bytes (default 1 MiB), so that
    /// a hostile header cannot make the reader allocate without bound. Encrypt
    /// refuses to write a larger header, which such a reader would refuse.
    pub fn max_header_len(mut self, max: usize) -> Self {
        self.max_header_len = max;
        self
    }

    /// Largest frame, or non-framed body, the streaming decryptor holds in
    /// memory (default 64 MiB). Larger messages are refused by
    /// [`Client::decrypt_stream`]; one-shot decryption is not affected.
    /// Encryption refuses a frame length above it: raise it on both sides to
    /// write and stream larger frames.
    pub fn max_body_buffer(mut self, max: usize) -> Self {
        self.max_body_buffer = max;
        self
    }

    /// Make [`Client::decrypt_stream`] refuse signed messages right after the
    /// header, so that no plaintext is ever released before its signature is
    /// verified (see [`DecryptingReader`]).
    pub fn refuse_signed_streaming(mut self, refuse: bool) -> Self {
        self.refuse_signed_streaming = refuse;
        self
    }

    /// Refuse to decrypt messages of unsigned suites (0x0478, 0x0178 and the
    /// other suites without a footer signature) with [`Error::Signature`],
    /// before any keyring is called. Any signing key is accepted; to accept
    /// only some keys, use [`ClientBuilder::trusted_signers`], which implies
    /// this.
    ///
    /// An unsigned message can be written by anyone who can wrap a data key
    /// for the reader (a holder of a public RSA escrow key in a
    /// multi-keyring, any other user of a shared AES key), so a reader that
    /// relies on signatures must refuse unsigned messages.
    pub fn require_signed(mut self, require: bool) -> Self {
        self.require_signed = require;
        self
    }

    /// Accept only messages signed by one of these keys (SEC1 public points,
    /// compressed or not, on P-384 or P-256).
    ///
    /// With a trusted set, decryption fails with [`Error::Signature`] before
    /// any keyring is called or any frame is decrypted when the message is
    /// unsigned (its suite has no signature, see
    /// [`ClientBuilder::require_signed`]) or when its
    /// `aws-crypto-public-key` is not in the set. An empty set refuses every
    /// message.
    pub fn trusted_signers(mut self, keys: Vec<Vec<u8>>) -> Self {
        self.trusted_signers = Some(keys);
        self
    }

    /// Threads that seal and open the frames of one message (default: the
    /// cores available, [`std::thread::available_parallelism`]; at least 1).
    ///
    /// Frames are independent, so batches of them (about 128 KiB of
    /// plaintext, at least one frame) are sealed or opened by the calling
    /// thread and `workers - 1` more threads, and come back in order: the
    /// message is byte for byte the one a single thread writes,
    /// and every guarantee of the readers holds (no frame is released before
    /// its tag verifies, nor after a frame that failed; the final frame waits
    /// for the signature). For signed suites the signature hash runs on a
    /// thread of its own beside the workers.
    ///
    /// With `1` everything runs on the calling thread, as it always did.
    /// One-shot bodies under 256 KiB, and streams of one batch or less, stay
    /// on the calling thread whatever the setting. Streams hold at most
    /// `2 × workers` batches in flight besides the one being filled or handed
    /// out (with the default 4 KiB frames and two workers, about 800 KiB in
    /// all); one-shot calls write straight into the output and hold no more
    /// than with one worker, apart from a list of the frames when decrypting
    /// (about 1 % of the body with 4 KiB frames).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers);
        self
    }

    /// Check the configuration and build the client.
    pub fn build(mut self) -> Result<Client> {
        if self.frame_length == 0 {
            return Err(Error::config("the frame length must be at least 1"));
        }
        if self.max_encrypted_data_keys == Some(0) {
            return Err(Error::config("the maximum number of encrypted data keys must be at least 1"));
        }
        if self.max_header_len == 0 || self.max_body_buffer == 0 {
            return Err(Error::config("size limits must be at least 1"));
        }
        if self.workers == Some(0) {
            return Err(Error::config("the number of workers must be at least 1"));
        }

        if let Some(suite) = self.algorithm_suite {
            self.commitment_policy.check_encrypt(suite)?;
        }
        let trusted_signers = match self.trusted_signers.take() {
            None => None,
            Some(keys) => {
                let mut out = Vec::with_capacity(keys.len());
                for key in keys {
                    let compressed = crate::crypto::ec_compress_point(SignatureCurve::P384, &key)
                        .or_else(|_| crate::crypto::ec_compress_point(SignatureCurve::P256, &key))
                        .map_err(|_| Error::InvalidKey {
                            reason: "a trusted signer is not a P-384 or P-256 public point".into(),
                        })?;
                    out.push(compressed);
                }
                Some(Arc::from(out))
            }
        };
        Ok(self.assemble(trusted_signers))
    }

    /// The client these settings describe, with the trusted signers already
    /// checked and compressed.
    fn assemble(self, trusted_signers: Option<Arc<[Vec<u8>]>>) -> Client {
        Client {
            commitment_policy: self.commitment_policy,
            algorithm_suite: self.algorithm_suite,
            frame_length: self.frame_length,
            max_encrypted_data_keys: self.max_encrypted_data_keys,
            max_header_len: self.max_header_len,
            max_body_buffer: self.max_body_buffer,
            refuse_signed_streaming: self.refuse_signed_streaming,
            require_signed: self.require_signed || trusted_signers.is_some(),
            trusted_signers,
            workers: self.workers.unwrap_or_else(parallel::default_workers).max(1),
        }
    }
}

impl Default for Client {
    fn default() -> Self {
        // The builder's defaults pass its checks and name no trusted signer.
        ClientBuilder::default().assemble(None)
    }
}

impl Client {
    /// A builder with the defaults.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client with the defaults: `RequireEncryptRequireDecrypt`, suite
    /// 0x0578, 4096-byte frames, at most 32 EDKs, 1 MiB header limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// The configured commitment policy.
    pub fn commitment_policy(&self) -> CommitmentPolicy {
        self.commitment_policy
    }

    /// The configured frame length.
    pub fn frame_length(&self) -> u32 {
        self.frame_length
    }

    /// Threads sealing and opening frames (see [`ClientBuilder::workers`]).
    pub fn workers(&self) -> usize {
        self.workers
    }

    pub(crate) fn header_limits(&self) -> HeaderLimits {
        HeaderLimits { max_header_len: self.max_header_len, max_encrypted_data_keys: self.max_encrypted_data_keys }
    }

    /// Encrypt `plaintext` with materials from `cmm`.
    pub fn encrypt(
        &self,
        cmm: &dyn CryptographicMaterialsManager,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        encrypt::encrypt_into(self, cmm, plaintext, context, &mut out)?;
        Ok(out)
    }

    /// Like [`Client::encrypt`], appending the message to `out`, so that a
    /// buffer can be reused across messages. On failure `out` is unchanged.
    pub fn encrypt_into(
        &self,
        cmm: &dyn CryptographicMaterialsManager,
        plaintext: &[u8],
        context: &EncryptionContext,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        encrypt::encrypt_into(self, cmm, plaintext, context, out)
    }

    /// Decrypt a whole message. Nothing is returned unless the header, every
    /// frame, and (for signed suites) the footer signature verify, and every
    /// pair of `context` is authenticated by the message.
    pub fn decrypt(
        &self,
        cmm: &dyn CryptographicMaterialsManager,
        message: &[u8],
        context: &EncryptionContext,
    ) -> Result<Decrypted> {
        let mut plaintext = Vec::new();
        let header = decrypt::decrypt_into(self, cmm, message, context, &mut plaintext)?;
        Ok(Decrypted { plaintext, header })
    }

    /// Like [`Client::decrypt`], appending the plaintext to `out`, so that a
    /// buffer can be reused across messages. Nothing is appended unless the
    /// whole message verifies: on failure `out` has its original length.
    pub fn decrypt_into(
        &self,
        cmm: &dyn CryptographicMaterialsManager,
        message: &[u8],
        context: &EncryptionContext,
        out: &mut Vec<u8>,
    ) -> Result<HeaderInfo> {
        decrypt::decrypt_into(self, cmm, message, context, out)
    }

    /// [`Client::encrypt`] with a [`DefaultCmm`] around `keyring`.
    pub fn encrypt_with_keyring(
        &self,
        keyring: &dyn crate::Keyring,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Vec<u8>> {
        self.encrypt(&DefaultCmm::new(keyring), plaintext, context)
    }

    /// [`Client::decrypt`] with a [`DefaultCmm`] around `keyring`.
    pub fn decrypt_with_keyring(
        &self,
        keyring: &dyn crate::Keyring,
        message: &[u8],
        context: &EncryptionContext,
    ) -> Result<Decrypted> {
        self.decrypt(&DefaultCmm::new(keyring), message, context)
    }

    /// Start a streaming encryption into `output`; the header is written at once.
    ///
    /// The length of the plaintext is not known here, so a CMM that needs it
    /// does without: a [`CachingCmm`](crate::cmm::CachingCmm) does not cache
    /// these materials and asks its underlying CMM every time. When the
    /// length, or a bound on it, is known, use
    /// [`Client::encrypt_stream_with_max_length`].
    ///
    /// Call [`EncryptingWriter::finish`] at the end: without it the message
    /// has no final frame and no reader accepts it.
    pub fn encrypt_stream<W: Write>(
        &self,
        cmm: &dyn CryptographicMaterialsManager,
        context: &EncryptionContext,
        output: W,
    ) -> Result<EncryptingWriter<W>> {
        EncryptingWriter::new(self, cmm, context, output, None)
    }

    /// Like [`Client::encrypt_stream`], for a plaintext of at most
    /// `max_plaintext_length` bytes (its exact length, or a bound on it).
    ///
    /// The CMM is told the bound, so a
    /// [`CachingCmm`](crate::cmm::CachingCmm) can serve and count the
    /// materials against its byte limit as for a one-shot message. Writing
    /// more than the bound fails (the limit is what the cache counted), and
    /// the message cannot be finished then.
    pub fn encrypt_stream_with_max_length<W: Write>(
        &self,
        cmm: &dyn CryptographicMaterialsManager,
        context: &EncryptionContext,
        output: W,
        max_plaintext_length: u64,
    ) -> Result<EncryptingWriter<W>> {
        EncryptingWriter::new(self, cmm, context, output, Some(max_plaintext_length))
    }

    /// Start a streaming decryption of `input`: reads and verifies the header
    /// now. See [`DecryptingReader`] for what is released when, in particular
    /// for signed suites.
    pub fn decrypt_stream<R: Read>(
        &self,
        cmm: &dyn CryptographicMaterialsManager,
        context: &EncryptionContext,
        input: R,
    ) -> Result<DecryptingReader<R>> {
        DecryptingReader::new(self, cmm, context, input)
    }

    /// Parse only the header (no key needed). Nothing in it is authenticated:
    /// use it to route a message, not to trust it.
    /// The EDK limit does not apply here (the header size limit does), so that
    /// a message refused for its EDK count can still be looked at.
    pub fn inspect<R: Read>(&self, mut input: R) -> Result<HeaderInfo> {
        let limits = HeaderLimits { max_encrypted_data_keys: None, ..self.header_limits() };
        let (header, _) = decrypt::read_header(&mut input, &limits)?;
        Ok(decrypt::header_info(header))
    }
}
