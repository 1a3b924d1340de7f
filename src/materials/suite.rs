//! The eleven algorithm suites of the AWS Encryption SDK and the commitment policies.

use crate::error::{Error, Result};

/// Hash function used by a suite's key derivation or signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashAlg {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// Key derivation of a suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kdf {
    /// The data key is the encryption key (legacy, no KDF).
    Identity,
    /// HKDF with the given hash (v1: no salt, info = suite id || message id).
    Hkdf(HashAlg),
    /// HKDF-SHA512 with key commitment (v2: salt = message id).
    HkdfCommitting,
}

/// Curve of a suite's footer signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureCurve {
    /// ECDSA P-256 with SHA-256.
    P256,
    /// ECDSA P-384 with SHA-384.
    P384,
}

impl SignatureCurve {
    /// Hash used to digest header and body.
    pub fn hash(self) -> HashAlg {
        match self {
            SignatureCurve::P256 => HashAlg::Sha256,
            SignatureCurve::P384 => HashAlg::Sha384,
        }
    }

    /// Length of a compressed public point.
    pub fn compressed_point_len(self) -> usize {
        match self {
            SignatureCurve::P256 => 33,
            SignatureCurve::P384 => 49,
        }
    }
}

/// An algorithm suite of the AWS Encryption SDK message format.
///
/// All use AES-GCM with a 12-byte IV and a 16-byte tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[non_exhaustive]
pub enum AlgorithmSuite {
    /// 0x0014: AES-128-GCM, no KDF (v1).
    Aes128GcmIv12Tag16NoKdf,
    /// 0x0046: AES-192-GCM, no KDF (v1).
    Aes192GcmIv12Tag16NoKdf,
    /// 0x0078: AES-256-GCM, no KDF (v1).
    Aes256GcmIv12Tag16NoKdf,
    /// 0x0114: AES-128-GCM, HKDF-SHA256 (v1).
    Aes128GcmIv12Tag16HkdfSha256,
    /// 0x0146: AES-192-GCM, HKDF-SHA256 (v1).
    Aes192GcmIv12Tag16HkdfSha256,
    /// 0x0178: AES-256-GCM, HKDF-SHA256 (v1).
    Aes256GcmIv12Tag16HkdfSha256,
    /// 0x0214: AES-128-GCM, HKDF-SHA256, ECDSA P-256 (v1).
    Aes128GcmIv12Tag16HkdfSha256EcdsaP256,
    /// 0x0346: AES-192-GCM, HKDF-SHA384, ECDSA P-384 (v1).
    Aes192GcmIv12Tag16HkdfSha384EcdsaP384,
    /// 0x0378: AES-256-GCM, HKDF-SHA384, ECDSA P-384 (v1).
    Aes256GcmIv12Tag16HkdfSha384EcdsaP384,
    /// 0x0478: AES-256-GCM, HKDF-SHA512, key commitment (v2).
    Aes256GcmHkdfSha512CommitKey,
    /// 0x0578: AES-256-GCM, HKDF-SHA512, key commitment, ECDSA P-384 (v2, the default).
    #[default]
    Aes256GcmHkdfSha512CommitKeyEcdsaP384,
    /// 0x6700 (DynamoDB items only): AES-256-GCM, HKDF-SHA512, key commitment,
    /// HMAC-SHA384 record tags; data keys are wrapped through an intermediate key.
    DbeAes256GcmHkdfSha512CommitKeySymsigHmacSha384,
    /// 0x6701 (DynamoDB items only, their default): as 0x6700 plus an ECDSA
    /// P-384 record signature.
    DbeAes256GcmHkdfSha512CommitKeyEcdsaP384SymsigHmacSha384,
}

impl AlgorithmSuite {
    /// Every suite, in id order.
    pub const ALL: [AlgorithmSuite; 11] = [
        AlgorithmSuite::Aes128GcmIv12Tag16NoKdf,
        AlgorithmSuite::Aes192GcmIv12Tag16NoKdf,
        AlgorithmSuite::Aes256GcmIv12Tag16NoKdf,
        AlgorithmSuite::Aes128GcmIv12Tag16HkdfSha256,
        AlgorithmSuite::Aes192GcmIv12Tag16HkdfSha256,
        AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha256,
        AlgorithmSuite::Aes128GcmIv12Tag16HkdfSha256EcdsaP256,
        AlgorithmSuite::Aes192GcmIv12Tag16HkdfSha384EcdsaP384,
        AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha384EcdsaP384,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
    ];

