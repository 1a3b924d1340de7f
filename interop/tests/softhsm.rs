//! Token-held keys against the AWS Encryption SDK for Rust, on a SoftHSM token.
//!
//! * `pkcs11_aes_vs_raw_aes_matrix`: hsm-keyring's PKCS#11 AES keyring over a
//!   key imported into the token, against `aws-esdk`'s raw AES keyring holding
//!   the same key bytes under the same namespace and key name. Every sender
//!   and receiver (each message implementation with each keyring), suites
//!   0x0478 and 0x0578, sizes 0, 1, 4096 and 4097, three contexts, then the
//!   negative cells and a keyring with the same name over another key.
//! * `pkcs11_aes_keyring_inside_aws_esdk`: the PKCS#11 keyring driven by
//!   `aws-esdk` itself through `AwsEsdkKeyring`, alone and as the generator of
//!   `aws-esdk`'s multi-keyring; the messages are opened by both libraries,
//!   and tampered ones, a wrong context and another token key are refused.
//!
//! Each test prints `interop <table>: N cells passed, 0 failed` (visible with
//! `--nocapture`). Without SoftHSM the tests are skipped with a notice, unless
//! `CI=true`.

#[path = "../../tests/common/mod.rs"]
mod common;

mod cells;

use std::collections::HashMap;
use std::sync::Arc;

use aws_esdk::material_providers::types::keyring::KeyringRef;
use aws_esdk::types::aws_encryption_sdk_config::AwsEncryptionSdkConfig;
use hsm_keyring::interop::aws_esdk::{esdk_algorithm_suite_id, AwsEsdkKeyring};
use hsm_keyring::pkcs11::Pkcs11AesKeyring;
use hsm_keyring::pkcs11::{Pkcs11Uri, Token, DEFAULT_NAMESPACE};
use hsm_keyring::{AlgorithmSuite, Client, CommitmentPolicy};
use interop::{
    decrypt, esdk_raw_aes, mpl, plaintext, raw_rsa_pair, software, DecryptSpec, KeyringPair, Pairs, RsaPadding,
};

use cells::{
    expect_failure, negative_cells, positive_cells, wrong_key_cells, Plan, Report, SuiteCell, NON_ASCII, TWO_PAIRS,
};

/// Key material imported into the token and given to the software keyrings.
const TOKEN_AES_KEY: [u8; 32] = *b"token-held AES-256 interop key!!";
/// Another key, imported under another label but written with the same key name.
const OTHER_TOKEN_AES_KEY: [u8; 32] = *b"other token AES-256 interop key!";

const RSA_PRIVATE: &str = include_str!("../../tests/data/interop-rsa-2048-private.pem");
const RSA_PUBLIC: &str = include_str!("../../tests/data/interop-rsa-2048-public.pem");

/// The committing suites under the default policy.
const SUITES: [SuiteCell; 2] = [
    (
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        CommitmentPolicy::RequireEncryptRequireDecrypt,
        CommitmentPolicy::RequireEncryptRequireDecrypt,
    ),
    (
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        CommitmentPolicy::RequireEncryptRequireDecrypt,
        CommitmentPolicy::RequireEncryptRequireDecrypt,
    ),
];

/// Both committing suites, a few sizes around the frame, no large cells.
const PLAN: Plan = Plan { suites: &SUITES, sizes: &[0, 1, 4096, 4097], large_suite: None };

fn token(hsm: &common::SoftHsm) -> Token {
    let uri = Pkcs11Uri::parse(&hsm.token_uri()).expect("token URI");
    Token::open(&uri).expect("open the SoftHSM token")
}

/// Our PKCS#11 AES keyring over `key` imported as `label`, writing `key_name`.
fn pkcs11_keyring(token: &Token, label: &str, key: &[u8; 32], key_name: &str) -> Pkcs11AesKeyring {
    let uri = token.import_aes_key(label, key, None).expect("import the AES key");
    let keyring = Pkcs11AesKeyring::new(token.clone(), &uri).expect("PKCS#11 AES keyring");
    assert_eq!(keyring.namespace(), DEFAULT_NAMESPACE);
    assert_eq!(keyring.key_name(), label, "the key name defaults to the label");
    if key_name == label {
        keyring
    } else {
        keyring.with_key_name(key_name).expect("key name")
    }
}

