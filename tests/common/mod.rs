//! SoftHSM test token: one fresh token directory per test process.
//!
//! [`softhsm`] creates a temporary directory, writes a SoftHSM configuration
//! pointing at it, sets `SOFTHSM2_CONF` (before anything loads the module)
//! and initializes a token with `softhsm2-util`. When SoftHSM is not
//! installed the tests are skipped with a notice, unless `CI=true`, where
//! that is a failure.
//!
//! This file does not use the crate under test, so the library's own tests
//! can include it too.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;

mod tokens;
#[allow(unused_imports)]
pub use tokens::*;

/// Default SoftHSM module path.
pub const DEFAULT_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// Label of the test token.
pub const TOKEN_LABEL: &str = "hsm-keyring-test";
/// User PIN of the test token.
pub const USER_PIN: &str = "test-user-pin-1234";
/// Security officer PIN of the test token.
pub const SO_PIN: &str = "test-so-pin-5678";

/// The test token of this process.
#[derive(Debug)]
pub struct SoftHsm {
    /// The token directory (removed at process exit by the OS temp cleaner; never inside the repository).
    pub dir: PathBuf,
    /// The SoftHSM configuration file.
    pub conf: PathBuf,
    /// The module path.
    pub module: PathBuf,
    _keep: tempfile::TempDir,
}

impl SoftHsm {
    /// `pkcs11:token=...?module-path=...&pin-value=...`
    pub fn token_uri(&self) -> String {
        format!("pkcs11:token={TOKEN_LABEL}?module-path={}&pin-value={USER_PIN}", self.module.display())
    }

    /// A URI naming object `label` of `type` on the test token, with module and PIN.
    pub fn key_uri(&self, label: &str, object_type: &str) -> String {
        format!(
            "pkcs11:token={TOKEN_LABEL};object={label};type={object_type}?module-path={}&pin-value={USER_PIN}",
            self.module.display()
        )
    }

    /// A logged-in session opened through cryptoki directly, bypassing the
    /// crate: for reading attributes back and for making odd keys.
    pub fn raw_session(&self) -> Session {
        raw_session(&self.module, TOKEN_LABEL)
    }
}

impl SoftHsm {
    /// An AES-256 token key labelled `label`, private, sensitive and not
    /// extractable, with only the usages given: made behind the crate's back,
    /// for tests of keys whose attributes forbid an operation.
    pub fn aes_key_with_usages(&self, label: &str, encrypt: bool, decrypt: bool) {
        use cryptoki::mechanism::Mechanism;
        use cryptoki::object::{Attribute, KeyType, ObjectClass};
        self.raw_session()
            .generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::ValueLen(32.into()),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Encrypt(encrypt),
                    Attribute::Decrypt(decrypt),
                    Attribute::Label(label.as_bytes().to_vec()),
                ],
            )
            .expect("generate an AES key with chosen usages");
    }
}

fn module_path() -> PathBuf {
    match std::env::var_os("PKCS11_MODULE") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_MODULE),
    }
}

fn have_util() -> bool {
    Command::new("softhsm2-util").arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
}

/// The process's SoftHSM token, created on first call; `None` (after a
/// skip notice) when SoftHSM is missing outside CI.
pub fn softhsm() -> Option<&'static SoftHsm> {
    static TOKEN: OnceLock<Option<SoftHsm>> = OnceLock::new();
    TOKEN.get_or_init(init).as_ref()
}

fn init() -> Option<SoftHsm> {
    let module = module_path();
    if !module.exists() || !have_util() {
        let what = format!("SoftHSM not available (module {} or softhsm2-util missing)", module.display());
        if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
            panic!("{what}; CI=true requires it");
        }
        eprintln!("SKIPPED: {what}");
        return None;
    }
    // The directory lives as long as the process (it is held in a static), so
    // put it where it is cleaned up anyway: the CI run's directory, or cargo's
    // per-target temporary directory, before the system temp directory.
    let parent = std::env::var_os("HSM_KEYRING_TEST_DIR")
        .map(PathBuf::from)
        .or_else(|| option_env!("CARGO_TARGET_TMPDIR").map(PathBuf::from))
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&parent).expect("test directory parent");
    let keep = tempfile::Builder::new().prefix("hsm-keyring-softhsm-").tempdir_in(&parent).expect("temp dir");
    let dir = keep.path().to_path_buf();
    let tokens = dir.join("tokens");
    std::fs::create_dir(&tokens).expect("token dir");
    let conf = dir.join("softhsm2.conf");
    write_conf(&conf, &tokens);
    // Set before anything in this process loads the module.
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let out = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args(["--init-token", "--free", "--label", TOKEN_LABEL, "--pin", USER_PIN, "--so-pin", SO_PIN])
        .output()
        .expect("run softhsm2-util");
    assert!(out.status.success(), "softhsm2-util --init-token failed: {}", String::from_utf8_lossy(&out.stderr));
    Some(SoftHsm { dir, conf, module, _keep: keep })
}

fn write_conf(conf: &Path, tokens: &Path) {
    let text = format!(
        "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
        tokens.display()
    );
    std::fs::write(conf, text).expect("write SoftHSM configuration");
}

/// Return from the test when SoftHSM is unavailable (after the notice).
#[macro_export]
macro_rules! softhsm_or_skip {
    () => {
        match common::softhsm() {
            Some(hsm) => hsm,
            None => return,
        }
    };
}

/// A logged-in read-write session on the token labelled `label` of `module`,
/// opened through cryptoki directly, bypassing the crate.
fn raw_session(module: &Path, label: &str) -> Session {
    let ctx = Pkcs11::new(module).expect("load the module");
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("C_Initialize: {e}"),
    }
    let slot = ctx
        .get_slots_with_token()
        .expect("slots")
        .into_iter()
        .find(|s| ctx.get_token_info(*s).map(|i| i.label().trim_end() == label).unwrap_or(false))
        .expect("test token present");
    let session = ctx.open_rw_session(slot).expect("open session");
    match session.login(UserType::User, Some(&AuthPin::new(USER_PIN.into()))) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("C_Login: {e}"),
    }
    session
}