    /// The suites of DynamoDB item encryption (not message suites: never in
    /// [`AlgorithmSuite::ALL`], never accepted by the message format).
    pub const ITEM_SUITES: [AlgorithmSuite; 2] = [
        AlgorithmSuite::DbeAes256GcmHkdfSha512CommitKeySymsigHmacSha384,
        AlgorithmSuite::DbeAes256GcmHkdfSha512CommitKeyEcdsaP384SymsigHmacSha384,
    ];

    /// True for the DynamoDB item suites (0x6700, 0x6701).
    pub fn is_item_suite(self) -> bool {
        Self::ITEM_SUITES.contains(&self)
    }

    /// True when keyrings wrap the data key through a fresh intermediate key
    /// and derive a symmetric signing key from it (the item suites).
    pub fn wraps_intermediate_key(self) -> bool {
        self.is_item_suite()
    }

    /// Look an item suite up by its id (0x6700 or 0x6701).
    pub fn from_item_id(id: u16) -> Result<Self> {
        Self::ITEM_SUITES.into_iter().find(|s| s.id() == id).ok_or(Error::UnsupportedSuite(id))
    }

    /// The two-byte suite id written in the header.
    pub fn id(self) -> u16 {
        use AlgorithmSuite::*;
        match self {
            Aes128GcmIv12Tag16NoKdf => 0x0014,
            Aes192GcmIv12Tag16NoKdf => 0x0046,
            Aes256GcmIv12Tag16NoKdf => 0x0078,
            Aes128GcmIv12Tag16HkdfSha256 => 0x0114,
            Aes192GcmIv12Tag16HkdfSha256 => 0x0146,
            Aes256GcmIv12Tag16HkdfSha256 => 0x0178,
            Aes128GcmIv12Tag16HkdfSha256EcdsaP256 => 0x0214,
            Aes192GcmIv12Tag16HkdfSha384EcdsaP384 => 0x0346,
            Aes256GcmIv12Tag16HkdfSha384EcdsaP384 => 0x0378,
            Aes256GcmHkdfSha512CommitKey => 0x0478,
            Aes256GcmHkdfSha512CommitKeyEcdsaP384 => 0x0578,
            DbeAes256GcmHkdfSha512CommitKeySymsigHmacSha384 => 0x6700,
            DbeAes256GcmHkdfSha512CommitKeyEcdsaP384SymsigHmacSha384 => 0x6701,
        }
    }

    /// Look a suite up by its id.
    pub fn from_id(id: u16) -> Result<Self> {
        Self::ALL.into_iter().find(|s| s.id() == id).ok_or(Error::UnsupportedSuite(id))
    }

