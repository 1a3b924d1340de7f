//! The error of a failed PKCS#11 operation.

use std::fmt;
use std::sync::Arc;

use cryptoki::context::Function;
use cryptoki::error::RvError;

/// Which step of the PKCS#11 layer failed.
#[non_exhaustive]
#[derive(Debug, Clone, Copy)]
pub enum Pkcs11Operation {
    /// A PKCS#11 function (`C_Login`, `C_Decrypt`, ...).
    Call(Function),
    /// Loading the module (a shared library).
    LoadModule,
    /// Choosing the token a URI names.
    FindToken,
    /// Looking up the key a URI names.
    FindKey,
    /// Initializing a new token.
    InitToken,
    /// Exporting a public key.
    ExportPublicKey,
    /// A conversion inside the PKCS#11 bindings.
    Bindings,
}

impl Pkcs11Operation {
    /// The PKCS#11 function, when the step was one.
    pub fn function(self) -> Option<Function> {
        match self {
            Pkcs11Operation::Call(f) => Some(f),
            _ => None,
        }
    }
}

impl fmt::Display for Pkcs11Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pkcs11Operation::Call(function) => write!(f, "C_{function:?}"),
            Pkcs11Operation::LoadModule => f.write_str("load module"),
            Pkcs11Operation::FindToken => f.write_str("find token"),
            Pkcs11Operation::FindKey => f.write_str("find key"),
            Pkcs11Operation::InitToken => f.write_str("init token"),
            Pkcs11Operation::ExportPublicKey => f.write_str("export public key"),
            Pkcs11Operation::Bindings => f.write_str("cryptoki"),
        }
    }
}

/// What a PKCS#11 failure means for the caller.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pkcs11Class {
    /// The token refused to unwrap an encrypted data key while the session
    /// was open and logged in: the EDK does not open with this key (it was
    /// altered, or wrapped under another key or encryption context).
    UnwrapRefused,
    /// The PIN is wrong: `C_Login` returned `CKR_PIN_INCORRECT`, or the PIN
    /// differs from the one this process logged in to the token with.
    WrongPin,
    /// The token or key is not set up for this use: no such token or key,
    /// key attributes that forbid the operation, an unsupported mechanism,
    /// a locked or expired PIN, a module that does not load.
    Configuration,
    /// The token or its module failed: lost session, device error, internal
    /// failure.
    Fault,
}

/// A failed PKCS#11 operation: which token, which key, which function, which
/// `CK_RV`, and what it means ([`Pkcs11Class`]). Never holds a PIN.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Pkcs11Error {
    /// Token label (or slot description) the call was made on, if known.
    pub token: Option<String>,
    /// The key's PKCS#11 URI, if the call concerned a key.
    pub key: Option<String>,
    /// The PKCS#11 function or the step that failed.
    pub operation: Pkcs11Operation,
    /// The return value, when the module returned one.
    pub rv: Option<RvError>,
    /// What the failure means.
    pub class: Pkcs11Class,
    /// Extra explanation and advice.
    pub detail: String,
    source: Option<Arc<cryptoki::error::Error>>,
}

impl Pkcs11Error {
    /// A new error (no underlying cause).
    pub(crate) fn new(
        token: Option<String>,
        key: Option<String>,
        operation: Pkcs11Operation,
        rv: Option<RvError>,
        class: Pkcs11Class,
        detail: String,
    ) -> Self {
        Pkcs11Error { token, key, operation, rv, class, detail, source: None }
    }

    /// Keep `source` as the cause.
    pub(crate) fn with_source(mut self, source: cryptoki::error::Error) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The PKCS#11 function, when the failed step was one.
    pub fn function(&self) -> Option<Function> {
        self.operation.function()
    }

    /// The function or step as text: `C_Decrypt`, `find key`, ...
    pub fn operation_name(&self) -> String {
        self.operation.to_string()
    }

    /// The `CKR_` name of the return value, e.g. `CKR_PIN_INCORRECT`.
    pub fn rv_name(&self) -> Option<String> {
        self.rv.map(crate::pkcs11::rv_name)
    }

    /// True when the PIN is wrong ([`Pkcs11Class::WrongPin`]).
    pub fn is_wrong_pin(&self) -> bool {
        self.class == Pkcs11Class::WrongPin
    }
}

impl fmt::Display for Pkcs11Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PKCS#11 {}", self.operation)?;
        if let Some(rv) = self.rv {
            write!(f, " returned {}", crate::pkcs11::rv_name(rv))?;
        } else {
            f.write_str(" failed")?;
        }
        if let Some(token) = &self.token {
            write!(f, " on token `{token}`")?;
        }
        if let Some(key) = &self.key {
            write!(f, " for key {key}")?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for Pkcs11Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}
