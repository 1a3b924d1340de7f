//! Official AWS Encryption SDK decrypt vectors (`v4-Net-4.0.1.zip`, manifest
//! "awses-decrypt" version 4, written by the .NET SDK 4.0).
//!
//! Where the zip is read from, and what happens without it: see
//! `tests/esdk_vectors/mod.rs`.
//!
//! Two tests:
//! * `official_vectors_decrypt`: every vector whose keys are raw AES or raw
//!   RSA keys must decrypt, through the public `Client` API, to the expected
//!   plaintext; the AWS KMS vectors are counted as not applicable.
//! * `official_edks_open_at_keyring_level`: the encrypted data keys are taken
//!   out of each ciphertext header by a small walker local to this file and
//!   handed to the keyrings directly, which checks the raw keyrings' EDK
//!   layouts and AAD against bytes written by another implementation,
//!   independently of the message code.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use base64::Engine as _;
use hsm_keyring::cmm::{DefaultCmm, RequiredEncryptionContextCmm};
use hsm_keyring::crypto::RsaPadding;
use hsm_keyring::keyrings::{MultiKeyring, RawAesKeyring, RawRsaKeyring};
use hsm_keyring::{
    AlgorithmSuite, Client, CommitmentPolicy, CryptographicMaterialsManager, DecryptionMaterials, EncryptedDataKey,
    EncryptionContext, Error, Keyring,
};
use serde_json::Value;

mod esdk_vectors;

use esdk_vectors::{Vectors, KMS_TESTS, RAW_TESTS, TOTAL_TESTS};

/// One decrypt test of the manifest.
struct Case<'a> {
    name: &'a str,
    test: &'a Value,
}

fn cases(vectors: &Vectors) -> Vec<Case<'_>> {
    vectors.tests().iter().map(|(name, test)| Case { name, test }).collect()
}

impl Case<'_> {
    fn master_keys(&self) -> &[Value] {
        self.test["master-keys"].as_array().expect("master-keys")
    }

    fn needs_kms(&self) -> bool {
        self.master_keys().iter().any(|k| k["type"] == "aws-kms")
    }

    fn cmm(&self) -> &str {
        self.test["cmm"].as_str().unwrap_or("Default")
    }

    /// The manifest's encryption context: what the caller reproduces on decrypt.
    fn context(&self) -> EncryptionContext {
        let pairs = self.test["encryption-context"].as_object().map(|m| {
            m.iter().map(|(k, v)| (k.clone(), v.as_str().expect("context value").to_owned())).collect::<Vec<_>>()
        });
        EncryptionContext::from_pairs(pairs.unwrap_or_default()).expect("manifest context")
    }
}

// ---------------------------------------------------------------------------
// Keyrings from keys.json
// ---------------------------------------------------------------------------

/// The keyring for one master key of the manifest.
fn master_keyring(vectors: &Vectors, master_key: &Value) -> Arc<dyn Keyring> {
    assert_eq!(master_key["type"], "raw", "{master_key}");
    let key_ref = master_key["key"].as_str().expect("key reference");
    let key = &vectors.keys["keys"][key_ref];
    // The EDK's key name is the key id of keys.json; the namespace is the provider id.
    let key_name = key["key-id"].as_str().expect("key-id");
    let namespace = master_key["provider-id"].as_str().expect("provider-id");
    let material = key["material"].as_str().expect("material");
    match master_key["encryption-algorithm"].as_str() {
        Some("aes") => {
            assert_eq!(key["encoding"], "base64");
            let bytes = base64::engine::general_purpose::STANDARD.decode(material).expect("base64 key");
            assert_eq!(Some(bytes.len() as u64 * 8), key["bits"].as_u64());
            Arc::new(RawAesKeyring::new(namespace, key_name, &bytes).expect("AES keyring"))
        }
        Some("rsa") => {
            let padding = match (master_key["padding-algorithm"].as_str(), master_key["padding-hash"].as_str()) {
                (Some("pkcs1"), _) => RsaPadding::Pkcs1,
                (Some("oaep-mgf1"), Some(hash)) => RsaPadding::parse(&format!("oaep-{hash}")).expect("OAEP hash"),
                other => panic!("unknown RSA padding {other:?}"),
            };
            assert_eq!(key["encoding"], "pem");
            let keyring = match key["type"].as_str() {
                Some("private") => RawRsaKeyring::from_private_pem(namespace, key_name, padding, material),
                Some("public") => RawRsaKeyring::from_public_pem(namespace, key_name, padding, material),
                other => panic!("unknown RSA key type {other:?}"),
            };
            Arc::new(keyring.expect("RSA keyring"))
        }
        other => panic!("unknown raw key algorithm {other:?}"),
    }
}

