//! Vendor profiles: what a token needs done its own way (GCM IV, key
//! templates, RSA paddings, object ids), and the per-token check that a
//! mechanism exists before it is first used.
//!
//! A token's profile is chosen when it is opened: the one named by
//! [`TokenOptions::profile`](super::TokenOptions::profile) or the URI's
//! `profile=` query attribute, else the one whose manufacturer or model
//! matches what `C_GetInfo` and `C_GetTokenInfo` report, else
//! [`Profile::generic`]. See `docs/hsm-compatibility.md`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::MechanismType;

use super::aes::GcmIvMode;
use super::module::{Module, TokenSummary};
use super::token::Token;
use super::uri::Pkcs11Uri;
use super::{Function, Pkcs11Class, Pkcs11Error, Pkcs11Operation};
use crate::crypto::RsaPadding;
use crate::error::{Error, Result};

/// The URI query attribute naming a profile: `?profile=luna-fips`.
pub const PROFILE_QUERY: &str = "profile";

const ALL_PADDINGS: &[RsaPadding] =
    &[RsaPadding::Pkcs1, RsaPadding::OaepSha1, RsaPadding::OaepSha256, RsaPadding::OaepSha384, RsaPadding::OaepSha512];
const OAEP_ONLY: &[RsaPadding] =
    &[RsaPadding::OaepSha1, RsaPadding::OaepSha256, RsaPadding::OaepSha384, RsaPadding::OaepSha512];

/// How a token's vendor wants things done.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Profile {
    /// Name, as accepted by [`Profile::named`] (`softhsm`, `luna-fips`, ...).
    pub name: &'static str,
    /// Who chooses the AES-GCM IV of a wrap (the default of
    /// [`Pkcs11AesKeyring`](super::Pkcs11AesKeyring)).
    pub gcm_iv: GcmIvMode,
    /// The token offers the standard `CKM_AES_GCM` (Google's kmsp11 has a
    /// vendor mechanism instead, which this crate does not use).
    pub standard_aes_gcm: bool,
    /// `CKA_PRIVATE` written into generated public-key templates; `None`
    /// leaves the attribute out so the token's default applies (AWS
    /// CloudHSM refuses anything but its default, `true`).
    pub public_key_private: Option<bool>,
    /// RSA paddings the token runs in `C_Encrypt` / `C_Decrypt`; others
    /// are refused before the token is called (wrapping in process,
    /// [`RsaWrapMode::InProcess`](super::RsaWrapMode::InProcess), still
    /// works with any padding).
    pub rsa_paddings: &'static [RsaPadding],
    /// Length of the random `CKA_ID` given to keys created without one.
    pub object_id_len: usize,
    /// Keys can be generated and imported through PKCS#11.
    pub creates_keys: bool,
    /// The token answers `CKR_DEVICE_ERROR` when a decryption or unwrap
    /// finds ciphertext that does not open (Kryoptic passes OpenSSL's
    /// failure on, a bad RSA-OAEP padding included): on a healthy session
    /// that answer to an unwrap is the token's refusal ("not this key"), as
    /// `CKR_ENCRYPTED_DATA_INVALID` is, not a device fault.
    pub device_error_refuses: bool,
}

impl Profile {
    /// SoftHSM 2: caller IVs, RSA-OAEP with SHA-1 only (and PKCS#1 v1.5).
    pub fn softhsm() -> Self {
        Profile { name: "softhsm", rsa_paddings: &[RsaPadding::Pkcs1, RsaPadding::OaepSha1], ..Self::base("softhsm") }
    }

    /// Kryoptic: caller IVs, every OAEP hash; ciphertext that does not open
    /// is refused with `CKR_DEVICE_ERROR`.
    pub fn kryoptic() -> Self {
        Profile { device_error_refuses: true, ..Self::base("kryoptic") }
    }

    /// AWS CloudHSM: the token generates the GCM IV into the parameter;
    /// generated public keys keep the default `CKA_PRIVATE=true`.
    pub fn cloudhsm() -> Self {
        Profile { gcm_iv: GcmIvMode::TokenGenerated, public_key_private: None, ..Self::base("cloudhsm") }
    }

