//! Items signed by a long-lived key (0x6701): a token-held ECDSA P-384 key or
//! one in memory signs, its public key is stored in the header as
//! `aws-crypto-public-key`, and readers that pin trusted signers refuse
//! items signed by any other key and unsigned (0x6700) items.

mod common;

use std::sync::Arc;

use base64::Engine as _;
use hsm_keyring::crypto::SoftwareSigner;
use hsm_keyring::items::{decrypt_item, encrypt_item, AttributeValue, CryptoAction, Item, TableConfig};
use hsm_keyring::keyrings::RawAesKeyring;
use hsm_keyring::pkcs11::{trusted_signer_from_token, Pkcs11Signer, Pkcs11Uri, Token};
use hsm_keyring::{AlgorithmSuite, Error, ErrorKind, FooterSigner, SignatureCurve};

const SIGNED: AlgorithmSuite = AlgorithmSuite::DbeAes256GcmHkdfSha512CommitKeyEcdsaP384SymsigHmacSha384;
const UNSIGNED: AlgorithmSuite = AlgorithmSuite::DbeAes256GcmHkdfSha512CommitKeySymsigHmacSha384;

fn builder(suite: AlgorithmSuite) -> hsm_keyring::items::TableConfigBuilder {
    TableConfig::builder("signed-items", "pk")
        .action("secret", CryptoAction::EncryptAndSign)
        .action("note", CryptoAction::SignOnly)
        .suite(suite)
        .keyring(RawAesKeyring::new("ns", "k", &[9; 32]).unwrap())
}

fn item() -> Item {
    Item::from([
        ("pk".to_owned(), AttributeValue::S("p-1".into())),
        ("secret".to_owned(), AttributeValue::S("card".into())),
        ("note".to_owned(), AttributeValue::N("3".into())),
    ])
}

/// The compressed public key stored in an item's header.
fn stored_public_key(stored: &Item) -> Vec<u8> {
    let AttributeValue::B(head) = &stored["aws_dbe_head"] else { panic!("no header") };
    let b64 = base64::engine::general_purpose::STANDARD;
    let needle = b"aws-crypto-public-key";
    let at = head.windows(needle.len()).position(|w| w == needle).expect("public key in the header") + needle.len();
    let len = usize::from(u16::from_be_bytes([head[at], head[at + 1]]));
    b64.decode(&head[at + 2..at + 2 + len]).unwrap()
}

fn assert_signature_error(result: Result<Item, Error>, what: &str) {
    match result {
        Err(e @ Error::Signature { .. }) => assert_eq!(e.kind(), ErrorKind::NotAuthentic, "{what}"),
        other => panic!("{what}: expected a signature error, got {other:?}"),
    }
}

fn pinned(keys: Vec<Vec<u8>>) -> TableConfig {
    builder(SIGNED).trusted_signers(keys).build().unwrap()
}

#[test]
fn token_signer_round_trip_and_pinning() {
    let Some(hsm) = common::softhsm() else { return };
    let token = Token::open(&Pkcs11Uri::parse(&hsm.token_uri()).unwrap()).unwrap();
    let uri = token.generate_ec_p384_key_pair("item-signer", None).unwrap();
    let signer: Arc<dyn FooterSigner> = Arc::new(Pkcs11Signer::new(token.clone(), &uri).unwrap());
    let public = signer.public_key();
    assert_eq!(trusted_signer_from_token(&token, &uri).unwrap(), public);

    let writer = builder(SIGNED).signer(signer).build().unwrap();
    let first = encrypt_item(&writer, &item()).unwrap();
    let second = encrypt_item(&writer, &item()).unwrap();
    // The token key, not a fresh one, signs every item.
    assert_eq!(stored_public_key(&first), public);
    assert_eq!(stored_public_key(&second), public);
    let AttributeValue::B(foot) = &first["aws_dbe_foot"] else { panic!("no footer") };
    assert_eq!(foot.len(), 48 + 103);

    // Read without pinning, and pinned to the token key.
    assert_eq!(decrypt_item(&builder(SIGNED).build().unwrap(), &first).unwrap(), item());
    let reader = pinned(vec![public.clone()]);
    assert_eq!(decrypt_item(&reader, &first).unwrap(), item());
    assert_eq!(decrypt_item(&reader, &second).unwrap(), item());

    // A changed signed attribute still fails as an altered item.
    let mut altered = first.clone();
    altered.insert("note".into(), AttributeValue::N("4".into()));
    assert!(matches!(decrypt_item(&reader, &altered), Err(Error::ItemAuthentication { .. })));

    // Items signed by another key (a fresh per-item key, another long-lived key) are refused.
    let fresh = encrypt_item(&builder(SIGNED).build().unwrap(), &item()).unwrap();
    assert_signature_error(decrypt_item(&reader, &fresh), "fresh signing key");
    let other: Arc<dyn FooterSigner> = Arc::new(SoftwareSigner::generate(SignatureCurve::P384));
    let by_other = encrypt_item(&builder(SIGNED).signer(other.clone()).build().unwrap(), &item()).unwrap();
    assert_signature_error(decrypt_item(&reader, &by_other), "other long-lived key");
    // ... and accepted once that key is trusted too.
    let both = pinned(vec![public.clone(), other.public_key()]);
    assert_eq!(decrypt_item(&both, &by_other).unwrap(), item());

    // Unsigned items are refused when signers are pinned.
    let unsigned = encrypt_item(&builder(UNSIGNED).build().unwrap(), &item()).unwrap();
    assert_eq!(decrypt_item(&builder(SIGNED).build().unwrap(), &unsigned).unwrap(), item());
    assert_signature_error(decrypt_item(&reader, &unsigned), "unsigned suite");
    // An empty trusted set refuses everything.
    assert_signature_error(decrypt_item(&pinned(Vec::new()), &first), "empty set");
}

