//! The multi-keyring: one generator and any number of children.
//!
//! On encrypt the generator makes the data key and its EDK, then each child
//! wraps the same data key; any failure fails the whole encrypt, so a message
//! is never written that some configured keyring cannot open. On decrypt the
//! generator and then the children are tried in order; the first success
//! wins, and if none succeeds every keyring's reason is reported.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, KeyringFailure, Result};
use crate::materials::{DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring};

/// A keyring made of an optional generator and child keyrings.
///
/// ```
/// use std::sync::Arc;
/// use hsm_keyring::keyrings::{MultiKeyring, RawAesKeyring};
/// use hsm_keyring::Keyring;
///
/// let primary: Arc<dyn Keyring> = Arc::new(RawAesKeyring::new("ns", "primary", &[1; 32])?);
/// let escrow: Arc<dyn Keyring> = Arc::new(RawAesKeyring::new("ns", "escrow", &[2; 32])?);
/// let keyring = MultiKeyring::new(Some(primary), vec![escrow])?;
/// assert_eq!(keyring.children().len(), 1);
/// # Ok::<(), hsm_keyring::Error>(())
/// ```
#[derive(Clone)]
pub struct MultiKeyring {
    generator: Option<Arc<dyn Keyring>>,
    children: Vec<Arc<dyn Keyring>>,
}

impl fmt::Debug for MultiKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiKeyring").field("generator", &self.generator).field("children", &self.children).finish()
    }
}

impl MultiKeyring {
    /// A multi-keyring; it needs a generator, at least one child, or both.
    ///
    /// Without a generator it can only encrypt materials that already hold a
    /// data key (made by another keyring or a CMM).
    pub fn new(generator: Option<Arc<dyn Keyring>>, children: Vec<Arc<dyn Keyring>>) -> Result<Self> {
        if generator.is_none() && children.is_empty() {
            return Err(Error::config("a multi-keyring needs a generator keyring or at least one child keyring"));
        }
        Ok(MultiKeyring { generator, children })
    }

    /// The generator keyring, if any.
    pub fn generator(&self) -> Option<&Arc<dyn Keyring>> {
        self.generator.as_ref()
    }

    /// The child keyrings, in order.
    pub fn children(&self) -> &[Arc<dyn Keyring>] {
        &self.children
    }

    /// Generator first, then the children.
    fn members(&self) -> impl Iterator<Item = &Arc<dyn Keyring>> {
        self.generator.iter().chain(self.children.iter())
    }
}

impl Keyring for MultiKeyring {
    fn on_encrypt(&self, materials: EncryptionMaterials) -> Result<EncryptionMaterials> {
        let mut materials = match &self.generator {
            Some(generator) => {
                if materials.data_key().is_some() {
                    return Err(Error::keyring(
                        self.description(),
                        "the materials already hold a data key, but this multi-keyring's generator must make it",
                    ));
                }
                let out = generator.on_encrypt(materials)?;
                if out.data_key().is_none() {
                    return Err(Error::keyring(
                        self.description(),
                        format!("the generator {} returned no data key", generator.description()),
                    ));
                }
                out
            }
            None => {
                if materials.data_key().is_none() {
                    return Err(Error::keyring(
                        self.description(),
                        "the materials hold no data key and this multi-keyring has no generator to make one",
                    ));
                }
                materials
            }
        };
        for child in &self.children {
            materials = child.on_encrypt(materials)?;
        }
        Ok(materials)
    }

    fn on_decrypt(&self, materials: DecryptionMaterials, edks: &[EncryptedDataKey]) -> Result<DecryptionMaterials> {
        if materials.data_key().is_some() {
            return Err(Error::keyring(self.description(), "the decryption materials already hold a data key"));
        }
        let mut failures = Vec::new();
        for member in self.members() {
            match member.on_decrypt(materials.clone(), edks) {
                Ok(out) if out.data_key().is_some() => return Ok(out),
                Ok(_) => failures.push(KeyringFailure::from_error(
                    member.description(),
                    Error::keyring(member.description(), "returned no data key"),
                )),
                Err(err) => failures.push(KeyringFailure::from_error(member.description(), err)),
            }
        }
        Err(Error::no_keyring_decrypted(failures, edks))
    }

