//! The official AWS Encryption SDK decrypt vectors (`v4-Net-4.0.1.zip`)
//! through the `hsm-keyring decrypt` command: one process per raw-key vector,
//! keys given as `--wrapping-key` files, the manifest's context as `--context`
//! pairs (which also supplies the pairs of the required-context vectors, not
//! stored in their headers), and the plaintext compared with the expected one.
//! The AWS KMS vectors are counted as not applicable.

mod cli_support;
mod esdk_vectors;

use std::sync::Mutex;

use base64::Engine as _;
use cli_support::{Work, BIN};
use esdk_vectors::{Vectors, KMS_TESTS, RAW_TESTS, TOTAL_TESTS};
use serde_json::Value;

const THREADS: usize = 2;

/// The `--wrapping-key` spec for one master key, writing its key file into
/// `work` (once per key). `None` for a key that cannot decrypt (a public key).
fn spec_for(vectors: &Vectors, work: &Work, master_key: &Value) -> Option<String> {
    assert_eq!(master_key["type"], "raw", "{master_key}");
    let key_ref = master_key["key"].as_str().expect("key reference");
    let key = &vectors.keys["keys"][key_ref];
    let name = key["key-id"].as_str().expect("key-id");
    let namespace = master_key["provider-id"].as_str().expect("provider-id");
    let material = key["material"].as_str().expect("material");
    match master_key["encryption-algorithm"].as_str() {
        Some("aes") => {
            let bytes = base64::engine::general_purpose::STANDARD.decode(material).expect("base64 key");
            let path = work.file(&format!("{key_ref}.key"));
            if !path.exists() {
                std::fs::write(&path, bytes).expect("write key file");
            }
            Some(format!("type=aes,path={},namespace={namespace},name={name}", path.display()))
        }
        Some("rsa") => {
            if key["type"] != "private" {
                return None;
            }
            let padding = match (master_key["padding-algorithm"].as_str(), master_key["padding-hash"].as_str()) {
                (Some("pkcs1"), _) => "pkcs1".to_owned(),
                (Some("oaep-mgf1"), Some(hash)) => format!("oaep-{hash}"),
                other => panic!("unknown RSA padding {other:?}"),
            };
            let path = work.file(&format!("{key_ref}.pem"));
            if !path.exists() {
                std::fs::write(&path, material).expect("write PEM");
            }
            Some(format!("type=rsa,path={},namespace={namespace},name={name},padding={padding}", path.display()))
        }
        other => panic!("unknown raw key algorithm {other:?}"),
    }
}

