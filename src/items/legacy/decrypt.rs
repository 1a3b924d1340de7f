//! Verify a legacy item's signature, then decrypt its encrypted attributes.

use std::collections::BTreeMap;

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
use base64::Engine;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::super::config::CryptoAction;
use super::super::value::{AttributeValue, Item};
use super::config::{ContentKey, LegacyConfig};
use super::desc::{self, CBC_PKCS5, ENV_ALG, ENV_KEY, SIGNING_ALG, SYM_MODE, WRAP_ALG};
use super::value::{deserialize, serialize, Dialect};
use super::{MATERIAL_DESCRIPTION_ATTRIBUTE, SIGNATURE_ATTRIBUTE};
use crate::error::{Error, Result};
use crate::master_keys::{LegacySigningAlgorithm, LegacyWrapAlgorithm};

fn malformed(reason: impl Into<String>) -> Error {
    Error::MalformedItem { reason: reason.into() }
}

/// Verify and decrypt one item written by the legacy DynamoDB Encryption
/// Client (Java, or Python 1.x-3.x) for the table `config` describes.
///
/// The signature (`*amzn-ddb-map-sig*`) is checked first, over the table
/// name and every attribute that is not do-nothing (as stored); then the
/// content key is found (unwrapped from the material description
/// `*amzn-ddb-map-desc*`, or the static key) and each encrypt-and-sign
/// attribute is decrypted (AES-CBC, PKCS#5 padding). The result holds the
/// attributes without the two legacy attributes, all decrypted, or is an
/// error: never a partly decrypted item.
///
/// Errors: [`Error::ItemAuthentication`] when the signature does not verify
/// (an attribute, the table name or the signature altered, or another key);
/// [`Error::Keyring`] (or a refused token unwrap) when the content key does
/// not unwrap or an attribute does not decrypt under it, or the item names
/// another wrapping or signing algorithm than the keys run;
/// [`Error::MalformedItem`] naming the attribute or field otherwise.
pub fn decrypt_legacy_item(config: &LegacyConfig, item: &Item) -> Result<Item> {
    let signature = match item.get(SIGNATURE_ATTRIBUTE) {
        Some(AttributeValue::B(b)) => b,
        Some(_) => return Err(malformed(format!("attribute `{SIGNATURE_ATTRIBUTE}` is not binary"))),
        None => return Err(malformed(format!("no `{SIGNATURE_ATTRIBUTE}` attribute: not a legacy item"))),
    };
    let description = match item.get(MATERIAL_DESCRIPTION_ATTRIBUTE) {
        Some(AttributeValue::B(b)) => desc::parse(b)?,
        Some(_) => return Err(malformed(format!("attribute `{MATERIAL_DESCRIPTION_ATTRIBUTE}` is not binary"))),
        None => BTreeMap::new(),
    };
    let mut attributes = Vec::with_capacity(item.len());
    for (name, value) in item {
        if name != SIGNATURE_ATTRIBUTE && name != MATERIAL_DESCRIPTION_ATTRIBUTE {
            attributes.push((name, value, config.action(name)?));
        }
    }

    // The signature, before any key is unwrapped.
    let verify = &config.materials.verify;
    let algorithm = verify.signing_algorithm();
    if let Some(named) = description.get(SIGNING_ALG) {
        match LegacySigningAlgorithm::from_name(named) {
            Some(a) if a == algorithm => {}
            Some(a) => {
                return Err(Error::keyring(
                    "legacy verification key",
                    format!("the item is signed with {}; this key verifies {}", a.name(), algorithm.name()),
                ))
            }
            None => {
                return Err(malformed(format!(
                "attribute `{MATERIAL_DESCRIPTION_ATTRIBUTE}`: unknown signing algorithm `{named}` in `{SIGNING_ALG}`"
            )))
            }
        }
    }
    // As the Python package signs, else (where they differ) as it signs
    // numbers of more than 28 digits (rounded), else as Java orders.
    let mut tried: Vec<Vec<u8>> = Vec::with_capacity(3);
    let mut first_error = None;
    for dialect in [Dialect::Python, Dialect::Python28, Dialect::Java] {
        let data = string_to_sign(&config.table_name, &attributes, dialect)?;
        if tried.contains(&data) {
            continue;
        }
        match verify.verify(&data, signature) {
            Ok(()) => {
                first_error = None;
                break;
            }
            Err(e) if e.kind() == crate::ErrorKind::NotAuthentic => {
                first_error.get_or_insert(e);
            }
            // A token fault is reported as itself, at once.
            Err(e) => return Err(e),
        }
        tried.push(data);
    }
    if let Some(e) = first_error {
        return Err(e);
    }

    if !attributes.iter().any(|(_, _, a)| *a == CryptoAction::EncryptAndSign) {
        return Ok(attributes.into_iter().map(|(n, v, _)| (n.clone(), v.clone())).collect());
    }
    match description.get(SYM_MODE).map(String::as_str) {
        Some(CBC_PKCS5) => {}
        Some(other) => {
            return Err(malformed(format!(
                "attribute `{MATERIAL_DESCRIPTION_ATTRIBUTE}`: unknown encryption mode `{other}` in `{SYM_MODE}`"
            )))
        }
        None => {
            return Err(malformed(format!(
                "attribute `{MATERIAL_DESCRIPTION_ATTRIBUTE}` has no `{SYM_MODE}`, but attributes are encrypted"
            )))
        }
    }
    let key = content_key(config, &description)?;
    let mut out = Item::new();
    for (name, value, action) in attributes {
        let plain = if action == CryptoAction::EncryptAndSign {
            let AttributeValue::B(ciphertext) = value else {
                return Err(malformed(format!(
                    "attribute `{name}` is encrypt-and-sign but not binary: the writer's actions differ from these"
                )));
            };
            decrypt_attribute(&key, name, ciphertext)?
        } else {
            value.clone()
        };
        out.insert(name.clone(), plain);
    }
    Ok(out)
}

