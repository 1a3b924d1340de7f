//! The fault matrix: the token AES keyring, the token RSA keyring, the token
//! signer and the caching CMM over a token keyring, run through the
//! fault-injecting module with each lost-session, lost-login, device and
//! internal failure, a logout and latency. Every run either succeeds with
//! the right bytes (recovered) or fails as a token error naming the PKCS#11
//! function and return value (reported): never a wrong answer, never "not
//! this key", never a hang. Prints the matrix (`--nocapture`).
//!
//! The command's column is `faults_cli.rs`.

mod common;
mod faults_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hsm_keyring::cmm::{CachingCmm, DefaultCmm};
use hsm_keyring::crypto::RsaPadding;
use hsm_keyring::keyrings::RawAesKeyring;
use hsm_keyring::pkcs11::{Pkcs11AesKeyring, Pkcs11RsaKeyring, Pkcs11Signer, Pkcs11Uri, Token, TokenOptions};
use hsm_keyring::{
    AlgorithmSuite, Client, CommitmentPolicy, CryptographicMaterialsManager, DecryptMaterialsRequest,
    DecryptionMaterials, EncryptionContext, EncryptionMaterials, EncryptionMaterialsRequest, Error, ErrorKind,
    FooterSigner, Keyring,
};

/// A fault of the matrix: a return value, a logout, or latency.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Code(&'static str),
    Logout,
    Latency,
}

const FAULTS: [Fault; 10] = [
    Fault::Code("CKR_SESSION_HANDLE_INVALID"),
    Fault::Code("CKR_SESSION_CLOSED"),
    Fault::Code("CKR_USER_NOT_LOGGED_IN"),
    Fault::Code("CKR_DEVICE_REMOVED"),
    Fault::Code("CKR_DEVICE_ERROR"),
    Fault::Code("CKR_GENERAL_ERROR"),
    Fault::Code("CKR_FUNCTION_FAILED"),
    Fault::Code("CKR_TOKEN_NOT_PRESENT"),
    Fault::Logout,
    Fault::Latency,
];

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Code(c) => c,
            Fault::Logout => "logout",
            Fault::Latency => "latency 2 ms",
        }
    }

    /// The rule sets one fault is tried with, over the component's
    /// functions `fns`: on its 1st, 2nd, 3rd and 4th call (once), on every
    /// call of `fns` (that operation stays broken), on every call (the token
    /// is down).
    fn rule_sets(self, fns: &str) -> Vec<String> {
        let action = match self {
            Fault::Code(c) => c.to_owned(),
            Fault::Logout => "logout".to_owned(),
            Fault::Latency => return vec!["* = latency:2ms".to_owned()],
        };
        let mut sets: Vec<String> = (1..=4).map(|k| format!("{fns} @ {k} = {action}")).collect();
        sets.push(format!("{fns} > 0 = {action}"));
        sets.push(format!("* > 0 = {action}"));
        sets
    }
}

/// One component under test: a round trip through the token that answers
/// `Ok(true)` for the right bytes and `Ok(false)` for wrong ones.
struct Component {
    name: &'static str,
    /// The PKCS#11 functions of its operation, for the rules.
    fns: &'static str,
    run: Arc<dyn Fn() -> hsm_keyring::Result<bool> + Send + Sync>,
    token: Token,
}

#[derive(Default, Clone, Copy)]
struct Count {
    recovered: u32,
    reported: u32,
}

/// Why a failure is not an acceptable report, if it is not.
fn check_report(err: &Error, fault: Fault) -> Result<(), String> {
    if err.kind() != ErrorKind::Token {
        return Err(format!("kind {:?}, not a token error: {err}", err.kind()));
    }
    let Error::Pkcs11(e) = err else { return Err(format!("not a PKCS#11 error: {err}")) };
    if e.function().is_none() {
        return Err(format!("no PKCS#11 function named: {err}"));
    }
    match (fault, e.rv_name()) {
        // A login lost again at once is reported by the step that noticed.
        (Fault::Logout, None) => Ok(()),
        (_, None) => Err(format!("no return value named: {err}")),
        (Fault::Code(code), Some(rv)) if rv != code => Err(format!("reports {rv}, the fault was {code}: {err}")),
        _ => Ok(()),
    }
}

fn open_token(faults: &faults_support::Faults) -> Token {
    let uri = Pkcs11Uri::parse(&faults.token_uri()).unwrap();
    Token::open_with(&uri, TokenOptions::default().pool_size(2)).unwrap()
}

