//! Token keys for legacy DynamoDB Encryption Client items: the PKCS#11 side
//! of [`crate::master_keys::LegacyUnwrapKey`] and
//! [`crate::master_keys::LegacyVerifyKey`].
//!
//! - [`Pkcs11AesWrapKey`]: `CKM_AES_KEY_WRAP` (RFC 3394) through
//!   `C_UnwrapKey`; the content key comes out as a short-lived session
//!   object that is read and destroyed at once. The key needs `CKA_UNWRAP`.
//! - [`Pkcs11HmacKey`]: `CKM_SHA256_HMAC` through `C_Verify` (a generic
//!   secret or HMAC key with `CKA_VERIFY`).
//! - [`Pkcs11LegacyRsaKey`]: `CKM_RSA_PKCS_OAEP` (SHA-256, MGF1-SHA1) through
//!   `C_Decrypt` with the private key, `CKM_SHA256_RSA_PKCS` through
//!   `C_Verify` with the public key. SoftHSM 2.6 runs OAEP with SHA-1 only,
//!   so there the unwrap is refused by the token; verification works.
//!   Kryoptic runs both (`tests/legacy_items_kryoptic.rs`).

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::session::Session;

use super::lookup::{KeyClass, KeyRef, KeyUse, ResolvedKey};
use super::token::Token;
use super::uri::Pkcs11Uri;
use crate::error::Result;
use crate::master_keys::{
    bad_signature, LegacySigningAlgorithm, LegacyUnwrapKey, LegacyVerifyKey, LegacyWrapAlgorithm,
};
use crate::materials::DataKey;

