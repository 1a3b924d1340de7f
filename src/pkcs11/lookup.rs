//! Key references and object lookup: which key a URI names, the handle
//! cache, and the checks a keyring or signer makes on its key URI.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use cryptoki::error::Error as CkError;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use super::token::Token;
use super::uri::{ObjectType, Pkcs11Uri};
use crate::error::{Error, Result};

/// The class of key object a keyring looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum KeyClass {
    Secret,
    Private,
    Public,
}

impl KeyClass {
    pub(crate) fn object_class(self) -> ObjectClass {
        match self {
            KeyClass::Secret => ObjectClass::SECRET_KEY,
            KeyClass::Private => ObjectClass::PRIVATE_KEY,
            KeyClass::Public => ObjectClass::PUBLIC_KEY,
        }
    }

    /// The URI `type=` of this class.
    pub(crate) fn uri_type(self) -> ObjectType {
        match self {
            KeyClass::Secret => ObjectType::SecretKey,
            KeyClass::Private => ObjectType::Private,
            KeyClass::Public => ObjectType::Public,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            KeyClass::Secret => "secret key",
            KeyClass::Private => "private key",
            KeyClass::Public => "public key",
        }
    }
}

/// A key named by label and/or id, of one class; the cache key for handles.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct KeyRef {
    pub(crate) label: Option<String>,
    pub(crate) id: Option<Vec<u8>>,
    pub(crate) class: KeyClass,
}

impl KeyRef {
    /// The key of class `class` named by `uri` (`object` and/or `id`).
    pub(crate) fn from_uri(uri: &Pkcs11Uri, class: KeyClass) -> Result<Self> {
        if uri.object.is_none() && uri.id.is_none() {
            return Err(Error::InvalidUri {
                uri: uri.to_string(),
                reason: "it names no key: add `object=<label>` (or `id=`)".into(),
            });
        }
        Ok(KeyRef { label: uri.object.clone(), id: uri.id.clone(), class })
    }

    /// The same label and id, another class (the other half of a key pair).
    pub(crate) fn with_class(&self, class: KeyClass) -> Self {
        KeyRef { class, ..self.clone() }
    }

    /// The key name an EDK layout writes by default: the label, else the id in hex.
    pub(crate) fn edk_key_name(&self) -> String {
        match (&self.label, &self.id) {
            (Some(label), _) => label.clone(),
            (None, Some(id)) => hex(id),
            (None, None) => String::new(),
        }
    }

    pub(crate) fn template(&self) -> Vec<Attribute> {
        let mut t = vec![Attribute::Class(self.class.object_class())];
        if let Some(label) = &self.label {
            t.push(Attribute::Label(label.as_bytes().to_vec()));
        }
        if let Some(id) = &self.id {
            t.push(Attribute::Id(id.clone()));
        }
        t
    }

    /// Why a lookup on the token labelled `token` found nothing.
    pub(super) fn not_found(&self, token: &str) -> String {
        let mut name = Vec::new();
        if let Some(label) = &self.label {
            name.push(format!("label `{label}`"));
        }
        if let Some(id) = &self.id {
            name.push(format!("id {}", hex(id)));
        }
        format!(
            "no {} with {} on token `{token}` (type={}); check the object name, or list the token's keys",
            self.class.noun(),
            name.join(" and "),
            self.class.uri_type().as_str()
        )
    }
}

/// Who asks [`Token::resolve_key`] for a key, and so what it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyUse {
    /// A secret key (`type=secret-key` or no type).
    AesKeyring,
    /// A key pair (`type=private`, `type=public` or no type): its private
    /// key, else its public key alone (an encrypt-only deployment).
    RsaKeyring,
    /// An EC key pair (`type=private`, `type=public` or no type): its
    /// private key.
    Signer,
}

impl KeyUse {
    /// The class looked up first, and named by the resolved URI.
    fn class(self) -> KeyClass {
        match self {
            KeyUse::AesKeyring => KeyClass::Secret,
            KeyUse::RsaKeyring | KeyUse::Signer => KeyClass::Private,
        }
    }

    fn accepts(self, object_type: ObjectType) -> bool {
        match self {
            KeyUse::AesKeyring => object_type == ObjectType::SecretKey,
            KeyUse::RsaKeyring | KeyUse::Signer => matches!(object_type, ObjectType::Private | ObjectType::Public),
        }
    }

