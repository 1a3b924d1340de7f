//! The default CMM.

use std::sync::Arc;

use base64::Engine as _;

use crate::crypto::SoftwareSigner;
use crate::error::{Error, Result};
use crate::materials::context::PUBLIC_KEY_FIELD;
use crate::materials::{
    CryptographicMaterialsManager, DecryptMaterialsRequest, DecryptionMaterials, EncryptionMaterials,
    EncryptionMaterialsRequest, FooterSigner, Keyring,
};

/// The default CMM: asks one keyring for the data key, makes the footer
/// signing key (a fresh software key, or a configured long-lived signer).
///
/// On encrypt with a signed suite it adds the base64 of the compressed
/// public key to the context under `aws-crypto-public-key`. On decrypt it
/// checks the caller's reproduced context against the stored one (a key in
/// both must have the same value) and adds the reproduced pairs the message
/// does not store, as required (authenticated-only) pairs.
#[derive(Debug, Clone)]
pub struct DefaultCmm<K = Arc<dyn Keyring>> {
    keyring: K,
    signer: Option<Arc<dyn FooterSigner>>,
}

impl<K: Keyring> DefaultCmm<K> {
    /// A CMM around `keyring`.
    pub fn new(keyring: K) -> Self {
        DefaultCmm { keyring, signer: None }
    }

    /// Sign signed-suite messages with this long-lived key instead of a fresh one.
    /// Its curve must match the suite's, or encryption fails.
    pub fn with_signer(mut self, signer: Arc<dyn FooterSigner>) -> Self {
        self.signer = Some(signer);
        self
    }

    /// The keyring.
    pub fn keyring(&self) -> &K {
        &self.keyring
    }
}

impl<K: Keyring> CryptographicMaterialsManager for DefaultCmm<K> {
    fn get_encryption_materials(&self, request: EncryptionMaterialsRequest) -> Result<EncryptionMaterials> {
        if request.encryption_context.contains_key(PUBLIC_KEY_FIELD) {
            return Err(Error::InvalidEncryptionContext {
                reason: format!("`{PUBLIC_KEY_FIELD}` is reserved for the signing key"),
            });
        }
        let suite = request.algorithm_suite.unwrap_or_else(|| request.commitment_policy.default_suite());
        request.commitment_policy.check_encrypt(suite)?;

        let mut context = request.encryption_context;
        let signer: Option<Arc<dyn FooterSigner>> = match suite.signature() {
            None => None,
            Some(curve) => {
                let signer = match &self.signer {
                    Some(s) if s.curve() == curve => Arc::clone(s),
                    Some(s) => {
                        return Err(Error::config(format!(
                            "the configured signer is on {:?} but suite 0x{:04X} signs with {curve:?}",
                            s.curve(),
                            suite.id()
                        )))
                    }
                    None => Arc::new(SoftwareSigner::generate(curve)),
                };
                let public = signer.public_key();
                if public.len() != curve.compressed_point_len() {
                    return Err(Error::config("the signer's public key is not a compressed point"));
                }
                context.insert_reserved(PUBLIC_KEY_FIELD, base64::engine::general_purpose::STANDARD.encode(&public));
                Some(signer)
            }
        };
        let mut materials = EncryptionMaterials::new(suite, context);
        if let Some(signer) = signer {
            materials.set_signing_key(signer)?;
        }
        let materials = self.keyring.on_encrypt(materials)?;
        if materials.algorithm_suite() != suite {
            return Err(Error::keyring(self.keyring.description(), "the keyring changed the algorithm suite"));
        }
        if materials.data_key().is_none() {
            return Err(Error::keyring(self.keyring.description(), "the keyring produced no data key"));
        }
        if materials.encrypted_data_keys().is_empty() {
            return Err(Error::keyring(self.keyring.description(), "the keyring produced no encrypted data key"));
        }
        Ok(materials)
    }

    fn decrypt_materials(&self, request: DecryptMaterialsRequest) -> Result<DecryptionMaterials> {
        let suite = request.algorithm_suite;
        request.commitment_policy.check_decrypt(suite)?;

        let mut context = request.encryption_context;
        let mut required = Vec::new();
        if let Some(reproduced) = &request.reproduced_encryption_context {
            for (k, v) in reproduced.iter() {
                match context.get(k) {
                    Some(stored) if stored == v => {}
                    Some(_) => {
                        return Err(Error::EncryptionContextMismatch {
                            reason: format!("the message has a different value for `{k}`"),
                        })
                    }
                    None => required.push((k.to_owned(), v.to_owned())),
                }
            }
        }
        for (k, v) in required.iter() {
            context.insert_reserved(k, v.clone());
        }

        let verification_key = match (suite.signature(), context.get(PUBLIC_KEY_FIELD)) {
            (Some(curve), Some(encoded)) => {
                let key = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|_| Error::Signature { reason: format!("`{PUBLIC_KEY_FIELD}` is not valid base64") })?;
                if key.len() != curve.compressed_point_len() {
                    return Err(Error::Signature {
                        reason: format!("`{PUBLIC_KEY_FIELD}` is not a compressed {curve:?} point"),
                    });
                }
                Some(key)
            }
            (Some(_), None) => {
                return Err(Error::Signature {
                    reason: format!("signed suite 0x{:04X} but no `{PUBLIC_KEY_FIELD}` in the context", suite.id()),
                })
            }
            (None, Some(_)) => {
                return Err(Error::Signature {
                    reason: format!("unsigned suite 0x{:04X} with a `{PUBLIC_KEY_FIELD}` in the context", suite.id()),
                })
            }
            (None, None) => None,
        };

