//! hsm-keyring's software keyrings on our side of the matrix.
//!
//! This is the only file that names `hsm_keyring::keyrings::{RawAesKeyring,
//! RawRsaKeyring, MultiKeyring}`. It is compiled with the `software-keyrings`
//! feature; without it every constructor returns `None` and the matrix runs
//! with `aws-esdk` keyrings on both sides (driven through the adapters when
//! hsm-keyring writes or reads the message). Adjust the constructor calls here
//! if their signatures differ, then make the feature a default.

use std::sync::Arc;

use hsm_keyring::Keyring;

use crate::{Result, RsaPadding};

/// Our raw AES-256 keyring over `key`.
#[cfg(feature = "software-keyrings")]
pub fn raw_aes(namespace: &str, name: &str, key: &[u8; 32]) -> Result<Option<Arc<dyn Keyring>>> {
    use hsm_keyring::keyrings::RawAesKeyring;
    let keyring = RawAesKeyring::new(namespace, name, key).map_err(|e| e.to_string())?;
    Ok(Some(Arc::new(keyring)))
}

/// Our raw RSA keyring over a PKCS#8 private key (PEM).
#[cfg(feature = "software-keyrings")]
pub fn raw_rsa(
    namespace: &str,
    name: &str,
    private_pem: &str,
    padding: RsaPadding,
) -> Result<Option<Arc<dyn Keyring>>> {
    use hsm_keyring::crypto::RsaPadding as OurPadding;
    use hsm_keyring::keyrings::RawRsaKeyring;
    let padding = match padding {
        RsaPadding::OaepSha1 => OurPadding::OaepSha1,
        RsaPadding::OaepSha256 => OurPadding::OaepSha256,
    };
    let keyring = RawRsaKeyring::from_private_pem(namespace, name, padding, private_pem).map_err(|e| e.to_string())?;
    Ok(Some(Arc::new(keyring)))
}

/// Our multi-keyring.
#[cfg(feature = "software-keyrings")]
pub fn multi(generator: Arc<dyn Keyring>, children: Vec<Arc<dyn Keyring>>) -> Result<Option<Arc<dyn Keyring>>> {
    use hsm_keyring::keyrings::MultiKeyring;
    let keyring = MultiKeyring::new(Some(generator), children).map_err(|e| e.to_string())?;
    Ok(Some(Arc::new(keyring)))
}

/// Our raw AES-256 keyring: not in this build.
#[cfg(not(feature = "software-keyrings"))]
pub fn raw_aes(_namespace: &str, _name: &str, _key: &[u8; 32]) -> Result<Option<Arc<dyn Keyring>>> {
    Ok(None)
}

/// Our raw RSA keyring: not in this build.
#[cfg(not(feature = "software-keyrings"))]
pub fn raw_rsa(
    _namespace: &str,
    _name: &str,
    _private_pem: &str,
    _padding: RsaPadding,
) -> Result<Option<Arc<dyn Keyring>>> {
    Ok(None)
}

/// Our multi-keyring: not in this build.
#[cfg(not(feature = "software-keyrings"))]
pub fn multi(_generator: Arc<dyn Keyring>, _children: Vec<Arc<dyn Keyring>>) -> Result<Option<Arc<dyn Keyring>>> {
    Ok(None)
}