/// The decrypting keyring of a case: its one key, or a multi-keyring with the
/// first key as generator and the others as children.
fn case_keyring(vectors: &Vectors, case: &Case<'_>) -> Arc<dyn Keyring> {
    let mut members = case.master_keys().iter().map(|k| master_keyring(vectors, k));
    let first = members.next().expect("at least one master key");
    let rest: Vec<_> = members.collect();
    if rest.is_empty() {
        first
    } else {
        Arc::new(MultiKeyring::new(Some(first), rest).expect("multi-keyring"))
    }
}

// ---------------------------------------------------------------------------
// Full-message decryption through the public API
// ---------------------------------------------------------------------------

fn decrypt_case(vectors: &Vectors, case: &Case<'_>) -> Result<(), String> {
    let keyring = case_keyring(vectors, case);
    let context = case.context();
    let default = DefaultCmm::new(keyring);
    let cmm: Box<dyn CryptographicMaterialsManager> = match case.cmm() {
        "Default" => Box::new(default),
        // These vectors were written with every manifest context key required
        // (their headers store none of them); the caller reproduces the pairs.
        "RequiredEncryptionContext" => {
            let required = context.keys().map(str::to_owned).collect();
            Box::new(RequiredEncryptionContextCmm::new(default, required).map_err(|e| e.to_string())?)
        }
        other => return Err(format!("unknown CMM `{other}`")),
    };
    let client = Client::builder()
        .commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt)
        .build()
        .map_err(|e| e.to_string())?;
    let ciphertext = vectors.file(&case.test["ciphertext"]);
    let expected = vectors.file(&case.test["result"]["output"]["plaintext"]);
    let decrypted = client.decrypt(cmm.as_ref(), ciphertext, &context).map_err(|e| e.to_string())?;
    if decrypted.plaintext != expected {
        return Err(format!(
            "plaintext differs: {} bytes, expected {} bytes",
            decrypted.plaintext.len(),
            expected.len()
        ));
    }
    Ok(())
}

#[test]
fn official_vectors_decrypt() {
    let Some(vectors) = Vectors::open("vectors") else { return };
    let cases = cases(&vectors);
    assert_eq!(cases.len(), TOTAL_TESTS);
    let (mut passed, mut not_applicable) = (0usize, 0usize);
    let mut failures = Vec::new();
    for case in &cases {
        if case.needs_kms() {
            not_applicable += 1;
            continue;
        }
        // A panic in one vector is reported like a failure, so that one run
        // shows the state of every vector.
        match catch_unwind(AssertUnwindSafe(|| decrypt_case(&vectors, case))) {
            Ok(Ok(())) => passed += 1,
            Ok(Err(reason)) => failures.push(format!("{}: {reason}", case.name)),
            Err(panic) => {
                let reason = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("panic");
                failures.push(format!("{}: panicked: {reason}", case.name));
            }
        }
    }
    for failure in failures.iter().take(10) {
        println!("FAILED {failure}");
    }
    println!("vectors: {passed} passed, {} failed, {not_applicable} not applicable (aws-kms)", failures.len());
    assert_eq!(not_applicable, KMS_TESTS);
    assert!(failures.is_empty(), "{} vectors failed, first: {}", failures.len(), failures[0]);
    assert_eq!(passed, RAW_TESTS);
}

// ---------------------------------------------------------------------------
// Keyring-level check of the EDKs, with a header walker local to this test
// ---------------------------------------------------------------------------

/// What the test needs from a header: suite, stored context and EDKs.
struct HeaderParts {
    version: u8,
    suite: AlgorithmSuite,
    stored_context: EncryptionContext,
    edks: Vec<EncryptedDataKey>,
}

/// A bounds-checked cursor; every read fails cleanly past the end.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or("header truncated")?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn prefixed(&mut self) -> Result<&'a [u8], String> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }
}

/// Walk a v1 or v2 header up to the end of the EDK list (format notes:
/// version, [v1: type], suite id, message id, context, EDKs).
fn walk_header(message: &[u8]) -> Result<HeaderParts, String> {
    let mut c = Cursor { bytes: message, pos: 0 };
    let version = c.u8()?;
    let message_id_len = match version {
        1 => {
            if c.u8()? != 0x80 {
                return Err("v1 type byte is not 0x80".into());
            }
            16
        }
        2 => 32,
        v => return Err(format!("unknown version {v}")),
    };
    let suite = AlgorithmSuite::from_id(c.u16()?).map_err(|e| e.to_string())?;
    c.take(message_id_len)?;
    let context_offset = c.pos as u64 + 2;
    let stored_context = EncryptionContext::deserialize(c.prefixed()?, context_offset).map_err(|e| e.to_string())?;
    let count = c.u16()?;
    let mut edks = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let provider_id = String::from_utf8(c.prefixed()?.to_vec()).map_err(|_| "provider id is not UTF-8")?;
        let provider_info = c.prefixed()?.to_vec();
        let ciphertext = c.prefixed()?.to_vec();
        edks.push(EncryptedDataKey { provider_id, provider_info, ciphertext });
    }
    Ok(HeaderParts { version, suite, stored_context, edks })
}