#[test]
fn a_swapped_public_key_does_not_pass_the_pin() {
    // The pinned key's point written into another key's item: the footer
    // signature no longer verifies (the header, and so the record, changed).
    let trusted = SoftwareSigner::generate(SignatureCurve::P384);
    let attacker: Arc<dyn FooterSigner> = Arc::new(SoftwareSigner::generate(SignatureCurve::P384));
    let stored = encrypt_item(&builder(SIGNED).signer(attacker.clone()).build().unwrap(), &item()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let (from, to) = (b64.encode(attacker.public_key()), b64.encode(trusted.public_key()));
    let mut forged = stored.clone();
    let AttributeValue::B(head) = forged.get_mut("aws_dbe_head").unwrap() else { panic!("no header") };
    let at = head.windows(from.len()).position(|w| w == from.as_bytes()).unwrap();
    head[at..at + to.len()].copy_from_slice(to.as_bytes());
    let result = decrypt_item(&pinned(vec![trusted.public_key()]), &forged);
    assert!(result.is_err(), "a forged header was accepted");
    assert!(!matches!(result, Err(Error::Signature { ref reason }) if reason.contains("trusted")));
}

#[test]
fn signer_configuration_is_checked() {
    let p256: Arc<dyn FooterSigner> = Arc::new(SoftwareSigner::generate(SignatureCurve::P256));
    let err = builder(SIGNED).signer(p256).build().unwrap_err();
    assert!(err.to_string().contains("P-384"), "{err}");
    let p384: Arc<dyn FooterSigner> = Arc::new(SoftwareSigner::generate(SignatureCurve::P384));
    let err = builder(UNSIGNED).signer(p384.clone()).build().unwrap_err();
    assert!(err.to_string().contains("does not sign"), "{err}");
    let cmm = Arc::new(hsm_keyring::cmm::DefaultCmm::new(RawAesKeyring::new("ns", "k", &[9; 32]).unwrap()));
    let err = TableConfig::builder("t", "pk").cmm(cmm).signer(p384).build().unwrap_err();
    assert!(err.to_string().contains("with_signer"), "{err}");
    let err = builder(SIGNED).trusted_signers(vec![vec![2; 10]]).build().unwrap_err();
    assert!(matches!(err, Error::InvalidKey { .. }), "{err}");
    // A trusted signer may be given uncompressed.
    let signer: Arc<dyn FooterSigner> = Arc::new(SoftwareSigner::generate(SignatureCurve::P384));
    let point = p384::PublicKey::from_sec1_bytes(&signer.public_key()).unwrap();
    let uncompressed = p384::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&point, false).as_bytes().to_vec();
    assert_eq!(uncompressed.len(), 97);
    let stored = encrypt_item(&builder(SIGNED).signer(signer).build().unwrap(), &item()).unwrap();
    assert_eq!(decrypt_item(&pinned(vec![uncompressed]), &stored).unwrap(), item());
}
