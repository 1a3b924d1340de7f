//! Messages rotated by hsm-keyring's [`Rewrapper`], read by `aws-esdk`.
//!
//! A message is written under wrapping key A (raw AES-256 or raw RSA), its
//! data key rewrapped to key B by `Rewrapper` (`from` = A, `to` = B), and
//! `aws-esdk` with its own raw keyring holding only B decrypts it to the
//! original plaintext; `aws-esdk` holding only A no longer opens it, and the
//! rewrapped message with its last byte flipped is refused.
//!
//! * Suite 0x0478 (unsigned): every byte after the header is the original's.
//! * Suite 0x0578 (signed): rewrapped with a long-lived ECDSA P-384 signer
//!   (`Rewrapper::with_signer`); the new header names its public key, which
//!   `aws-esdk` takes from the encryption context to verify the new footer;
//!   the frames are the original's, only the footer differs. Without a
//!   signer the rewrap is refused.
//! * Routes: AES A -> AES B, AES A -> RSA B, RSA A -> RSA B (OAEP-SHA256),
//!   messages written by hsm-keyring, and AES A -> AES B for messages
//!   written by `aws-esdk` too.
//! * Sizes 0, 1, 4095, 4096, 4097 and 12388 bytes (four frames of 4096).
//!
//! The test prints `interop rewrap: N cells passed, 0 failed` (visible with
//! `--nocapture`).

mod cells;

use std::sync::Arc;

use hsm_keyring::crypto::SoftwareSigner;
use hsm_keyring::rewrap::Rewrapper;
use hsm_keyring::{AlgorithmSuite, Client, CommitmentPolicy, FooterSigner, SignatureCurve, PUBLIC_KEY_FIELD};
use interop::{
    decrypt, encrypt, plaintext, raw_aes_pair, raw_rsa_pair, stored_context, DecryptSpec, EncryptSpec, Impl,
    KeyringImpl, KeyringPair, Party, RsaPadding, FRAME_LENGTH,
};

use cells::{expect_failure, Report, TWO_PAIRS};

const AES_KEY_A: [u8; 32] = *b"rotation: old AES-256 wrapping k";
const AES_KEY_B: [u8; 32] = *b"rotation: new AES-256 wrapping k";

const RSA_PRIVATE_A: &str = include_str!("../../tests/data/interop-rsa-2048-private.pem");
const RSA_PUBLIC_A: &str = include_str!("../../tests/data/interop-rsa-2048-public.pem");
const RSA_PRIVATE_B: &str = include_str!("../../tests/data/interop-rsa-2048-other-private.pem");
const RSA_PUBLIC_B: &str = include_str!("../../tests/data/interop-rsa-2048-other-public.pem");

/// Empty, one byte, around the frame boundary, and four frames.
const SIZES: [usize; 6] = [0, 1, 4095, 4096, 4097, 3 * FRAME_LENGTH as usize + 100];

const UNSIGNED: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
const SIGNED: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;

/// `aws-esdk` with its own raw keyring: the reader of every cell.
const AWS_ESDK: Party = Party { message: Impl::Esdk, keyring: KeyringImpl::Theirs };
/// hsm-keyring with its own raw keyring.
const HSM_KEYRING: Party = Party { message: Impl::Ours, keyring: KeyringImpl::Ours };

/// One rotation: from `from` to `to`, for messages written by `sender`.
struct Route<'a> {
    name: &'static str,
    from: &'a KeyringPair,
    to: &'a KeyringPair,
    sender: Party,
}

fn rewrapper(route: &Route<'_>, signer: Option<Arc<dyn FooterSigner>>) -> Rewrapper {
    let client = Client::builder().frame_length(FRAME_LENGTH).build().expect("client");
    let rewrapper = Rewrapper::new(client, route.from.ours.clone(), route.to.ours.clone());
    match signer {
        Some(signer) => rewrapper.with_signer(signer),
        None => rewrapper,
    }
}

