//! Key management on a token: generate, import, export, delete.

use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};

use super::key_info::{EcCurve, P384_EC_PARAMS};
use super::lookup::{hex, KeyClass, KeyRef};
use super::module::ObjectGuard;
use super::token::Token;
use super::uri::{ObjectType, Pkcs11Uri};
use super::{Function, Pkcs11Operation};
use crate::crypto;
use crate::error::{Error, Result};
use crate::materials::SignatureCurve;

/// Attributes every secret or private key gets.
fn protected(label: &str, id: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ]
}

/// Attributes every public key gets. Public halves are not private, so they
/// can be read for export, unless the token's profile leaves `CKA_PRIVATE`
/// to the token ([`Profile::public_key_private`](super::Profile::public_key_private)).
fn public(label: &str, id: &[u8], private: Option<bool>) -> Vec<Attribute> {
    let mut t = vec![Attribute::Token(true)];
    t.extend(private.map(Attribute::Private));
    t.extend([Attribute::Label(label.as_bytes().to_vec()), Attribute::Id(id.to_vec())]);
    t
}

fn aes_template(label: &str, id: &[u8]) -> Vec<Attribute> {
    let mut t = protected(label, id);
    t.extend([
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Derive(false),
    ]);
    t
}

impl Token {
    /// Generate an AES-256 key (`CKM_AES_KEY_GEN`) for [`Pkcs11AesKeyring`](super::Pkcs11AesKeyring):
    /// token object, private, sensitive, non-extractable, encrypt and decrypt
    /// only. `id` defaults to 8 random bytes. A label already in use is refused.
    /// Returns the key's URI.
    pub fn generate_aes_key(&self, label: &str, id: Option<&[u8]>) -> Result<Pkcs11Uri> {
        self.require_key_creation()?;
        self.require_mechanism(MechanismType::AES_KEY_GEN)?;
        let objects = self.module().object_lock();
        let id = self.prepare_new(&objects, label, id)?;
        let mut template = aes_template(label, &id);
        template.push(Attribute::ValueLen(32.into()));
        let uri = self.key_uri(Some(label), Some(&id), Some(ObjectType::SecretKey));
        self.run_holding(&objects, Some(&uri), |s| s.generate_key(&Mechanism::AesKeyGen, &template))?;
        Ok(uri)
    }

    /// Import existing AES key material (16, 24 or 32 bytes) as a token key with
    /// the same attributes as [`generate_aes_key`](Token::generate_aes_key):
    /// sensitive and non-extractable once imported.
    ///
    /// This is the exception to "keys are born in the token": it exists for
    /// escrowed keys and for interoperating with software that holds the same
    /// key (a raw AES keyring). The material passed here must be protected
    /// and destroyed by the caller.
    pub fn import_aes_key(&self, label: &str, key: &[u8], id: Option<&[u8]>) -> Result<Pkcs11Uri> {
        if ![16, 24, 32].contains(&key.len()) {
            return Err(Error::InvalidKey {
                reason: format!("AES key of {} bytes (expected 16, 24 or 32)", key.len()),
            });
        }
        self.require_key_creation()?;
        let objects = self.module().object_lock();
        let id = self.prepare_new(&objects, label, id)?;
        let mut template = aes_template(label, &id);
        template.push(Attribute::Value(key.to_vec()));
        let uri = self.key_uri(Some(label), Some(&id), Some(ObjectType::SecretKey));
        let result = self.run_holding(&objects, Some(&uri), |s| s.create_object(&template));
        // The template held a copy of the key material.
        for attr in &mut template {
            if let Attribute::Value(v) = attr {
                zeroize::Zeroize::zeroize(v);
            }
        }
        result?;
        Ok(uri)
    }

