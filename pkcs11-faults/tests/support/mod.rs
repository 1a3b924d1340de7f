//! What the tests share: the built fault module, a SoftHSM token of their
//! own, and a rule file they rewrite between steps.
//!
//! Each test file is one process: [`harness`] creates the token, sets the
//! environment the fault module reads (before loading it), loads it once
//! through cryptoki and initializes it. Tests hold the [`Harness::rules`]
//! guard (from [`Harness::turn`]) while they run, which serializes them (the counters and the login
//! state are the process's) and clears the rules afterwards.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::{AuthPin, Ulong};

/// SoftHSM's module, the real module behind the fault module.
pub const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// Label of the test token.
pub const LABEL: &str = "pkcs11-faults";
/// User PIN of the test token.
pub const USER_PIN: &str = "faults-user-1234";
/// Security officer PIN of the test token.
pub const SO_PIN: &str = "faults-so-5678";

/// True when `CI=true`: missing components are failures there.
pub fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// Skips (returns `None` after a notice) or, under `CI=true`, fails.
pub fn skip<T>(what: &str) -> Option<T> {
    if in_ci() {
        panic!("{what}; CI=true requires it");
    }
    eprintln!("SKIPPED: {what}");
    None
}

/// The fault module built with these tests. `cargo test` writes the cdylib
/// into `deps/` next to the test binary (only `cargo build` copies it up to
/// the profile directory), so that copy comes first.
pub fn fault_module() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("test binary directory");
    let candidates = [deps.join("libpkcs11_faults.so"), deps.parent().unwrap_or(deps).join("libpkcs11_faults.so")];
    match candidates.iter().find(|p| p.is_file()) {
        Some(module) => module.clone(),
        None => panic!(
            "fault module not built: none of {} (cargo build -p pkcs11-faults, or ci/faults.sh)",
            candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// A directory for this process's files: under the test run's directory
/// (`HSM_KEYRING_TEST_DIR`, which `ci/test.sh` removes afterwards) or else
/// cargo's temporary directory, never inside the sources.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    let parent = std::env::var_os("HSM_KEYRING_TEST_DIR")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&parent).expect("target tmp dir");
    tempfile::Builder::new().prefix(prefix).tempdir_in(parent).expect("temp dir")
}

/// Creates a SoftHSM token in `dir` and points `SOFTHSM2_CONF` at it.
/// `None` (after a notice) when SoftHSM is missing outside CI.
fn softhsm_token(dir: &Path) -> Option<()> {
    let util = Command::new("softhsm2-util").arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    if !Path::new(SOFTHSM).is_file() || !util {
        return skip(&format!("SoftHSM not available ({SOFTHSM} or softhsm2-util missing)"));
    }
    let tokens = dir.join("tokens");
    std::fs::create_dir(&tokens).expect("token dir");
    let conf = dir.join("softhsm2.conf");
    let text = format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", tokens.display());
    std::fs::write(&conf, text).expect("softhsm2.conf");
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let out = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args(["--init-token", "--free", "--label", LABEL, "--so-pin", SO_PIN, "--pin", USER_PIN])
        .output()
        .expect("run softhsm2-util");
    assert!(out.status.success(), "softhsm2-util --init-token: {}", String::from_utf8_lossy(&out.stderr));
    Some(())
}

/// The fault module loaded over a SoftHSM token.
pub struct Harness {
    /// The fault module, initialized.
    pub ctx: Pkcs11,
    /// The test token's slot.
    pub slot: Slot,
    /// The rule file (`PKCS11_FAULTS_CONFIG`).
    pub rules_file: PathBuf,
    lock: Mutex<()>,
    _dir: tempfile::TempDir,
}

/// The process's harness, created on first call, with `env_rules` in
/// `PKCS11_FAULTS` (read once, when the module is loaded).
pub fn harness(env_rules: Option<&str>) -> Option<&'static Harness> {
    static HARNESS: OnceLock<Option<Harness>> = OnceLock::new();
    HARNESS
        .get_or_init(|| {
            let dir = temp_dir("pkcs11-faults-");
            softhsm_token(dir.path())?;
            let rules_file = dir.path().join("faults.rules");
            std::fs::write(&rules_file, "").expect("rule file");
            std::env::set_var("PKCS11_FAULTS_MODULE", SOFTHSM);
            std::env::set_var("PKCS11_FAULTS_CONFIG", &rules_file);
            match env_rules {
                Some(rules) => std::env::set_var("PKCS11_FAULTS", rules),
                None => std::env::remove_var("PKCS11_FAULTS"),
            }
            let ctx = Pkcs11::new(fault_module()).expect("load the fault module");
            ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).expect("C_Initialize");
            let slot = token_slot(&ctx, LABEL);
            Some(Harness { ctx, slot, rules_file, lock: Mutex::new(()), _dir: dir })
        })
        .as_ref()
}