    /// The name used by the AWS SDKs, e.g. `ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY`.
    pub fn name(self) -> &'static str {
        use AlgorithmSuite::*;
        match self {
            Aes128GcmIv12Tag16NoKdf => "ALG_AES_128_GCM_IV12_TAG16_NO_KDF",
            Aes192GcmIv12Tag16NoKdf => "ALG_AES_192_GCM_IV12_TAG16_NO_KDF",
            Aes256GcmIv12Tag16NoKdf => "ALG_AES_256_GCM_IV12_TAG16_NO_KDF",
            Aes128GcmIv12Tag16HkdfSha256 => "ALG_AES_128_GCM_IV12_TAG16_HKDF_SHA256",
            Aes192GcmIv12Tag16HkdfSha256 => "ALG_AES_192_GCM_IV12_TAG16_HKDF_SHA256",
            Aes256GcmIv12Tag16HkdfSha256 => "ALG_AES_256_GCM_IV12_TAG16_HKDF_SHA256",
            Aes128GcmIv12Tag16HkdfSha256EcdsaP256 => "ALG_AES_128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256",
            Aes192GcmIv12Tag16HkdfSha384EcdsaP384 => "ALG_AES_192_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384",
            Aes256GcmIv12Tag16HkdfSha384EcdsaP384 => "ALG_AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384",
            Aes256GcmHkdfSha512CommitKey => "ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY",
            Aes256GcmHkdfSha512CommitKeyEcdsaP384 => "ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384",
            DbeAes256GcmHkdfSha512CommitKeySymsigHmacSha384 => {
                "ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY_SYMSIG_HMAC_SHA384"
            }
            DbeAes256GcmHkdfSha512CommitKeyEcdsaP384SymsigHmacSha384 => {
                "ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384_SYMSIG_HMAC_SHA384"
            }
        }
    }

    /// Parse `0x0478`, `0478`, or a suite name (case-insensitive).
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim();
        let hex = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t);
        if let Ok(id) = u16::from_str_radix(hex, 16) {
            if hex.len() == 4 {
                return Self::from_id(id);
            }
        }
        Self::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(t))
            .ok_or_else(|| Error::config(format!("unknown algorithm suite `{text}`")))
    }

    /// Message format version written for this suite (1 or 2).
    pub fn message_format_version(self) -> u8 {
        if self.is_committing() {
            2
        } else {
            1
        }
    }

    /// Data key (and encryption key) length in bytes.
    pub fn key_len(self) -> usize {
        use AlgorithmSuite::*;
        match self {
            Aes128GcmIv12Tag16NoKdf | Aes128GcmIv12Tag16HkdfSha256 | Aes128GcmIv12Tag16HkdfSha256EcdsaP256 => 16,
            Aes192GcmIv12Tag16NoKdf | Aes192GcmIv12Tag16HkdfSha256 | Aes192GcmIv12Tag16HkdfSha384EcdsaP384 => 24,
            _ => 32,
        }
    }

    /// The suite's key derivation.
    pub fn kdf(self) -> Kdf {
        use AlgorithmSuite::*;
        match self {
            Aes128GcmIv12Tag16NoKdf | Aes192GcmIv12Tag16NoKdf | Aes256GcmIv12Tag16NoKdf => Kdf::Identity,
            Aes128GcmIv12Tag16HkdfSha256
            | Aes192GcmIv12Tag16HkdfSha256
            | Aes256GcmIv12Tag16HkdfSha256
            | Aes128GcmIv12Tag16HkdfSha256EcdsaP256 => Kdf::Hkdf(HashAlg::Sha256),
            Aes192GcmIv12Tag16HkdfSha384EcdsaP384 | Aes256GcmIv12Tag16HkdfSha384EcdsaP384 => Kdf::Hkdf(HashAlg::Sha384),
            Aes256GcmHkdfSha512CommitKey
            | Aes256GcmHkdfSha512CommitKeyEcdsaP384
            | DbeAes256GcmHkdfSha512CommitKeySymsigHmacSha384
            | DbeAes256GcmHkdfSha512CommitKeyEcdsaP384SymsigHmacSha384 => Kdf::HkdfCommitting,
        }
    }

    /// True for the suites with key commitment (0x0478, 0x0578).
    pub fn is_committing(self) -> bool {
        self.kdf() == Kdf::HkdfCommitting
    }

    /// Footer signature curve, if the suite signs.
    pub fn signature(self) -> Option<SignatureCurve> {
        use AlgorithmSuite::*;
        match self {
            Aes128GcmIv12Tag16HkdfSha256EcdsaP256 => Some(SignatureCurve::P256),
            Aes192GcmIv12Tag16HkdfSha384EcdsaP384
            | Aes256GcmIv12Tag16HkdfSha384EcdsaP384
            | Aes256GcmHkdfSha512CommitKeyEcdsaP384
            | DbeAes256GcmHkdfSha512CommitKeyEcdsaP384SymsigHmacSha384 => Some(SignatureCurve::P384),
            _ => None,
        }
    }

    /// True if messages of this suite carry a footer signature.
    pub fn is_signing(self) -> bool {
        self.signature().is_some()
    }

    /// Length of the message id (16 for v1, 32 for v2).
    pub fn message_id_len(self) -> usize {
        if self.message_format_version() == 2 {
            32
        } else {
            16
        }
    }
}

/// Which suites may be used to encrypt and decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum CommitmentPolicy {
    /// Encrypt only with non-committing suites; decrypt anything.
    ForbidEncryptAllowDecrypt,
    /// Encrypt only with committing suites; decrypt anything.
    RequireEncryptAllowDecrypt,
    /// Encrypt and decrypt only committing suites (the default).
    #[default]
    RequireEncryptRequireDecrypt,
}

impl CommitmentPolicy {
    /// The suite used to encrypt when none is configured.
    pub fn default_suite(self) -> AlgorithmSuite {
        match self {
            CommitmentPolicy::ForbidEncryptAllowDecrypt => AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha384EcdsaP384,
            _ => AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        }
    }