/// Ours = the PKCS#11 keyring, theirs = `aws-esdk`'s raw AES keyring over the same bytes.
async fn pkcs11_pair(token: &Token, label: &str, key: &[u8; 32], key_name: &str) -> KeyringPair {
    let ours = pkcs11_keyring(token, label, key, key_name);
    let theirs = esdk_raw_aes(DEFAULT_NAMESPACE, key_name, key).await.expect("aws-esdk raw AES keyring");
    KeyringPair { name: format!("SoftHSM AES {label} / raw AES"), theirs, ours: Arc::new(ours) }
}

#[tokio::test]
async fn pkcs11_aes_vs_raw_aes_matrix() {
    let hsm = softhsm_or_skip!();
    let token = token(hsm);
    let pair = pkcs11_pair(&token, "interop-aes-1", &TOKEN_AES_KEY, "interop-aes-1").await;
    // Same namespace and key name, other key material: "mine", but fails to unwrap.
    let other = pkcs11_pair(&token, "interop-aes-other", &OTHER_TOKEN_AES_KEY, "interop-aes-1").await;
    let mut report = Report::default();
    positive_cells(&pair, &PLAN, &mut report).await;
    negative_cells(&pair, &PLAN, &mut report).await;
    wrong_key_cells(&pair, &other, &mut report).await;
    report.finish("SoftHSM AES vs raw AES");
}

fn esdk_context(pairs: &Pairs) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// `aws-esdk` encrypts with `keyring` (frame length 4096, its default).
async fn esdk_encrypt(keyring: KeyringRef, suite: AlgorithmSuite, ctx: &Pairs, pt: &[u8]) -> Result<Vec<u8>, String> {
    let config = AwsEncryptionSdkConfig::builder().build().map_err(|e| e.to_string())?;
    let esdk = aws_esdk::client::Client::from_conf(config).map_err(|e| format!("{e:?}"))?;
    let out = esdk
        .encrypt()
        .plaintext(pt.to_vec())
        .keyring(keyring)
        .encryption_context(esdk_context(ctx))
        .algorithm_suite_id(esdk_algorithm_suite_id(suite))
        .send()
        .await
        .map_err(|e| format!("aws-esdk encrypt: {e:?}"))?;
    out.ciphertext.map(|b| b.into_inner()).ok_or_else(|| "aws-esdk returned no ciphertext".to_owned())
}

/// Every receiver of every pair opens `message`.
async fn opened_by_all(
    cell: &str,
    pairs: &[&KeyringPair],
    ctx: &Pairs,
    message: &[u8],
    pt: &[u8],
    report: &mut Report,
) {
    let dec = DecryptSpec { policy: CommitmentPolicy::default(), context: ctx, required_keys: &[] };
    for pair in pairs {
        for receiver in pair.parties() {
            let outcome = decrypt(receiver, pair, dec, message).await.and_then(|out| {
                if out == pt {
                    Ok(())
                } else {
                    Err("plaintext differs".into())
                }
            });
            report.check(&format!("{cell} -> [{}] {receiver}", pair.name), outcome);
        }
    }
}