/// Decrypt one vector with the command; `Err` says why it failed.
fn run_case(vectors: &Vectors, work: &Work, name: &str, test: &Value) -> Result<(), String> {
    let master_keys = test["master-keys"].as_array().expect("master-keys");
    // The first key that can decrypt is enough (for the multi-key vectors, the private RSA key).
    let spec = master_keys.iter().find_map(|k| spec_for(vectors, work, k)).ok_or("no decrypting key")?;
    let input = work.file(&format!("{}.enc", name.replace('/', "_")));
    std::fs::write(&input, vectors.file(&test["ciphertext"])).expect("write ciphertext");
    let mut args = vec![
        "decrypt".to_owned(),
        "-i".to_owned(),
        input.to_str().expect("UTF-8 path").to_owned(),
        "-w".to_owned(),
        spec,
        "--commitment-policy".to_owned(),
        "require-encrypt-allow-decrypt".to_owned(),
    ];
    if let Some(pairs) = test["encryption-context"].as_object() {
        for (k, v) in pairs {
            args.push("--context".to_owned());
            args.push(format!("{k}={}", v.as_str().expect("context value")));
        }
    }
    let out = work.cmd(&args).output().map_err(|e| format!("run {BIN}: {e}"))?;
    if !out.status.success() {
        return Err(format!("exit {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr).trim_end()));
    }
    let expected = vectors.file(&test["result"]["output"]["plaintext"]);
    if out.stdout != expected {
        return Err(format!("plaintext differs: {} bytes, expected {}", out.stdout.len(), expected.len()));
    }
    Ok(())
}

#[test]
fn official_vectors_decrypt_through_the_command() {
    let Some(vectors) = Vectors::open("cli vectors") else { return };
    let work = Work::new();
    let tests = vectors.tests();
    assert_eq!(tests.len(), TOTAL_TESTS);
    let needs_kms =
        |t: &Value| t["master-keys"].as_array().expect("master-keys").iter().any(|k| k["type"] == "aws-kms");
    let not_applicable = tests.values().filter(|t| needs_kms(t)).count();
    // Key files first, so that the worker threads only read them.
    let raw: Vec<(&String, &Value)> = tests.iter().filter(|(_, t)| !needs_kms(t)).collect();
    for (_, t) in &raw {
        for k in t["master-keys"].as_array().unwrap() {
            spec_for(&vectors, &work, k);
        }
    }
    let next = Mutex::new(0usize);
    let failures = Mutex::new(Vec::new());
    let passed = Mutex::new(0usize);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    *n += 1;
                    *n - 1
                };
                let Some((name, test)) = raw.get(i) else { break };
                match run_case(&vectors, &work, name, test) {
                    Ok(()) => *passed.lock().unwrap() += 1,
                    Err(reason) => failures.lock().unwrap().push(format!("{name}: {reason}")),
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    let passed = passed.into_inner().unwrap();
    for f in failures.iter().take(10) {
        println!("FAILED {f}");
    }
    println!("cli vectors: {passed} passed, {} failed, {not_applicable} not applicable", failures.len());
    assert!(failures.is_empty(), "{} vectors failed, first: {}", failures.len(), failures[0]);
    assert_eq!(not_applicable, KMS_TESTS);
    assert_eq!(passed, RAW_TESTS);
}

#[test]
fn official_vectors_refuse_a_wrong_context_and_the_default_policy_refuses_v1() {
    // A negative control: the same process setup fails when a context value is
    // changed, and the default commitment policy refuses the legacy vectors.
    let Some(vectors) = Vectors::open("cli vectors") else { return };
    let work = Work::new();
    let tests = vectors.tests();
    let aes_with_context = |t: &Value| {
        let keys = t["master-keys"].as_array().unwrap();
        keys.len() == 1
            && keys[0]["encryption-algorithm"] == "aes"
            && t["encryption-context"].as_object().is_some_and(|c| !c.is_empty())
    };
    let (name, test) = tests.iter().find(|(_, t)| aes_with_context(t)).expect("an AES vector with a context");
    let spec = spec_for(&vectors, &work, &test["master-keys"][0]).unwrap();
    let input = work.write("v.enc", vectors.file(&test["ciphertext"]));
    let (k, v) = test["encryption-context"].as_object().unwrap().iter().next().unwrap();
    let wrong = format!("{k}={}-changed", v.as_str().unwrap());
    let out = work
        .cmd([
            "decrypt",
            "-i",
            &input,
            "-w",
            &spec,
            "--commitment-policy",
            "require-encrypt-allow-decrypt",
            "-c",
            &wrong,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty());

    let v1 = tests
        .iter()
        .filter(|(_, t)| !t["master-keys"].as_array().unwrap().iter().any(|k| k["type"] == "aws-kms"))
        .find(|(_, t)| vectors.file(&t["ciphertext"]).first() == Some(&1))
        .map(|(_, t)| t)
        .expect("a version 1 raw-key vector");
    let spec = v1["master-keys"].as_array().unwrap().iter().find_map(|k| spec_for(&vectors, &work, k)).unwrap();
    let input = work.write("v1.enc", vectors.file(&v1["ciphertext"]));
    let out = work.cmd(["decrypt", "-i", &input, "-w", &spec]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("policy"));
}