/// The full context a keyring sees: stored pairs plus the reproduced ones.
fn full_context(stored: &EncryptionContext, reproduced: &EncryptionContext) -> EncryptionContext {
    let mut full = stored.clone();
    for (k, v) in reproduced.iter() {
        if let Some(existing) = stored.get(k) {
            assert_eq!(existing, v, "stored and reproduced context disagree on `{k}`");
        }
        full.insert(k, v).expect("manifest context key");
    }
    full
}

#[test]
fn official_edks_open_at_keyring_level() {
    let Some(vectors) = Vectors::open("vectors") else { return };
    let mut checked = 0usize;
    let mut versions = [0usize; 3];
    let mut suites = std::collections::BTreeSet::new();
    for case in cases(&vectors).iter().filter(|c| !c.needs_kms()) {
        let header = walk_header(vectors.file(&case.test["ciphertext"]))
            .unwrap_or_else(|e| panic!("{}: header walk failed: {e}", case.name));
        let reproduced = case.context();
        let required_not_stored = reproduced.keys().filter(|k| !header.stored_context.contains_key(k)).count();
        match case.cmm() {
            // Required-context vectors store none of the manifest pairs; default ones store all.
            "RequiredEncryptionContext" => assert_eq!(required_not_stored, reproduced.len(), "{}", case.name),
            _ => assert_eq!(required_not_stored, 0, "{}", case.name),
        }
        let context = full_context(&header.stored_context, &reproduced);

        // Every EDK names a key of the case by its key id, under the manifest provider id.
        for (edk, master_key) in header.edks.iter().zip(case.master_keys()) {
            assert_eq!(edk.provider_id, master_key["provider-id"].as_str().unwrap(), "{}", case.name);
            let key_id = vectors.keys["keys"][master_key["key"].as_str().unwrap()]["key-id"].as_str().unwrap();
            assert!(edk.provider_info.starts_with(key_id.as_bytes()), "{}", case.name);
        }
        assert_eq!(header.edks.len(), case.master_keys().len(), "{}", case.name);

        let keyring = case_keyring(&vectors, case);
        let materials = DecryptionMaterials::new(header.suite, context.clone());
        let opened = keyring
            .on_decrypt(materials, &header.edks)
            .unwrap_or_else(|e| panic!("{}: keyring could not open the official EDK: {e}", case.name));
        let data_key = opened.data_key().expect("data key set");
        assert_eq!(data_key.len(), header.suite.key_len(), "{}", case.name);

        let first = &case.master_keys()[0];
        if first["encryption-algorithm"] == "aes" {
            // The AAD is the full context: without the required pairs that the
            // header does not store (or with a changed value) the EDK must not open.
            if required_not_stored > 0 {
                let stored_only = DecryptionMaterials::new(header.suite, header.stored_context.clone());
                let err = keyring.on_decrypt(stored_only, &header.edks).unwrap_err();
                assert!(matches!(err, Error::Keyring { .. }), "{}: {err}", case.name);
            }
            let mut changed = context.clone();
            changed.insert("key1", "tampered").unwrap();
            let err = keyring.on_decrypt(DecryptionMaterials::new(header.suite, changed), &header.edks).unwrap_err();
            assert!(matches!(err, Error::Keyring { .. }), "{}: {err}", case.name);
            // A flipped bit in the official EDK's ciphertext or IV fails too.
            let mut edks = header.edks.clone();
            edks[0].ciphertext[0] ^= 1;
            assert!(keyring.on_decrypt(DecryptionMaterials::new(header.suite, context.clone()), &edks).is_err());
            let mut edks = header.edks.clone();
            let last = edks[0].provider_info.len() - 1;
            edks[0].provider_info[last] ^= 1;
            assert!(keyring.on_decrypt(DecryptionMaterials::new(header.suite, context.clone()), &edks).is_err());
        }
        if case.master_keys().len() > 1 {
            // The public-only key's EDK is its own, but it cannot open it.
            let public = master_keyring(&vectors, &case.master_keys()[1]);
            let err = public
                .on_decrypt(DecryptionMaterials::new(header.suite, context.clone()), &header.edks[1..])
                .unwrap_err();
            assert!(err.to_string().contains("no private key"), "{}: {err}", case.name);
        }
        versions[usize::from(header.version)] += 1;
        suites.insert(header.suite);
        checked += 1;
    }
    println!(
        "keyring-level: {checked} official EDK sets opened ({} v1 and {} v2 headers, {} suites)",
        versions[1],
        versions[2],
        suites.len()
    );
    assert_eq!(checked, RAW_TESTS);
    assert!(versions[1] > 0 && versions[2] > 0);
    assert_eq!(suites.len(), AlgorithmSuite::ALL.len());
}
