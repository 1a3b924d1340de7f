//! Sender x receiver matrix: encrypt with {aws-esdk, hsm-keyring} x decrypt
//! with {aws-esdk, hsm-keyring}, each holding a keyring of either
//! implementation, over suites, plaintext sizes and encryption contexts; then
//! the negative cells (flipped byte, truncation, wrong context, policy) and
//! the required-encryption-context CMM on both sides.
//!
//! One test function per keyring kind walks its table of cells and reports
//! every failing cell by name, then prints `interop <table>: N cells passed,
//! 0 failed` (visible with `--nocapture`).
//!
//! Sizes 0, 1, 4095, 4096 and 4097 run with every suite. The 1 MiB cells run
//! for suite 0x0578 only (every sender and receiver, each keyring kind):
//! `aws-esdk`'s generated code is slow on large inputs in debug builds, and
//! the other suites take the same framing path.

mod cells;

use std::sync::Arc;

use hsm_keyring::interop::aws_esdk::{AwsEsdkKeyring, FromAwsEsdk};
use hsm_keyring::{AlgorithmSuite, CommitmentPolicy, Keyring};
use interop::{
    decrypt, encrypt, mpl, plaintext, raw_aes_pair, raw_rsa_pair, software, stored_context, DecryptSpec, EncryptSpec,
    KeyringImpl, KeyringPair, Pairs, RsaPadding,
};

use cells::{expect_failure, negative_cells, positive_cells, wrong_key_cells, Plan, Report, SIZES, SUITES, TWO_PAIRS};

/// All three suites, the small sizes with each, 1 MiB with 0x0578.
const PLAN: Plan =
    Plan { suites: &SUITES, sizes: &SIZES, large_suite: Some(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384) };

const AES_KEY: [u8; 32] = *b"interop raw AES-256 wrapping key";
const OTHER_AES_KEY: [u8; 32] = *b"another raw AES-256 wrapping key";

const RSA_PRIVATE: &str = include_str!("../../tests/data/interop-rsa-2048-private.pem");
const RSA_PUBLIC: &str = include_str!("../../tests/data/interop-rsa-2048-public.pem");
const OTHER_RSA_PRIVATE: &str = include_str!("../../tests/data/interop-rsa-2048-other-private.pem");
const OTHER_RSA_PUBLIC: &str = include_str!("../../tests/data/interop-rsa-2048-other-public.pem");

#[tokio::test]
async fn raw_aes_matrix() {
    let pair = raw_aes_pair("aes-key-1", &AES_KEY).await.expect("raw AES keyrings");
    let other = raw_aes_pair("aes-key-1", &OTHER_AES_KEY).await.expect("other raw AES keyrings");
    let mut report = Report::default();
    positive_cells(&pair, &PLAN, &mut report).await;
    negative_cells(&pair, &PLAN, &mut report).await;
    wrong_key_cells(&pair, &other, &mut report).await;
    report.finish("raw AES");
}

async fn raw_rsa_matrix(padding: RsaPadding) {
    let pair = raw_rsa_pair("rsa-key-1", RSA_PRIVATE, RSA_PUBLIC, padding).await.expect("raw RSA keyrings");
    let other =
        raw_rsa_pair("rsa-key-1", OTHER_RSA_PRIVATE, OTHER_RSA_PUBLIC, padding).await.expect("other raw RSA keyrings");
    let mut report = Report::default();
    positive_cells(&pair, &PLAN, &mut report).await;
    negative_cells(&pair, &PLAN, &mut report).await;
    wrong_key_cells(&pair, &other, &mut report).await;
    // The same key with the other padding must not open the EDK.
    let flipped = match padding {
        RsaPadding::OaepSha1 => RsaPadding::OaepSha256,
        RsaPadding::OaepSha256 => RsaPadding::OaepSha1,
    };
    let other_padding = raw_rsa_pair("rsa-key-1", RSA_PRIVATE, RSA_PUBLIC, flipped).await.expect("RSA keyrings");
    wrong_key_cells(&pair, &other_padding, &mut report).await;
    report.finish(&format!("raw RSA {padding:?}"));
}

#[tokio::test]
async fn raw_rsa_oaep_sha1_matrix() {
    raw_rsa_matrix(RsaPadding::OaepSha1).await;
}

#[tokio::test]
async fn raw_rsa_oaep_sha256_matrix() {
    raw_rsa_matrix(RsaPadding::OaepSha256).await;
}

