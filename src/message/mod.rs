//! Encrypting and decrypting whole messages: one-shot and streaming.
//!
//! STUB: signatures are fixed; bodies are being implemented.
#![allow(unused_variables, missing_docs)]

use std::io::{Read, Write};

use crate::error::Result;
use crate::materials::{
    AlgorithmSuite, CommitmentPolicy, CryptographicMaterialsManager, EncryptedDataKey, EncryptionContext,
};

/// Default frame length, as in the AWS SDKs.
pub const DEFAULT_FRAME_LENGTH: u32 = 4096;

/// Body layout of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[non_exhaustive]
pub enum ContentType {
    /// Single-block body (read only).
    NonFramed,
    /// Framed body.
    Framed,
}

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
    _private: (),
}

/// Builder for [`Client`].
#[derive(Debug, Clone, Default)]
pub struct ClientBuilder {
    _private: (),
}

impl ClientBuilder {
    pub fn commitment_policy(self, policy: CommitmentPolicy) -> Self {
        todo!()
    }
    pub fn algorithm_suite(self, suite: AlgorithmSuite) -> Self {
        todo!()
    }
    pub fn frame_length(self, frame_length: u32) -> Self {
        todo!()
    }
    pub fn max_encrypted_data_keys(self, max: usize) -> Self {
        todo!()
    }
    /// Compressed public keys allowed to sign messages; others are refused.
    pub fn trusted_signers(self, keys: Vec<Vec<u8>>) -> Self {
        todo!()
    }
    pub fn build(self) -> Result<Client> {
        todo!()
    }
}

impl Default for Client {
    fn default() -> Self {
        Client { _private: () }
    }
}

impl Client {
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }
    pub fn new() -> Self {
        Self::default()
    }
    pub fn encrypt(
        &self,
        cmm: &dyn CryptographicMaterialsManager,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Vec<u8>> {
        todo!()
    }
    pub fn decrypt(
        &self,
        cmm: &dyn CryptographicMaterialsManager,
        message: &[u8],
        context: &EncryptionContext,
    ) -> Result<Decrypted> {
        todo!()
    }
    pub fn encrypt_with_keyring(
        &self,
        keyring: &dyn crate::Keyring,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Vec<u8>> {
        todo!()
    }
    pub fn decrypt_with_keyring(
        &self,
        keyring: &dyn crate::Keyring,
        message: &[u8],
        context: &EncryptionContext,
    ) -> Result<Decrypted> {
        todo!()
    }
    pub fn encrypt_stream<W: Write>(
        &self,
        cmm: &dyn CryptographicMaterialsManager,
        context: &EncryptionContext,
        output: W,
    ) -> Result<EncryptingWriter<W>> {
        todo!()
    }
    pub fn decrypt_stream<R: Read>(
        &self,
        cmm: &dyn CryptographicMaterialsManager,
        context: &EncryptionContext,
        input: R,
    ) -> Result<DecryptingReader<R>> {
        todo!()
    }
    /// Parse only the header (no key needed).
    pub fn inspect<R: Read>(&self, input: R) -> Result<HeaderInfo> {
        todo!()
    }
}

/// Streaming encryptor; call [`EncryptingWriter::finish`] to write the final frame and footer.
pub struct EncryptingWriter<W: Write> {
    inner: W,
}

impl<W: Write> EncryptingWriter<W> {
    pub fn finish(self) -> Result<W> {
        todo!()
    }
}

impl<W: Write> Write for EncryptingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        todo!()
    }
    fn flush(&mut self) -> std::io::Result<()> {
        todo!()
    }
}

/// Streaming decryptor: yields only authenticated frames.
pub struct DecryptingReader<R: Read> {
    inner: R,
}

impl<R: Read> DecryptingReader<R> {
    pub fn header(&self) -> &HeaderInfo {
        todo!()
    }
}

impl<R: Read> Read for DecryptingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        todo!()
    }
}