        let mut materials = DecryptionMaterials::new(suite, context);
        materials.set_required_encryption_context_keys(required.into_iter().map(|(k, _)| k).collect());
        materials.set_verification_key(verification_key);
        let materials = self.keyring.on_decrypt(materials, &request.encrypted_data_keys)?;
        if materials.data_key().is_none() {
            return Err(Error::keyring(self.keyring.description(), "the keyring returned no data key"));
        }
        Ok(materials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::materials::{AlgorithmSuite, CommitmentPolicy, EncryptedDataKey, EncryptionContext};

    /// A keyring that must not be reached.
    #[derive(Debug)]
    struct Unreachable;

    impl Keyring for Unreachable {
        fn on_encrypt(&self, _: EncryptionMaterials) -> Result<EncryptionMaterials> {
            Err(Error::config("keyring reached"))
        }
        fn on_decrypt(&self, _: DecryptionMaterials, _: &[EncryptedDataKey]) -> Result<DecryptionMaterials> {
            Err(Error::config("keyring reached"))
        }
        fn description(&self) -> String {
            "unreachable".into()
        }
    }

    fn ctx_with_public_key(value: &str) -> EncryptionContext {
        let mut ctx = EncryptionContext::from_pairs([("a", "1")]).unwrap();
        ctx.insert_reserved(PUBLIC_KEY_FIELD, value.to_owned());
        ctx
    }

    fn request(
        suite: AlgorithmSuite,
        ctx: EncryptionContext,
        reproduced: EncryptionContext,
    ) -> DecryptMaterialsRequest {
        DecryptMaterialsRequest::new(
            suite,
            CommitmentPolicy::RequireEncryptAllowDecrypt,
            Vec::new(),
            ctx,
            Some(reproduced),
        )
    }

    #[test]
    fn signature_key_presence_must_match_the_suite_before_the_keyring_is_called() {
        let cmm = DefaultCmm::new(Unreachable);
        let none = EncryptionContext::new();
        // Unsigned suite carrying a verification key: a stripped signature.
        let key = base64::engine::general_purpose::STANDARD.encode([2u8; 49]);
        let req = request(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, ctx_with_public_key(&key), none.clone());
        assert!(matches!(cmm.decrypt_materials(req), Err(Error::Signature { .. })));
        // Signed suite without one.
        let ctx = EncryptionContext::from_pairs([("a", "1")]).unwrap();
        let req = request(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384, ctx, none.clone());
        assert!(matches!(cmm.decrypt_materials(req), Err(Error::Signature { .. })));
        // Not base64, or not a compressed point.
        for bad in ["***", "AAAA"] {
            let req =
                request(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384, ctx_with_public_key(bad), none.clone());
            assert!(matches!(cmm.decrypt_materials(req), Err(Error::Signature { .. })), "{bad}");
        }
        // A conflicting reproduced pair.
        let reproduced = EncryptionContext::from_pairs([("a", "2")]).unwrap();
        let req = request(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384, ctx_with_public_key(&key), reproduced);
        assert!(matches!(cmm.decrypt_materials(req), Err(Error::EncryptionContextMismatch { .. })));
        // Policy.
        let mut req = request(AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha256, EncryptionContext::new(), none);
        req.commitment_policy = CommitmentPolicy::RequireEncryptRequireDecrypt;
        assert!(matches!(cmm.decrypt_materials(req), Err(Error::PolicyViolation { .. })));
    }

    #[test]
    fn encrypt_adds_the_public_key_and_refuses_the_reserved_key() {
        #[derive(Debug)]
        struct Generate;
        impl Keyring for Generate {
            fn on_encrypt(&self, mut m: EncryptionMaterials) -> Result<EncryptionMaterials> {
                m.set_data_key(crate::DataKey::new(vec![1; m.algorithm_suite().key_len()]))?;
                m.add_encrypted_data_key(EncryptedDataKey {
                    provider_id: "p".into(),
                    provider_info: vec![],
                    ciphertext: vec![],
                })?;
                Ok(m)
            }
            fn on_decrypt(&self, _: DecryptionMaterials, _: &[EncryptedDataKey]) -> Result<DecryptionMaterials> {
                Err(Error::config("unused"))
            }
            fn description(&self) -> String {
                "generate".into()
            }
        }
        let cmm = DefaultCmm::new(Generate);
        let req = EncryptionMaterialsRequest::new(EncryptionContext::new(), CommitmentPolicy::default());
        let m = cmm.get_encryption_materials(req).unwrap();
        assert_eq!(m.algorithm_suite(), AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384);
        let encoded = m.encryption_context().get(PUBLIC_KEY_FIELD).unwrap();
        assert_eq!(encoded.len(), 68);
        assert!(encoded.ends_with("=="));
        let key = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
        assert_eq!(key, m.signing_key().unwrap().public_key());

        let mut req = EncryptionMaterialsRequest::new(EncryptionContext::new(), CommitmentPolicy::default());
        req.algorithm_suite = Some(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey);
        let m = cmm.get_encryption_materials(req).unwrap();
        assert!(m.signing_key().is_none() && m.encryption_context().is_empty());

        let req = EncryptionMaterialsRequest::new(ctx_with_public_key("x"), CommitmentPolicy::default());
        assert!(matches!(cmm.get_encryption_materials(req), Err(Error::InvalidEncryptionContext { .. })));
        let mut req = EncryptionMaterialsRequest::new(EncryptionContext::new(), CommitmentPolicy::default());
        req.algorithm_suite = Some(AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha256);
        assert!(matches!(cmm.get_encryption_materials(req), Err(Error::PolicyViolation { .. })));
    }
}