    /// Thales Luna in FIPS mode: the token's GCM IV comes after the tag;
    /// PKCS#1 v1.5 encryption is refused.
    pub fn luna_fips() -> Self {
        Profile { gcm_iv: GcmIvMode::TokenAppended, rsa_paddings: OAEP_ONLY, ..Self::base("luna-fips") }
    }

    /// Thales Luna outside FIPS mode. A token that generates the IV anyway
    /// (and appends it) is still read right.
    pub fn luna() -> Self {
        Profile { gcm_iv: GcmIvMode::TokenAppended, ..Self::base("luna") }
    }

    /// Yubico YubiHSM 2: no AES-GCM, 2-byte object ids.
    pub fn yubihsm2() -> Self {
        Profile { object_id_len: 2, ..Self::base("yubihsm2") }
    }

    /// Google Cloud KMS through kmsp11: vendor GCM mechanism, no key
    /// creation through PKCS#11 (keys are made in Cloud KMS).
    pub fn kmsp11() -> Self {
        Profile { standard_aes_gcm: false, public_key_private: None, creates_keys: false, ..Self::base("kmsp11") }
    }

    /// Any other token: caller IVs, no optional attributes on public keys,
    /// the token decides on paddings.
    pub fn generic() -> Self {
        Profile { public_key_private: None, ..Self::base("generic") }
    }

    fn base(name: &'static str) -> Self {
        Profile {
            name,
            gcm_iv: GcmIvMode::CallerRandom,
            standard_aes_gcm: true,
            public_key_private: Some(false),
            rsa_paddings: ALL_PADDINGS,
            object_id_len: 8,
            creates_keys: true,
            device_error_refuses: false,
        }
    }

    /// Every profile's name, for help texts and errors.
    pub const NAMES: &'static [&'static str] =
        &["softhsm", "kryoptic", "cloudhsm", "luna", "luna-fips", "yubihsm2", "kmsp11", "generic"];

    /// The profile called `name` (see [`Profile::NAMES`]).
    pub fn named(name: &str) -> Result<Self> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "softhsm" => Self::softhsm(),
            "kryoptic" => Self::kryoptic(),
            "cloudhsm" => Self::cloudhsm(),
            "luna" => Self::luna(),
            "luna-fips" => Self::luna_fips(),
            "yubihsm2" | "yubihsm" => Self::yubihsm2(),
            "kmsp11" => Self::kmsp11(),
            "generic" => Self::generic(),
            _ => {
                return Err(Error::config(format!(
                    "unknown token profile `{name}` (expected one of {})",
                    Self::NAMES.join(", ")
                )))
            }
        })
    }

    /// The profile for a token from what the module reports: the library's
    /// manufacturer and description (`C_GetInfo`), the token's manufacturer
    /// and model (`C_GetTokenInfo`).
    pub fn detect(library: &str, manufacturer: &str, model: &str) -> Self {
        let all = format!("{library} {manufacturer} {model}").to_ascii_lowercase();
        let has = |w: &str| all.contains(w);
        if has("softhsm") {
            Self::softhsm()
        } else if has("kryoptic") {
            Self::kryoptic()
        } else if has("cloudhsm") || has("amazon") {
            Self::cloudhsm()
        } else if has("luna") || has("safenet") {
            if has("fips") {
                Self::luna_fips()
            } else {
                Self::luna()
            }
        } else if has("yubihsm") || has("yubico") {
            Self::yubihsm2()
        } else if has("kmsp11") || has("google") || has("cloud kms") {
            Self::kmsp11()
        } else {
            Self::generic()
        }
    }

    /// True when the token runs `padding` itself.
    pub fn supports_padding(&self, padding: RsaPadding) -> bool {
        self.rsa_paddings.contains(&padding)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// The profile for a token being opened: the URI's `profile=` query
/// attribute, else the one detected from `C_GetInfo` and `C_GetTokenInfo`.
pub(super) fn select_profile(module: &Module, token: &TokenSummary, uri: &Pkcs11Uri) -> Result<Profile> {
    if let Some((_, name)) = uri.other_query.iter().find(|(k, _)| k == PROFILE_QUERY) {
        return Profile::named(name);
    }
    let library = module
        .ctx()
        .get_library_info()
        .map(|i| format!("{} {}", i.manufacturer_id(), i.library_description()))
        .unwrap_or_default();
    Ok(Profile::detect(&library, &token.manufacturer, &token.model))
}

/// Per token: which mechanisms `C_GetMechanismInfo` said exist.
#[derive(Debug, Default)]
pub(super) struct MechanismCache(Mutex<HashMap<u64, bool>>);

/// A readable name for a padding, in errors.
pub(super) fn padding_name(padding: RsaPadding) -> &'static str {
    match padding {
        RsaPadding::Pkcs1 => "RSA PKCS#1 v1.5",
        RsaPadding::OaepSha1 => "RSA-OAEP with SHA-1",
        RsaPadding::OaepSha256 => "RSA-OAEP with SHA-256",
        RsaPadding::OaepSha384 => "RSA-OAEP with SHA-384",
        RsaPadding::OaepSha512 => "RSA-OAEP with SHA-512",
    }
}