    /// Generate an RSA key pair (`CKM_RSA_PKCS_KEY_PAIR_GEN`, exponent 65537)
    /// for [`Pkcs11RsaKeyring`](super::Pkcs11RsaKeyring): the public key may
    /// only encrypt, the private key (sensitive, non-extractable) only
    /// decrypt. `bits` is 2048, 3072 or 4096 (3072 or more recommended).
    /// Returns the private key's URI (the public half has the same label and id).
    pub fn generate_rsa_key_pair(&self, label: &str, bits: u32, id: Option<&[u8]>) -> Result<Pkcs11Uri> {
        if ![2048, 3072, 4096].contains(&bits) {
            return Err(Error::config(format!("RSA key size {bits} (expected 2048, 3072 or 4096)")));
        }
        self.generate_pair(
            label,
            id,
            Mechanism::RsaPkcsKeyPairGen,
            KeyType::RSA,
            [
                Attribute::ModulusBits(u64::from(bits).into()),
                Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
                Attribute::Encrypt(true),
                Attribute::Verify(false),
                Attribute::Wrap(false),
            ],
            [Attribute::Decrypt(true), Attribute::Sign(false), Attribute::Unwrap(false), Attribute::Derive(false)],
        )
    }

    /// Generate an EC P-384 key pair (`CKM_EC_KEY_PAIR_GEN`) for
    /// [`Pkcs11Signer`](super::Pkcs11Signer): the private key (sensitive,
    /// non-extractable) may only sign, the public key only verify.
    /// Returns the private key's URI.
    pub fn generate_ec_p384_key_pair(&self, label: &str, id: Option<&[u8]>) -> Result<Pkcs11Uri> {
        self.generate_pair(
            label,
            id,
            Mechanism::EccKeyPairGen,
            KeyType::EC,
            [
                Attribute::EcParams(P384_EC_PARAMS.to_vec()),
                Attribute::Verify(true),
                Attribute::Encrypt(false),
                Attribute::Wrap(false),
            ],
            [Attribute::Sign(true), Attribute::Decrypt(false), Attribute::Unwrap(false), Attribute::Derive(false)],
        )
    }

    /// Generate a key pair with `mechanism`, both halves of `key_type`: the
    /// public key with [`public`] attributes then `public_attrs`, the private
    /// key with [`protected`] ones then `private_attrs`. Returns the private
    /// key's URI.
    fn generate_pair(
        &self,
        label: &str,
        id: Option<&[u8]>,
        mechanism: Mechanism<'_>,
        key_type: KeyType,
        public_attrs: impl IntoIterator<Item = Attribute>,
        private_attrs: impl IntoIterator<Item = Attribute>,
    ) -> Result<Pkcs11Uri> {
        self.require_key_creation()?;
        self.require_mechanism(mechanism.mechanism_type())?;
        let objects = self.module().object_lock();
        let id = self.prepare_new(&objects, label, id)?;
        let mut pub_t = public(label, &id, self.profile().public_key_private);
        pub_t.extend([Attribute::Class(ObjectClass::PUBLIC_KEY), Attribute::KeyType(key_type)]);
        pub_t.extend(public_attrs);
        let mut priv_t = protected(label, &id);
        priv_t.extend([Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::KeyType(key_type)]);
        priv_t.extend(private_attrs);
        let uri = self.key_uri(Some(label), Some(&id), Some(ObjectType::Private));
        self.run_holding(&objects, Some(&uri), |s| s.generate_key_pair(&mechanism, &pub_t, &priv_t))?;
        Ok(uri)
    }