#[tokio::test]
async fn pkcs11_aes_keyring_inside_aws_esdk() {
    let hsm = softhsm_or_skip!();
    let token = token(hsm);
    let label = "interop-aes-esdk";
    let pkcs11 = pkcs11_keyring(&token, label, &TOKEN_AES_KEY, label);
    // The token keyring as an aws-esdk keyring.
    let hsm_ref: KeyringRef = AwsEsdkKeyring::keyring_ref(Arc::new(pkcs11.clone()));

    // Receivers: the token keyring and raw AES keyrings of both libraries over the same bytes.
    let token_pair = KeyringPair {
        name: "SoftHSM AES / aws-esdk raw AES".into(),
        theirs: esdk_raw_aes(DEFAULT_NAMESPACE, label, &TOKEN_AES_KEY).await.expect("aws-esdk raw AES keyring"),
        ours: Arc::new(pkcs11.clone()),
    };
    let software_pair = KeyringPair {
        name: "hsm-keyring raw AES / aws-esdk raw AES".into(),
        theirs: token_pair.theirs.clone(),
        ours: software::raw_aes(DEFAULT_NAMESPACE, label, &TOKEN_AES_KEY).expect("raw AES keyring"),
    };
    let receivers = [&token_pair, &software_pair];
    let mut report = Report::default();

    for &(suite, _, _) in &SUITES {
        for (ctx_name, ctx) in [("two pairs", TWO_PAIRS), ("non-ASCII", NON_ASCII)] {
            for size in [1, 4097] {
                let cell =
                    format!("[aws-esdk with SoftHSM AES] suite 0x{:04X}, {size} bytes, context {ctx_name}", suite.id());
                let pt = plaintext(size);
                let message = match esdk_encrypt(hsm_ref.clone(), suite, ctx, &pt).await {
                    Ok(m) => m,
                    Err(e) => {
                        report.check(&cell, Err(e));
                        continue;
                    }
                };
                // The one EDK is the token keyring's: namespace and key name as configured.
                let edk = Client::new().inspect(message.as_slice()).map_err(|e| e.to_string()).and_then(|h| {
                    match h.encrypted_data_keys.as_slice() {
                        [edk]
                            if edk.provider_id == DEFAULT_NAMESPACE
                                && edk.provider_info.starts_with(label.as_bytes()) =>
                        {
                            Ok(())
                        }
                        edks => Err(format!(
                            "unexpected EDKs {:?}",
                            edks.iter().map(|e| &e.provider_id).collect::<Vec<_>>()
                        )),
                    }
                });
                report.check(&format!("{cell}: the token keyring's EDK"), edk);
                opened_by_all(&cell, &receivers, ctx, &message, &pt, &mut report).await;
            }
        }
    }

    // Negative cells on one message: tampered bytes, a wrong context, another token key with the same name.
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;
    let pt = plaintext(5000);
    let message = esdk_encrypt(hsm_ref.clone(), suite, TWO_PAIRS, &pt).await.expect("aws-esdk encrypt");
    let header_len = Client::new().inspect(message.as_slice()).expect("inspect").header_len;
    let dec = DecryptSpec { policy: CommitmentPolicy::default(), context: TWO_PAIRS, required_keys: &[] };
    // In the EDK ciphertext (a v2 header ends with 53 bytes after it: content type, frame length,
    // commit key, auth tag; the token unwrap fails), in the header auth tag, in the body, and the last byte.
    let positions = [header_len - 60, header_len - 1, message.len() / 2, message.len() - 1];
    for receiver_pair in receivers {
        for receiver in receiver_pair.parties() {
            let base = format!("[aws-esdk with SoftHSM AES, negative] -> [{}] {receiver}", receiver_pair.name);
            for pos in positions {
                let mut bad = message.clone();
                bad[pos] ^= 0x01;
                let outcome = decrypt(receiver, receiver_pair, dec, &bad).await;
                report.check(&format!("{base}, byte {pos} flipped"), expect_failure("a tampered message", outcome));
            }
            let wrong: &Pairs = &[("tenant", "evil"), ("purpose", "interop")];
            let outcome = decrypt(receiver, receiver_pair, DecryptSpec { context: wrong, ..dec }, &message).await;
            report.check(&format!("{base}, wrong context"), expect_failure("a wrong context", outcome));
        }
    }
    // Another token key written under the same name, through the adapter in aws-esdk: refused.
    let other = pkcs11_keyring(&token, "interop-aes-esdk-other", &OTHER_TOKEN_AES_KEY, label);
    let other_pair = KeyringPair {
        name: "other SoftHSM AES key".into(),
        theirs: AwsEsdkKeyring::keyring_ref(Arc::new(other.clone())),
        ours: Arc::new(other),
    };
    for receiver in other_pair.parties() {
        let outcome = decrypt(receiver, &other_pair, dec, &message).await;
        report.check(
            &format!("[aws-esdk with SoftHSM AES, negative] -> [{}] {receiver}, other key", other_pair.name),
            expect_failure("another token key", outcome),
        );
    }

    // The token keyring as the generator of aws-esdk's multi-keyring, with its raw RSA keyring as a child.
    let rsa = raw_rsa_pair("rsa-key-1", RSA_PRIVATE, RSA_PUBLIC, RsaPadding::OaepSha1).await.expect("raw RSA keyrings");
    let multi = mpl()
        .expect("mpl")
        .create_multi_keyring()
        .generator(hsm_ref.clone())
        .child_keyrings(vec![rsa.theirs.clone()])
        .send()
        .await
        .expect("aws-esdk multi-keyring");
    for &(suite, _, _) in &SUITES {
        let cell = format!("[aws-esdk multi-keyring: SoftHSM AES + raw RSA] suite 0x{:04X}", suite.id());
        let pt = plaintext(4097);
        match esdk_encrypt(multi.clone(), suite, TWO_PAIRS, &pt).await {
            Ok(message) => {
                opened_by_all(&cell, &[&token_pair, &software_pair, &rsa], TWO_PAIRS, &message, &pt, &mut report).await
            }
            Err(e) => report.check(&cell, Err(e)),
        }
    }
    report.finish("SoftHSM AES through aws-esdk");
}