/// The required-encryption-context CMM on both sides: the required pair is
/// authenticated but not stored, and must be reproduced to decrypt.
#[tokio::test]
async fn required_encryption_context_matrix() {
    let pair = raw_aes_pair("aes-key-1", &AES_KEY).await.expect("raw AES keyrings");
    let full: &Pairs = &[("tenant", "acme"), ("purpose", "interop"), ("record", "Ω-42")];
    let required: &[&str] = &["record"];
    let reproduced: &Pairs = &[("record", "Ω-42")];
    let wrong: &Pairs = &[("record", "Ω-43")];
    let mut report = Report::default();
    for sender in pair.parties() {
        for suite in
            [AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384]
        {
            let policy = CommitmentPolicy::default();
            let pt = plaintext(5000);
            let enc = EncryptSpec { suite, policy, context: full, required_keys: required };
            let base = format!("[required context] {sender}, suite 0x{:04X}", suite.id());
            let message = match encrypt(sender, &pair, enc, &pt).await {
                Ok(m) => m,
                Err(e) => {
                    report.check(&format!("{base} encrypt"), Err(e));
                    continue;
                }
            };
            let stored = stored_context(&message).map_err(|e| format!("inspect: {e}")).and_then(|ctx| {
                match (ctx.get("record"), ctx.get("tenant")) {
                    (None, Some("acme")) => Ok(()),
                    _ => Err(format!("stored context is {ctx:?}")),
                }
            });
            report.check(&format!("{base}: required pair not stored, others stored"), stored);
            for receiver in pair.parties() {
                let cell = format!("{base} -> {receiver}");
                let ok = DecryptSpec { policy, context: reproduced, required_keys: required };
                let outcome = decrypt(receiver, &pair, ok, &message).await.and_then(|out| {
                    if out == pt {
                        Ok(())
                    } else {
                        Err("plaintext differs".into())
                    }
                });
                report.check(&format!("{cell}, reproduced pair"), outcome);
                let spec = DecryptSpec { context: wrong, ..ok };
                let outcome = decrypt(receiver, &pair, spec, &message).await;
                report.check(&format!("{cell}, wrong reproduced value"), expect_failure("a wrong value", outcome));
                let spec = DecryptSpec { context: &[], required_keys: &[], ..ok };
                let outcome = decrypt(receiver, &pair, spec, &message).await;
                report.check(&format!("{cell}, pair not reproduced"), expect_failure("a missing pair", outcome));
            }
        }
    }
    report.finish("required encryption context");
}

/// Adapters inside multi-keyrings: `aws-esdk`'s multi-keyring with one of our
/// keyrings as a child, and ours with one of theirs. Every party encrypts with
/// the multi-keyring (the other implementation through the adapter), and each
/// child alone, of either implementation, opens the message.
#[tokio::test]
async fn multi_keyring_matrix() {
    let aes = raw_aes_pair("aes-key-1", &AES_KEY).await.expect("raw AES keyrings");
    let rsa =
        raw_rsa_pair("rsa-key-1", RSA_PRIVATE, RSA_PUBLIC, RsaPadding::OaepSha256).await.expect("raw RSA keyrings");
    let mut report = Report::default();

    let mut multis = Vec::new();
    // Theirs: generator = their AES, child = the RSA keyring of each implementation.
    for child_impl in rsa.keyring_impls() {
        let child = match child_impl {
            // Their RSA keyring through both adapters: exercises them inside their multi-keyring.
            KeyringImpl::Theirs => {
                let ours = Arc::new(FromAwsEsdk::new(rsa.theirs.clone(), "aws-esdk RSA")) as Arc<dyn Keyring>;
                AwsEsdkKeyring::keyring_ref(ours)
            }
            KeyringImpl::Ours => rsa.for_esdk(KeyringImpl::Ours),
        };
        let multi = mpl()
            .expect("mpl")
            .create_multi_keyring()
            .generator(aes.theirs.clone())
            .child_keyrings(vec![child])
            .send()
            .await
            .expect("aws-esdk multi-keyring");
        let name = format!("aws-esdk multi-keyring (AES + {child_impl:?} RSA child)");
        let ours = Arc::new(FromAwsEsdk::new(multi.clone(), name.clone())) as Arc<dyn Keyring>;
        multis.push(KeyringPair { name, theirs: multi, ours });
    }
    // Ours: generator = our AES, child = their RSA through the adapter.
    let multi = software::multi(aes.ours.clone(), vec![rsa.for_ours(KeyringImpl::Theirs)]).expect("multi-keyring");
    multis.push(KeyringPair {
        name: "hsm-keyring multi-keyring (AES + aws-esdk RSA child)".into(),
        theirs: AwsEsdkKeyring::keyring_ref(multi.clone()),
        ours: multi,
    });

    let pt = plaintext(9000);
    for multi in &multis {
        for suite in
            [AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384]
        {
            let spec =
                EncryptSpec { suite, policy: CommitmentPolicy::default(), context: TWO_PAIRS, required_keys: &[] };
            let dec = DecryptSpec { policy: CommitmentPolicy::default(), context: TWO_PAIRS, required_keys: &[] };
            for sender in multi.parties() {
                let cell = format!("[{}] {sender}, suite 0x{:04X}", multi.name, suite.id());
                let message = match encrypt(sender, multi, spec, &pt).await {
                    Ok(m) => m,
                    Err(e) => {
                        report.check(&format!("{cell} encrypt"), Err(e));
                        continue;
                    }
                };
                for (name, single) in [("AES", &aes), ("RSA", &rsa)] {
                    for receiver in single.parties() {
                        let outcome = decrypt(receiver, single, dec, &message).await.and_then(|out| {
                            if out == pt {
                                Ok(())
                            } else {
                                Err("plaintext differs".into())
                            }
                        });
                        report.check(&format!("{cell} -> {receiver} with {name} alone"), outcome);
                    }
                }
                let wrong: &Pairs = &[("tenant", "evil"), ("purpose", "interop")];
                for receiver in rsa.parties() {
                    let outcome = decrypt(receiver, &rsa, DecryptSpec { context: wrong, ..dec }, &message).await;
                    report.check(
                        &format!("{cell} -> {receiver} with RSA, wrong context"),
                        expect_failure("a wrong context", outcome),
                    );
                }
            }
        }
    }
    report.finish("multi-keyring");
}
