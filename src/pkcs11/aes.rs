//! A keyring that wraps data keys with AES-GCM under an AES key in a token.

use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;

use super::token::{KeyClass, KeyRef, Token};
use super::uri::{ObjectType, Pkcs11Uri};
use super::{EdkName, Function, Pkcs11Operation};
use crate::crypto::{self, IV_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::keyrings::raw_aes_edk;
use crate::materials::{DataKey, DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring};

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
    token: Token,
    key_uri: Pkcs11Uri,
    key: KeyRef,
    name: EdkName,
    iv_mode: GcmIvMode,
}

impl Pkcs11AesKeyring {
    /// The keyring for the secret key named by `key_uri` on `token`. The key
    /// is looked up now, so an unknown label fails here.
    pub fn new(token: Token, key_uri: &Pkcs11Uri) -> Result<Self> {
        token.check_same_token(key_uri)?;
        if let Some(t) = key_uri.object_type.filter(|t| *t != ObjectType::SecretKey) {
            return Err(Error::config(format!(
                "an AES keyring needs a secret key, but {} names type={}",
                key_uri.to_path_string(),
                t.as_str()
            )));
        }
        let key = KeyRef::from_uri(key_uri, KeyClass::Secret)?;
        let key_uri = token.key_uri(key.label.as_deref(), key.id.as_deref(), Some(ObjectType::SecretKey));
        token.find_key(&key_uri, &key)?;
        let name = EdkName::for_key(&key, raw_aes_edk::PROVIDER_INFO_SUFFIX_LEN);
        Ok(Pkcs11AesKeyring { token, key_uri, key, name, iv_mode: GcmIvMode::default() })
    }

    /// Open the token named by `key_uri` (module, PIN and token from the URI)
    /// and use the secret key it names.
    pub fn open(key_uri: &Pkcs11Uri) -> Result<Self> {
        Self::new(Token::open(key_uri)?, key_uri)
    }

    /// Use `namespace` as the provider id (`aws-kms`, empty and over-long ones are refused).
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Result<Self> {
        self.name.set_namespace(namespace.into())?;
        Ok(self)
    }

    /// Use `name` as the key name in the provider info.
    pub fn with_key_name(mut self, name: impl Into<String>) -> Result<Self> {
        self.name.set_key_name(name.into())?;
        Ok(self)
    }

    /// Choose who generates the GCM IV.
    pub fn with_iv_mode(mut self, mode: GcmIvMode) -> Self {
        self.iv_mode = mode;
        self
    }

    /// The provider id written in EDKs.
    pub fn namespace(&self) -> &str {
        &self.name.namespace
    }

    /// The key name written in EDKs.
    pub fn key_name(&self) -> &str {
        &self.name.key_name
    }

    /// URI of the wrapping key.
    pub fn key_uri(&self) -> &Pkcs11Uri {
        &self.key_uri
    }

    /// The token.
    pub fn token(&self) -> &Token {
        &self.token
    }

    fn wrap(&self, data_key: &DataKey, aad: &[u8]) -> Result<EncryptedDataKey> {
        let mut iv = [0u8; IV_LEN];
        if self.iv_mode == GcmIvMode::CallerRandom {
            crypto::fill_random(&mut iv)?;
        }
        let mode = self.iv_mode;
        let (iv, ciphertext) = self
            .token
            .run_with_key(&self.key_uri, &self.key, |s, h| gcm_encrypt(s, h, mode, iv, aad, data_key.as_bytes()))?;
        let ctx = self.token.err_ctx(Some(&self.key_uri));
        if mode == GcmIvMode::TokenGenerated && iv == [0u8; IV_LEN] {
            return Err(ctx.step(
                Pkcs11Operation::Call(Function::Encrypt),
                "the token did not write back a generated IV; use the caller-random IV mode",
            ));
        }
        if ciphertext.len() != data_key.len() + TAG_LEN {
            return Err(ctx.step(
                Pkcs11Operation::Call(Function::Encrypt),
                format!(
                    "AES-GCM returned {} bytes for a {}-byte key (expected ciphertext and a 16-byte tag); \
                     the token may append its own IV: this token needs another IV mode",
                    ciphertext.len(),
                    data_key.len()
                ),
            ));
        }
        let provider_info = raw_aes_edk::serialize_provider_info(&self.name.key_name, &iv);
        Ok(EncryptedDataKey { provider_id: self.name.namespace.clone(), provider_info, ciphertext })
    }

