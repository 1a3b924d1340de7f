//! Rewrapping one message: a new header, the same body.

use std::io::{self, Read, Write};
use std::sync::Arc;

use super::signed;
use crate::error::{Error, Result};
use crate::format::{self, Header};
use crate::materials::{DecryptMaterialsRequest, DecryptionMaterials, EncryptionMaterials};
use crate::message::{decrypt, keys};
use crate::{Client, DataKey, FooterSigner, Keyring};

/// A new header, the materials that opened the old one, and the new EDK count.
pub(super) type Built = (Vec<u8>, DecryptionMaterials, usize);

/// Rewraps messages from one set of keyrings to another. Cheap to share
/// between threads (`Send + Sync`).
#[derive(Debug, Clone)]
pub struct Rewrapper {
    client: Client,
    from: Arc<dyn Keyring>,
    to: Arc<dyn Keyring>,
    signer: Option<Arc<dyn FooterSigner>>,
}

/// What [`Rewrapper::rewrap_stream`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rewrapped {
    /// Length of the old header.
    pub old_header_len: usize,
    /// Length of the new header.
    pub new_header_len: usize,
    /// Bytes copied unchanged after the header (body and footer).
    pub body_len: u64,
    /// How many EDKs the new header carries.
    pub edk_count: usize,
}

impl Rewrapper {
    /// Open data keys with `from`, wrap them with `to`. `to` is given the
    /// data key to wrap: a [`MultiKeyring`](crate::keyrings::MultiKeyring)
    /// there must have no generator. The client's
    /// commitment policy and header limits apply to the messages read.
    pub fn new(client: Client, from: Arc<dyn Keyring>, to: Arc<dyn Keyring>) -> Self {
        Rewrapper { client, from, to, signer: None }
    }

    /// Rewrap messages of signing suites too: their new header names this
    /// long-lived signer's public key (in place of the per-message one) and
    /// their footer is recomputed over the new header and the unchanged body,
    /// after the old footer was checked. Its curve must be the suite's.
    pub fn with_signer(mut self, signer: Arc<dyn FooterSigner>) -> Self {
        self.signer = Some(signer);
        self
    }

    /// The client whose header limits and commitment policy apply.
    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    /// The keyrings that open the data keys.
    pub fn from_keyring(&self) -> &Arc<dyn Keyring> {
        &self.from
    }

    /// The keyrings that wrap the data keys in the rewritten messages.
    pub fn to_keyring(&self) -> &Arc<dyn Keyring> {
        &self.to
    }

    /// Rewrap a whole message held in memory.
    pub fn rewrap(&self, message: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(message.len() + 512);
        self.rewrap_stream(message, &mut out)?;
        Ok(out)
    }

    /// Read a message from `input` and write its rewrapped form to `output`:
    /// the new header, then every byte after the old header, copied as is
    /// (bounded memory: a 64 KiB buffer). Nothing is written unless the old
    /// header verified and the new keyrings wrapped the data key; an error
    /// while copying the body leaves a partial output that the caller must
    /// discard (write to a temporary file and rename on success).
    pub fn rewrap_stream<R: Read, W: Write>(&self, mut input: R, output: W) -> Result<Rewrapped> {
        let (header, rest) = decrypt::read_header(&mut input, &self.client.header_limits())?;
        let built = self.build(&header)?;
        self.write_rewrapped(&header, built, &rest, input, output)
    }

    /// Write the new header of `built`, then the body after `header`: `rest`
    /// (bytes already read past the header) and the remainder of `input`.
    pub(super) fn write_rewrapped<R: Read, W: Write>(
        &self,
        header: &Header,
        built: Built,
        rest: &[u8],
        mut input: R,
        mut output: W,
    ) -> Result<Rewrapped> {
        let (new_header, materials, edk_count) = built;
        output.write_all(&new_header)?;
        let body_len = match (header.suite.signature(), &self.signer) {
            (Some(curve), Some(signer)) => {
                let old_key = materials.verification_key().ok_or_else(|| Error::Signature {
                    reason: "the materials hold no verification key for a signed suite".into(),
                })?;
                signed::copy_and_resign(header, &new_header, rest, input, &mut output, curve, old_key, &**signer)?
            }
            _ => {
                output.write_all(rest)?;
                let copied = io::copy(&mut input, &mut output)?;
                output.flush()?;
                rest.len() as u64 + copied
            }
        };
        Ok(Rewrapped { old_header_len: header.len(), new_header_len: new_header.len(), body_len, edk_count })
    }

    /// True when the `from` keyrings cannot open the message's data key but
    /// the `to` keyrings can: the message was already rewrapped. Reads only
    /// the header.
    pub fn is_already_rewrapped<R: Read>(&self, mut input: R) -> Result<bool> {
        let (header, _) = decrypt::read_header(&mut input, &self.client.header_limits())?;
        Ok(self.header_is_rewrapped(&header))
    }

    /// True when `header` opens with the `to` keyrings and not with `from`.
    pub(super) fn header_is_rewrapped(&self, header: &Header) -> bool {
        if self.open(header, &*self.from).is_ok() {
            return false;
        }
        self.open(header, &*self.to).is_ok()
    }

