//! A keyring that wraps data keys with RSA under a key pair in a token.

use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};

use super::token::{KeyClass, KeyRef, Token};
use super::uri::{ObjectType, Pkcs11Uri};
use super::EdkName;
use crate::crypto::{RsaPadding, RsaPublicKey};
use crate::error::{Error, Result};
use crate::materials::{DataKey, DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring};

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
    token: Token,
    key_uri: Pkcs11Uri,
    private: KeyRef,
    public: KeyRef,
    padding: RsaPadding,
    name: EdkName,
    wrap_mode: RsaWrapMode,
    public_key: Option<RsaPublicKey>,
}

impl Pkcs11RsaKeyring {
    /// The keyring for the key pair named by `key_uri` (object label and/or
    /// id; `type` may be `private`, `public` or absent). The private key is
    /// looked up now if present, else the public key.
    pub fn new(token: Token, key_uri: &Pkcs11Uri, padding: RsaPadding) -> Result<Self> {
        token.check_same_token(key_uri)?;
        if let Some(t) = key_uri.object_type.filter(|t| !matches!(t, ObjectType::Private | ObjectType::Public)) {
            return Err(Error::config(format!(
                "an RSA keyring needs a key pair, but {} names type={}",
                key_uri.to_path_string(),
                t.as_str()
            )));
        }
        let private = KeyRef::from_uri(key_uri, KeyClass::Private)?;
        let public = KeyRef { class: KeyClass::Public, ..private.clone() };
        let key_uri = token.key_uri(private.label.as_deref(), private.id.as_deref(), Some(ObjectType::Private));
        if token.find_key(&key_uri, &private).is_err() {
            // An encrypt-only deployment may hold just the public half.
            let public_uri = token.key_uri(public.label.as_deref(), public.id.as_deref(), Some(ObjectType::Public));
            if token.find_key(&public_uri, &public).is_err() {
                token.find_key(&key_uri, &private)?;
            }
        }
        let name = EdkName::for_key(&private, 0);
        Ok(Pkcs11RsaKeyring {
            token,
            key_uri,
            private,
            public,
            padding,
            name,
            wrap_mode: RsaWrapMode::default(),
            public_key: None,
        })
    }

    /// Open the token named by `key_uri` and use the key pair it names.
    pub fn open(key_uri: &Pkcs11Uri, padding: RsaPadding) -> Result<Self> {
        Self::new(Token::open(key_uri)?, key_uri, padding)
    }

    /// Choose where to wrap; [`RsaWrapMode::InProcess`] reads the public key now.
    pub fn with_wrap_mode(mut self, mode: RsaWrapMode) -> Result<Self> {
        self.public_key = match mode {
            RsaWrapMode::Token => None,
            RsaWrapMode::InProcess => Some(self.token.rsa_public(&self.public_uri())?),
        };
        self.wrap_mode = mode;
        Ok(self)
    }

    /// Use `namespace` as the provider id (`aws-kms`, empty and over-long ones are refused).
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Result<Self> {
        self.name.set_namespace(namespace.into())?;
        Ok(self)
    }

    /// Use `name` as the key name (the provider info).
    pub fn with_key_name(mut self, name: impl Into<String>) -> Result<Self> {
        self.name.set_key_name(name.into())?;
        Ok(self)
    }

    /// The provider id written in EDKs.
    pub fn namespace(&self) -> &str {
        &self.name.namespace
    }

    /// The key name written in EDKs.
    pub fn key_name(&self) -> &str {
        &self.name.key_name
    }

    /// URI of the private key.
    pub fn key_uri(&self) -> &Pkcs11Uri {
        &self.key_uri
    }

    /// The padding.
    pub fn padding(&self) -> RsaPadding {
        self.padding
    }

    fn public_uri(&self) -> Pkcs11Uri {
        self.token.key_uri(self.public.label.as_deref(), self.public.id.as_deref(), Some(ObjectType::Public))
    }

    fn wrap(&self, data_key: &DataKey) -> Result<Vec<u8>> {
        match (&self.public_key, self.wrap_mode) {
            (Some(public), RsaWrapMode::InProcess) => public.encrypt(self.padding, data_key.as_bytes()),
            _ => {
                let uri = self.public_uri();
                let padding = self.padding;
                self.token
                    .run_with_key(&uri, &self.public, |s, h| s.encrypt(&mechanism(padding), h, data_key.as_bytes()))
            }
        }
    }
}

/// The mechanism seam: RSA mechanism and parameters for a padding.
fn mechanism(padding: RsaPadding) -> Mechanism<'static> {
    let oaep = |hash: MechanismType, mgf: PkcsMgfType| {
        Mechanism::RsaPkcsOaep(PkcsOaepParams::new(hash, mgf, PkcsOaepSource::empty()))
    };
    match padding {
        RsaPadding::Pkcs1 => Mechanism::RsaPkcs,
        RsaPadding::OaepSha1 => oaep(MechanismType::SHA1, PkcsMgfType::MGF1_SHA1),
        RsaPadding::OaepSha256 => oaep(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
        RsaPadding::OaepSha384 => oaep(MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
        RsaPadding::OaepSha512 => oaep(MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
    }
}

impl Keyring for Pkcs11RsaKeyring {
    fn on_encrypt(&self, mut materials: EncryptionMaterials) -> Result<EncryptionMaterials> {
        if materials.plaintext_data_key.is_none() {
            materials.set_data_key(DataKey::generate(materials.algorithm_suite.key_len())?)?;
        }
        let ciphertext = match &materials.plaintext_data_key {
            Some(key) => self.wrap(key)?,
            None => return Err(Error::keyring(self.description(), "no data key to wrap")),
        };
        materials.encrypted_data_keys.push(EncryptedDataKey {
            provider_id: self.name.namespace.clone(),
            provider_info: self.name.key_name.as_bytes().to_vec(),
            ciphertext,
        });
        Ok(materials)
    }

    fn on_decrypt(&self, mut materials: DecryptionMaterials, edks: &[EncryptedDataKey]) -> Result<DecryptionMaterials> {
        if materials.plaintext_data_key.is_some() {
            return Err(Error::config("the decryption materials already hold a data key"));
        }
        let mut failures = Vec::new();
        let padding = self.padding;
        let key_len = materials.algorithm_suite.key_len();
        for (index, edk) in edks.iter().enumerate() {
            if edk.provider_id != self.name.namespace || edk.provider_info != self.name.key_name.as_bytes() {
                continue;
            }
            let result = self
                .token
                .unwrap_with_key(&self.key_uri, &self.private, |s, h| {
                    s.decrypt(&mechanism(padding), h, &edk.ciphertext)
                })
                .map(DataKey::new);
            match result {
                Ok(key) if key.len() == key_len => {
                    materials.set_data_key(key)?;
                    return Ok(materials);
                }
                Ok(key) => failures.push((
                    index,
                    Error::keyring(
                        self.description(),
                        format!("decrypted to {} bytes, the suite needs a {key_len}-byte data key", key.len()),
                    ),
                )),
                Err(e) => failures.push((index, e)),
            }
        }
        Err(super::own_edks_failed(self.description(), edks.len(), failures))
    }

    fn description(&self) -> String {
        format!(
            "PKCS#11 RSA keyring {}/{} ({})",
            self.name.namespace,
            self.name.key_name,
            self.key_uri.to_path_string()
        )
    }
}