impl Token {
    /// Fail with an error naming the mechanism when the token does not
    /// offer it. Asks `C_GetMechanismInfo` once per token and mechanism;
    /// a failure other than "no such mechanism" is not remembered.
    pub(crate) fn require_mechanism(&self, mechanism: MechanismType) -> Result<()> {
        let key = *mechanism;
        let known = self.inner.mechanisms.0.lock().unwrap_or_else(|e| e.into_inner()).get(&key).copied();
        let present = match known {
            Some(present) => present,
            None => {
                let present = match self.module().ctx().get_mechanism_info(self.inner.slot, mechanism) {
                    Ok(_) => true,
                    Err(CkError::Pkcs11(RvError::MechanismInvalid, _)) => false,
                    Err(e) => return Err(self.err_ctx(None).ck(e)),
                };
                self.inner.mechanisms.0.lock().unwrap_or_else(|e| e.into_inner()).insert(key, present);
                present
            }
        };
        if present {
            return Ok(());
        }
        Err(self.unsupported(
            Pkcs11Operation::Call(Function::GetMechanismInfo),
            Some(RvError::MechanismInvalid),
            format!("token `{}` has no {mechanism} (profile {})", self.label(), self.profile()),
        ))
    }

    /// Fail unless the token offers the standard `CKM_AES_GCM`.
    pub(crate) fn require_aes_gcm(&self) -> Result<()> {
        if !self.profile().standard_aes_gcm {
            return Err(self.unsupported(
                Pkcs11Operation::Call(Function::GetMechanismInfo),
                None,
                format!(
                    "token `{}` (profile {}) offers AES-GCM only as a vendor mechanism, which the AES keyring \
                     does not use; wrap with an RSA key on this token instead",
                    self.label(),
                    self.profile()
                ),
            ));
        }
        self.require_mechanism(MechanismType::AES_GCM)
    }

    /// Fail unless the token runs `padding` in `function` (`C_Encrypt` or
    /// `C_Decrypt`): the profile allows it and the mechanism exists.
    pub(crate) fn require_rsa(&self, padding: RsaPadding, function: Function) -> Result<()> {
        self.require_padding(padding, function)?;
        self.require_mechanism(match padding {
            RsaPadding::Pkcs1 => MechanismType::RSA_PKCS,
            _ => MechanismType::RSA_PKCS_OAEP,
        })
    }