    /// Refuse `suite` for encryption if the policy forbids it.
    pub fn check_encrypt(self, suite: AlgorithmSuite) -> Result<()> {
        let ok = match self {
            CommitmentPolicy::ForbidEncryptAllowDecrypt => !suite.is_committing(),
            _ => suite.is_committing(),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::PolicyViolation {
                reason: format!("commitment policy {self:?} does not allow encrypting with suite 0x{:04X}", suite.id()),
            })
        }
    }

    /// Refuse `suite` for decryption if the policy forbids it.
    pub fn check_decrypt(self, suite: AlgorithmSuite) -> Result<()> {
        if self == CommitmentPolicy::RequireEncryptRequireDecrypt && !suite.is_committing() {
            return Err(Error::PolicyViolation {
                reason: format!(
                    "commitment policy {self:?} does not allow decrypting suite 0x{:04X} (no key commitment)",
                    suite.id()
                ),
            });
        }
        Ok(())
    }

    /// Parse the policy's name (e.g. `RequireEncryptAllowDecrypt`, or kebab-case).
    pub fn parse(text: &str) -> Result<Self> {
        let norm: String = text.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
        match norm.as_str() {
            "forbidencryptallowdecrypt" => Ok(CommitmentPolicy::ForbidEncryptAllowDecrypt),
            "requireencryptallowdecrypt" => Ok(CommitmentPolicy::RequireEncryptAllowDecrypt),
            "requireencryptrequiredecrypt" => Ok(CommitmentPolicy::RequireEncryptRequireDecrypt),
            _ => Err(Error::config(format!("unknown commitment policy `{text}`"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_unknown_ids_fail() {
        for s in AlgorithmSuite::ALL {
            assert_eq!(AlgorithmSuite::from_id(s.id()).unwrap(), s);
            assert_eq!(AlgorithmSuite::parse(s.name()).unwrap(), s);
            assert_eq!(AlgorithmSuite::parse(&format!("0x{:04x}", s.id())).unwrap(), s);
        }
        assert!(matches!(AlgorithmSuite::from_id(0x0479), Err(Error::UnsupportedSuite(0x0479))));
        assert!(AlgorithmSuite::parse("0x47").is_err());
    }

    #[test]
    fn item_suites_stay_out_of_the_message_suites() {
        for s in AlgorithmSuite::ITEM_SUITES {
            assert!(s.is_item_suite() && s.wraps_intermediate_key() && s.is_committing());
            assert_eq!(AlgorithmSuite::from_item_id(s.id()).unwrap(), s);
            assert!(matches!(AlgorithmSuite::from_id(s.id()), Err(Error::UnsupportedSuite(_))));
            assert!(AlgorithmSuite::parse(&format!("0x{:04x}", s.id())).is_err());
            assert_eq!(s.key_len(), 32);
        }
        assert!(AlgorithmSuite::ALL.iter().all(|s| !s.is_item_suite()));
        assert!(AlgorithmSuite::from_item_id(0x0578).is_err());
        assert!(!AlgorithmSuite::DbeAes256GcmHkdfSha512CommitKeySymsigHmacSha384.is_signing());
        assert!(AlgorithmSuite::DbeAes256GcmHkdfSha512CommitKeyEcdsaP384SymsigHmacSha384.is_signing());
    }

    #[test]
    fn policy_matrix() {
        use AlgorithmSuite::*;
        let p = CommitmentPolicy::default();
        assert_eq!(p.default_suite().id(), 0x0578);
        assert!(p.check_encrypt(Aes256GcmHkdfSha512CommitKey).is_ok());
        assert!(p.check_encrypt(Aes256GcmIv12Tag16HkdfSha256).is_err());
        assert!(p.check_decrypt(Aes256GcmIv12Tag16HkdfSha256).is_err());
        let f = CommitmentPolicy::ForbidEncryptAllowDecrypt;
        assert!(f.check_encrypt(Aes256GcmHkdfSha512CommitKey).is_err());
        assert!(f.check_decrypt(Aes256GcmHkdfSha512CommitKey).is_ok());
        assert!(CommitmentPolicy::RequireEncryptAllowDecrypt.check_decrypt(Aes128GcmIv12Tag16NoKdf).is_ok());
        assert_eq!(
            CommitmentPolicy::parse("require-encrypt-allow-decrypt").unwrap(),
            CommitmentPolicy::RequireEncryptAllowDecrypt
        );
    }
}