    /// The new header for `header` of an unsigned suite: its EDK section
    /// replaced by the `to` keyrings' EDKs of the same data key, and its tag
    /// recomputed. (A signed message needs its body: use
    /// [`Rewrapper::rewrap_stream`].)
    pub fn rewrap_header(&self, header: &Header) -> Result<Vec<u8>> {
        if header.suite.is_signing() {
            return Err(Error::config("a signed message is rewrapped with its body: use rewrap_stream"));
        }
        Ok(self.build(header)?.0)
    }

    /// The new header, the materials that opened the old one, and the new EDK count.
    pub(super) fn build(&self, header: &Header) -> Result<Built> {
        let suite = header.suite;
        let context = match (suite.is_signing(), &self.signer) {
            (false, _) => None,
            (true, Some(signer)) => Some(signed::resign_context(header, &**signer)?),
            (true, None) => {
                return Err(Error::Signature {
                    reason: format!(
                        "suite 0x{:04X} signs each message with a key of its own, which was not kept: \
                         the footer cannot be re-signed, so the message cannot be rewrapped without a \
                         long-lived signer (--signer)",
                        suite.id()
                    ),
                })
            }
        };
        let (materials, data_key) = self.open(header, &*self.from)?;
        if !materials.required_encryption_context_keys().is_empty() {
            return Err(Error::PolicyViolation {
                reason: "the message authenticates encryption context it does not store; it cannot be rewrapped".into(),
            });
        }
        let mut enc =
            EncryptionMaterials::new(suite, context.clone().unwrap_or_else(|| header.encryption_context.clone()));
        enc.set_data_key(data_key.clone())?;
        let enc = self.to.on_encrypt(enc)?;
        let edks = enc.encrypted_data_keys();
        if edks.is_empty() {
            return Err(Error::keyring(self.to.description(), "the new keyrings produced no encrypted data key"));
        }

        // Splice: the bytes before the context (or the EDK section), the new
        // context (if it changes) and EDK section, the bytes after them.
        let ctx_at = if header.version == 1 { 4 } else { 3 } + header.message_id.len();
        let start = edk_section_start(header);
        let old_len = 2 + header.encrypted_data_keys.iter().map(format::edk::encoded_len).sum::<usize>();
        let body = header.body();
        let end = start + old_len;
        if end > body.len() {
            return Err(Error::malformed("encrypted data keys", start as u64, "the section overruns the header"));
        }
        let mut out = Vec::with_capacity(body.len() + 64 + edks.iter().map(format::edk::encoded_len).sum::<usize>());
        match &context {
            Some(ctx) => {
                out.extend_from_slice(&body[..ctx_at]);
                let bytes = format::context::serialize(ctx)?;
                let len = u16::try_from(bytes.len()).map_err(|_| Error::config("encryption context too long"))?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&bytes);
            }
            None => out.extend_from_slice(&body[..start]),
        }
        format::edk::write_list(&mut out, edks)?;
        out.extend_from_slice(&body[end..]);
        let edk_count = edks.len();
        let max = self.client.header_limits().max_header_len;
        let keys = keys::derive(suite, &data_key, &header.message_id)?;
        let tag = keys::header_tag(&keys, &out)?;
        format::append_auth(&mut out, header.version, &[0; crate::crypto::IV_LEN], &tag);
        if out.len() > max {
            return Err(Error::PolicyViolation {
                reason: format!("the new header of {} bytes exceeds the maximum of {max}", out.len()),
            });
        }
        Ok((out, materials, edk_count))
    }

    /// Open the data key of `header` with `keyring`, checking the commitment
    /// and the header authentication tag.
    pub(super) fn open(&self, header: &Header, keyring: &dyn Keyring) -> Result<(DecryptionMaterials, DataKey)> {
        let suite = header.suite;
        let policy = self.client.commitment_policy();
        policy.check_decrypt(suite)?;
        let request = DecryptMaterialsRequest::new(
            suite,
            policy,
            header.encrypted_data_keys.clone(),
            header.encryption_context.clone(),
            None,
        );
        let cmm = crate::cmm::DefaultCmm::new(keyring);
        let materials = crate::CryptographicMaterialsManager::decrypt_materials(&cmm, request)?;
        let data_key = materials.data_key().cloned().ok_or_else(|| Error::config("the materials hold no data key"))?;
        let keys = keys::derive(suite, &data_key, &header.message_id)?;
        keys::verify_commitment(&keys, &header.suite_data)?;
        keys::verify_header(&keys, &header.auth_iv, header.body(), &header.auth_tag)?;
        Ok((materials, data_key))
    }
}

/// Offset of the EDK count within the header: version, (v1) type, suite id,
/// message id, then the u16-prefixed encryption context.
fn edk_section_start(header: &Header) -> usize {
    let fixed = if header.version == 1 { 4 } else { 3 };
    let at = fixed + header.message_id.len();
    let raw = header.raw();
    let ctx_len = raw.get(at..at + 2).map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
    at + 2 + ctx_len
}
