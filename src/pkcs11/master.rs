//! Master keys held in a token: the PKCS#11 side of [`crate::master_keys`].
//!
//! Each call borrows a pooled session, finds the key (cached handle) and runs
//! one mechanism; a refused unwrap on a healthy session is classified as
//! "this EDK does not open with this key" by [`Token::unwrap_with_key`].

use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;

use super::aes::GcmIvMode;
use super::lookup::KeyRef;
use super::rsa::RsaWrapMode;
use super::token::Token;
use super::uri::Pkcs11Uri;
use super::{Function, Pkcs11Operation};
use crate::crypto::{self, RsaPadding, RsaPublicKey, IV_LEN, TAG_LEN};
use crate::error::Result;
use crate::master_keys::{AesKey, RsaKey, Sealed};
use crate::materials::DataKey;

/// An AES key in a token, used with `CKM_AES_GCM`.
#[derive(Debug, Clone)]
pub(crate) struct TokenAesKey {
    pub(crate) token: Token,
    pub(crate) uri: Pkcs11Uri,
    pub(crate) key: KeyRef,
    pub(crate) iv_mode: GcmIvMode,
}

impl AesKey for TokenAesKey {
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Sealed> {
        let mut iv = [0u8; IV_LEN];
        if self.iv_mode != GcmIvMode::TokenGenerated {
            crypto::fill_random(&mut iv)?;
        }
        let mode = self.iv_mode;
        let (mut iv, mut out) =
            self.token.run_with_key(&self.uri, &self.key, |s, h| gcm_encrypt(s, h, mode, iv, aad, plaintext))?;
        let ctx = self.token.err_ctx(Some(&self.uri));
        let call = Pkcs11Operation::Call(Function::Encrypt);
        if mode == GcmIvMode::TokenGenerated && iv == [0u8; IV_LEN] {
            return Err(ctx.step(call, "the token did not write back a generated IV; use the caller-random IV mode"));
        }
        if mode == GcmIvMode::TokenAppended && out.len() == plaintext.len() + TAG_LEN + IV_LEN {
            // ciphertext || tag || the IV the token drew.
            let at = plaintext.len() + TAG_LEN;
            iv.copy_from_slice(&out[at..]);
            out.truncate(at);
        }
        if out.len() != plaintext.len() + TAG_LEN {
            return Err(ctx.step(
                call,
                format!(
                    "AES-GCM returned {} bytes for a {}-byte key (expected ciphertext and a 16-byte tag); \
                     the token may append its own IV: this token needs another IV mode (profile {})",
                    out.len(),
                    plaintext.len(),
                    self.token.profile()
                ),
            ));
        }
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&out[plaintext.len()..]);
        out.truncate(plaintext.len());
        Ok(Sealed { iv, ciphertext: out, tag })
    }

    fn open(&self, iv: &[u8; IV_LEN], aad: &[u8], ciphertext: &[u8], tag: &[u8; TAG_LEN]) -> Result<DataKey> {
        let mut joined = Vec::with_capacity(ciphertext.len() + TAG_LEN);
        joined.extend_from_slice(ciphertext);
        joined.extend_from_slice(tag);
        let plain = self.token.unwrap_with_key(&self.uri, &self.key, |s, h| gcm_decrypt(s, h, *iv, aad, &joined))?;
        Ok(DataKey::new(plain))
    }

    fn bits(&self) -> Option<usize> {
        None
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
        GcmIvMode::TokenGenerated => [0u8; IV_LEN],
        _ => iv,
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

/// An RSA key pair in a token: decrypts with the private key in the token,
/// encrypts with the public key in the token or in process.
#[derive(Debug, Clone)]
pub(crate) struct TokenRsaKey {
    pub(crate) token: Token,
    /// URI of the private key.
    pub(crate) uri: Pkcs11Uri,
    pub(crate) private: KeyRef,
    pub(crate) public: KeyRef,
    pub(crate) wrap_mode: RsaWrapMode,
    /// Read from the token for [`RsaWrapMode::InProcess`].
    pub(crate) public_key: Option<RsaPublicKey>,
}

impl TokenRsaKey {
    pub(crate) fn public_uri(&self) -> Pkcs11Uri {
        self.token.canonical_uri(&self.public)
    }
}

impl RsaKey for TokenRsaKey {
    fn encrypt(&self, padding: RsaPadding, plaintext: &[u8]) -> Result<Vec<u8>> {
        match (&self.public_key, self.wrap_mode) {
            (Some(public), RsaWrapMode::InProcess) => public.encrypt(padding, plaintext),
            _ => {
                self.token.require_rsa(padding, Function::Encrypt)?;
                self.token.run_with_key(&self.public_uri(), &self.public, |s, h| {
                    s.encrypt(&rsa_mechanism(padding), h, plaintext)
                })
            }
        }
    }

    fn decrypt(&self, padding: RsaPadding, ciphertext: &[u8]) -> Result<DataKey> {
        self.token.require_rsa(padding, Function::Decrypt)?;
        self.token
            .unwrap_with_key(&self.uri, &self.private, |s, h| s.decrypt(&rsa_mechanism(padding), h, ciphertext))
            .map(DataKey::new)
    }

    fn can_decrypt(&self) -> bool {
        // The token decides; a missing private key is reported by the lookup.
        true
    }
}

/// The mechanism seam: RSA mechanism and parameters for a padding.
fn rsa_mechanism(padding: RsaPadding) -> Mechanism<'static> {
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
