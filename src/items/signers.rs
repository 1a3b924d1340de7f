//! Long-lived item signers and trusted signers (suite 0x6701).
//!
//! The SDK signs each 0x6701 item with a fresh ECDSA P-384 key and stores
//! its compressed public point, base64, in the header's stored encryption
//! context under `aws-crypto-public-key`; the reader verifies the footer
//! signature under that key. A configured signer only changes which key
//! signs, so its items stay readable by the SDK. Pinning (trusted signers)
//! refuses items whose stored key is not in the set, and unsigned (0x6700)
//! items, before the materials manager is asked for the data key.

use std::sync::Arc;

use base64::Engine as _;

use super::header::Header;
use crate::crypto::ec_compress_point;
use crate::error::{Error, Result};
use crate::materials::context::PUBLIC_KEY_FIELD;
use crate::materials::{AlgorithmSuite, FooterSigner, SignatureCurve};

/// Refuse a signer that is not P-384 or a suite that does not sign.
pub(crate) fn check_signer(suite: AlgorithmSuite, signer: &dyn FooterSigner) -> Result<()> {
    if !suite.is_signing() {
        return Err(Error::config(format!(
            "suite 0x{:04X} does not sign items, but a signer was given (use 0x6701)",
            suite.id()
        )));
    }
    if signer.curve() != SignatureCurve::P384 {
        return Err(Error::config(format!("item signers are ECDSA P-384, not {:?}", signer.curve())));
    }
    Ok(())
}

/// The trusted signers as compressed P-384 points.
pub(crate) fn compress_trusted(keys: Vec<Vec<u8>>) -> Result<Arc<[Vec<u8>]>> {
    keys.iter()
        .map(|k| {
            ec_compress_point(SignatureCurve::P384, k)
                .map_err(|_| Error::InvalidKey { reason: "a trusted item signer is not a P-384 public point".into() })
        })
        .collect()
}

fn untrusted() -> Error {
    Error::Signature { reason: "the item was signed by a key that is not among the trusted signers".into() }
}

/// Refuse `key` (a SEC1 point) unless it is in `trusted`.
///
/// A compressed key (the form items store) is compared as it is: the
/// trusted keys are valid compressed points, so an equal key is one too, and
/// the footer check parses it once. Only another encoding is converted.
pub(crate) fn check_key(trusted: &[Vec<u8>], key: &[u8]) -> Result<()> {
    let compressed_len = SignatureCurve::P384.compressed_point_len();
    let converted;
    let compressed = if key.len() == compressed_len && matches!(key[0], 2 | 3) {
        key
    } else {
        converted = ec_compress_point(SignatureCurve::P384, key)
            .map_err(|_| Error::Signature { reason: "the item's verification key is not a P-384 point".into() })?;
        &converted[..]
    };
    if trusted.iter().any(|t| t[..] == *compressed) {
        Ok(())
    } else {
        Err(untrusted())
    }
}

/// With trusted signers: refuse an unsigned item, or one whose stored
/// `aws-crypto-public-key` is not trusted.
pub(crate) fn check_header(trusted: Option<&[Vec<u8>]>, header: &Header) -> Result<()> {
    let Some(trusted) = trusted else { return Ok(()) };
    if !header.suite.is_signing() {
        return Err(Error::Signature {
            reason: format!(
                "the item is not signed (suite 0x{:04X}), but only items from the trusted signers are accepted",
                header.suite.id()
            ),
        });
    }
    let encoded = header
        .stored_context
        .get(PUBLIC_KEY_FIELD)
        .ok_or_else(|| Error::Signature { reason: format!("the item has no `{PUBLIC_KEY_FIELD}` in its header") })?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| Error::Signature { reason: format!("`{PUBLIC_KEY_FIELD}` is not valid base64") })?;
    check_key(trusted, &key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SoftwareSigner;

    #[test]
    fn check_key_compares_compressed_keys_and_converts_others() {
        let signer = SoftwareSigner::generate(SignatureCurve::P384);
        let other = SoftwareSigner::generate(SignatureCurve::P384).public_key();
        let public = signer.public_key();
        use p384::elliptic_curve::sec1::ToEncodedPoint;
        let uncompressed = p384::PublicKey::from_sec1_bytes(&public).unwrap().to_encoded_point(false);
        // Trusted as uncompressed, found compressed, and the other way round.
        let trusted = compress_trusted(vec![uncompressed.as_bytes().to_vec()]).unwrap();
        check_key(&trusted, &public).unwrap();
        check_key(&trusted, uncompressed.as_bytes()).unwrap();
        let trusted = compress_trusted(vec![public.clone()]).unwrap();
        check_key(&trusted, &public).unwrap();
        check_key(&trusted, uncompressed.as_bytes()).unwrap();
        assert!(matches!(check_key(&trusted, &other), Err(Error::Signature { .. })));
        // The same x with the other y is another key.
        let mut negated = public.clone();
        negated[0] ^= 1;
        assert!(matches!(check_key(&trusted, &negated), Err(Error::Signature { .. })));
        // Bytes of a compressed point's length that are no point, and other garbage.
        let mut garbage = vec![2u8; public.len()];
        garbage[1..].fill(0xff);
        assert!(matches!(check_key(&trusted, &garbage), Err(Error::Signature { .. })));
        assert!(matches!(check_key(&trusted, &public[1..]), Err(Error::Signature { .. })));
        assert!(matches!(check_key(&trusted, b""), Err(Error::Signature { .. })));
        let mut not_a_point = public.clone();
        not_a_point[0] = 4;
        assert!(matches!(check_key(&trusted, &not_a_point), Err(Error::Signature { .. })));
    }
}
