//! Listing the keys on a token, and what is reported about each.

use std::fmt;

use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectHandle};
use cryptoki::session::Session;

use super::lookup::KeyClass;
use super::token::Token;
use super::uri::{ObjectType, Pkcs11Uri};
use crate::error::Result;

/// DER of the P-384 curve OID 1.3.132.0.34 (`CKA_EC_PARAMS`).
pub(super) const P384_EC_PARAMS: [u8; 7] = [0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22];
/// DER of the P-256 curve OID 1.2.840.10045.3.1.7.
const P256_EC_PARAMS: [u8; 10] = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];

/// The algorithm family of a key object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyKind {
    /// An AES secret key.
    Aes,
    /// An RSA private or public key.
    Rsa,
    /// An elliptic-curve private or public key.
    Ec,
    /// Anything else.
    Other,
}

/// The curve of an elliptic-curve key (`CKA_EC_PARAMS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EcCurve {
    /// NIST P-256 (secp256r1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
    /// A curve not named here.
    Other,
}

impl EcCurve {
    /// The curve's name: `P-256`, `P-384`, or `other`.
    pub fn name(self) -> &'static str {
        match self {
            EcCurve::P256 => "P-256",
            EcCurve::P384 => "P-384",
            EcCurve::Other => "other",
        }
    }

    /// The size of the curve's field in bits, for the curves named here.
    pub fn bits(self) -> Option<u32> {
        match self {
            EcCurve::P256 => Some(256),
            EcCurve::P384 => Some(384),
            EcCurve::Other => None,
        }
    }

    /// The curve whose DER OID `params` (`CKA_EC_PARAMS`) holds.
    pub(crate) fn from_params(params: &[u8]) -> Self {
        if params == P384_EC_PARAMS {
            EcCurve::P384
        } else if params == P256_EC_PARAMS {
            EcCurve::P256
        } else {
            EcCurve::Other
        }
    }
}

impl fmt::Display for EcCurve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An operation a key's attributes allow (`CKA_ENCRYPT`, `CKA_DECRYPT`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum KeyUsage {
    /// `CKA_ENCRYPT`.
    Encrypt,
    /// `CKA_DECRYPT`.
    Decrypt,
    /// `CKA_SIGN`.
    Sign,
    /// `CKA_VERIFY`.
    Verify,
    /// `CKA_WRAP`.
    Wrap,
    /// `CKA_UNWRAP`.
    Unwrap,
    /// `CKA_DERIVE`.
    Derive,
}

impl KeyUsage {
    /// The usage in lower case: `encrypt`, `decrypt`, `sign`, `verify`,
    /// `wrap`, `unwrap`, `derive`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyUsage::Encrypt => "encrypt",
            KeyUsage::Decrypt => "decrypt",
            KeyUsage::Sign => "sign",
            KeyUsage::Verify => "verify",
            KeyUsage::Wrap => "wrap",
            KeyUsage::Unwrap => "unwrap",
            KeyUsage::Derive => "derive",
        }
    }

    /// The usage an attribute grants, when it is a usage flag set to true.
    fn granted_by(attribute: &Attribute) -> Option<Self> {
        match attribute {
            Attribute::Encrypt(true) => Some(KeyUsage::Encrypt),
            Attribute::Decrypt(true) => Some(KeyUsage::Decrypt),
            Attribute::Sign(true) => Some(KeyUsage::Sign),
            Attribute::Verify(true) => Some(KeyUsage::Verify),
            Attribute::Wrap(true) => Some(KeyUsage::Wrap),
            Attribute::Unwrap(true) => Some(KeyUsage::Unwrap),
            Attribute::Derive(true) => Some(KeyUsage::Derive),
            _ => None,
        }
    }
}

impl fmt::Display for KeyUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`Token::list_keys`] reports about one key object.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyInfo {
    /// URI naming the object: token label, object label, id and type.
    pub uri: Pkcs11Uri,
    /// `CKA_LABEL`.
    pub label: String,
    /// `CKA_ID`.
    pub id: Vec<u8>,
    /// The object class.
    pub object_type: ObjectType,
    /// The key type.
    pub kind: KeyKind,
    /// Key size in bits (AES value length, RSA modulus, EC curve), when reported.
    pub bits: Option<u32>,
    /// The curve of a key with `CKA_EC_PARAMS` ([`EcCurve::Other`] when
    /// the curve is not one named there).
    pub curve: Option<EcCurve>,
    /// Usages whose attribute is true, in the order of [`KeyUsage`].
    pub usages: Vec<KeyUsage>,
    /// `CKA_SENSITIVE` (secret and private keys).
    pub sensitive: Option<bool>,
    /// `CKA_EXTRACTABLE` (secret and private keys).
    pub extractable: Option<bool>,
}

