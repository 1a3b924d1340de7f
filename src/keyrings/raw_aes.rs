//! The raw AES keyring: wraps data keys with AES-GCM under a key held in process.
//!
//! EDK layout (`EsdkRawAes` in `edk/`, wire helpers in
//! [`raw_aes_edk`](super::raw_aes_edk)): provider id = key namespace;
//! provider info = key name || tag length in bits (u32 BE, 128) || IV length
//! (u32 BE, 12) || IV; ciphertext = encrypted data key || tag. The AAD is
//! the serialized full encryption context of the materials, so an EDK only
//! opens under the context it was written with.

use std::fmt;

use super::adapter;
use super::raw_aes_edk::PROVIDER_INFO_SUFFIX_LEN;
use crate::edk::{EdkName, EsdkRawAes};
use crate::error::Result;
use crate::master_keys::{AesKey, MemoryAesKey};
use crate::materials::{DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring};

/// A keyring that wraps data keys with AES-GCM under a 128-, 192- or 256-bit
/// wrapping key held in process memory.
///
/// The wrapping key is expanded once, at construction; its key schedule is
/// wiped when the keyring is dropped and never printed by `Debug`.
///
/// ```
/// use hsm_keyring::keyrings::RawAesKeyring;
/// let keyring = RawAesKeyring::new("my-namespace", "my-key", &[0x42; 32])?;
/// assert_eq!(keyring.key_bits(), 256);
/// # Ok::<(), hsm_keyring::Error>(())
/// ```
pub struct RawAesKeyring {
    layout: EsdkRawAes<MemoryAesKey>,
}

impl fmt::Debug for RawAesKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawAesKeyring")
            .field("namespace", &self.layout.name.namespace)
            .field("name", &self.layout.name.key_name)
            .field("key_bits", &self.key_bits())
            .field("wrapping_key", &"[REDACTED]")
            .finish()
    }
}

impl RawAesKeyring {
    /// A keyring for the wrapping key `key` (16, 24 or 32 bytes) known as
    /// `namespace`/`name`.
    ///
    /// Fails if the key length is not an AES key length, if the namespace is
    /// the reserved `aws-kms`, or if namespace or name do not fit the EDK fields.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>, key: &[u8]) -> Result<Self> {
        let namespace = namespace.into();
        let key_name = name.into();
        let name = EdkName::new(namespace, key_name, PROVIDER_INFO_SUFFIX_LEN)?;
        Ok(RawAesKeyring { layout: EsdkRawAes { name, key: MemoryAesKey::new(key)? } })
    }

    /// The key namespace (the EDK provider id).
    pub fn namespace(&self) -> &str {
        &self.layout.name.namespace
    }

    /// The key name (the start of the EDK provider info).
    pub fn name(&self) -> &str {
        &self.layout.name.key_name
    }

    /// Size of the wrapping key in bits.
    pub fn key_bits(&self) -> usize {
        self.layout.key.bits().unwrap_or_default()
    }
}

impl Keyring for RawAesKeyring {
    fn on_encrypt(&self, materials: EncryptionMaterials) -> Result<EncryptionMaterials> {
        adapter::on_encrypt(&self.layout, || self.description(), materials)
    }

    fn on_decrypt(&self, materials: DecryptionMaterials, edks: &[EncryptedDataKey]) -> Result<DecryptionMaterials> {
        adapter::on_decrypt(&self.layout, || self.description(), materials, edks)
    }

