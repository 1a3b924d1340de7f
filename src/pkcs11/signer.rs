//! A long-lived footer signer whose P-384 key lives in a token.

use cryptoki::mechanism::Mechanism;

use super::lookup::{KeyRef, KeyUse, ResolvedKey};
use super::token::Token;
use super::uri::{ObjectType, Pkcs11Uri};
use crate::crypto;
use crate::error::{Error, Result};
use crate::materials::{FooterSigner, SignatureCurve};

/// Signs message footers with an EC P-384 private key held in a token.
///
/// The codec computes the SHA-384 digest of header and body in process; the
/// token signs it with `CKM_ECDSA` (raw `r || s`), which is then DER-encoded.
/// The public key (from the public key object's `CKA_EC_POINT`) is reported
/// compressed, as the message's encryption context carries it. Readers that
/// pin trusted signer keys learn who wrote a message.
#[derive(Debug, Clone)]
pub struct Pkcs11Signer {
    token: Token,
    key_uri: Pkcs11Uri,
    key: KeyRef,
    public_key: Vec<u8>,
}

impl Pkcs11Signer {
    /// The signer for the P-384 key pair named by `key_uri` on `token`
    /// (object label and/or id). Reads the public key now.
    pub fn new(token: Token, key_uri: &Pkcs11Uri) -> Result<Self> {
        let ResolvedKey { uri, key } = token.resolve_key(key_uri, KeyUse::Signer)?;
        let public_key = trusted_signer_from_token(&token, key_uri)?;
        Ok(Pkcs11Signer { token, key_uri: uri, key, public_key })
    }

    /// Open the token named by `key_uri` and use the key pair it names.
    pub fn open(key_uri: &Pkcs11Uri) -> Result<Self> {
        Self::new(Token::open(key_uri)?, key_uri)
    }

    /// URI of the private key.
    pub fn key_uri(&self) -> &Pkcs11Uri {
        &self.key_uri
    }

    /// PEM (SubjectPublicKeyInfo) of the public key, to hand to readers.
    pub fn public_key_pem(&self) -> Result<String> {
        crypto::ec_public_key_pem(SignatureCurve::P384, &self.public_key)
    }
}

impl FooterSigner for Pkcs11Signer {
    fn curve(&self) -> SignatureCurve {
        SignatureCurve::P384
    }

    fn public_key(&self) -> Vec<u8> {
        self.public_key.clone()
    }

    fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>> {
        if digest.len() != 48 {
            return Err(Error::crypto(format!("a P-384 footer digest has 48 bytes, got {}", digest.len())));
        }
        self.token.require_mechanism(cryptoki::mechanism::MechanismType::ECDSA)?;
        let raw = self.token.run_with_key(&self.key_uri, &self.key, |s, h| s.sign(&Mechanism::Ecdsa, h, digest))?;
        crypto::ecdsa_raw_to_der(SignatureCurve::P384, &raw)
    }
}

/// The compressed public key of the P-384 key pair named by `key_uri` on
/// `token`, for [`ClientBuilder::trusted_signers`](crate::ClientBuilder::trusted_signers).
pub fn trusted_signer_from_token(token: &Token, key_uri: &Pkcs11Uri) -> Result<Vec<u8>> {
    token.check_same_token(key_uri)?;
    let public_uri = Pkcs11Uri { object_type: Some(ObjectType::Public), ..key_uri.clone() };
    let (curve, point) = token.ec_public_point(&public_uri)?;
    if curve != SignatureCurve::P384 {
        return Err(Error::InvalidKey {
            reason: format!("{} is on {curve:?}; footer signing keys are P-384", public_uri.to_path_string()),
        });
    }
    crypto::ec_compress_point(curve, &point)
}

/// The compressed public key from a PEM P-384 public key
/// (SubjectPublicKeyInfo), for [`ClientBuilder::trusted_signers`](crate::ClientBuilder::trusted_signers).
pub fn trusted_signer_from_pem(pem: &str) -> Result<Vec<u8>> {
    crypto::ec_public_key_from_pem(SignatureCurve::P384, pem)
}