    fn description(&self) -> String {
        let mut text = String::from("multi-keyring (");
        if let Some(generator) = &self.generator {
            text.push_str("generator ");
            text.push_str(&generator.description());
            if !self.children.is_empty() {
                text.push_str("; ");
            }
        }
        if !self.children.is_empty() {
            text.push_str("children ");
            let names: Vec<String> = self.children.iter().map(|c| c.description()).collect();
            text.push_str(&names.join(", "));
        }
        text.push(')');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyrings::RawAesKeyring;
    use crate::materials::{AlgorithmSuite, DataKey, EncryptionContext};

    const SUITE: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;

    fn aes(name: &str, byte: u8) -> Arc<dyn Keyring> {
        Arc::new(RawAesKeyring::new("multi-test", name, &[byte; 32]).unwrap())
    }

    fn ctx() -> EncryptionContext {
        EncryptionContext::from_pairs([("k", "v")]).unwrap()
    }

    fn decrypt(k: &dyn Keyring, edks: &[EncryptedDataKey]) -> Result<DecryptionMaterials> {
        k.on_decrypt(DecryptionMaterials::new(SUITE, ctx()), edks)
    }

    /// A keyring that always fails, to check error handling.
    #[derive(Debug)]
    struct Failing(&'static str);

    impl Keyring for Failing {
        fn on_encrypt(&self, _: EncryptionMaterials) -> Result<EncryptionMaterials> {
            Err(Error::keyring(self.description(), self.0))
        }
        fn on_decrypt(&self, _: DecryptionMaterials, _: &[EncryptedDataKey]) -> Result<DecryptionMaterials> {
            Err(Error::keyring(self.description(), self.0))
        }
        fn description(&self) -> String {
            format!("failing keyring {}", self.0)
        }
    }

    #[test]
    fn generator_and_children_each_add_an_edk_that_opens_alone() {
        let (g, c1, c2) = (aes("gen", 1), aes("child1", 2), aes("child2", 3));
        let multi = MultiKeyring::new(Some(g.clone()), vec![c1.clone(), c2.clone()]).unwrap();
        let m = multi.on_encrypt(EncryptionMaterials::new(SUITE, ctx())).unwrap();
        assert_eq!(m.encrypted_data_keys().len(), 3);
        for (i, k) in [g, c1, c2].iter().enumerate() {
            let d = decrypt(k.as_ref(), m.encrypted_data_keys()).unwrap();
            assert_eq!(d.data_key(), m.data_key(), "member {i}");
            // And each EDK alone is opened by the multi-keyring.
            let d = decrypt(&multi, &m.encrypted_data_keys()[i..=i]).unwrap();
            assert_eq!(d.data_key(), m.data_key(), "EDK {i}");
        }
        let names: Vec<&[u8]> = m.encrypted_data_keys().iter().map(|e| &e.provider_info[..]).collect();
        assert!(names[0].starts_with(b"gen") && names[1].starts_with(b"child1") && names[2].starts_with(b"child2"));
    }

    #[test]
    fn needs_a_member() {
        assert!(matches!(MultiKeyring::new(None, vec![]), Err(Error::Config { .. })));
    }

    #[test]
    fn without_generator_wraps_an_existing_key_only() {
        let multi = MultiKeyring::new(None, vec![aes("a", 1), aes("b", 2)]).unwrap();
        let err = multi.on_encrypt(EncryptionMaterials::new(SUITE, ctx())).unwrap_err();
        assert!(err.to_string().contains("no generator"), "{err}");

        let mut m = EncryptionMaterials::new(SUITE, ctx());
        m.set_data_key(DataKey::new(vec![0x77; 32])).unwrap();
        let m = multi.on_encrypt(m).unwrap();
        assert_eq!(m.encrypted_data_keys().len(), 2);
        let d = decrypt(aes("b", 2).as_ref(), m.encrypted_data_keys()).unwrap();
        assert_eq!(d.data_key().unwrap().as_bytes(), &[0x77; 32]);
    }

    #[test]
    fn generator_refuses_materials_with_a_key() {
        let multi = MultiKeyring::new(Some(aes("g", 1)), vec![]).unwrap();
        let mut m = EncryptionMaterials::new(SUITE, ctx());
        m.set_data_key(DataKey::new(vec![0; 32])).unwrap();
        assert!(multi.on_encrypt(m).is_err());
    }

    #[test]
    fn any_encrypt_failure_fails_the_whole_encrypt() {
        let failing: Arc<dyn Keyring> = Arc::new(Failing("child broke"));
        let multi = MultiKeyring::new(Some(aes("g", 1)), vec![aes("c", 2), failing.clone()]).unwrap();
        let err = multi.on_encrypt(EncryptionMaterials::new(SUITE, ctx())).unwrap_err();
        assert!(err.to_string().contains("child broke"), "{err}");
        let multi = MultiKeyring::new(Some(failing), vec![aes("c", 2)]).unwrap();
        assert!(multi.on_encrypt(EncryptionMaterials::new(SUITE, ctx())).is_err());
    }

    #[test]
    fn decrypt_first_success_wins_after_failures() {
        let source = aes("target", 9);
        let m = source.on_encrypt(EncryptionMaterials::new(SUITE, ctx())).unwrap();
        let multi =
            MultiKeyring::new(Some(Arc::new(Failing("generator down"))), vec![aes("other", 1), aes("target", 9)])
                .unwrap();
        let d = decrypt(&multi, m.encrypted_data_keys()).unwrap();
        assert_eq!(d.data_key(), m.data_key());
    }

    #[test]
    fn decrypt_collects_every_failure() {
        // EDK made by "target" with key 9; the multi-keyring holds "target"
        // with the wrong key, an unrelated key, and a failing keyring.
        let m = aes("target", 9).on_encrypt(EncryptionMaterials::new(SUITE, ctx())).unwrap();
        let multi =
            MultiKeyring::new(Some(aes("target", 8)), vec![aes("unrelated", 1), Arc::new(Failing("token offline"))])
                .unwrap();
        let err = decrypt(&multi, m.encrypted_data_keys()).unwrap_err();
        let Error::NoKeyringDecrypted { failures, .. } = &err else { panic!("unexpected error {err}") };
        assert_eq!(failures.len(), 3);
        assert_eq!(failures[0].keyring, "raw AES keyring multi-test/target");
        assert!(!failures[0].is_not_mine() && failures[0].to_string().contains("authentication failed"));
        assert!(failures[1].is_not_mine() && failures[1].to_string().contains("multi-test/unrelated"));
        assert!(!failures[2].is_not_mine() && failures[2].to_string().contains("token offline"));
        assert!(matches!(failures[1].error(), Error::NotMine { .. }));
        let text = err.to_string();
        for needle in ["authentication failed", "multi-test/unrelated", "token offline"] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
    }

    #[test]
    fn nested_multi_keyrings() {
        let inner = Arc::new(MultiKeyring::new(None, vec![aes("deep", 5)]).unwrap());
        let outer = MultiKeyring::new(Some(aes("top", 4)), vec![inner.clone()]).unwrap();
        let m = outer.on_encrypt(EncryptionMaterials::new(SUITE, ctx())).unwrap();
        assert_eq!(m.encrypted_data_keys().len(), 2);
        let d = decrypt(inner.as_ref(), m.encrypted_data_keys()).unwrap();
        assert_eq!(d.data_key(), m.data_key());
        assert!(outer.description().contains("multi-test/deep"), "{}", outer.description());
    }

    #[test]
    fn decrypt_refuses_materials_with_a_key() {
        let multi = MultiKeyring::new(Some(aes("g", 1)), vec![]).unwrap();
        let mut d = DecryptionMaterials::new(SUITE, ctx());
        d.set_data_key(DataKey::new(vec![0; 32])).unwrap();
        assert!(multi.on_decrypt(d, &[]).is_err());
    }

    #[test]
    fn debug_shows_no_key_bytes() {
        let multi = MultiKeyring::new(Some(aes("g", 0xAB)), vec![]).unwrap();
        let text = format!("{multi:?}");
        assert!(text.contains("REDACTED") && !text.contains("171"), "{text}");
    }
}
