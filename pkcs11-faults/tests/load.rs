//! Loading the fault module: rules from `PKCS11_FAULTS`, and the refusal of
//! a bad configuration or real module (each in a child process of this test
//! binary, as the module reads its configuration once per process).

mod support;

use std::path::Path;
use std::process::{Command, Output};

use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::mechanism::MechanismType;
use support::{fault_module, harness, rv, skip, SOFTHSM};

const CHILD: &str = "PKCS11_FAULTS_TEST_CHILD";

#[test]
fn rules_from_the_environment() {
    let Some(h) = harness(Some("C_GenerateRandom@2=CKR_TOKEN_NOT_PRESENT; vendor=no-gcm")) else { return };
    let _turn = h.turn();
    let session = h.session();
    session.generate_random_vec(4).expect("first call");
    assert_eq!(rv(session.generate_random_vec(4)), RvError::TokenNotPresent);
    session.generate_random_vec(4).expect("third call");
    assert!(!h.ctx.get_mechanism_list(h.slot).expect("mechanisms").contains(&MechanismType::AES_GCM));
}

/// Runs `child` of this binary in a new process with `env`.
fn run_child(child: &str, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command.args(["--exact", child, "--nocapture", "--test-threads=1"]).env(CHILD, "1");
    for var in ["PKCS11_FAULTS", "PKCS11_FAULTS_CONFIG", "PKCS11_FAULTS_MODULE"] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    command.output().expect("run the child test")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The children load SoftHSM behind the fault module.
fn softhsm_present() -> bool {
    if Path::new(SOFTHSM).is_file() {
        return true;
    }
    skip::<()>(&format!("SoftHSM module {SOFTHSM} missing"));
    false
}

/// In a child: loads the module and says how that went.
#[test]
fn child_load() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    match Pkcs11::new(fault_module()) {
        Ok(_) => println!("child: loaded"),
        Err(e) => println!("child: load failed: {e}"),
    }
}

/// In a child: loads the module, breaks the rule file, calls a function.
#[test]
fn child_break_rules_mid_run() {
    let Some(file) = std::env::var_os(CHILD).and(std::env::var_os("PKCS11_FAULTS_CONFIG")) else { return };
    let ctx = Pkcs11::new(fault_module()).expect("load");
    println!("child: loaded");
    std::fs::write(&file, "C_GetInfo=CKR_NOT_A_CODE\n").expect("break the rules");
    let file = std::fs::File::options().write(true).open(&file).expect("open rules");
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5)).expect("mtime");
    let result = ctx.get_library_info();
    println!("child: still running after {result:?}");
}

#[test]
fn bad_rules_refuse_to_load() {
    if !softhsm_present() {
        return;
    }
    let out = run_child("child_load", &[("PKCS11_FAULTS", "C_Encrypt@0=CKR_DEVICE_ERROR")]);
    assert!(stdout(&out).contains("child: load failed"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("pkcs11-faults: PKCS11_FAULTS: bad fault rule `C_Encrypt@0=CKR_DEVICE_ERROR`"),
        "{}",
        stderr(&out)
    );
    let out = run_child("child_load", &[("PKCS11_FAULTS", "C_Encrypt@1=CKR_DEVICE_ERROR")]);
    assert!(stdout(&out).contains("child: loaded"), "good rules load: {}{}", stdout(&out), stderr(&out));
}

#[test]
fn bad_rule_file_refuses_to_load() {
    if !softhsm_present() {
        return;
    }
    let dir = support::temp_dir("pkcs11-faults-load-");
    let file = dir.path().join("rules");
    std::fs::write(&file, "# fine\nC_Sign%2=CKR_GENERAL_ERROR\nvendor=hsm-of-the-future\n").expect("rules");
    let out = run_child("child_load", &[("PKCS11_FAULTS_CONFIG", file.to_str().expect("utf-8 path"))]);
    assert!(stdout(&out).contains("child: load failed"), "{}", stdout(&out));
    assert!(stderr(&out).contains("unknown vendor behaviour"), "{}", stderr(&out));
    // A file that does not exist yet holds no rules.
    let missing = dir.path().join("not-yet");
    let out = run_child("child_load", &[("PKCS11_FAULTS_CONFIG", missing.to_str().expect("utf-8 path"))]);
    assert!(stdout(&out).contains("child: loaded"), "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn rule_file_broken_mid_run_stops_the_process() {
    if !softhsm_present() {
        return;
    }
    let dir = support::temp_dir("pkcs11-faults-load-");
    let file = dir.path().join("rules");
    std::fs::write(&file, "").expect("rules");
    let out = run_child("child_break_rules_mid_run", &[("PKCS11_FAULTS_CONFIG", file.to_str().expect("utf-8 path"))]);
    assert!(stdout(&out).contains("child: loaded"), "{}{}", stdout(&out), stderr(&out));
    assert!(!stdout(&out).contains("still running"), "{}", stdout(&out));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("CKR_NOT_A_CODE"), "{}", stderr(&out));
}

#[test]
fn missing_real_module_refuses_to_load() {
    let out = run_child("child_load", &[("PKCS11_FAULTS_MODULE", "/nonexistent/libpkcs11.so")]);
    assert!(stdout(&out).contains("child: load failed"), "{}", stdout(&out));
    assert!(stderr(&out).contains("PKCS11_FAULTS_MODULE=/nonexistent/libpkcs11.so"), "{}", stderr(&out));
}