    /// PEM (SubjectPublicKeyInfo) of the RSA or EC public key named by `uri`.
    pub fn export_public_key_pem(&self, uri: &Pkcs11Uri) -> Result<String> {
        self.check_same_token(uri)?;
        let key = KeyRef::from_uri(uri, KeyClass::Public)?;
        let attrs = self.run_with_key(uri, &key, |s, h| {
            s.get_attributes(
                h,
                &[
                    AttributeType::KeyType,
                    AttributeType::Modulus,
                    AttributeType::PublicExponent,
                    AttributeType::EcParams,
                    AttributeType::EcPoint,
                ],
            )
        })?;
        let ctx = self.err_ctx(Some(uri));
        let kt = attrs.iter().find_map(|a| if let Attribute::KeyType(k) = a { Some(*k) } else { None });
        match kt {
            Some(k) if k == KeyType::RSA => {
                let (n, e) = rsa_components(&attrs).ok_or_else(|| {
                    ctx.step(
                        Pkcs11Operation::Call(Function::GetAttributeValue),
                        "RSA public key without modulus or exponent",
                    )
                })?;
                crypto::RsaPublicKey::from_components(n, e)?.to_pem()
            }
            Some(k) if k == KeyType::EC => {
                let (curve, point) =
                    ec_public(&attrs).map_err(|d| ctx.step(Pkcs11Operation::Call(Function::GetAttributeValue), d))?;
                crypto::ec_public_key_pem(curve, &point)
            }
            _ => Err(ctx.step(Pkcs11Operation::ExportPublicKey, "the key is neither RSA nor EC")),
        }
    }

    /// Destroy every key object (secret, private, public) matching the URI's
    /// `object` / `id` (and `type`, if given). Returns how many were destroyed.
    pub fn delete_keys(&self, uri: &Pkcs11Uri) -> Result<usize> {
        self.check_same_token(uri)?;
        if uri.object.is_none() && uri.id.is_none() {
            return Err(Error::InvalidUri {
                uri: uri.to_string(),
                reason: "it names no key: add `object=` or `id=`".into(),
            });
        }
        let classes: Vec<KeyClass> = match uri.object_type {
            Some(ObjectType::SecretKey) => vec![KeyClass::Secret],
            Some(ObjectType::Private) => vec![KeyClass::Private],
            Some(ObjectType::Public) => vec![KeyClass::Public],
            Some(other) => return Err(Error::config(format!("type={} is not a key", other.as_str()))),
            None => vec![KeyClass::Secret, KeyClass::Private, KeyClass::Public],
        };
        let objects = self.module().object_lock();
        let mut count = 0;
        for class in classes {
            let key = KeyRef::from_uri(uri, class)?;
            count += self.run_holding(&objects, Some(uri), |s| {
                let handles = s.find_objects(&key.template())?;
                for h in &handles {
                    s.destroy_object(*h)?;
                }
                Ok(handles.len())
            })?;
        }
        self.forget_handles();
        Ok(count)
    }

    /// The uncompressed SEC1 point and curve of the EC public key named by `uri`.
    pub(crate) fn ec_public_point(&self, uri: &Pkcs11Uri) -> Result<(SignatureCurve, Vec<u8>)> {
        let key = KeyRef::from_uri(uri, KeyClass::Public)?;
        let attrs = self
            .run_with_key(uri, &key, |s, h| s.get_attributes(h, &[AttributeType::EcParams, AttributeType::EcPoint]))?;
        ec_public(&attrs)
            .map_err(|d| self.err_ctx(Some(uri)).step(Pkcs11Operation::Call(Function::GetAttributeValue), d))
    }

    /// Modulus and public exponent of the RSA public key named by `uri`.
    pub(crate) fn rsa_public(&self, uri: &Pkcs11Uri) -> Result<crypto::RsaPublicKey> {
        let key = KeyRef::from_uri(uri, KeyClass::Public)?;
        let attrs = self.run_with_key(uri, &key, |s, h| {
            s.get_attributes(h, &[AttributeType::Modulus, AttributeType::PublicExponent])
        })?;
        let (n, e) = rsa_components(&attrs).ok_or_else(|| {
            self.err_ctx(Some(uri))
                .step(Pkcs11Operation::Call(Function::GetAttributeValue), "no RSA modulus or public exponent")
        })?;
        crypto::RsaPublicKey::from_components(n, e)
    }