impl Token {
    /// Every secret, private and public key on the token, sorted by label.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let mut out = Vec::new();
        for class in [KeyClass::Secret, KeyClass::Private, KeyClass::Public] {
            let infos = self.run(None, |s| {
                let handles = s.find_objects(&[Attribute::Class(class.object_class())])?;
                handles.into_iter().map(|h| self.read_info(s, h, class)).collect::<cryptoki::error::Result<Vec<_>>>()
            })?;
            out.extend(infos);
        }
        out.sort_by(|a, b| a.label.cmp(&b.label).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    fn read_info(&self, s: &Session, h: ObjectHandle, class: KeyClass) -> cryptoki::error::Result<KeyInfo> {
        let attrs = s.get_attributes(
            h,
            &[
                AttributeType::Label,
                AttributeType::Id,
                AttributeType::KeyType,
                AttributeType::ValueLen,
                AttributeType::Modulus,
                AttributeType::EcParams,
                AttributeType::Encrypt,
                AttributeType::Decrypt,
                AttributeType::Sign,
                AttributeType::Verify,
                AttributeType::Wrap,
                AttributeType::Unwrap,
                AttributeType::Derive,
                AttributeType::Sensitive,
                AttributeType::Extractable,
            ],
        )?;
        let mut info = KeyInfo {
            uri: Pkcs11Uri::default(),
            label: String::new(),
            id: Vec::new(),
            object_type: class.uri_type(),
            kind: KeyKind::Other,
            bits: None,
            curve: None,
            usages: Vec::new(),
            sensitive: None,
            extractable: None,
        };
        for a in attrs {
            if let Some(usage) = KeyUsage::granted_by(&a) {
                info.usages.push(usage);
                continue;
            }
            match a {
                Attribute::Label(l) => info.label = String::from_utf8_lossy(&l).into_owned(),
                Attribute::Id(id) => info.id = id,
                Attribute::KeyType(k) if k == KeyType::AES => info.kind = KeyKind::Aes,
                Attribute::KeyType(k) if k == KeyType::RSA => info.kind = KeyKind::Rsa,
                Attribute::KeyType(k) if k == KeyType::EC => info.kind = KeyKind::Ec,
                Attribute::ValueLen(n) => {
                    info.bits = u32::try_from(usize::from(n)).ok().and_then(|n| n.checked_mul(8));
                }
                Attribute::Modulus(m) => {
                    let significant = m.iter().skip_while(|b| **b == 0).count();
                    info.bits = u32::try_from(significant).ok().and_then(|n| n.checked_mul(8));
                }
                Attribute::EcParams(p) if !p.is_empty() => info.curve = Some(EcCurve::from_params(&p)),
                Attribute::Sensitive(b) => info.sensitive = Some(b),
                Attribute::Extractable(b) => info.extractable = Some(b),
                _ => {}
            }
        }
        if info.kind == KeyKind::Ec && info.bits.is_none() {
            info.bits = info.curve.and_then(EcCurve::bits);
        }
        info.uri = self.key_uri(Some(&info.label), Some(&info.id), Some(info.object_type));
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_from_ec_params() {
        assert_eq!(EcCurve::from_params(&P384_EC_PARAMS), EcCurve::P384);
        assert_eq!(EcCurve::from_params(&P256_EC_PARAMS), EcCurve::P256);
        // P-521 (1.3.132.0.35), a truncated OID, nothing at all.
        assert_eq!(EcCurve::from_params(&[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x23]), EcCurve::Other);
        assert_eq!(EcCurve::from_params(&P384_EC_PARAMS[..6]), EcCurve::Other);
        assert_eq!(EcCurve::from_params(&[]), EcCurve::Other);
        assert_eq!((EcCurve::P384.name(), EcCurve::P384.bits()), ("P-384", Some(384)));
        assert_eq!((EcCurve::P256.name(), EcCurve::P256.bits()), ("P-256", Some(256)));
        assert_eq!(EcCurve::Other.bits(), None);
        assert_eq!(EcCurve::P256.to_string(), "P-256");
    }

    #[test]
    fn usages_from_attributes() {
        let granted = [
            (Attribute::Encrypt(true), KeyUsage::Encrypt, "encrypt"),
            (Attribute::Decrypt(true), KeyUsage::Decrypt, "decrypt"),
            (Attribute::Sign(true), KeyUsage::Sign, "sign"),
            (Attribute::Verify(true), KeyUsage::Verify, "verify"),
            (Attribute::Wrap(true), KeyUsage::Wrap, "wrap"),
            (Attribute::Unwrap(true), KeyUsage::Unwrap, "unwrap"),
            (Attribute::Derive(true), KeyUsage::Derive, "derive"),
        ];
        for (attribute, usage, name) in granted {
            assert_eq!(KeyUsage::granted_by(&attribute), Some(usage));
            assert_eq!((usage.as_str(), usage.to_string().as_str()), (name, name));
        }
        // A usage flag set to false, or another attribute, grants nothing.
        for attribute in [Attribute::Decrypt(false), Attribute::Sensitive(true), Attribute::Label(b"sign".to_vec())] {
            assert_eq!(KeyUsage::granted_by(&attribute), None);
        }
    }
}
