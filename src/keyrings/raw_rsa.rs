//! The raw RSA keyring: encrypts data keys to an RSA public key; decrypts them
//! with the private key when it holds one.
//!
//! EDK layout: provider id = key namespace; provider info = key name;
//! ciphertext = the RSA output. Paddings: PKCS#1 v1.5 and OAEP with SHA-1,
//! SHA-256, SHA-384 or SHA-512 (MGF1 with the same hash), see
//! [`RsaPadding`]. RSA binds nothing to the encryption context; the message
//! header authentication does that.
//!
//! # Dependency choice
//!
//! RSA is computed by the pure-Rust `rsa` 0.9 crate, which is subject to
//! RUSTSEC-2023-0071 (the "Marvin" timing side channel on decryption, with no
//! fixed release in the 0.9 line). hsm-keyring accepts it because production
//! RSA private keys are meant to live in the token (the PKCS#11 RSA keyring
//! decrypts inside the HSM); raw RSA private keys in process are for escrow
//! and testing; and an optional constant-time backend is planned. Encryption
//! with a public key is not affected. See `docs/rsa-advisory.md`.

use std::fmt;

use super::adapter;
use crate::crypto::{RsaPadding, RsaPrivateKey, RsaPublicKey};
use crate::edk::{EdkName, EsdkRawRsa};
use crate::error::Result;
use crate::master_keys::{MemoryRsaKey, RsaKey};
use crate::materials::{DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring};

/// A keyring that encrypts data keys with an RSA public key and decrypts them
/// with the matching private key, held in process memory.
///
/// Built from a private key it can encrypt and decrypt; built from a public
/// key only it can encrypt, and its decrypt fails on its own EDKs with an
/// error saying that it has no private key.
pub struct RawRsaKeyring {
    layout: EsdkRawRsa<MemoryRsaKey>,
}

impl fmt::Debug for RawRsaKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawRsaKeyring")
            .field("namespace", &self.layout.name.namespace)
            .field("name", &self.layout.name.key_name)
            .field("padding", &self.layout.padding)
            .field("key", &self.layout.key)
            .finish()
    }
}

impl RawRsaKeyring {
    /// A keyring from a public key and, optionally, its private key.
    ///
    /// Fails if the private key is not the public key's pair, if the namespace
    /// is the reserved `aws-kms`, or if namespace or name do not fit the EDK fields.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        padding: RsaPadding,
        public_key: RsaPublicKey,
        private_key: Option<RsaPrivateKey>,
    ) -> Result<Self> {
        let namespace = namespace.into();
        let key_name = name.into();
        let name = EdkName::new(namespace, key_name, 0)?;
        Ok(RawRsaKeyring { layout: EsdkRawRsa { name, padding, key: MemoryRsaKey::new(public_key, private_key)? } })
    }

    /// A keyring that can encrypt and decrypt, from a PEM private key (PKCS#8 or PKCS#1).
    pub fn from_private_pem(
        namespace: impl Into<String>,
        name: impl Into<String>,
        padding: RsaPadding,
        pem: &str,
    ) -> Result<Self> {
        let private_key = RsaPrivateKey::from_pem(pem)?;
        let public_key = private_key.public_key();
        Self::new(namespace, name, padding, public_key, Some(private_key))
    }

    /// A keyring that can only encrypt, from a PEM public key (SubjectPublicKeyInfo or PKCS#1).
    pub fn from_public_pem(
        namespace: impl Into<String>,
        name: impl Into<String>,
        padding: RsaPadding,
        pem: &str,
    ) -> Result<Self> {
        Self::new(namespace, name, padding, RsaPublicKey::from_pem(pem)?, None)
    }

    /// The key namespace (the EDK provider id).
    pub fn namespace(&self) -> &str {
        &self.layout.name.namespace
    }

    /// The key name (the EDK provider info).
    pub fn name(&self) -> &str {
        &self.layout.name.key_name
    }

    /// The padding scheme.
    pub fn padding(&self) -> RsaPadding {
        self.layout.padding
    }

    /// True if this keyring holds the private key and can decrypt.
    pub fn can_decrypt(&self) -> bool {
        self.layout.key.can_decrypt()
    }
}

impl Keyring for RawRsaKeyring {
    fn on_encrypt(&self, materials: EncryptionMaterials) -> Result<EncryptionMaterials> {
        adapter::on_encrypt(&self.layout, || self.description(), materials)
    }

