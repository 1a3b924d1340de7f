//! A keyring that wraps data keys with RSA under a key pair in a token.

use super::lookup::{KeyClass, KeyUse, ResolvedKey};
use super::master::TokenRsaKey;
use super::token::Token;
use super::uri::Pkcs11Uri;
use super::DEFAULT_NAMESPACE;
use crate::crypto::RsaPadding;
use crate::edk::{EdkName, EsdkRawRsa};
use crate::error::Result;
use crate::keyrings::adapter;
use crate::materials::{DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring};

/// Where [`Pkcs11RsaKeyring`] wraps data keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RsaWrapMode {
    /// `C_Encrypt` with the public key object in the token.
    #[default]
    Token,
    /// In this process, with the public key read from the token once
    /// (`CKA_MODULUS`, `CKA_PUBLIC_EXPONENT`). Lets a token that only
    /// unwraps with some paddings still be used for wrapping with any of them.
    InProcess,
}

/// A keyring whose key pair lives in a PKCS#11 token: data keys are
/// unwrapped with the private key (`C_Decrypt`) and wrapped with the public
/// key, in the token or in process ([`RsaWrapMode`]).
///
/// Paddings: OAEP with SHA-1/256/384/512 and MGF1 of the same hash, empty
/// label, or PKCS#1 v1.5 ([`RsaPadding`]). The encrypted data key has the raw
/// RSA keyring layout: provider id = namespace, provider info = key name
/// (default: the object label), ciphertext = the RSA output.
///
/// Tokens differ in the OAEP hashes they accept: SoftHSM 2.6 unwraps only
/// OAEP with SHA-1 and refuses SHA-256 and above (`CKR_ARGUMENTS_BAD` /
/// `CKR_MECHANISM_PARAM_INVALID`); unwrapping OAEP-SHA-256 needs a token
/// that supports it.
#[derive(Debug, Clone)]
pub struct Pkcs11RsaKeyring {
    layout: EsdkRawRsa<TokenRsaKey>,
}

impl Pkcs11RsaKeyring {
    /// The keyring for the key pair named by `key_uri` (object label and/or
    /// id; `type` may be `private`, `public` or absent). The private key is
    /// looked up now if present, else the public key.
    pub fn new(token: Token, key_uri: &Pkcs11Uri, padding: RsaPadding) -> Result<Self> {
        // The private key, or for an encrypt-only deployment the public half alone.
        let ResolvedKey { uri, key: private } = token.resolve_key(key_uri, KeyUse::RsaKeyring)?;
        let public = private.with_class(KeyClass::Public);
        let name = EdkName::new(DEFAULT_NAMESPACE.to_owned(), private.edk_key_name(), 0)?;
        let key = TokenRsaKey { token, uri, private, public, wrap_mode: RsaWrapMode::default(), public_key: None };
        Ok(Pkcs11RsaKeyring { layout: EsdkRawRsa { name, padding, key } })
    }

    /// The token key pair itself, for the layouts of other formats (S3 objects).
    pub(crate) fn master_key(&self) -> &TokenRsaKey {
        &self.layout.key
    }

    /// Open the token named by `key_uri` and use the key pair it names.
    pub fn open(key_uri: &Pkcs11Uri, padding: RsaPadding) -> Result<Self> {
        Self::new(Token::open(key_uri)?, key_uri, padding)
    }

    /// Choose where to wrap; [`RsaWrapMode::InProcess`] reads the public key now.
    pub fn with_wrap_mode(mut self, mode: RsaWrapMode) -> Result<Self> {
        let key = &mut self.layout.key;
        key.public_key = match mode {
            RsaWrapMode::Token => None,
            RsaWrapMode::InProcess => Some(key.token.rsa_public(&key.public_uri())?),
        };
        key.wrap_mode = mode;
        Ok(self)
    }

    /// Use `namespace` as the provider id (`aws-kms`, empty and over-long ones are refused).
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Result<Self> {
        self.layout.name.set_namespace(namespace.into()).map(|()| self)
    }

    /// Use `name` as the key name (the provider info).
    pub fn with_key_name(mut self, name: impl Into<String>) -> Result<Self> {
        self.layout.name.set_key_name(name.into()).map(|()| self)
    }

    /// The provider id written in EDKs.
    pub fn namespace(&self) -> &str {
        &self.layout.name.namespace
    }

    /// The key name written in EDKs.
    pub fn key_name(&self) -> &str {
        &self.layout.name.key_name
    }

    /// URI of the private key.
    pub fn key_uri(&self) -> &Pkcs11Uri {
        &self.layout.key.uri
    }

    /// The padding.
    pub fn padding(&self) -> RsaPadding {
        self.layout.padding
    }
}

impl Keyring for Pkcs11RsaKeyring {
    fn on_encrypt(&self, materials: EncryptionMaterials) -> Result<EncryptionMaterials> {
        adapter::on_encrypt(&self.layout, || self.description(), materials)
    }

    fn on_decrypt(&self, materials: DecryptionMaterials, edks: &[EncryptedDataKey]) -> Result<DecryptionMaterials> {
        adapter::on_decrypt(&self.layout, || self.description(), materials, edks)
    }

    fn description(&self) -> String {
        format!("PKCS#11 RSA keyring {} ({})", self.layout.name, self.layout.key.uri.to_path_string())
    }
}
