//! The PKCS#11 layer: master keys held in a token (an HSM, a smart card,
//! SoftHSM), named everywhere by RFC 7512 URIs.
//!
//! * [`Pkcs11Uri`] parses and prints `pkcs11:` URIs (the `pin-value`
//!   attribute is never printed).
//! * [`Pin`] and [`resolve_pin`] find the user PIN: `pin-value`, then
//!   `pin-source`, then the `HSM_KEYRING_PIN` environment variable.
//! * [`Module`] loads a PKCS#11 module once per process and initializes it once.
//! * [`Token`] is one logged-in token with a bounded pool of sessions shared
//!   by all threads; after a lost session or login it replaces the whole
//!   pool, logs in again and retries once ([`TokenStats`] counts it).
//! * [`Pkcs11AesKeyring`] and [`Pkcs11RsaKeyring`] wrap data keys under keys in
//!   the token, writing the same encrypted data keys as the raw AES and raw
//!   RSA keyrings, so software holding the same key material can open them.
//! * [`Profile`] holds what a vendor's token needs done its own way (GCM IV
//!   mode, key templates, RSA paddings, object ids), detected from the token
//!   or named with `profile=`; a mechanism is checked with
//!   `C_GetMechanismInfo` before its first use.
//! * [`Pkcs11Signer`] signs message footers with a long-lived P-384 key in the token.
//! * Key management ([`Token::generate_aes_key`], [`Token::list_keys`], ...)
//!   creates keys with safe attributes: sensitive, non-extractable, only the
//!   usages they need.
//!
//! Every failure of a PKCS#11 call is reported as
//! [`Error::Pkcs11`] naming the token, the key URI, the
//! function and the `CKR_` return value, with advice, and classified
//! ([`Pkcs11Class`]): an unwrap the token refused on a healthy session is
//! "this EDK does not open with this key", anything else is the token's or
//! its configuration's failure (see [`Error::kind`]).

mod aes;
mod key_info;
mod keys;
mod legacy;
mod login;
mod lookup;
mod master;
mod module;
mod pin;
mod pool;
mod profile;
mod recovery;
mod rsa;
mod select;
mod signer;
mod token;
mod uri;

pub use aes::{GcmIvMode, Pkcs11AesKeyring, DEFAULT_NAMESPACE};
pub use key_info::{EcCurve, KeyInfo, KeyKind, KeyUsage};
pub use legacy::{Pkcs11AesWrapKey, Pkcs11HmacKey, Pkcs11LegacyRsaKey};
pub use module::{default_module_path, Module, TokenSummary, MODULE_ENV};
pub use pin::{resolve_pin, Pin, PinSource, PIN_ENV};
pub use profile::{Profile, PROFILE_QUERY};
pub use recovery::TokenStats;
pub use rsa::{Pkcs11RsaKeyring, RsaWrapMode};
pub use signer::{trusted_signer_from_pem, trusted_signer_from_token, Pkcs11Signer};
pub use token::{Token, TokenOptions};
pub use uri::{ObjectType, Pkcs11Uri};

pub use cryptoki::context::Function;
pub use cryptoki::error::RvError;

use cryptoki::error::Error as CkError;

use crate::error::Error;
pub use crate::error::{Pkcs11Class, Pkcs11Error, Pkcs11Operation};

/// The `CKR_` name of a return value, e.g. `CKR_PIN_INCORRECT`.
pub(crate) fn rv_name(rv: RvError) -> String {
    match rv {
        RvError::VendorDefined(code) => format!("CKR_VENDOR_DEFINED(0x{code:08X})"),
        RvError::UnknownErrorCode(code) => format!("CKR_UNKNOWN(0x{code:08X})"),
        other => format!("CKR_{}", camel_to_upper_snake(&format!("{other:?}"))),
    }
}

/// The C name of a PKCS#11 function, e.g. `C_EncryptInit`.
#[cfg(test)]
pub(crate) fn function_name(function: Function) -> String {
    Pkcs11Operation::Call(function).to_string()
}

fn camel_to_upper_snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Advice for a return value, shown after the function and `CKR_` name.
fn advice(rv: RvError) -> &'static str {
    match rv {
        RvError::PinIncorrect => {
            "the PIN is wrong, or differs from the PIN this process is logged in to the token with; \
             check pin-value / pin-source in the URI or HSM_KEYRING_PIN (repeated failures can lock the token)"
        }
        RvError::UserAlreadyLoggedIn => {
            "this process is already logged in to the token by code that does not go through hsm-keyring, \
             so the PIN cannot be checked; log that code out first, or open the token through hsm-keyring only"
        }
        RvError::PinLocked => "the user PIN is locked; the security officer must reset it",
        RvError::PinExpired => "the user PIN has expired; set a new one",
        RvError::PinLenRange | RvError::PinInvalid => "the PIN has an invalid length or characters",
        RvError::UserPinNotInitialized => "the token has no user PIN yet; initialize it first",
        RvError::KeyFunctionNotPermitted => {
            "the key's attributes forbid this operation (for example CKA_ENCRYPT or CKA_DECRYPT is false); \
             use a key generated for this purpose"
        }
        RvError::KeyTypeInconsistent => "the key is not of the type this mechanism needs",
        RvError::MechanismInvalid | RvError::MechanismParamInvalid | RvError::ArgumentsBad => {
            "the token does not support this mechanism or these parameters \
             (SoftHSM, for example, does RSA-OAEP with SHA-1 only)"
        }
        RvError::EncryptedDataInvalid | RvError::EncryptedDataLenRange => {
            "the token refused the encrypted data while its session was not usable; check the token and its logs"
        }
        RvError::SessionHandleInvalid
        | RvError::SessionClosed
        | RvError::DeviceRemoved
        | RvError::TokenNotPresent
        | RvError::UserNotLoggedIn => "the session was lost and re-opening it once did not help",
        RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid => {
            "the key handle went stale and looking the key up again did not help"
        }
        RvError::DeviceError | RvError::GeneralError | RvError::FunctionFailed => {
            "the token reported an internal failure; check its logs"
        }
        RvError::CryptokiNotInitialized => "the module was finalized by another user in this process",
        _ => "",
    }
}