    fn on_decrypt(&self, materials: DecryptionMaterials, edks: &[EncryptedDataKey]) -> Result<DecryptionMaterials> {
        adapter::on_decrypt(&self.layout, || self.description(), materials, edks)
    }

    fn description(&self) -> String {
        format!("raw RSA keyring {}/{}", self.layout.name.namespace, self.layout.name.key_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::materials::DataKey;
    use crate::materials::{AlgorithmSuite, EncryptionContext};

    const KEY_A: &str = include_str!("../../tests/data/rsa2048-a.pem");
    const KEY_A_PUB: &str = include_str!("../../tests/data/rsa2048-a.pub.pem");
    const KEY_B: &str = include_str!("../../tests/data/rsa2048-b.pem");
    const NS: &str = "rsa-namespace";
    const NAME: &str = "rsa-key";
    const SUITE: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    const PADDINGS: [RsaPadding; 5] = [
        RsaPadding::Pkcs1,
        RsaPadding::OaepSha1,
        RsaPadding::OaepSha256,
        RsaPadding::OaepSha384,
        RsaPadding::OaepSha512,
    ];

    fn private(pem: &str, padding: RsaPadding) -> RawRsaKeyring {
        RawRsaKeyring::from_private_pem(NS, NAME, padding, pem).unwrap()
    }

    fn encrypt(k: &RawRsaKeyring) -> EncryptionMaterials {
        k.on_encrypt(EncryptionMaterials::new(SUITE, EncryptionContext::new())).unwrap()
    }

    fn decrypt(k: &RawRsaKeyring, edks: &[EncryptedDataKey]) -> Result<DecryptionMaterials> {
        k.on_decrypt(DecryptionMaterials::new(SUITE, EncryptionContext::new()), edks)
    }

    #[test]
    fn edk_layout() {
        let m = encrypt(&private(KEY_A, RsaPadding::OaepSha256));
        assert_eq!(m.encrypted_data_keys().len(), 1);
        let edk = &m.encrypted_data_keys()[0];
        assert_eq!(edk.provider_id, NS);
        assert_eq!(edk.provider_info, NAME.as_bytes());
        // The RSA output is exactly one modulus long.
        assert_eq!(edk.ciphertext.len(), 2048 / 8);
        // It is the data key encrypted to the key: the private key opens it directly.
        let key = RsaPrivateKey::from_pem(KEY_A).unwrap().decrypt(RsaPadding::OaepSha256, &edk.ciphertext).unwrap();
        assert_eq!(Some(&key), m.data_key());
    }

    #[test]
    fn each_padding_round_trips_and_paddings_do_not_mix() {
        for padding in PADDINGS {
            let k = private(KEY_A, padding);
            assert_eq!(k.padding(), padding);
            let m = encrypt(&k);
            let d = decrypt(&k, m.encrypted_data_keys()).unwrap();
            assert_eq!(d.data_key(), m.data_key(), "{padding:?}");
            for other in PADDINGS.into_iter().filter(|p| *p != padding) {
                let err = decrypt(&private(KEY_A, other), m.encrypted_data_keys()).unwrap_err();
                assert!(matches!(err, Error::Keyring { .. }), "{padding:?} read as {other:?}: {err}");
            }
        }
    }

    #[test]
    fn wraps_an_existing_data_key_for_every_suite() {
        let k = private(KEY_A, RsaPadding::OaepSha1);
        for suite in AlgorithmSuite::ALL {
            let mut m = EncryptionMaterials::new(suite, EncryptionContext::new());
            let key = DataKey::generate(suite.key_len()).unwrap();
            m.set_data_key(key.clone()).unwrap();
            let m = k.on_encrypt(m).unwrap();
            let d = k.on_decrypt(DecryptionMaterials::new(suite, EncryptionContext::new()), m.encrypted_data_keys());
            assert_eq!(d.unwrap().data_key(), Some(&key), "{suite:?}");
        }
    }

    #[test]
    fn wrong_key_is_mine_but_failed() {
        let m = encrypt(&private(KEY_A, RsaPadding::OaepSha512));
        let err = decrypt(&private(KEY_B, RsaPadding::OaepSha512), m.encrypted_data_keys()).unwrap_err();
        assert!(matches!(err, Error::Keyring { .. }), "{err}");
        assert!(err.to_string().contains("RSA decryption"), "{err}");
    }

    #[test]
    fn other_namespace_or_name_is_not_mine() {
        let m = encrypt(&private(KEY_A, RsaPadding::OaepSha256));
        for (ns, name) in [("other", NAME), (NS, "other"), (NS, "rsa-ke"), (NS, "rsa-key2")] {
            let k = RawRsaKeyring::from_private_pem(ns, name, RsaPadding::OaepSha256, KEY_A).unwrap();
            let err = decrypt(&k, m.encrypted_data_keys()).unwrap_err();
            assert!(matches!(err, Error::NotMine { edk_count: 1, .. }), "{ns}/{name}: {err}");
        }
    }

    #[test]
    fn tampered_ciphertext_fails() {
        let k = private(KEY_A, RsaPadding::OaepSha256);
        let m = encrypt(&k);
        let mut short = m.encrypted_data_keys()[0].clone();
        short.ciphertext.pop();
        let mut empty = m.encrypted_data_keys()[0].clone();
        empty.ciphertext.clear();
        let mut flipped = m.encrypted_data_keys()[0].clone();
        flipped.ciphertext[100] ^= 0x01;
        for edk in [short, empty, flipped] {
            let err = decrypt(&k, std::slice::from_ref(&edk)).unwrap_err();
            assert!(matches!(err, Error::Keyring { .. }), "{err}");
        }
    }

    #[test]
    fn data_key_of_the_wrong_length_is_refused() {
        // A 16-byte key wrapped correctly, presented as the EDK of a 32-byte suite.
        let k = private(KEY_A, RsaPadding::OaepSha256);
        let m = k
            .on_encrypt(EncryptionMaterials::new(AlgorithmSuite::Aes128GcmIv12Tag16NoKdf, EncryptionContext::new()))
            .unwrap();
        let err = decrypt(&k, m.encrypted_data_keys()).unwrap_err();
        assert!(err.to_string().contains("16 bytes"), "{err}");
    }

    #[test]
    fn public_only_keyring_encrypts_but_cannot_decrypt() {
        let public = RawRsaKeyring::from_public_pem(NS, NAME, RsaPadding::OaepSha384, KEY_A_PUB).unwrap();
        assert!(!public.can_decrypt());
        let m = encrypt(&public);
        // The private key of the same pair opens what the public-only keyring wrote.
        let d = decrypt(&private(KEY_A, RsaPadding::OaepSha384), m.encrypted_data_keys()).unwrap();
        assert_eq!(d.data_key(), m.data_key());
        // Its own EDK: mine, but no private key.
        let err = decrypt(&public, m.encrypted_data_keys()).unwrap_err();
        assert!(matches!(err, Error::Keyring { .. }), "{err}");
        assert!(err.to_string().contains("no private key"), "{err}");
        // Someone else's EDK: not mine.
        let other = RawRsaKeyring::from_public_pem(NS, "other", RsaPadding::OaepSha384, KEY_A_PUB).unwrap();
        assert!(decrypt(&other, m.encrypted_data_keys()).unwrap_err().is_not_mine());
    }

    #[test]
    fn construction_checks() {
        assert!(matches!(
            RawRsaKeyring::from_private_pem("aws-kms", NAME, RsaPadding::OaepSha256, KEY_A),
            Err(Error::Config { .. })
        ));
        assert!(matches!(
            RawRsaKeyring::from_private_pem(NS, NAME, RsaPadding::OaepSha256, KEY_A_PUB),
            Err(Error::InvalidKey { .. })
        ));
        assert!(matches!(
            RawRsaKeyring::from_public_pem(NS, NAME, RsaPadding::OaepSha256, "not a key"),
            Err(Error::InvalidKey { .. })
        ));
        let mismatched = RawRsaKeyring::new(
            NS,
            NAME,
            RsaPadding::OaepSha256,
            RsaPublicKey::from_pem(KEY_A_PUB).unwrap(),
            Some(RsaPrivateKey::from_pem(KEY_B).unwrap()),
        );
        assert!(matches!(mismatched, Err(Error::InvalidKey { .. })));
    }

    #[test]
    fn debug_redacts_the_private_key() {
        let k = private(KEY_A, RsaPadding::OaepSha256);
        let text = format!("{k:?}");
        assert!(text.contains("REDACTED") && text.contains("2048") && text.contains(NAME), "{text}");
        // No PEM body, no long digit run that could be a key component.
        assert!(!text.contains("MII"), "{text}");
        assert!(!text.as_bytes().windows(8).any(|w| w.iter().all(u8::is_ascii_digit)), "{text}");
        assert_eq!(k.description(), format!("raw RSA keyring {NS}/{NAME}"));
    }
}