/// SHA-256 of the table name, then per signed attribute (by name) the
/// SHA-256 of its name, of `ENCRYPTED` or `PLAINTEXT`, and of its
/// serialization; concatenated (the digests are what is signed).
fn string_to_sign(
    table: &str,
    attributes: &[(&String, &AttributeValue, CryptoAction)],
    dialect: Dialect,
) -> Result<Vec<u8>> {
    let mut sorted: Vec<_> = attributes.iter().collect();
    sorted.sort_by(|a, b| dialect.cmp_str(a.0, b.0));
    let mut out = Vec::with_capacity(32 * (1 + 3 * attributes.len()));
    out.extend_from_slice(&Sha256::digest(format!("TABLE>{table}<TABLE").as_bytes()));
    for (name, value, action) in sorted {
        let marker: &[u8] = match action {
            CryptoAction::DoNothing => continue,
            CryptoAction::EncryptAndSign => b"ENCRYPTED",
            _ => b"PLAINTEXT",
        };
        out.extend_from_slice(&Sha256::digest(name.as_bytes()));
        out.extend_from_slice(&Sha256::digest(marker));
        out.extend_from_slice(&Sha256::digest(serialize(value, name, dialect)?));
    }
    Ok(out)
}

/// The AES key the item's attributes are encrypted under.
fn content_key(config: &LegacyConfig, description: &BTreeMap<String, String>) -> Result<Zeroizing<Vec<u8>>> {
    let field =
        |f: &str, reason: &str| malformed(format!("attribute `{MATERIAL_DESCRIPTION_ATTRIBUTE}`: `{f}` {reason}"));
    match &config.materials.content {
        ContentKey::Static(Some(key)) => Ok(Zeroizing::new(key.to_vec())),
        ContentKey::Static(None) => Err(Error::config(
            "the item has encrypted attributes, but the legacy materials have no content key (sign-only)",
        )),
        ContentKey::Wrapped(unwrap) => {
            let wrapped = description.get(ENV_KEY).ok_or_else(|| field(ENV_KEY, "is missing (no wrapped key)"))?;
            let wrapped = base64::engine::general_purpose::STANDARD
                .decode(wrapped.trim())
                .map_err(|_| field(ENV_KEY, "is not base64"))?;
            let content_alg = description.get(ENV_ALG).map(String::as_str).unwrap_or("AES/256");
            let bits = match content_alg.split_once('/') {
                Some(("AES", bits)) => bits.parse::<usize>().ok().filter(|b| matches!(b, 128 | 192 | 256)),
                _ => None,
            }
            .ok_or_else(|| field(ENV_ALG, &format!("names `{content_alg}` (expected AES/128, AES/192 or AES/256)")))?;
            let ours = unwrap.wrap_algorithm();
            if let Some(named) = description.get(WRAP_ALG) {
                if LegacyWrapAlgorithm::from_name(named) != Some(ours) {
                    return Err(Error::keyring(
                        "legacy unwrapping key",
                        format!("the content key is wrapped with `{named}`; this key unwraps {}", ours.name()),
                    ));
                }
            }
            let key = unwrap.unwrap_key(&wrapped)?;
            if key.len() * 8 != bits {
                return Err(Error::keyring(
                    "legacy unwrapping key",
                    format!("the unwrapped content key has {} bits, `{ENV_ALG}` says {bits}", key.len() * 8),
                ));
            }
            Ok(Zeroizing::new(key.as_bytes().to_vec()))
        }
    }
}

/// AES-CBC with PKCS#5 padding, the 16-byte IV in front; then the value.
fn decrypt_attribute(key: &[u8], name: &str, ciphertext: &[u8]) -> Result<AttributeValue> {
    if ciphertext.len() < 32 || ciphertext.len() % 16 != 0 {
        return Err(malformed(format!(
            "attribute `{name}`: {} bytes is not an IV and whole AES blocks",
            ciphertext.len()
        )));
    }
    let (iv, body) = ciphertext.split_at(16);
    let mut buf = Zeroizing::new(body.to_vec());
    let plain = match key.len() {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv).map(|d| d.decrypt_padded_mut::<Pkcs7>(&mut buf)),
        24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv).map(|d| d.decrypt_padded_mut::<Pkcs7>(&mut buf)),
        _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv).map(|d| d.decrypt_padded_mut::<Pkcs7>(&mut buf)),
    }
    .map_err(|e| Error::crypto(format!("AES-CBC key setup: {e}")))?;
    let not_this_key = |why: String| {
        Error::keyring("legacy content key", format!("attribute `{name}` does not decrypt under this key: {why}"))
    };
    let plain = plain.map_err(|_| not_this_key("bad padding".into()))?;
    deserialize(plain, name).map_err(|e| not_this_key(e.to_string()))
}