/// Write under A, rewrap to B, read with `aws-esdk` holding B, then the negative cells.
async fn cell(route: &Route<'_>, suite: AlgorithmSuite, size: usize, report: &mut Report) {
    let base = format!("[{}] {} writes, suite 0x{:04X}, {size} bytes", route.name, route.sender, suite.id());
    let pt = plaintext(size);
    let policy = CommitmentPolicy::RequireEncryptRequireDecrypt;
    let enc = EncryptSpec { suite, policy, context: TWO_PAIRS, required_keys: &[] };
    let dec = DecryptSpec { policy, context: TWO_PAIRS, required_keys: &[] };
    let message = match encrypt(route.sender, route.from, enc, &pt).await {
        Ok(m) => m,
        Err(e) => return report.check(&format!("{base}: encrypt"), Err(e)),
    };
    let signer: Option<Arc<dyn FooterSigner>> =
        suite.is_signing().then(|| Arc::new(SoftwareSigner::generate(SignatureCurve::P384)) as _);
    if suite.is_signing() {
        let refused = rewrapper(route, None).rewrap(&message).map_err(|e| e.to_string());
        report.check(&format!("{base}: rewrap without a signer refused"), expect_failure("no signer", refused));
    }
    let mut rewrapped = Vec::new();
    let info = match rewrapper(route, signer).rewrap_stream(&message[..], &mut rewrapped) {
        Ok(info) => info,
        Err(e) => return report.check(&format!("{base}: rewrap"), Err(e.to_string())),
    };

    let (old_body, new_body) = (&message[info.old_header_len..], &rewrapped[info.new_header_len..]);
    let same_body = if suite.is_signing() {
        // The frames are copied; only the footer is new.
        let frames = usize::try_from(info.body_len).expect("body length");
        match (old_body.get(..frames), new_body.get(..frames)) {
            (Some(a), Some(b)) if a == b && old_body[frames..] != new_body[frames..] => Ok(()),
            _ => Err("the frames changed, or the footer did not".to_owned()),
        }
    } else if old_body == new_body {
        Ok(())
    } else {
        Err("the bytes after the header changed".to_owned())
    };
    report.check(&format!("{base}: body kept"), same_body);
    if suite.is_signing() {
        let keys = stored_context(&message).and_then(|old| {
            let new = stored_context(&rewrapped)?;
            match (old.get(PUBLIC_KEY_FIELD), new.get(PUBLIC_KEY_FIELD)) {
                (Some(a), Some(b)) if a != b => Ok(()),
                other => Err(format!("public keys in the contexts: {other:?}")),
            }
        });
        report.check(&format!("{base}: the header names the new signer's key"), keys);
    }

    let read = decrypt(AWS_ESDK, route.to, dec, &rewrapped).await.and_then(|out| {
        if out == pt {
            Ok(())
        } else {
            Err("plaintext differs".into())
        }
    });
    report.check(&format!("{base}: aws-esdk with key B reads the rewrapped message"), read);
    let old_key = decrypt(AWS_ESDK, route.from, dec, &rewrapped).await;
    report.check(&format!("{base}: aws-esdk with key A refused"), expect_failure("the dropped key", old_key));
    let mut tampered = rewrapped.clone();
    *tampered.last_mut().expect("a message has bytes") ^= 0x01;
    let outcome = decrypt(AWS_ESDK, route.to, dec, &tampered).await;
    report
        .check(&format!("{base}: aws-esdk refuses a flipped last byte"), expect_failure("a tampered message", outcome));
}

#[tokio::test]
async fn rewrapped_messages_read_by_aws_esdk() {
    let aes_a = raw_aes_pair("rotation-aes-a", &AES_KEY_A).await.expect("raw AES keyrings A");
    let aes_b = raw_aes_pair("rotation-aes-b", &AES_KEY_B).await.expect("raw AES keyrings B");
    let padding = RsaPadding::OaepSha256;
    let rsa_a = raw_rsa_pair("rotation-rsa-a", RSA_PRIVATE_A, RSA_PUBLIC_A, padding).await.expect("raw RSA keyrings A");
    let rsa_b = raw_rsa_pair("rotation-rsa-b", RSA_PRIVATE_B, RSA_PUBLIC_B, padding).await.expect("raw RSA keyrings B");
    let routes = [
        Route { name: "AES A -> AES B", from: &aes_a, to: &aes_b, sender: HSM_KEYRING },
        Route { name: "AES A -> RSA B", from: &aes_a, to: &rsa_b, sender: HSM_KEYRING },
        Route { name: "RSA A -> RSA B", from: &rsa_a, to: &rsa_b, sender: HSM_KEYRING },
        Route { name: "AES A -> AES B", from: &aes_a, to: &aes_b, sender: AWS_ESDK },
    ];
    let mut report = Report::default();
    for route in &routes {
        for suite in [UNSIGNED, SIGNED] {
            for size in SIZES {
                cell(route, suite, size, &mut report).await;
            }
        }
    }
    report.finish("rewrap");
}