    fn description(&self) -> String {
        format!("raw AES keyring {}/{}", self.layout.name.namespace, self.layout.name.key_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::AeadKey;
    use crate::error::Error;
    use crate::materials::DataKey;
    use crate::materials::{AlgorithmSuite, EncryptionContext};

    const NS: &str = "test-namespace";
    const NAME: &str = "test-key";
    const SUITE: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;

    fn context() -> EncryptionContext {
        EncryptionContext::from_pairs([("purpose", "unit test"), ("tenant", "a")]).unwrap()
    }

    fn keyring(key: &[u8]) -> RawAesKeyring {
        RawAesKeyring::new(NS, NAME, key).unwrap()
    }

    fn encrypt(k: &RawAesKeyring, suite: AlgorithmSuite, ctx: &EncryptionContext) -> EncryptionMaterials {
        k.on_encrypt(EncryptionMaterials::new(suite, ctx.clone())).unwrap()
    }

    fn decrypt(
        k: &RawAesKeyring,
        suite: AlgorithmSuite,
        ctx: &EncryptionContext,
        edks: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials> {
        k.on_decrypt(DecryptionMaterials::new(suite, ctx.clone()), edks)
    }

    #[test]
    fn edk_layout_field_by_field() {
        let k = keyring(&[0x11; 32]);
        let m = encrypt(&k, SUITE, &context());
        let data_key = m.plaintext_data_key.clone().unwrap();
        assert_eq!(data_key.len(), 32);
        assert_eq!(m.encrypted_data_keys.len(), 1);
        let edk = &m.encrypted_data_keys[0];
        assert_eq!(edk.provider_id, NS);
        let info = &edk.provider_info;
        assert_eq!(info.len(), NAME.len() + 4 + 4 + 12);
        assert_eq!(&info[..NAME.len()], NAME.as_bytes());
        let tag_bits = u32::from_be_bytes(info[NAME.len()..NAME.len() + 4].try_into().unwrap());
        let iv_len = u32::from_be_bytes(info[NAME.len() + 4..NAME.len() + 8].try_into().unwrap());
        assert_eq!((tag_bits, iv_len), (128, 12));
        let iv: [u8; 12] = info[NAME.len() + 8..].try_into().unwrap();
        assert_eq!(edk.ciphertext.len(), 32 + 16);

        // Open the EDK independently of the keyring: AES-GCM with the IV from
        // the provider info and the serialized context as AAD.
        let aad = context().serialize().unwrap();
        let (ct, tag) = edk.ciphertext.split_at(32);
        let mut buf = ct.to_vec();
        AeadKey::new(&[0x11; 32]).unwrap().open_in_place(&iv, &aad, &mut buf, tag.try_into().unwrap()).unwrap();
        assert_eq!(buf, data_key.as_bytes());
        // The same bytes with an empty AAD do not open.
        let mut buf = ct.to_vec();
        assert!(AeadKey::new(&[0x11; 32]).unwrap().open_in_place(&iv, &[], &mut buf, tag.try_into().unwrap()).is_err());
    }

    #[test]
    fn fresh_iv_per_wrap() {
        let k = keyring(&[0x11; 32]);
        let a = encrypt(&k, SUITE, &context());
        let b = encrypt(&k, SUITE, &context());
        assert_ne!(a.encrypted_data_keys[0].provider_info, b.encrypted_data_keys[0].provider_info);
        assert_ne!(a.plaintext_data_key, b.plaintext_data_key);
    }

    #[test]
    fn round_trip_with_each_key_size_and_suite_key_length() {
        for key_len in [16usize, 24, 32] {
            let key: Vec<u8> = (0..key_len as u8).collect();
            let k = keyring(&key);
            assert_eq!(k.key_bits(), key_len * 8);
            for suite in AlgorithmSuite::ALL {
                let m = encrypt(&k, suite, &context());
                assert_eq!(m.encrypted_data_keys[0].ciphertext.len(), suite.key_len() + 16);
                let d = decrypt(&k, suite, &context(), &m.encrypted_data_keys).unwrap();
                assert_eq!(d.plaintext_data_key, m.plaintext_data_key, "{key_len} {suite:?}");
            }
        }
    }

    #[test]
    fn wraps_an_existing_data_key() {
        let k = keyring(&[3; 16]);
        let mut m = EncryptionMaterials::new(SUITE, context());
        m.set_data_key(DataKey::new(vec![0x5A; 32])).unwrap();
        let m = k.on_encrypt(m).unwrap();
        assert_eq!(m.plaintext_data_key.as_ref().unwrap().as_bytes(), &[0x5A; 32]);
        let d = decrypt(&k, SUITE, &context(), &m.encrypted_data_keys).unwrap();
        assert_eq!(d.plaintext_data_key.unwrap().as_bytes(), &[0x5A; 32]);
    }

    #[test]
    fn bad_key_lengths_and_reserved_namespace_refused() {
        for len in [0usize, 15, 17, 31, 33, 64] {
            assert!(matches!(RawAesKeyring::new(NS, NAME, &vec![0; len]), Err(Error::InvalidKey { .. })), "{len}");
        }
        assert!(matches!(RawAesKeyring::new("aws-kms", NAME, &[0; 32]), Err(Error::Config { .. })));
        let long_name = "n".repeat(65535 - 20 + 1);
        assert!(RawAesKeyring::new(NS, long_name, &[0; 32]).is_err());
        assert!(RawAesKeyring::new(NS, "n".repeat(65535 - 20), &[0; 32]).is_ok());
    }

    #[test]
    fn wrong_key_is_mine_but_failed() {
        let m = encrypt(&keyring(&[1; 32]), SUITE, &context());
        let err = decrypt(&keyring(&[2; 32]), SUITE, &context(), &m.encrypted_data_keys).unwrap_err();
        assert!(matches!(err, Error::Keyring { .. }), "{err}");
        assert!(err.to_string().contains("authentication failed"), "{err}");
        assert!(err.to_string().contains(NAME), "{err}");
    }

    #[test]
    fn other_namespace_or_name_is_not_mine() {
        let m = encrypt(&keyring(&[1; 32]), SUITE, &context());
        for (ns, name) in [("other", NAME), (NS, "other"), (NS, "test-ke"), (NS, "test-key2")] {
            let k = RawAesKeyring::new(ns, name, &[1; 32]).unwrap();
            let err = decrypt(&k, SUITE, &context(), &m.encrypted_data_keys).unwrap_err();
            assert!(matches!(err, Error::NotMine { edk_count: 1, .. }), "{ns}/{name}: {err}");
        }
        let err = decrypt(&keyring(&[1; 32]), SUITE, &context(), &[]).unwrap_err();
        assert!(err.is_not_mine());
    }

    #[test]
    fn tampering_fails() {
        let k = keyring(&[9; 32]);
        let m = encrypt(&k, SUITE, &context());
        let edk = &m.encrypted_data_keys[0];
        let iv_start = NAME.len() + 8;

        let mut cases: Vec<(&str, EncryptedDataKey)> = Vec::new();
        for at in [0, 31, 32, 47] {
            let mut e = edk.clone();
            e.ciphertext[at] ^= 1;
            cases.push(("ciphertext bit", e));
        }
        let mut e = edk.clone();
        e.provider_info[iv_start] ^= 1;
        cases.push(("IV bit", e));
        let mut e = edk.clone();
        e.ciphertext.pop();
        cases.push(("short ciphertext", e));
        let mut e = edk.clone();
        e.ciphertext.push(0);
        cases.push(("long ciphertext", e));
        for (what, e) in cases {
            let err = decrypt(&k, SUITE, &context(), std::slice::from_ref(&e)).unwrap_err();
            assert!(matches!(err, Error::Keyring { .. }), "{what}: {err}");
        }

        // Another context value, a missing pair, an extra pair.
        let mut changed = context();
        changed.insert("tenant", "b").unwrap();
        let mut missing = context();
        missing.remove("tenant");
        let mut extra = context();
        extra.insert("z", "1").unwrap();
        for ctx in [changed, missing, extra, EncryptionContext::new()] {
            let err = decrypt(&k, SUITE, &ctx, &m.encrypted_data_keys).unwrap_err();
            assert!(matches!(err, Error::Keyring { .. }), "{ctx:?}: {err}");
        }

        // Tag length or IV length field changed: no longer ours.
        let mut e = edk.clone();
        e.provider_info[NAME.len() + 3] = 96;
        assert!(decrypt(&k, SUITE, &context(), &[e]).unwrap_err().is_not_mine());
    }

    #[test]
    fn tries_every_matching_edk_until_one_opens() {
        let k = keyring(&[4; 32]);
        let m = encrypt(&k, SUITE, &context());
        let mut broken = m.encrypted_data_keys[0].clone();
        broken.ciphertext[0] ^= 0xFF;
        let foreign = encrypt(&keyring(&[5; 32]), SUITE, &context()).encrypted_data_keys[0].clone();
        let other_ns = EncryptedDataKey { provider_id: "x".into(), ..m.encrypted_data_keys[0].clone() };
        let edks = [other_ns, broken.clone(), foreign.clone(), m.encrypted_data_keys[0].clone()];
        let d = decrypt(&k, SUITE, &context(), &edks).unwrap();
        assert_eq!(d.plaintext_data_key, m.plaintext_data_key);

        // Only broken ones: the error keeps each of them, typed and named.
        let err = decrypt(&k, SUITE, &context(), &[broken, foreign]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("EDK #1") && text.contains("EDK #2"), "{text}");
        let Error::NoKeyringDecrypted { failures, .. } = &err else { panic!("{err:?}") };
        assert_eq!(failures.len(), 2);
        assert!(failures.iter().all(|f| matches!(f.error(), Error::Keyring { .. })), "{failures:?}");
        assert_eq!(err.kind(), crate::ErrorKind::NotThisKey);
    }

    #[test]
    fn decrypt_refuses_materials_with_a_key() {
        let k = keyring(&[4; 32]);
        let m = encrypt(&k, SUITE, &context());
        let mut d = DecryptionMaterials::new(SUITE, context());
        d.set_data_key(DataKey::new(vec![0; 32])).unwrap();
        assert!(k.on_decrypt(d, &m.encrypted_data_keys).is_err());
    }

    #[test]
    fn debug_redacts_the_wrapping_key() {
        let k = keyring(&[0xAB; 32]);
        let text = format!("{k:?}");
        assert!(text.contains("REDACTED") && text.contains(NAME) && text.contains("256"), "{text}");
        assert!(!text.contains("171") && !text.to_lowercase().contains("abab"), "{text}");
        assert_eq!(k.description(), format!("raw AES keyring {NS}/{NAME}"));
    }
}