    /// The IV if the EDK is this keyring's (same namespace, key name and the
    /// raw AES provider-info layout), exactly as the raw AES keyring decides.
    fn parse_edk(&self, edk: &EncryptedDataKey) -> Option<[u8; IV_LEN]> {
        if edk.provider_id != self.name.namespace {
            return None;
        }
        raw_aes_edk::parse_provider_info(&self.name.key_name, &edk.provider_info)
    }

    fn unwrap(&self, edk: &EncryptedDataKey, iv: [u8; IV_LEN], aad: &[u8], key_len: usize) -> Result<DataKey> {
        if edk.ciphertext.len() != key_len + TAG_LEN {
            return Err(Error::keyring(
                self.description(),
                format!(
                    "EDK ciphertext has {} bytes (expected {} for the suite's {}-byte key and the tag)",
                    edk.ciphertext.len(),
                    key_len + TAG_LEN,
                    key_len
                ),
            ));
        }
        let plain =
            self.token.unwrap_with_key(&self.key_uri, &self.key, |s, h| gcm_decrypt(s, h, iv, aad, &edk.ciphertext))?;
        Ok(DataKey::new(plain))
    }
}

/// The mechanism seam: AES-GCM parameters for wrapping. Returns the IV used
/// (the token's, in [`GcmIvMode::TokenGenerated`]) and ciphertext || tag.
fn gcm_encrypt(
    session: &Session,
    key: ObjectHandle,
    mode: GcmIvMode,
    iv: [u8; IV_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> cryptoki::error::Result<([u8; IV_LEN], Vec<u8>)> {
    let mut iv_buf = match mode {
        GcmIvMode::CallerRandom => iv,
        GcmIvMode::TokenGenerated => [0u8; IV_LEN],
    };
    let out = session.encrypt(&Mechanism::AesGcm(GcmParams::new(&mut iv_buf, aad, 128.into())?), key, plaintext)?;
    Ok((iv_buf, out))
}

/// The mechanism seam: AES-GCM parameters for unwrapping.
fn gcm_decrypt(
    session: &Session,
    key: ObjectHandle,
    mut iv: [u8; IV_LEN],
    aad: &[u8],
    ciphertext: &[u8],
) -> cryptoki::error::Result<Vec<u8>> {
    session.decrypt(&Mechanism::AesGcm(GcmParams::new(&mut iv, aad, 128.into())?), key, ciphertext)
}

impl Keyring for Pkcs11AesKeyring {
    fn on_encrypt(&self, mut materials: EncryptionMaterials) -> Result<EncryptionMaterials> {
        if materials.plaintext_data_key.is_none() {
            materials.set_data_key(DataKey::generate(materials.algorithm_suite.key_len())?)?;
        }
        let aad = materials.encryption_context.serialize()?;
        let edk = match &materials.plaintext_data_key {
            Some(key) => self.wrap(key, &aad)?,
            None => return Err(Error::keyring(self.description(), "no data key to wrap")),
        };
        materials.encrypted_data_keys.push(edk);
        Ok(materials)
    }

    fn on_decrypt(&self, mut materials: DecryptionMaterials, edks: &[EncryptedDataKey]) -> Result<DecryptionMaterials> {
        if materials.plaintext_data_key.is_some() {
            return Err(Error::config("the decryption materials already hold a data key"));
        }
        let aad = materials.encryption_context.serialize()?;
        let key_len = materials.algorithm_suite.key_len();
        let mut failures = Vec::new();
        for (index, edk) in edks.iter().enumerate() {
            let Some(iv) = self.parse_edk(edk) else { continue };
            match self.unwrap(edk, iv, &aad, key_len) {
                Ok(key) => {
                    materials.set_data_key(key)?;
                    return Ok(materials);
                }
                Err(e) => failures.push((index, e)),
            }
        }
        Err(super::own_edks_failed(self.description(), edks.len(), failures))
    }

    fn description(&self) -> String {
        format!(
            "PKCS#11 AES keyring {}/{} ({})",
            self.name.namespace,
            self.name.key_name,
            self.key_uri.to_path_string()
        )
    }
}
