//! A keyring that wraps data keys with AES-GCM under an AES key in a token.

use super::lookup::{KeyUse, ResolvedKey};
use super::master::TokenAesKey;
use super::token::Token;
use super::uri::Pkcs11Uri;
use crate::edk::{raw_aes_wire, EdkName, EsdkRawAes};
use crate::error::Result;
use crate::keyrings::adapter;
use crate::materials::{DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring};

/// Provider id used when none is configured.
pub const DEFAULT_NAMESPACE: &str = "hsm-keyring";

/// Who chooses the AES-GCM IV of each wrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum GcmIvMode {
    /// This process draws a random 12-byte IV and passes it in (SoftHSM and
    /// most tokens).
    #[default]
    CallerRandom,
    /// The token generates the IV and writes it back into the parameter's IV
    /// buffer (AWS CloudHSM and tokens in FIPS mode that refuse caller IVs).
    TokenGenerated,
    /// This process passes a random IV; a token that draws its own instead
    /// returns ciphertext || tag || IV, and that IV is the one used (Thales
    /// Luna in FIPS mode). A token that uses the IV passed in returns
    /// ciphertext || tag as usual.
    TokenAppended,
}

/// A keyring whose wrapping key is an AES key inside a PKCS#11 token.
///
/// Wrapping is `C_Encrypt` with `CKM_AES_GCM` (12-byte IV, 128-bit tag, AAD =
/// the serialized full encryption context); unwrapping is `C_Decrypt`. The
/// encrypted data key has exactly the raw AES keyring layout:
///
/// * provider id = namespace (default [`DEFAULT_NAMESPACE`]),
/// * provider info = key name (default: the object label) || tag length in
///   bits (u32 BE, 128) || IV length (u32 BE, 12) || IV,
/// * ciphertext = encrypted data key || tag,
///
/// so a raw AES keyring holding the same key material under the same
/// namespace and name opens it, and the reverse.
///
/// When the materials hold no data key, it is generated in this process from
/// the operating system's CSPRNG (not with `C_GenerateRandom`): the data key
/// leaves the token's boundary anyway, and this saves a round trip.
#[derive(Debug, Clone)]
pub struct Pkcs11AesKeyring {
    layout: EsdkRawAes<TokenAesKey>,
}

impl Pkcs11AesKeyring {
    /// The keyring for the secret key named by `key_uri` on `token`. The key
    /// is looked up now, so an unknown label fails here, and so does a token
    /// without `CKM_AES_GCM` (`C_GetMechanismInfo`). The IV mode is the
    /// token profile's ([`Token::profile`]).
    pub fn new(token: Token, key_uri: &Pkcs11Uri) -> Result<Self> {
        token.require_aes_gcm()?;
        let ResolvedKey { uri, key } = token.resolve_key(key_uri, KeyUse::AesKeyring)?;
        let name =
            EdkName::new(DEFAULT_NAMESPACE.to_owned(), key.edk_key_name(), raw_aes_wire::PROVIDER_INFO_SUFFIX_LEN)?;
        let iv_mode = token.profile().gcm_iv;
        let key = TokenAesKey { token, uri, key, iv_mode };
        Ok(Pkcs11AesKeyring { layout: EsdkRawAes { name, key } })
    }

    /// Open the token named by `key_uri` (module, PIN and token from the URI)
    /// and use the secret key it names.
    pub fn open(key_uri: &Pkcs11Uri) -> Result<Self> {
        Self::new(Token::open(key_uri)?, key_uri)
    }

    /// Use `namespace` as the provider id (`aws-kms`, empty and over-long ones are refused).
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Result<Self> {
        self.layout.name.set_namespace(namespace.into()).map(|()| self)
    }

    /// Use `name` as the key name in the provider info.
    pub fn with_key_name(mut self, name: impl Into<String>) -> Result<Self> {
        self.layout.name.set_key_name(name.into()).map(|()| self)
    }

    /// Choose who generates the GCM IV (instead of the token profile's mode).
    pub fn with_iv_mode(mut self, mode: GcmIvMode) -> Self {
        self.layout.key.iv_mode = mode;
        self
    }

    /// The provider id written in EDKs.
    pub fn namespace(&self) -> &str {
        &self.layout.name.namespace
    }

    /// The key name written in EDKs.
    pub fn key_name(&self) -> &str {
        &self.layout.name.key_name
    }

    /// URI of the wrapping key.
    pub fn key_uri(&self) -> &Pkcs11Uri {
        &self.layout.key.uri
    }

    /// The token.
    pub fn token(&self) -> &Token {
        &self.layout.key.token
    }

    /// Who generates the GCM IV.
    pub fn iv_mode(&self) -> GcmIvMode {
        self.layout.key.iv_mode
    }

    /// The token key itself, for the layouts of other formats (S3 objects).
    pub(crate) fn master_key(&self) -> &TokenAesKey {
        &self.layout.key
    }
}

impl Keyring for Pkcs11AesKeyring {
    fn on_encrypt(&self, materials: EncryptionMaterials) -> Result<EncryptionMaterials> {
        adapter::on_encrypt(&self.layout, || self.description(), materials)
    }

    fn on_decrypt(&self, materials: DecryptionMaterials, edks: &[EncryptedDataKey]) -> Result<DecryptionMaterials> {
        adapter::on_decrypt(&self.layout, || self.description(), materials, edks)
    }

    fn description(&self) -> String {
        format!("PKCS#11 AES keyring {} ({})", self.layout.name, self.layout.key.uri.to_path_string())
    }
}
