//! The keyring adapter: the rules every keyring built on an EDK layout
//! shares, applied once.
//!
//! * Encrypt: a generator makes the data key when the materials hold none;
//!   the layout wraps it and its EDK is appended.
//! * Decrypt: materials that already hold a data key are refused; each EDK
//!   is offered to the layout, which says "not mine" (`None`) or opens it;
//!   the first data key of the suite's length wins. When no EDK is the
//!   layout's, the error is [`Error::NotMine`]; when some were but none
//!   opened, every failure is kept, in order, with its own error.
//! * Suites that wrap an intermediate key (the item suites) run the layout
//!   through [`intermediate`](crate::edk::intermediate), which also yields
//!   the symmetric signing key of each EDK.

use crate::edk::{intermediate, EdkContext, EdkLayout};
use crate::error::{Error, KeyringFailure, Result};
use crate::materials::{DataKey, DecryptionMaterials, EncryptedDataKey, EncryptionMaterials};

/// Generate the data key if needed, wrap it with `layout`, append the EDK.
pub(crate) fn on_encrypt(
    layout: &dyn EdkLayout,
    description: impl Fn() -> String,
    mut materials: EncryptionMaterials,
) -> Result<EncryptionMaterials> {
    if materials.data_key().is_none() {
        materials.set_data_key(DataKey::generate(materials.algorithm_suite().key_len())?)?;
    }
    let context = EdkContext::new(materials.encryption_context());
    let (edk, signing_key) = match materials.data_key() {
        Some(key) if materials.algorithm_suite().wraps_intermediate_key() => {
            let (edk, mac) = intermediate::wrap(layout, key, &context)?;
            (edk, Some(mac))
        }
        Some(key) => (layout.wrap(key, &context)?, None),
        None => return Err(Error::keyring(description(), "no data key to wrap")),
    };
    drop(context);
    materials.add_encrypted_data_key(edk)?;
    if let Some(mac) = signing_key {
        materials.add_symmetric_signing_key(mac);
    }
    Ok(materials)
}

/// Open the first EDK of `edks` that is `layout`'s and set its data key.
pub(crate) fn on_decrypt(
    layout: &dyn EdkLayout,
    description: impl Fn() -> String,
    mut materials: DecryptionMaterials,
    edks: &[EncryptedDataKey],
) -> Result<DecryptionMaterials> {
    if materials.data_key().is_some() {
        return Err(Error::keyring(description(), "the decryption materials already hold a data key"));
    }
    let key_len = materials.algorithm_suite().key_len();
    let wraps_intermediate = materials.algorithm_suite().wraps_intermediate_key();
    let open = |edk: &EncryptedDataKey, context: &EdkContext<'_>| -> Option<Result<(DataKey, Option<DataKey>)>> {
        if wraps_intermediate {
            intermediate::unwrap(layout, edk, context, key_len).map(|r| r.map(|(key, mac)| (key, Some(mac))))
        } else {
            layout.unwrap(edk, context, key_len).map(|r| r.map(|key| (key, None)))
        }
    };
    let mut failures: Vec<(usize, Error)> = Vec::new();
    let found = {
        let context = EdkContext::new(materials.encryption_context());
        let mut found = None;
        for (index, edk) in edks.iter().enumerate() {
            match open(edk, &context) {
                None => {}
                Some(Ok((key, mac))) if key.len() == key_len => {
                    found = Some((key, mac));
                    break;
                }
                Some(Ok((key, _))) => failures.push((
                    index,
                    Error::keyring(
                        description(),
                        format!("decrypted to {} bytes, the suite needs a {key_len}-byte data key", key.len()),
                    ),
                )),
                Some(Err(e)) => failures.push((index, e)),
            }
        }
        found
    };
    match found {
        Some((key, mac)) => {
            materials.set_data_key(key)?;
            if let Some(mac) = mac {
                materials.set_symmetric_signing_key(mac);
            }
            Ok(materials)
        }
        None if failures.is_empty() => Err(Error::NotMine { keyring: description(), edk_count: edks.len() }),
        None => Err(own_edks_failed(description(), edks.len(), failures)),
    }
}

/// The error of a keyring whose own EDKs all failed to open ("mine but
/// failed", as opposed to [`Error::NotMine`]): the error itself when one EDK
/// was its own, every EDK's error (typed, in order) when several were. A
/// master key's authentication failure is named after the keyring and the
/// EDK; a token's error already names the token and the key.
fn own_edks_failed(keyring: String, edk_count: usize, failures: Vec<(usize, Error)>) -> Error {
    let label = |index: usize| format!("{keyring}, EDK #{}", index + 1);
    let named = |index: usize, e: Error| match e {
        Error::Keyring { reason, keyring: what } => Error::keyring(label(index), format!("{what}: {reason}")),
        other => other,
    };
    let mut failures: Vec<(usize, Error)> = failures.into_iter().map(|(i, e)| (i, named(i, e))).collect();
    if failures.len() == 1 {
        return failures.remove(0).1;
    }
    Error::NoKeyringDecrypted {
        failures: failures.into_iter().map(|(i, e)| KeyringFailure::from_error(label(i), e)).collect(),
        offered: Vec::new(),
        offered_count: edk_count,
    }
}