    /// Fail when the profile says the token does not run `padding`.
    fn require_padding(&self, padding: RsaPadding, function: Function) -> Result<()> {
        let profile = self.profile();
        if profile.supports_padding(padding) {
            return Ok(());
        }
        let supported: Vec<&str> = profile.rsa_paddings.iter().map(|p| padding_name(*p)).collect();
        let instead = if matches!(function, Function::Decrypt) {
            "unwrap on a token that runs it, or wrap with a padding this one runs"
        } else {
            "wrap in process (RsaWrapMode::InProcess) or choose a padding it runs"
        };
        Err(self.unsupported(
            Pkcs11Operation::Call(function),
            None,
            format!(
                "token `{}` (profile {profile}) does not run {}; it runs {}: {instead}",
                self.label(),
                padding_name(padding),
                supported.join(", ")
            ),
        ))
    }

    /// Fail when the profile says keys cannot be created through PKCS#11.
    pub(crate) fn require_key_creation(&self) -> Result<()> {
        if self.profile().creates_keys {
            return Ok(());
        }
        Err(self.unsupported(
            Pkcs11Operation::Call(Function::GenerateKey),
            None,
            format!(
                "token `{}` (profile {}) cannot create keys through PKCS#11; create them with the vendor's tools",
                self.label(),
                self.profile()
            ),
        ))
    }

    fn unsupported(&self, operation: Pkcs11Operation, rv: Option<RvError>, detail: String) -> Error {
        Error::from(Pkcs11Error::new(
            Some(self.label().to_owned()),
            None,
            operation,
            rv,
            Pkcs11Class::Configuration,
            detail,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_from_what_tokens_report() {
        assert_eq!(Profile::detect("SoftHSM", "SoftHSM project", "SoftHSM v2").name, "softhsm");
        assert_eq!(Profile::detect("Kryoptic", "Kryoptic Project", "v1").name, "kryoptic");
        assert_eq!(Profile::detect("Amazon Web Services", "Marvell", "LS2").name, "cloudhsm");
        assert_eq!(Profile::detect("SafeNet", "Safenet, Inc.", "Luna K7").name, "luna");
        assert_eq!(Profile::detect("SafeNet", "Safenet, Inc.", "Luna K7 FIPS").name, "luna-fips");
        assert_eq!(Profile::detect("Yubico (www.yubico.com)", "Yubico", "YubiHSM").name, "yubihsm2");
        assert_eq!(Profile::detect("Google", "Google", "kmsp11").name, "kmsp11");
        assert_eq!(Profile::detect("nCipher Corp. Ltd", "nCipher", "nShield").name, "generic");
        assert_eq!(Profile::detect("", "", "").name, "generic");
    }

    #[test]
    fn named_profiles_and_their_behaviour() {
        for name in Profile::NAMES {
            assert_eq!(Profile::named(name).unwrap().name, *name);
        }
        assert_eq!(Profile::named("LUNA-FIPS").unwrap(), Profile::luna_fips());
        let err = Profile::named("hsm9000").unwrap_err();
        assert!(err.to_string().contains("hsm9000") && err.to_string().contains("luna-fips"), "{err}");

        let softhsm = Profile::softhsm();
        assert!(softhsm.supports_padding(RsaPadding::OaepSha1));
        assert!(!softhsm.supports_padding(RsaPadding::OaepSha256));
        assert_eq!(softhsm.gcm_iv, GcmIvMode::CallerRandom);
        assert_eq!(softhsm.public_key_private, Some(false));
        assert!(!Profile::luna_fips().supports_padding(RsaPadding::Pkcs1));
        assert!(Profile::luna().supports_padding(RsaPadding::Pkcs1));
        assert_eq!(Profile::luna_fips().gcm_iv, GcmIvMode::TokenAppended);
        assert_eq!(Profile::cloudhsm().gcm_iv, GcmIvMode::TokenGenerated);
        assert_eq!(Profile::cloudhsm().public_key_private, None);
        assert_eq!(Profile::yubihsm2().object_id_len, 2);
        assert!(!Profile::kmsp11().creates_keys && !Profile::kmsp11().standard_aes_gcm);
        assert!(Profile::kryoptic().device_error_refuses);
        assert!(!Profile::softhsm().device_error_refuses && !Profile::generic().device_error_refuses);
        assert!(Profile::kryoptic().supports_padding(RsaPadding::OaepSha512));
    }
}
