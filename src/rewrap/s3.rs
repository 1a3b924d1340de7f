//! Key rotation of S3 objects (Amazon S3 Encryption Client formats): the
//! data key is opened with the old [`S3Keyring`] and wrapped with the new
//! one; the body is never read. Only the metadata changes: the wrapped key
//! (`x-amz-3` / `x-amz-key-v2`), the wrapping algorithm (`x-amz-w` /
//! `x-amz-wrap-alg`) and the material description, as the new keyring
//! writes them. Format, message id, commitment, IV and content fields stay.

use crate::error::{Error, ErrorKind, Result};
use crate::s3::{S3Format, S3Keyring, S3Metadata};

/// What [`S3Rewrapper::rewrap`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum S3Rewrapped {
    /// The new metadata, to store in place of the old (same form: object
    /// user metadata or instruction file).
    Rewrapped(S3Metadata),
    /// The old key does not open the object but the new one does: nothing to do.
    AlreadyRewrapped,
}

/// Moves S3 objects from one wrapping key to another.
#[derive(Debug, Clone)]
pub struct S3Rewrapper {
    from: S3Keyring,
    to: S3Keyring,
}

impl S3Rewrapper {
    /// Open with `from`, wrap with `to`.
    pub fn new(from: S3Keyring, to: S3Keyring) -> Self {
        S3Rewrapper { from, to }
    }

    /// The new metadata of an object whose metadata is `metadata`. V3 key
    /// commitments are checked with the opened key before anything is
    /// wrapped. Errors: "not this key" when neither keyring opens it (the
    /// `from` keyring's reason), [`Error::S3Authentication`] for an altered
    /// commitment or message id, a usage error for legacy V1 objects.
    pub fn rewrap(&self, metadata: &S3Metadata) -> Result<S3Rewrapped> {
        if metadata.format == S3Format::V1 {
            return Err(Error::PolicyViolation {
                reason: "legacy V1 objects (AES-CBC) are not rewrapped: re-encrypt them as V3".into(),
            });
        }
        let data_key = match self.from.unwrap(metadata) {
            Ok(key) => key,
            Err(e) if e.kind() == ErrorKind::NotThisKey => {
                return match crate::s3::open_object(&self.to, metadata) {
                    Ok(_) => Ok(S3Rewrapped::AlreadyRewrapped),
                    Err(_) => Err(e),
                };
            }
            Err(e) => return Err(e),
        };
        crate::s3::content_key(&data_key, metadata)?;
        let mut out = metadata.clone();
        out.encrypted_data_key = self.to.wrap(&data_key, metadata.format)?;
        out.wrap = self.to.wrap_algorithm();
        out.material_description = self.to.material_description().clone();
        out.kms_context = None;
        Ok(S3Rewrapped::Rewrapped(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::S3Crypto;
    use std::collections::BTreeMap;

    fn keys() -> (S3Keyring, S3Keyring) {
        let old = S3Keyring::aes(&[1u8; 32]).unwrap();
        let new = S3Keyring::aes(&[2u8; 32])
            .unwrap()
            .with_material_description(BTreeMap::from([("k".to_owned(), "new".to_owned())]));
        (old, new)
    }

    fn rewrapped(r: S3Rewrapped) -> S3Metadata {
        match r {
            S3Rewrapped::Rewrapped(m) => m,
            other => panic!("expected a rewrap, got {other:?}"),
        }
    }

    fn round_trip(format: S3Format) {
        let (old, new) = keys();
        let (body, meta) = S3Crypto::new(old.clone()).with_format(format).unwrap().encrypt(b"payload").unwrap();
        let rw = S3Rewrapper::new(old.clone(), new.clone());
        let out = rewrapped(rw.rewrap(&meta).unwrap());
        assert_eq!(out.format(), format);
        assert_ne!(out.encrypted_data_key(), meta.encrypted_data_key());
        assert_eq!(out.material_description().get("k").map(String::as_str), Some("new"));
        let (a, b) = (meta.to_object_metadata().unwrap(), out.to_object_metadata().unwrap());
        for key in ["x-amz-c", "x-amz-d", "x-amz-i", "x-amz-iv", "x-amz-cek-alg"] {
            assert_eq!(a.get(key), b.get(key), "{key} changed");
        }
        // Through the stored form and back, with the unchanged body.
        let parsed = S3Metadata::from_object_metadata(&b).unwrap();
        assert_eq!(S3Crypto::new(new.clone()).decrypt(&parsed, &body).unwrap(), b"payload");
        let err = S3Crypto::new(old).decrypt(&parsed, &body).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotThisKey);
        // A second pass finds it done.
        assert_eq!(rw.rewrap(&parsed).unwrap(), S3Rewrapped::AlreadyRewrapped);
    }

    #[test]
    fn v3_round_trip() {
        round_trip(S3Format::V3);
    }

    #[test]
    fn v2_round_trip() {
        round_trip(S3Format::V2);
    }

    #[test]
    fn instruction_file_form() {
        for format in [S3Format::V3, S3Format::V2] {
            let (old, new) = keys();
            let (body, meta) = S3Crypto::new(old.clone()).with_format(format).unwrap().encrypt(b"x").unwrap();
            let (object, json) = meta.to_instruction_file().unwrap();
            let read = S3Metadata::from_instruction_file(&object, &json).unwrap();
            let out = rewrapped(S3Rewrapper::new(old, new.clone()).rewrap(&read).unwrap());
            let (object2, json2) = out.to_instruction_file().unwrap();
            assert_eq!(object, object2, "the object's own metadata must not change");
            assert_ne!(json, json2);
            let back = S3Metadata::from_instruction_file(&object2, &json2).unwrap();
            assert_eq!(S3Crypto::new(new).decrypt(&back, &body).unwrap(), b"x");
        }
    }

    #[test]
    fn other_key_refused() {
        let (old, new) = keys();
        let third = S3Keyring::aes(&[3u8; 32]).unwrap();
        let (_, meta) = S3Crypto::new(third).encrypt(b"x").unwrap();
        let err = S3Rewrapper::new(old, new).rewrap(&meta).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotThisKey);
    }

    #[test]
    fn tampered_metadata_refused() {
        let (old, new) = keys();
        let rw = S3Rewrapper::new(old.clone(), new);
        let (_, meta) = S3Crypto::new(old).encrypt(b"x").unwrap();
        let fields = meta.to_object_metadata().unwrap();
        // Altered commitment / message id: not authentic. Altered key: not this key.
        for (key, kind) in [
            ("x-amz-d", ErrorKind::NotAuthentic),
            ("x-amz-i", ErrorKind::NotAuthentic),
            ("x-amz-3", ErrorKind::NotThisKey),
        ] {
            let mut f = fields.clone();
            let mut bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &f[key]).unwrap();
            bytes[3] ^= 1;
            f.insert(key.into(), base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes));
            let err = rw.rewrap(&S3Metadata::from_object_metadata(&f).unwrap()).unwrap_err();
            assert_eq!(err.kind(), kind, "{key}: {err}");
        }
    }
}