fn components(faults: &faults_support::Faults) -> Vec<Component> {
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let context = EncryptionContext::from_pairs([("purpose", "fault-matrix")]).unwrap();
    let mut out = Vec::new();

    let token = open_token(faults);
    let aes_uri = token.generate_aes_key("matrix-aes", None).unwrap();
    let aes = Arc::new(Pkcs11AesKeyring::new(token.clone(), &aes_uri).unwrap());
    let keyring_round_trip = |keyring: Arc<dyn Keyring>| {
        let context = context.clone();
        Arc::new(move || -> hsm_keyring::Result<bool> {
            let enc = keyring.on_encrypt(EncryptionMaterials::new(suite, context.clone()))?;
            let dec =
                keyring.on_decrypt(DecryptionMaterials::new(suite, context.clone()), enc.encrypted_data_keys())?;
            Ok(enc.data_key().is_some() && dec.data_key() == enc.data_key())
        })
    };
    out.push(Component {
        name: "AES keyring",
        fns: "C_EncryptInit|C_Encrypt|C_DecryptInit|C_Decrypt",
        run: keyring_round_trip(aes.clone()),
        token: token.clone(),
    });

    let rsa_token = open_token(faults);
    let rsa_uri = rsa_token.generate_rsa_key_pair("matrix-rsa", 2048, None).unwrap();
    let rsa = Arc::new(Pkcs11RsaKeyring::new(rsa_token.clone(), &rsa_uri, RsaPadding::OaepSha1).unwrap());
    out.push(Component {
        name: "RSA keyring",
        fns: "C_EncryptInit|C_Encrypt|C_DecryptInit|C_Decrypt",
        run: keyring_round_trip(rsa),
        token: rsa_token,
    });

    let sign_token = open_token(faults);
    let signer_uri = sign_token.generate_ec_p384_key_pair("matrix-signer", None).unwrap();
    let signer: Arc<dyn FooterSigner> = Arc::new(Pkcs11Signer::new(sign_token.clone(), &signer_uri).unwrap());
    let memory: Arc<dyn Keyring> = Arc::new(RawAesKeyring::new("matrix", "memory", &[7; 32]).unwrap());
    let signed_suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;
    let writer = Client::builder().algorithm_suite(signed_suite).build().unwrap();
    let reader = Client::builder().trusted_signers(vec![signer.public_key()]).build().unwrap();
    let signing_cmm = DefaultCmm::new(Arc::clone(&memory)).with_signer(signer);
    let plain_cmm = DefaultCmm::new(memory);
    let signed_context = context.clone();
    out.push(Component {
        name: "Pkcs11Signer",
        fns: "C_SignInit|C_Sign",
        run: Arc::new(move || {
            let plaintext = b"signed by the token".to_vec();
            let message = writer.encrypt(&signing_cmm, &plaintext, &signed_context)?;
            // A signature that does not verify fails here, as not authentic.
            let opened = reader.decrypt(&plain_cmm, &message, &signed_context)?;
            Ok(opened.plaintext == plaintext)
        }),
        token: sign_token,
    });

    let cache_context = context.clone();
    let cached_keyring = aes;
    out.push(Component {
        name: "caching CMM",
        fns: "C_EncryptInit|C_Encrypt|C_DecryptInit|C_Decrypt",
        run: Arc::new(move || {
            // A new cache each run, so that the token is asked.
            let cmm = CachingCmm::builder_for_keyring(Arc::clone(&cached_keyring) as Arc<dyn Keyring>)
                .max_age(Duration::from_secs(60))
                .build()?;
            let policy = CommitmentPolicy::RequireEncryptRequireDecrypt;
            let request = || {
                let mut r = EncryptionMaterialsRequest::new(cache_context.clone(), policy);
                r.max_plaintext_length = Some(1024);
                r
            };
            let enc = cmm.get_encryption_materials(request())?;
            let dec = cmm.decrypt_materials(DecryptMaterialsRequest::new(
                enc.algorithm_suite(),
                policy,
                enc.encrypted_data_keys().to_vec(),
                enc.encryption_context().clone(),
                None,
            ))?;
            // Once more from the cache: the same data key, no token call.
            let again = cmm.get_encryption_materials(request())?;
            Ok(enc.data_key().is_some() && dec.data_key() == enc.data_key() && again.data_key() == enc.data_key())
        }),
        token,
    });
    out
}

#[test]
fn fault_matrix_library_components() {
    let faults = faults_or_skip!();
    let components = components(faults);
    let mut matrix: BTreeMap<(usize, usize), Count> = BTreeMap::new();
    let mut bad = Vec::new();
    for (ci, component) in components.iter().enumerate() {
        for (fi, fault) in FAULTS.iter().enumerate() {
            for rules in fault.rule_sets(component.fns) {
                let cell = format!("{} / {rules}", component.name);
                faults.set_rules(&rules);
                let run = Arc::clone(&component.run);
                let result = faults_support::bounded(&cell, Duration::from_secs(60), move || run());
                faults.set_rules("");
                let count = matrix.entry((fi, ci)).or_default();
                match result {
                    Ok(true) => count.recovered += 1,
                    Ok(false) => bad.push(format!("{cell}: WRONG ANSWER")),
                    Err(e) => match check_report(&e, *fault) {
                        Ok(()) => count.reported += 1,
                        Err(why) => bad.push(format!("{cell}: {why}")),
                    },
                }
                // Once the fault is gone, the next operation works.
                let run = Arc::clone(&component.run);
                match faults_support::bounded(&cell, Duration::from_secs(60), move || run()) {
                    Ok(true) => {}
                    other => bad.push(format!("{cell}: after the fault cleared: {other:?}")),
                }
            }
        }
    }
    print_matrix(&components, &matrix);
    // The caching CMM runs over the AES keyring's token: its figures are the two together.
    for c in &components {
        eprintln!("{} token: {}", c.name, c.token.stats());
    }
    assert!(bad.is_empty(), "{} bad cells:\n{}", bad.len(), bad.join("\n"));
}

fn print_matrix(components: &[Component], matrix: &BTreeMap<(usize, usize), Count>) {
    let mut out =
        String::from("\nFault matrix (runs recovered / reported as token errors; 0 wrong answers, 0 hangs)\n\n");
    out.push_str("| fault |");
    for c in components {
        out.push_str(&format!(" {} |", c.name));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(components.len()));
    out.push('\n');
    for (fi, fault) in FAULTS.iter().enumerate() {
        out.push_str(&format!("| {} |", fault.name()));
        for ci in 0..components.len() {
            let c = matrix.get(&(fi, ci)).copied().unwrap_or_default();
            out.push_str(&format!(" {} rec / {} rep |", c.recovered, c.reported));
        }
        out.push('\n');
    }
    eprintln!("{out}");
}
