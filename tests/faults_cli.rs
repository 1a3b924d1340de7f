//! The command's column of the fault matrix (see `faults_matrix.rs`):
//! `hsm-keyring encrypt` and `hsm-keyring decrypt` with the fault module as
//! their PKCS#11 module (`PKCS11_MODULE` for encrypt, `module-path=` in the
//! key URI for decrypt), each fault in `PKCS11_FAULTS`. Every run either
//! succeeds with the right bytes or exits 3 naming the PKCS#11 function and
//! return value, writing no output; none hangs. Prints its rows
//! (`--nocapture`).

mod common;
mod faults_support;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hsm_keyring::pkcs11::{Pkcs11Uri, Token, TokenOptions};

const BIN: &str = env!("CARGO_BIN_EXE_hsm-keyring");
const KEY: &str = "cli-matrix-aes";

const FAULTS: [&str; 10] = [
    "CKR_SESSION_HANDLE_INVALID",
    "CKR_SESSION_CLOSED",
    "CKR_USER_NOT_LOGGED_IN",
    "CKR_DEVICE_REMOVED",
    "CKR_DEVICE_ERROR",
    "CKR_GENERAL_ERROR",
    "CKR_FUNCTION_FAILED",
    "CKR_TOKEN_NOT_PRESENT",
    "logout",
    "latency",
];

const FNS: &str = "C_EncryptInit|C_Encrypt|C_DecryptInit|C_Decrypt";

/// The rule sets of one fault, as in `faults_matrix.rs`: once on the 1st to
/// 4th call of the operation's functions, on every call of them, on every call.
fn rule_sets(fault: &str) -> Vec<String> {
    if fault == "latency" {
        return vec!["* = latency:2ms".into()];
    }
    let mut sets: Vec<String> = (1..=4).map(|k| format!("{FNS} @ {k} = {fault}")).collect();
    sets.push(format!("{FNS} > 0 = {fault}"));
    sets.push(format!("* > 0 = {fault}"));
    sets
}

/// Run the command with `rules` in force and `input` on stdin; at most 60 s.
fn run(faults: &faults_support::Faults, args: &[&str], rules: &str, input: &[u8], via_env: bool) -> Output {
    let dir = faults.hsm.dir.join("cli-home");
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("SOFTHSM2_CONF", &faults.hsm.conf)
        .env("PKCS11_FAULTS_MODULE", &faults.hsm.module)
        .env("PKCS11_FAULTS", rules)
        .env_remove("PKCS11_FAULTS_CONFIG")
        .env("HSM_KEYRING_PIN", common::USER_PIN)
        .env("HSM_KEYRING_DEV_DIR", dir.join("dev"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_DATA_HOME", dir.join("data"))
        .env_remove("HSM_KEYRING_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if via_env {
        cmd.env("PKCS11_MODULE", &faults.module);
    } else {
        cmd.env_remove("PKCS11_MODULE");
    }
    let mut child = cmd.spawn().expect("spawn hsm-keyring");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("hsm-keyring {args:?} with `{rules}` did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = writer.join();
    child.wait_with_output().expect("output")
}

fn spec(uri: &str) -> String {
    format!("type=pkcs11,uri={uri}")
}

/// Why a failed run is not an acceptable report, if it is not.
fn check_failure(out: &Output, fault: &str) -> Result<(), String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(3) {
        return Err(format!("exit {:?}, not 3 (token): {stderr}", out.status.code()));
    }
    if !out.stdout.is_empty() {
        return Err(format!("{} bytes written by a failed run: {stderr}", out.stdout.len()));
    }
    if !stderr.contains("PKCS#11 C_") {
        return Err(format!("no PKCS#11 function named: {stderr}"));
    }
    if fault.starts_with("CKR_") && !stderr.contains(fault) {
        return Err(format!("{fault} not named: {stderr}"));
    }
    Ok(())
}

#[test]
fn fault_matrix_command() {
    let faults = faults_or_skip!();
    // The key, made through the fault module with no rules in force.
    let uri = Pkcs11Uri::parse(&faults.token_uri()).unwrap();
    let token = Token::open_with(&uri, TokenOptions::default().pool_size(1)).unwrap();
    token.generate_aes_key(KEY, None).unwrap();
    let enc_uri = format!("pkcs11:token={};object={KEY};type=secret-key", common::TOKEN_LABEL);
    let dec_uri = format!("{enc_uri}?module-path={}", faults.module.display());
    let enc_args = ["encrypt", "--quiet", "--suite", "0x0478", "-w", &spec(&enc_uri)];
    let dec_args = ["decrypt", "--quiet", "-w", &spec(&dec_uri)];
    let plaintext: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    let clean = run(faults, &enc_args, "", &plaintext, true);
    assert!(clean.status.success(), "{}", String::from_utf8_lossy(&clean.stderr));
    let message = clean.stdout;

    let mut rows = Vec::new();
    let mut bad = Vec::new();
    for fault in FAULTS {
        let (mut enc_ok, mut enc_rep, mut dec_ok, mut dec_rep) = (0, 0, 0, 0);
        for rules in rule_sets(fault) {
            let out = run(faults, &enc_args, &rules, &plaintext, true);
            if out.status.success() {
                // The message written under the fault opens to the plaintext.
                let back = run(faults, &dec_args, "", &out.stdout, false);
                if back.stdout == plaintext && back.status.success() {
                    enc_ok += 1;
                } else {
                    bad.push(format!("encrypt / {rules}: WRONG ANSWER"));
                }
            } else {
                match check_failure(&out, fault) {
                    Ok(()) => enc_rep += 1,
                    Err(why) => bad.push(format!("encrypt / {rules}: {why}")),
                }
            }
            let out = run(faults, &dec_args, &rules, &message, false);
            if out.status.success() {
                if out.stdout == plaintext {
                    dec_ok += 1;
                } else {
                    bad.push(format!("decrypt / {rules}: WRONG ANSWER"));
                }
            } else {
                match check_failure(&out, fault) {
                    Ok(()) => dec_rep += 1,
                    Err(why) => bad.push(format!("decrypt / {rules}: {why}")),
                }
            }
        }
        rows.push(format!("| {fault} | {enc_ok} rec / {enc_rep} rep | {dec_ok} rec / {dec_rep} rep |"));
    }
    eprintln!(
        "\nFault matrix, the command (runs recovered / reported, exit 3)\n\n| fault | hsm-keyring encrypt | hsm-keyring decrypt |\n|---|---|---|\n{}\n",
        rows.join("\n")
    );
    assert!(bad.is_empty(), "{} bad runs:\n{}", bad.len(), bad.join("\n"));
}
