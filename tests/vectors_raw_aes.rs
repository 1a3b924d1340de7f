//! Decrypt the official raw-AES test vectors (all 11 suites, default and
//! required-encryption-context CMMs) with the test AES keyring, one-shot and
//! streaming. Reads `v4-Net-4.0.1.zip` from `$ESDK_VECTORS_DIR` or
//! `../shared/esdk-vectors/` (also one directory further up, for worktrees).

mod support;

use std::io::{Cursor, Read};
use std::path::PathBuf;

use base64::Engine as _;
use hsm_keyring::{Client, CommitmentPolicy, DefaultCmm, EncryptionContext, RequiredEncryptionContextCmm};
use support::TestAesKeyring;

fn vectors_zip() -> Option<PathBuf> {
    let name = "v4-Net-4.0.1.zip";
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(dir) = std::env::var("ESDK_VECTORS_DIR") {
        dirs.push(dir.into());
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dirs.push(root.join("../shared/esdk-vectors"));
    dirs.push(root.join("../../shared/esdk-vectors"));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.exists())
}

fn read(archive: &mut zip::ZipArchive<std::fs::File>, name: &str) -> Vec<u8> {
    let mut f = archive.by_name(name).unwrap_or_else(|_| panic!("{name} missing from the archive"));
    let mut out = Vec::new();
    f.read_to_end(&mut out).unwrap();
    out
}

#[test]
fn official_raw_aes_vectors_decrypt() {
    let Some(path) = vectors_zip() else {
        eprintln!("official vectors not found; set ESDK_VECTORS_DIR to run this test");
        return;
    };
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&read(&mut archive, "manifest.json")).unwrap();
    let keys: serde_json::Value = serde_json::from_slice(&read(&mut archive, "keys.json")).unwrap();
    let material = keys["keys"]["aes-256"]["material"].as_str().unwrap();
    let key: [u8; 32] = base64::engine::general_purpose::STANDARD.decode(material).unwrap().try_into().unwrap();
    let keyring = TestAesKeyring::new("aws-raw-vectors-persistant", "aes-256", key);
    let client = Client::builder().commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt).build().unwrap();

    let mut ran = 0;
    let mut suites = std::collections::BTreeSet::new();
    for (name, test) in manifest["tests"].as_object().unwrap() {
        let mks = test["master-keys"].as_array().unwrap();
        if mks.len() != 1 || mks[0]["type"] != "raw" || mks[0]["encryption-algorithm"] != "aes" {
            continue;
        }
        let ct = read(&mut archive, test["ciphertext"].as_str().unwrap().trim_start_matches("file://"));
        let pt =
            read(&mut archive, test["result"]["output"]["plaintext"].as_str().unwrap().trim_start_matches("file://"));
        let pairs = test["encryption-context"].as_object().unwrap();
        let ctx = EncryptionContext::from_pairs(pairs.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())))
            .unwrap();
        let out = match test["cmm"].as_str().unwrap() {
            "RequiredEncryptionContext" => {
                let keys: Vec<String> = ctx.keys().map(str::to_owned).collect();
                let cmm = RequiredEncryptionContextCmm::new(DefaultCmm::new(&keyring), keys).unwrap();
                client.decrypt(&cmm, &ct, &ctx)
            }
            _ => client.decrypt_with_keyring(&keyring, &ct, &ctx),
        };
        let out = out.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(out.plaintext, pt, "{name}");
        suites.insert(out.header.algorithm_suite.id());

        let cmm = DefaultCmm::new(&keyring);
        let mut r = client.decrypt_stream(&cmm, &ctx, Cursor::new(&ct)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut streamed = Vec::new();
        r.read_to_end(&mut streamed).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(streamed, pt, "{name}");

        // A flipped byte in the last frame's tag is refused.
        let mut bad = ct.clone();
        let n = bad.len();
        bad[n - 1 - if out.header.algorithm_suite.is_signing() { 110 } else { 0 }] ^= 1;
        assert!(client.decrypt_with_keyring(&keyring, &bad, &ctx).is_err(), "{name}: tampered vector accepted");
        ran += 1;
    }
    assert_eq!(ran, 33, "raw AES vectors in the manifest");
    assert_eq!(suites.len(), 11, "every suite is covered: {suites:x?}");
}