/// Advice for an unwrap the token refused while its session was healthy.
pub(crate) const UNWRAP_REFUSED_ADVICE: &str = "this encrypted data key does not open with this key: it was altered, \
     or it was wrapped under another key or another encryption context";

/// What a return value means, outside an unwrap the token refused on a
/// healthy session (which `Token::unwrap_with_key` classifies).
pub(crate) fn classify(rv: RvError) -> Pkcs11Class {
    match rv {
        RvError::PinIncorrect => Pkcs11Class::WrongPin,
        RvError::PinLocked
        | RvError::PinExpired
        | RvError::PinLenRange
        | RvError::PinInvalid
        | RvError::PinTooWeak
        | RvError::UserPinNotInitialized
        | RvError::UserTypeInvalid
        | RvError::UserAlreadyLoggedIn
        | RvError::UserAnotherAlreadyLoggedIn
        | RvError::UserTooManyTypes
        | RvError::KeyFunctionNotPermitted
        | RvError::KeyTypeInconsistent
        | RvError::KeySizeRange
        | RvError::KeyUnextractable
        | RvError::KeyNotWrappable
        | RvError::MechanismInvalid
        | RvError::MechanismParamInvalid
        | RvError::ArgumentsBad
        | RvError::CurveNotSupported
        | RvError::DomainParamsInvalid
        | RvError::AttributeReadOnly
        | RvError::AttributeSensitive
        | RvError::AttributeTypeInvalid
        | RvError::AttributeValueInvalid
        | RvError::TemplateIncomplete
        | RvError::TemplateInconsistent
        | RvError::TokenWriteProtected
        | RvError::TokenNotRecognized
        | RvError::SlotIdInvalid
        | RvError::SessionReadOnly
        | RvError::FunctionNotSupported
        | RvError::ActionProhibited
        | RvError::LibraryLoadFailed => Pkcs11Class::Configuration,
        _ => Pkcs11Class::Fault,
    }
}

/// Where a PKCS#11 error happened: the token and the key.
#[derive(Debug, Clone, Default)]
pub(crate) struct ErrCtx {
    pub(crate) token: Option<String>,
    pub(crate) key: Option<String>,
}

impl ErrCtx {
    /// Convert a cryptoki error into the crate's error.
    pub(crate) fn ck(&self, err: CkError) -> Error {
        let e = match &err {
            CkError::Pkcs11(rv, f) => {
                self.pkcs11(Pkcs11Operation::Call(*f), Some(*rv), classify(*rv), advice(*rv).to_owned())
            }
            CkError::LibraryLoading(e) => {
                self.pkcs11(Pkcs11Operation::LoadModule, None, Pkcs11Class::Configuration, e.to_string())
            }
            other => self.pkcs11(Pkcs11Operation::Bindings, None, Pkcs11Class::Fault, other.to_string()),
        };
        Error::from(e.with_source(err))
    }

    /// A failure that has no `CK_RV` (a lookup found nothing, a bad attribute...).
    pub(crate) fn step(&self, operation: Pkcs11Operation, detail: impl Into<String>) -> Error {
        self.class_step(operation, Pkcs11Class::Configuration, detail)
    }

    /// [`step`](ErrCtx::step) with its class.
    pub(crate) fn class_step(
        &self,
        operation: Pkcs11Operation,
        class: Pkcs11Class,
        detail: impl Into<String>,
    ) -> Error {
        Error::from(self.pkcs11(operation, None, class, detail.into()))
    }

    fn pkcs11(
        &self,
        operation: Pkcs11Operation,
        rv: Option<RvError>,
        class: Pkcs11Class,
        detail: String,
    ) -> Pkcs11Error {
        Pkcs11Error::new(self.token.clone(), self.key.clone(), operation, rv, class, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rv_and_function_names() {
        assert_eq!(rv_name(RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(rv_name(RvError::KeyFunctionNotPermitted), "CKR_KEY_FUNCTION_NOT_PERMITTED");
        assert_eq!(rv_name(RvError::CryptokiAlreadyInitialized), "CKR_CRYPTOKI_ALREADY_INITIALIZED");
        assert_eq!(function_name(Function::EncryptInit), "C_EncryptInit");
    }
}

#[cfg(test)]
mod softhsm_tests;