    /// Refuse a label in use; pick the id.
    fn prepare_new(&self, objects: &ObjectGuard<'_>, label: &str, id: Option<&[u8]>) -> Result<Vec<u8>> {
        if label.is_empty() {
            return Err(Error::config("a key label must not be empty"));
        }
        let existing =
            self.run_holding(objects, None, |s| s.find_objects(&[Attribute::Label(label.as_bytes().to_vec())]))?;
        if !existing.is_empty() {
            return Err(Error::config(format!(
                "token `{}` already holds {} object(s) labelled `{label}`; choose another label",
                self.label(),
                existing.len()
            )));
        }
        match id {
            Some(id) => Ok(id.to_vec()),
            None => {
                let mut id = vec![0u8; self.profile().object_id_len];
                crypto::fill_random(&mut id)?;
                Ok(id)
            }
        }
    }
}

fn rsa_components(attrs: &[Attribute]) -> Option<(&[u8], &[u8])> {
    let n = attrs.iter().find_map(|a| if let Attribute::Modulus(n) = a { Some(n.as_slice()) } else { None })?;
    let e = attrs.iter().find_map(|a| if let Attribute::PublicExponent(e) = a { Some(e.as_slice()) } else { None })?;
    Some((n, e))
}

/// Curve and uncompressed point from `CKA_EC_PARAMS` and `CKA_EC_POINT`.
fn ec_public(attrs: &[Attribute]) -> std::result::Result<(SignatureCurve, Vec<u8>), String> {
    let params = attrs.iter().find_map(|a| if let Attribute::EcParams(p) = a { Some(p.as_slice()) } else { None });
    let curve = match params.map(EcCurve::from_params) {
        Some(EcCurve::P384) => SignatureCurve::P384,
        Some(EcCurve::P256) => SignatureCurve::P256,
        _ => return Err(format!("EC key on an unsupported curve (CKA_EC_PARAMS {})", hex(params.unwrap_or(&[])))),
    };
    let point = attrs
        .iter()
        .find_map(|a| if let Attribute::EcPoint(p) = a { Some(p.as_slice()) } else { None })
        .ok_or("EC public key without CKA_EC_POINT")?;
    Ok((curve, unwrap_ec_point(point, curve)?))
}

/// `CKA_EC_POINT` is a DER OCTET STRING around the SEC1 point; some tokens
/// return the bare point. Accept both.
pub(crate) fn unwrap_ec_point(der: &[u8], curve: SignatureCurve) -> std::result::Result<Vec<u8>, String> {
    let uncompressed_len = 2 * curve.compressed_point_len() - 1;
    let (len, header) = match der {
        [0x04, l, ..] if *l < 0x80 => (usize::from(*l), 2),
        [0x04, 0x81, l, ..] => (usize::from(*l), 3),
        _ => (usize::MAX, 0),
    };
    if header > 0 && der.len().checked_sub(header) == Some(len) {
        return der.get(header..).map(<[u8]>::to_vec).ok_or_else(|| "truncated CKA_EC_POINT".to_owned());
    }
    if der.len() == uncompressed_len && der.first() == Some(&0x04) {
        return Ok(der.to_vec());
    }
    Err(format!("CKA_EC_POINT of {} bytes is neither a DER OCTET STRING nor a SEC1 point", der.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_point_unwrapping() {
        let mut point = vec![0x04];
        point.extend([7u8; 96]);
        let mut der = vec![0x04, 97];
        der.extend(&point);
        assert_eq!(unwrap_ec_point(&der, SignatureCurve::P384).unwrap(), point);
        assert_eq!(unwrap_ec_point(&point, SignatureCurve::P384).unwrap(), point);
        let mut long = vec![0x04, 0x81, 97];
        long.extend(&point);
        assert_eq!(unwrap_ec_point(&long, SignatureCurve::P384).unwrap(), point);
        assert!(unwrap_ec_point(&der[..50], SignatureCurve::P384).is_err());
        assert!(unwrap_ec_point(&[], SignatureCurve::P384).is_err());
    }
}
