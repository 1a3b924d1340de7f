//! Reading messages. This file opens a parsed header: policy and limits,
//! trusted-signer checks, materials, key derivation, commitment and header
//! authentication, giving the [`FrameOpener`] that authenticates and
//! decrypts the body records and checks the footer. One-shot decryption is
//! in `decrypt/oneshot.rs`, the streaming reader in `decrypt/stream.rs` and
//! its input buffering (header reading included) in `decrypt/input.rs`.

mod input;
mod oneshot;
mod stream;

/// A stream that hands out at most `step` bytes per read (for tests of short reads).
#[cfg(test)]
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

#[cfg(test)]
impl std::io::Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = out.len().min(self.step).min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

pub(crate) use input::read_header;
pub(crate) use oneshot::decrypt_into;
pub use stream::DecryptingReader;

use base64::Engine as _;

use std::sync::Arc;

use super::keys;
use super::{Client, HeaderInfo};
use crate::crypto::{self, AeadKey, SignatureHasher, IV_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::format::body::{self, BodyKind};
use crate::format::Header;
use crate::materials::context::PUBLIC_KEY_FIELD;
use crate::materials::{CryptographicMaterialsManager, DecryptMaterialsRequest, EncryptionContext, SignatureCurve};

/// Opens the body records of one message whose header verified.
pub(crate) struct FrameOpener {
    /// Shared with the workers of parallel frames.
    aead: Arc<AeadKey>,
    message_id: Vec<u8>,
    frame_length: u32,
    /// Sequence number of the next frame.
    next_seq: u32,
    aad: Vec<u8>,
    verifier: Option<Verifier>,
}

struct Verifier {
    hasher: SignatureHasher,
    curve: SignatureCurve,
    key: Vec<u8>,
}

impl FrameOpener {
    fn hash(&mut self, bytes: &[u8]) {
        if let Some(v) = &mut self.verifier {
            v.hasher.update(bytes);
        }
    }

    /// Set `self.aad` for a record and return its IV.
    fn frame_aad_and_iv(&mut self, kind: BodyKind, seq: u32, len: usize) -> [u8; IV_LEN] {
        body::body_aad(&mut self.aad, &self.message_id, kind, seq, len as u64);
        body::frame_iv(seq)
    }

    /// Authenticate and decrypt one record in place. On failure the buffer
    /// holds garbage and must not be released.
    fn open(&mut self, kind: BodyKind, seq: u32, content: &mut [u8], tag: &[u8; TAG_LEN]) -> Result<()> {
        let iv = self.frame_aad_and_iv(kind, seq, content.len());
        self.aead.open_in_place(&iv, &self.aad, content, tag).map_err(|()| Error::FrameAuthentication { sequence: seq })
    }

    /// Authenticate `ciphertext` and write its plaintext to `out` (same
    /// length). On failure `out` is zeroed.
    fn open_to(
        &mut self,
        kind: BodyKind,
        seq: u32,
        ciphertext: &[u8],
        tag: &[u8; TAG_LEN],
        out: &mut [u8],
    ) -> Result<()> {
        let iv = self.frame_aad_and_iv(kind, seq, ciphertext.len());
        self.aead
            .open_to(&iv, &self.aad, ciphertext, tag, out)
            .map_err(|()| Error::FrameAuthentication { sequence: seq })
    }

    /// Authenticate `ciphertext` and append its plaintext to `out`. On
    /// failure `out` keeps its length.
    fn open_append(
        &mut self,
        kind: BodyKind,
        seq: u32,
        ciphertext: &[u8],
        tag: &[u8; TAG_LEN],
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let iv = self.frame_aad_and_iv(kind, seq, ciphertext.len());
        self.aead
            .open_append(&iv, &self.aad, ciphertext, tag, out)
            .map_err(|()| Error::FrameAuthentication { sequence: seq })
    }

    /// After a regular frame: the sequence number of the next one.
    fn advance(&mut self, at: u64) -> Result<()> {
        // `checked_add` fails exactly past u32::MAX = MAX_FRAMES.
        self.next_seq = self.next_seq.checked_add(1).ok_or_else(|| {
            Error::malformed("sequence number", at, "more than 2^32 - 1 frames without a final frame")
        })?;
        Ok(())
    }

    fn is_signed(&self) -> bool {
        self.verifier.is_some()
    }

    /// Verify the footer signature over everything hashed so far.
    fn verify_footer(&mut self, signature: &[u8]) -> Result<()> {
        match self.verifier.take() {
            Some(v) => {
                let digest = v.hasher.finalize();
                crypto::ecdsa_verify_digest(v.curve, &v.key, &digest, signature)
            }
            None => Ok(()),
        }
    }
}

pub(crate) fn header_info(h: Header) -> HeaderInfo {
    HeaderInfo {
        version: h.version,
        algorithm_suite: h.suite,
        header_len: h.len(),
        message_id: h.message_id,
        encryption_context: h.encryption_context,
        encrypted_data_keys: h.encrypted_data_keys,
        content_type: h.content_type,
        frame_length: h.frame_length,
    }
}

fn untrusted() -> Error {
    Error::Signature { reason: "the message was signed by a key that is not among the trusted signers".into() }
}

/// Refuse a verification key outside the trusted set (if one is configured).
fn check_trusted(client: &Client, curve: SignatureCurve, key: &[u8]) -> Result<()> {
    let Some(trusted) = &client.trusted_signers else { return Ok(()) };
    let compressed = crypto::ec_compress_point(curve, key).map_err(|_| Error::Signature {
        reason: format!("the message's verification key is not a valid {curve:?} point"),
    })?;
    if trusted.contains(&compressed) {
        Ok(())
    } else {
        Err(untrusted())
    }
}

/// Everything between a parsed header and its first frame: policy, limits,
/// materials, key derivation, commitment, header authentication, and the
/// caller's context.
pub(crate) fn open_header(
    client: &Client,
    cmm: &dyn CryptographicMaterialsManager,
    header: &Header,
    context: &EncryptionContext,
) -> Result<FrameOpener> {
    let suite = header.suite;
    client.commitment_policy.check_decrypt(suite)?;
    if let Some(max) = client.max_encrypted_data_keys {
        let count = header.encrypted_data_keys.len();
        if count > max {
            return Err(Error::TooManyEncryptedDataKeys { count, max });
        }
    }
    // Refuse an unsigned message, or an untrusted signer, before any keyring
    // is asked for the data key.
    if client.require_signed && suite.signature().is_none() {
        return Err(Error::Signature {
            reason: format!(
                "the message is not signed (suite 0x{:04X}), but only signed messages{} are accepted",
                suite.id(),
                if client.trusted_signers.is_some() { " from the trusted signers" } else { "" }
            ),
        });
    }
    if let (Some(curve), Some(_)) = (suite.signature(), &client.trusted_signers) {
        let encoded = header.encryption_context.get(PUBLIC_KEY_FIELD).ok_or_else(|| Error::Signature {
            reason: format!("the message has no `{PUBLIC_KEY_FIELD}` in its encryption context"),
        })?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| Error::Signature { reason: format!("`{PUBLIC_KEY_FIELD}` is not valid base64") })?;
        check_trusted(client, curve, &key)?;
    }

    let request = DecryptMaterialsRequest::new(
        suite,
        client.commitment_policy,
        header.encrypted_data_keys.clone(),
        header.encryption_context.clone(),
        Some(context.clone()),
    );
    let materials = cmm.decrypt_materials(request)?;
    if materials.algorithm_suite() != suite {
        return Err(Error::PolicyViolation {
            reason: format!(
                "the materials use suite 0x{:04X} but the message uses 0x{:04X}",
                materials.algorithm_suite().id(),
                suite.id()
            ),
        });
    }
    client.commitment_policy.check_decrypt(materials.algorithm_suite())?;
    let data_key = materials.data_key().ok_or_else(|| Error::config("the materials hold no data key"))?;

    let keys = keys::derive(suite, data_key, &header.message_id)?;
    keys::verify_commitment(&keys, &header.suite_data)?;

    // Usually nothing is required-but-not-stored: no copy, nothing to serialize.
    let required_keys = materials.required_encryption_context_keys();
    let required = if required_keys.is_empty() {
        Vec::new()
    } else {
        materials.encryption_context().subset(required_keys.iter().map(String::as_str)).serialize()?
    };
    let mut scratch = Vec::new();
    let aad = keys::header_aad(header.body(), &required, &mut scratch);
    keys::verify_header(&keys, &header.auth_iv, aad, &header.auth_tag)?;

    // Every pair the caller named must be in the stored or the required context.
    for (k, v) in context.iter() {
        let stored = header.encryption_context.get(k) == Some(v);
        let required = materials.required_encryption_context_keys().iter().any(|r| r == k)
            && materials.encryption_context().get(k) == Some(v);
        if !stored && !required {
            return Err(Error::EncryptionContextMismatch {
                reason: match header.encryption_context.get(k) {
                    Some(_) => format!("the message has a different value for `{k}`"),
                    None => format!("the message does not authenticate `{k}`"),
                },
            });
        }
    }

    let verifier = match suite.signature() {
        Some(curve) => {
            let key = materials.verification_key().map(<[u8]>::to_vec).ok_or_else(|| Error::Signature {
                reason: "the materials hold no verification key for a signed suite".into(),
            })?;
            check_trusted(client, curve, &key)?;
            let mut hasher = SignatureHasher::new(curve);
            hasher.update(header.raw());
            Some(Verifier { hasher, curve, key })
        }
        None => None,
    };
    Ok(FrameOpener {
        aead: Arc::new(keys.aead),
        message_id: header.message_id.clone(),
        frame_length: header.frame_length,
        next_seq: 1,
        aad: Vec::with_capacity(96),
        verifier,
    })
}

fn trailing(at: u64) -> Error {
    Error::malformed("end of message", at, "unexpected bytes after the end of the message")
}