/// The slot holding the token labelled `label`.
pub fn token_slot(ctx: &Pkcs11, label: &str) -> Slot {
    ctx.get_slots_with_token()
        .expect("C_GetSlotList")
        .into_iter()
        .find(|s| ctx.get_token_info(*s).map(|i| i.label().trim_end() == label).unwrap_or(false))
        .expect("test token present")
}

/// Holds the test's turn; clears the rules when dropped.
pub struct Rules<'a> {
    harness: &'a Harness,
    _turn: MutexGuard<'a, ()>,
}

impl Rules<'_> {
    /// Replaces the rules in force; their counters start from zero.
    pub fn set(&self, text: &str) {
        self.harness.write_rules(text);
    }
}

impl Drop for Rules<'_> {
    fn drop(&mut self) {
        self.harness.write_rules("");
    }
}

impl Harness {
    /// Waits for this test's turn, with no rules in force: set them with
    /// [`Rules::set`] once the test's sessions are open.
    pub fn turn(&self) -> Rules<'_> {
        let turn = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.write_rules("");
        Rules { harness: self, _turn: turn }
    }

    /// Replaces the rule file at once (a new file renamed over it, so the
    /// module never reads half of it), with its modification time moved
    /// forward so that the module sees a change even within one tick of the
    /// file system clock.
    fn write_rules(&self, text: &str) {
        static BUMP: Mutex<u64> = Mutex::new(0);
        let mut bump = BUMP.lock().unwrap_or_else(|e| e.into_inner());
        *bump += 1;
        let next = self.rules_file.with_extension("next");
        std::fs::write(&next, text).expect("write rules");
        let file = std::fs::File::options().write(true).open(&next).expect("open rules");
        file.set_modified(SystemTime::now() + Duration::from_secs(*bump)).expect("set mtime");
        std::fs::rename(&next, &self.rules_file).expect("replace the rule file");
    }

    /// A read-write session, logged in as the user.
    pub fn session(&self) -> Session {
        let session = self.ctx.open_rw_session(self.slot).expect("C_OpenSession");
        login(&session);
        session
    }
}

/// Logs the user in (already logged in is fine).
pub fn login(session: &Session) {
    match session.login(UserType::User, Some(&AuthPin::new(USER_PIN.into()))) {
        Ok(()) | Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("C_Login: {e}"),
    }
}

/// The PKCS#11 return code of a failed call.
pub fn rv<T: std::fmt::Debug>(result: cryptoki::error::Result<T>) -> RvError {
    match result {
        Err(Error::Pkcs11(rv, _)) => rv,
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

/// A session AES-256 key for encryption and decryption, made with `CKM_AES_KEY_GEN`.
pub fn aes_key(session: &Session) -> ObjectHandle {
    let template = [
        Attribute::Token(false),
        Attribute::ValueLen(32.into()),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Sensitive(true),
    ];
    session.generate_key(&Mechanism::AesKeyGen, &template).expect("C_GenerateKey")
}

/// AES-GCM with a 12-byte IV, a 128-bit tag and `aad`.
pub fn gcm<'a>(iv: &'a mut [u8; 12], aad: &'a [u8]) -> Mechanism<'a> {
    Mechanism::AesGcm(GcmParams::new(iv, aad, Ulong::from(128)).expect("GCM parameters"))
}
