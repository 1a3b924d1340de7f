//! The content cipher of an object: key derivation and commitment (V3),
//! and the encryptor and decryptor fed chunk by chunk.

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::gcm::{Direction, GcmStream};
use super::keyring::{S3Keyring, DATA_KEY_LEN};
use super::metadata::{S3Format, S3Metadata, V3_NONCE_LEN};
use crate::crypto::{fill_random, hkdf, IV_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::materials::{DataKey, HashAlg};

/// IV of the V3 content cipher: twelve 0x01 bytes (the derived key is unique per object).
const V3_IV: [u8; IV_LEN] = [1; IV_LEN];
/// AAD of the V3 content cipher: the suite id, big-endian.
const V3_AAD: [u8; 2] = [0x00, 0x73];

/// The content key and IV of one object.
pub(crate) struct ContentKey {
    pub(crate) key: Zeroizing<[u8; 32]>,
    pub(crate) iv: [u8; IV_LEN],
    pub(crate) aad: &'static [u8],
}

/// V3: HKDF-SHA512(salt = message id, ikm = data key): the content key
/// (info 0x0073 || "DERIVEKEY", 32 bytes) and the commitment (info 0x0073
/// || "COMMITKEY", 28 bytes).
pub(crate) fn derive_v3(data_key: &DataKey, message_id: &[u8; V3_NONCE_LEN]) -> Result<(ContentKey, [u8; 28])> {
    let mut key = Zeroizing::new([0u8; 32]);
    let mut commitment = [0u8; V3_NONCE_LEN];
    hkdf(
        HashAlg::Sha512,
        Some(message_id),
        data_key.as_bytes(),
        &mut [(b"\x00\x73DERIVEKEY", &mut key[..]), (b"\x00\x73COMMITKEY", &mut commitment[..])],
    )?;
    Ok((ContentKey { key, iv: V3_IV, aad: &V3_AAD }, commitment))
}

fn key_array(data_key: &DataKey) -> Result<Zeroizing<[u8; 32]>> {
    let mut key = Zeroizing::new([0u8; 32]);
    if data_key.len() != DATA_KEY_LEN {
        return Err(Error::crypto("S3 content keys are 32 bytes"));
    }
    key.copy_from_slice(data_key.as_bytes());
    Ok(key)
}

/// Make a data key, wrap it, and derive the content key for a new object.
pub(crate) fn new_object(keyring: &S3Keyring, format: S3Format) -> Result<(S3Metadata, ContentKey)> {
    let data_key = DataKey::generate(DATA_KEY_LEN)?;
    let encrypted_data_key = keyring.wrap(&data_key, format)?;
    let mut metadata = S3Metadata {
        format,
        encrypted_data_key,
        wrap: keyring.wrap_algorithm(),
        material_description: keyring.material_description().clone(),
        kms_context: None,
        iv: Vec::new(),
        message_id: [0; V3_NONCE_LEN],
        commitment: [0; V3_NONCE_LEN],
    };
    let content = match format {
        S3Format::V3 => {
            fill_random(&mut metadata.message_id)?;
            let (content, commitment) = derive_v3(&data_key, &metadata.message_id)?;
            metadata.commitment = commitment;
            content
        }
        S3Format::V2 => {
            let mut iv = [0u8; IV_LEN];
            fill_random(&mut iv)?;
            metadata.iv = iv.to_vec();
            ContentKey { key: key_array(&data_key)?, iv, aad: &[] }
        }
        S3Format::V1 => return Err(Error::config("V1 (AES-CBC) objects cannot be written; choose V3 or V2")),
    };
    Ok((metadata, content))
}

/// Unwrap the data key of an object and check its commitment (V3).
pub(crate) fn open_object(keyring: &S3Keyring, metadata: &S3Metadata) -> Result<ContentKey> {
    let data_key = keyring.unwrap(metadata)?;
    content_key(&data_key, metadata)
}

/// The content key of an object from its opened data key (V3: after
/// checking the key commitment).
pub(crate) fn content_key(data_key: &DataKey, metadata: &S3Metadata) -> Result<ContentKey> {
    match metadata.format {
        S3Format::V3 => {
            let (content, commitment) = derive_v3(data_key, &metadata.message_id)?;
            if !bool::from(commitment.ct_eq(&metadata.commitment)) {
                return Err(Error::S3Authentication {
                    reason: "the key commitment `x-amz-d` does not match the data key and message id \
                             (`x-amz-d` or `x-amz-i` altered, or the data key is not this object's)"
                        .into(),
                });
            }
            Ok(content)
        }
        S3Format::V2 => {
            let iv: [u8; IV_LEN] = metadata.iv.as_slice().try_into().map_err(|_| Error::crypto("IV length"))?;
            Ok(ContentKey { key: key_array(data_key)?, iv, aad: &[] })
        }
        S3Format::V1 => Err(Error::config("V1 objects are not opened here")),
    }
}

/// Encrypts one object's body, chunk by chunk, in order; the 16-byte tag
/// comes at the end ([`ObjectEncryptor::finish`]). The body stored in S3 is
/// the ciphertext of every chunk followed by the tag.
///
/// For a multipart upload: create the upload with [`metadata`](Self::metadata)
/// (or its instruction file), encrypt the parts in order with
/// [`encrypt_part`](Self::encrypt_part); the last part carries the tag.
/// Memory stays bounded by the part the caller holds.
#[derive(Debug)]
pub struct ObjectEncryptor {
    metadata: S3Metadata,
    gcm: Option<GcmStream>,
}

impl ObjectEncryptor {
    pub(crate) fn new(keyring: &S3Keyring, format: S3Format) -> Result<Self> {
        let (metadata, content) = new_object(keyring, format)?;
        let gcm = GcmStream::new(Direction::Encrypt, &content.key, &content.iv, content.aad);
        Ok(ObjectEncryptor { metadata, gcm: Some(gcm) })
    }

    /// The object's encryption metadata (known before the first byte).
    pub fn metadata(&self) -> &S3Metadata {
        &self.metadata
    }

    /// Plaintext bytes encrypted so far.
    pub fn processed(&self) -> u64 {
        self.gcm.as_ref().map_or(0, GcmStream::processed)
    }

    /// Encrypt `buf` in place.
    pub fn update(&mut self, buf: &mut [u8]) -> Result<()> {
        self.gcm.as_mut().ok_or_else(|| Error::config("the object encryptor has finished"))?.update(buf)
    }

    /// Encrypt one multipart-upload part in place; for the last part the
    /// tag is appended to `part`. After the last part nothing more is accepted.
    pub fn encrypt_part(&mut self, part: &mut Vec<u8>, is_last: bool) -> Result<()> {
        self.update(part)?;
        if is_last {
            part.extend_from_slice(&self.finish_tag()?);
        }
        Ok(())
    }

    fn finish_tag(&mut self) -> Result<[u8; TAG_LEN]> {
        Ok(self.gcm.take().ok_or_else(|| Error::config("the object encryptor has finished"))?.tag())
    }

    /// The tag, to store after the last ciphertext byte.
    pub fn finish(mut self) -> Result<[u8; TAG_LEN]> {
        self.finish_tag()
    }
}

/// Decrypts one object's body chunk by chunk. Plaintext from
/// [`update`](Self::update) is NOT authenticated until
/// [`finish`](Self::finish) has verified the tag: callers that release it
/// earlier must be able to take it back. [`crate::s3::S3Crypto::decrypt`]
/// and [`crate::s3::DecryptingReader`] do that for you.
#[derive(Debug)]
pub struct ObjectDecryptor {
    gcm: GcmStream,
}

impl ObjectDecryptor {
    pub(crate) fn new(keyring: &S3Keyring, metadata: &S3Metadata) -> Result<Self> {
        let content = open_object(keyring, metadata)?;
        Ok(ObjectDecryptor { gcm: GcmStream::new(Direction::Decrypt, &content.key, &content.iv, content.aad) })
    }

    /// Decrypt `buf` (ciphertext, without the tag) in place.
    pub fn update(&mut self, buf: &mut [u8]) -> Result<()> {
        self.gcm.update(buf)
    }

    /// Verify the 16-byte `tag` that followed the ciphertext.
    pub fn finish(self, tag: &[u8]) -> Result<()> {
        if self.gcm.verify(tag) {
            Ok(())
        } else {
            Err(tag_failed())
        }
    }
}

pub(crate) fn tag_failed() -> Error {
    Error::S3Authentication {
        reason: "the AES-GCM tag of the body did not verify: the body or its tag was altered or truncated, \
                 or `x-amz-iv` was altered"
            .into(),
    }
}

/// Decrypt a legacy V1 body: AES-CBC with PKCS#5 padding under the data key.
/// Not authenticated: a bad padding is the only failure it can detect.
pub(crate) fn decrypt_v1(keyring: &S3Keyring, metadata: &S3Metadata, body: &[u8]) -> Result<Vec<u8>> {
    use cbc::cipher::block_padding::Pkcs7;
    use cbc::cipher::{BlockDecryptMut, KeyIvInit};

    let data_key = keyring.unwrap_legacy(metadata)?;
    let (key, iv) = (data_key.as_bytes(), metadata.iv.as_slice());
    let mut buf = Zeroizing::new(body.to_vec());
    let bad_iv = |_| Error::crypto("AES-CBC key or IV length");
    let out = match key.len() {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(bad_iv)?
            .decrypt_padded_mut::<Pkcs7>(&mut buf),
        24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv)
            .map_err(bad_iv)?
            .decrypt_padded_mut::<Pkcs7>(&mut buf),
        _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(bad_iv)?
            .decrypt_padded_mut::<Pkcs7>(&mut buf),
    };
    let len = out
        .map_err(|_| Error::S3Authentication {
            reason: "the legacy AES-CBC body has no valid padding: altered or truncated body, altered `x-amz-iv`, \
                     or another data key (V1 objects are not authenticated)"
                .into(),
        })?
        .len();
    buf.truncate(len);
    Ok(std::mem::take(&mut *buf))
}

#[cfg(test)]
mod tests {
    //! A known answer for V3, computed with the Python S3 Encryption Client
    //! 4.0.0 (`key_derivation.derive_keys`, then `AESGCM` with its IV and AAD).
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn v3_derivation_and_body_match_the_python_client() {
        let data_key = DataKey::new((0u8..32).collect());
        let message_id: [u8; 28] = core::array::from_fn(|i| 100 + i as u8);
        let (content, commitment) = derive_v3(&data_key, &message_id).unwrap();
        assert_eq!(content.key.to_vec(), hex("95e0b2ff3f50200a0e3015f67f680fa0e4bce4c2e63c817f1ff465eb4b974f85"));
        assert_eq!(commitment.to_vec(), hex("2d59a480d136f5982791c93a93d760ceade5011ccf465dbfc303c597"));
        let mut body = b"known answer".to_vec();
        let mut gcm = GcmStream::new(Direction::Encrypt, &content.key, &content.iv, content.aad);
        gcm.update(&mut body).unwrap();
        body.extend_from_slice(&gcm.tag());
        assert_eq!(body, hex("327fea47d3be5f19a49db5d2953f493412d9d41bede9d13b33ae484f"));
    }
}