/// `C_Verify`: `Ok(false)` for a signature the token says is invalid.
fn verify_in_token(
    session: &Session,
    mechanism: &Mechanism,
    key: cryptoki::object::ObjectHandle,
    data: &[u8],
    signature: &[u8],
) -> cryptoki::error::Result<bool> {
    match session.verify(mechanism, key, data, signature) {
        Ok(()) => Ok(true),
        Err(CkError::Pkcs11(RvError::SignatureInvalid | RvError::SignatureLenRange, _)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// An AES key in a token that unwraps legacy content keys with
/// `CKM_AES_KEY_WRAP`.
#[derive(Debug, Clone)]
pub struct Pkcs11AesWrapKey {
    token: Token,
    uri: Pkcs11Uri,
    key: KeyRef,
}

impl Pkcs11AesWrapKey {
    /// The secret key named by `key_uri` on `token`, looked up now; a token
    /// without `CKM_AES_KEY_WRAP` fails here.
    pub fn new(token: Token, key_uri: &Pkcs11Uri) -> Result<Self> {
        token.require_mechanism(MechanismType::AES_KEY_WRAP)?;
        let ResolvedKey { uri, key } = token.resolve_key(key_uri, KeyUse::AesKeyring)?;
        Ok(Pkcs11AesWrapKey { token, uri, key })
    }

    /// URI of the key.
    pub fn key_uri(&self) -> &Pkcs11Uri {
        &self.uri
    }
}

impl LegacyUnwrapKey for Pkcs11AesWrapKey {
    fn wrap_algorithm(&self) -> LegacyWrapAlgorithm {
        LegacyWrapAlgorithm::AesWrap
    }

    fn unwrap_key(&self, wrapped: &[u8]) -> Result<DataKey> {
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Token(false),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
        ];
        let value = self.token.unwrap_with_key(&self.uri, &self.key, |s, h| {
            let object = s.unwrap_key(&Mechanism::AesKeyWrap, h, wrapped, &template)?;
            let read = s.get_attributes(object, &[AttributeType::Value]);
            // The session object goes whatever the read gave.
            let destroyed = s.destroy_object(object);
            let value = read?.into_iter().find_map(|a| match a {
                Attribute::Value(v) => Some(v),
                _ => None,
            });
            destroyed?;
            Ok(value)
        })?;
        value.map(DataKey::new).ok_or_else(|| {
            self.token.err_ctx(Some(&self.uri)).step(
                super::Pkcs11Operation::Call(cryptoki::context::Function::GetAttributeValue),
                "the unwrapped content key has no readable CKA_VALUE",
            )
        })
    }
}

/// An HMAC-SHA256 key in a token that verifies legacy item signatures with
/// `CKM_SHA256_HMAC`.
#[derive(Debug, Clone)]
pub struct Pkcs11HmacKey {
    token: Token,
    uri: Pkcs11Uri,
    key: KeyRef,
}

impl Pkcs11HmacKey {
    /// The secret key named by `key_uri` on `token`, looked up now; a token
    /// without `CKM_SHA256_HMAC` fails here.
    pub fn new(token: Token, key_uri: &Pkcs11Uri) -> Result<Self> {
        token.require_mechanism(MechanismType::SHA256_HMAC)?;
        let ResolvedKey { uri, key } = token.resolve_key(key_uri, KeyUse::AesKeyring)?;
        Ok(Pkcs11HmacKey { token, uri, key })
    }
}

impl LegacyVerifyKey for Pkcs11HmacKey {
    fn signing_algorithm(&self) -> LegacySigningAlgorithm {
        LegacySigningAlgorithm::HmacSha256
    }

    fn verify(&self, data: &[u8], signature: &[u8]) -> Result<()> {
        let ok = self.token.run_with_key(&self.uri, &self.key, |s, h| {
            verify_in_token(s, &Mechanism::Sha256Hmac, h, data, signature)
        })?;
        if ok {
            Ok(())
        } else {
            Err(bad_signature(LegacySigningAlgorithm::HmacSha256))
        }
    }
}

/// An RSA key pair in a token for legacy items: unwraps content keys with
/// the private key (`CKM_RSA_PKCS_OAEP`, SHA-256, MGF1-SHA1) and verifies
/// SHA256withRSA signatures with the public key (`CKM_SHA256_RSA_PKCS`).
#[derive(Debug, Clone)]
pub struct Pkcs11LegacyRsaKey {
    token: Token,
    uri: Pkcs11Uri,
    private: KeyRef,
    public: KeyRef,
}

impl Pkcs11LegacyRsaKey {
    /// The key pair named by `key_uri` on `token` (its private key, or for
    /// verification alone its public key), looked up now.
    pub fn new(token: Token, key_uri: &Pkcs11Uri) -> Result<Self> {
        let ResolvedKey { uri, key: private } = token.resolve_key(key_uri, KeyUse::RsaKeyring)?;
        let public = private.with_class(KeyClass::Public);
        Ok(Pkcs11LegacyRsaKey { token, uri, private, public })
    }
}

impl LegacyUnwrapKey for Pkcs11LegacyRsaKey {
    fn wrap_algorithm(&self) -> LegacyWrapAlgorithm {
        LegacyWrapAlgorithm::RsaOaepSha256Mgf1Sha1
    }

    fn unwrap_key(&self, wrapped: &[u8]) -> Result<DataKey> {
        let params = PkcsOaepParams::new(MechanismType::SHA256, PkcsMgfType::MGF1_SHA1, PkcsOaepSource::empty());
        let plain = self
            .token
            .unwrap_with_key(&self.uri, &self.private, |s, h| s.decrypt(&Mechanism::RsaPkcsOaep(params), h, wrapped))?;
        Ok(DataKey::new(plain))
    }
}

impl LegacyVerifyKey for Pkcs11LegacyRsaKey {
    fn signing_algorithm(&self) -> LegacySigningAlgorithm {
        LegacySigningAlgorithm::Sha256WithRsa
    }

    fn verify(&self, data: &[u8], signature: &[u8]) -> Result<()> {
        let public_uri = self.token.canonical_uri(&self.public);
        let ok = self.token.run_with_key(&public_uri, &self.public, |s, h| {
            verify_in_token(s, &Mechanism::Sha256RsaPkcs, h, data, signature)
        })?;
        if ok {
            Ok(())
        } else {
            Err(bad_signature(LegacySigningAlgorithm::Sha256WithRsa))
        }
    }
}
