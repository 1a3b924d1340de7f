//! hsm-keyring's software keyrings on our side of the matrix: raw AES, raw
//! RSA and the multi-keyring, built over the same key material as their
//! `aws-esdk` counterparts.

use std::sync::Arc;

use hsm_keyring::crypto::RsaPadding as OurPadding;
use hsm_keyring::keyrings::{MultiKeyring, RawAesKeyring, RawRsaKeyring};
use hsm_keyring::Keyring;

use crate::{Result, RsaPadding};

/// Our raw AES-256 keyring over `key`.
pub fn raw_aes(namespace: &str, name: &str, key: &[u8; 32]) -> Result<Arc<dyn Keyring>> {
    let keyring = RawAesKeyring::new(namespace, name, key).map_err(|e| e.to_string())?;
    Ok(Arc::new(keyring))
}

/// Our raw RSA keyring over a PKCS#8 private key (PEM).
pub fn raw_rsa(namespace: &str, name: &str, private_pem: &str, padding: RsaPadding) -> Result<Arc<dyn Keyring>> {
    let padding = match padding {
        RsaPadding::OaepSha1 => OurPadding::OaepSha1,
        RsaPadding::OaepSha256 => OurPadding::OaepSha256,
    };
    let keyring = RawRsaKeyring::from_private_pem(namespace, name, padding, private_pem).map_err(|e| e.to_string())?;
    Ok(Arc::new(keyring))
}

/// Our multi-keyring with `generator` and `children`.
pub fn multi(generator: Arc<dyn Keyring>, children: Vec<Arc<dyn Keyring>>) -> Result<Arc<dyn Keyring>> {
    let keyring = MultiKeyring::new(Some(generator), children).map_err(|e| e.to_string())?;
    Ok(Arc::new(keyring))
}