    fn needs(self) -> &'static str {
        match self {
            KeyUse::AesKeyring => "an AES keyring needs a secret key",
            KeyUse::RsaKeyring => "an RSA keyring needs a key pair",
            KeyUse::Signer => "a signer needs an EC key pair",
        }
    }
}

/// A key a URI names, found on the token.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedKey {
    /// The canonical URI of the key: this token, label, id and type.
    pub(crate) uri: Pkcs11Uri,
    pub(crate) key: KeyRef,
}

impl Token {
    /// Check that a key URI does not name another token.
    pub(crate) fn check_same_token(&self, uri: &Pkcs11Uri) -> Result<()> {
        let mismatch = |what: &str, want: &str, have: &str| {
            Err(Error::config(format!(
                "key URI {} names {what} `{want}`, but the token opened is `{have}`",
                uri.to_path_string()
            )))
        };
        if let Some(t) = &uri.token {
            if t != self.label() {
                return mismatch("token", t, self.label());
            }
        }
        if let Some(s) = &uri.serial {
            if s != self.serial() {
                return mismatch("serial", s, self.serial());
            }
        }
        Ok(())
    }

    /// The key `uri` names for `user`, looked up now so that an unknown key
    /// fails at construction: the URI must name this token and a type `user`
    /// accepts. [`KeyUse::RsaKeyring`] settles for the public key when the
    /// private one is not found; the resolved key is the private one still.
    pub(crate) fn resolve_key(&self, uri: &Pkcs11Uri, user: KeyUse) -> Result<ResolvedKey> {
        self.check_same_token(uri)?;
        if let Some(t) = uri.object_type.filter(|t| !user.accepts(*t)) {
            return Err(Error::config(format!(
                "{}, but {} names type={}",
                user.needs(),
                uri.to_path_string(),
                t.as_str()
            )));
        }
        let key = KeyRef::from_uri(uri, user.class())?;
        let resolved = ResolvedKey { uri: self.canonical_uri(&key), key };
        if let Err(e) = self.find_key(&resolved.uri, &resolved.key) {
            let public = resolved.key.with_class(KeyClass::Public);
            if user != KeyUse::RsaKeyring || self.find_key(&self.canonical_uri(&public), &public).is_err() {
                return Err(e);
            }
        }
        Ok(resolved)
    }

    /// The URI of `key` on this token, with its label, id and type.
    pub(crate) fn canonical_uri(&self, key: &KeyRef) -> Pkcs11Uri {
        self.key_uri(key.label.as_deref(), key.id.as_deref(), Some(key.class.uri_type()))
    }

    /// Look a key up now (filling the handle cache): construction-time check
    /// that the key exists.
    pub(crate) fn find_key(&self, key_uri: &Pkcs11Uri, key: &KeyRef) -> Result<()> {
        self.run_with_key(key_uri, key, |_, _| Ok(()))
    }

    /// Drop every cached key handle.
    pub(crate) fn forget_handles(&self) {
        self.inner.handles.clear();
    }
}

/// Object handles of keys found before, by key.
#[derive(Default)]
pub(super) struct HandleCache(Mutex<HashMap<KeyRef, ObjectHandle>>);

/// Why a key's handle is not known.
pub(super) enum Lookup {
    Ck(CkError),
    NotFound,
    Ambiguous(usize),
}

impl HandleCache {
    fn map(&self) -> MutexGuard<'_, HashMap<KeyRef, ObjectHandle>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The handle of `key`: cached, else found with `session` and cached
    /// when exactly one object matches.
    pub(super) fn lookup(&self, session: &Session, key: &KeyRef) -> std::result::Result<ObjectHandle, Lookup> {
        if let Some(h) = self.map().get(key) {
            return Ok(*h);
        }
        let found = session.find_objects(&key.template()).map_err(Lookup::Ck)?;
        match found.as_slice() {
            [] => Err(Lookup::NotFound),
            [h] => {
                self.map().insert(key.clone(), *h);
                Ok(*h)
            }
            many => Err(Lookup::Ambiguous(many.len())),
        }
    }

    /// Forget the handle of `key` (it went stale, or its session did).
    pub(super) fn forget(&self, key: &KeyRef) {
        self.map().remove(key);
    }

    pub(super) fn clear(&self) {
        self.map().clear();
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
