//! One interface to the test tokens of either software token: SoftHSM 2
//! and Kryoptic, so one test body runs on both.
//!
//! [`test_token`] gives the process's token of a [`Backend`], created on
//! first use: SoftHSM's is the one of [`softhsm`](super::softhsm); Kryoptic's
//! is created in a temporary directory with the `kryoptic-token` tool built
//! next to the module by `ci/kryoptic.sh module`, whose path comes from
//! `HSM_KEYRING_KRYOPTIC_MODULE`. A missing token is skipped with a notice,
//! or is a failure with `CI=true`.
//!
//! [`extra_softhsm_tokens`] adds two SoftHSM tokens to the process's
//! SoftHSM directory, for tests that need several tokens holding one key;
//! it must run before anything in the process loads SoftHSM.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{softhsm, SO_PIN, TOKEN_LABEL, USER_PIN};

/// Environment variable with the Kryoptic module path.
pub const KRYOPTIC_ENV: &str = "HSM_KEYRING_KRYOPTIC_MODULE";
/// Environment variable with the fault-injecting module path.
pub const FAULT_ENV: &str = "HSM_KEYRING_FAULT_MODULE";
/// Label of the Kryoptic test token.
pub const KRYOPTIC_LABEL: &str = "hsm-keyring-kryoptic";
/// Label of the second SoftHSM test token.
pub const SECOND_LABEL: &str = "hsm-keyring-second";
/// Label of the third SoftHSM test token.
pub const THIRD_LABEL: &str = "hsm-keyring-third";

/// A software token implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SoftHSM 2.
    SoftHsm,
    /// Kryoptic.
    Kryoptic,
}

/// A token of one backend, with its module, label and PINs.
#[derive(Debug)]
pub struct TestToken {
    /// Which implementation.
    pub backend: Backend,
    /// The module path.
    pub module: PathBuf,
    /// The token label.
    pub label: &'static str,
    _keep: Option<tempfile::TempDir>,
}

impl TestToken {
    /// `pkcs11:token=...?module-path=...&pin-value=...`
    pub fn token_uri(&self) -> String {
        format!("pkcs11:token={}?module-path={}&pin-value={USER_PIN}", self.label, self.module.display())
    }

    /// A URI naming object `label` of `type` on the token, with module and PIN.
    pub fn key_uri(&self, label: &str, object_type: &str) -> String {
        format!(
            "pkcs11:token={};object={label};type={object_type}?module-path={}&pin-value={USER_PIN}",
            self.label,
            self.module.display()
        )
    }

    /// A logged-in read-write session opened through cryptoki directly,
    /// bypassing the crate: for importing keys of known value.
    pub fn raw_session(&self) -> cryptoki::session::Session {
        super::raw_session(&self.module, self.label)
    }

    /// The same token reached through `fault_module` (see [`fault_module`]),
    /// which forwards to the module named by `PKCS11_FAULTS_MODULE` and
    /// reads its rules when it is loaded: set its variables first.
    pub fn through_faults(&self, fault_module: &Path) -> TestToken {
        TestToken { backend: self.backend, module: fault_module.to_path_buf(), label: self.label, _keep: None }
    }
}

/// True when `CI=true`: a missing token is then a failure.
fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

fn missing(what: &str) {
    if in_ci() {
        panic!("{what}; CI=true requires it");
    }
    eprintln!("SKIPPED: {what}");
}

/// The process's token of `backend`, or `None` after a skip notice.
pub fn test_token(backend: Backend) -> Option<&'static TestToken> {
    match backend {
        Backend::SoftHsm => {
            static SOFTHSM: OnceLock<Option<TestToken>> = OnceLock::new();
            SOFTHSM
                .get_or_init(|| {
                    softhsm().map(|hsm| TestToken {
                        backend,
                        module: hsm.module.clone(),
                        label: TOKEN_LABEL,
                        _keep: None,
                    })
                })
                .as_ref()
        }
        Backend::Kryoptic => {
            static KRYOPTIC: OnceLock<Option<TestToken>> = OnceLock::new();
            KRYOPTIC.get_or_init(kryoptic).as_ref()
        }
    }
}

fn kryoptic() -> Option<TestToken> {
    let module = match std::env::var_os(KRYOPTIC_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            missing(&format!("Kryoptic not available ({KRYOPTIC_ENV} unset; `bash ci/kryoptic.sh module` prints it)"));
            return None;
        }
    };
    let tool = module.with_file_name("kryoptic-token");
    if !module.exists() || !tool.exists() {
        missing(&format!("Kryoptic not available ({} or kryoptic-token missing)", module.display()));
        return None;
    }
    let parent = std::env::var_os("HSM_KEYRING_TEST_DIR")
        .map(PathBuf::from)
        .or_else(|| option_env!("CARGO_TARGET_TMPDIR").map(PathBuf::from))
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&parent).expect("test directory parent");
    let keep = tempfile::Builder::new().prefix("hsm-keyring-kryoptic-").tempdir_in(&parent).expect("temp dir");
    let conf = keep.path().join("kryoptic.conf");
    let db = keep.path().join("token.sql");
    std::fs::write(&conf, format!("[[slots]]\nslot = 1\ndbtype = \"sqlite\"\ndbargs = \"{}\"\n", db.display()))
        .expect("write Kryoptic configuration");
    // Set before anything in this process loads the module.
    std::env::set_var("KRYOPTIC_CONF", &conf);
    let out = Command::new(&tool)
        .env("KRYOPTIC_CONF", &conf)
        .env("KRYOPTIC_SO_PIN", SO_PIN)
        .env("KRYOPTIC_USER_PIN", USER_PIN)
        .arg(&module)
        .arg(KRYOPTIC_LABEL)
        .output()
        .expect("run kryoptic-token");
    assert!(out.status.success(), "kryoptic-token failed: {}", String::from_utf8_lossy(&out.stderr));
    Some(TestToken { backend: Backend::Kryoptic, module, label: KRYOPTIC_LABEL, _keep: Some(keep) })
}

/// Two more SoftHSM tokens ([`SECOND_LABEL`], [`THIRD_LABEL`]) beside the
/// process's first, in the same SoftHSM directory. Call it before anything
/// loads SoftHSM.
pub fn extra_softhsm_tokens() -> Option<&'static [TestToken; 2]> {
    static EXTRA: OnceLock<Option<[TestToken; 2]>> = OnceLock::new();
    EXTRA
        .get_or_init(|| {
            let hsm = softhsm()?;
            let make = |label: &'static str| {
                let out = Command::new("softhsm2-util")
                    .env("SOFTHSM2_CONF", &hsm.conf)
                    .args(["--init-token", "--free", "--label", label, "--pin", USER_PIN, "--so-pin", SO_PIN])
                    .output()
                    .expect("run softhsm2-util");
                assert!(out.status.success(), "softhsm2-util --init-token: {}", String::from_utf8_lossy(&out.stderr));
                TestToken { backend: Backend::SoftHsm, module: hsm.module.clone(), label, _keep: None }
            };
            Some([make(SECOND_LABEL), make(THIRD_LABEL)])
        })
        .as_ref()
}

/// The fault-injecting module (`HSM_KEYRING_FAULT_MODULE`), or `None`
/// after a skip notice (a failure with `CI=true`). `bash ci/faults.sh`
/// builds it and prints the path.
pub fn fault_module() -> Option<PathBuf> {
    match std::env::var_os(FAULT_ENV) {
        Some(p) if !p.is_empty() && PathBuf::from(&p).exists() => Some(PathBuf::from(p)),
        _ => {
            missing(&format!("the fault module is not available ({FAULT_ENV}; `bash ci/faults.sh` prints it)"));
            None
        }
    }
}

/// One test per backend: `token_suite! { fn name(token) { body } }` makes
/// `softhsm::name` and `kryoptic::name`, each with `token: &TestToken` of
/// its backend (skipped when the backend is unavailable outside CI).
#[macro_export]
macro_rules! token_suite {
    ($(fn $name:ident($token:ident) $body:block)*) => {
        $(
            fn $name($token: &'static common::TestToken) $body
        )*
        mod softhsm {
            $(
                #[test]
                fn $name() {
                    if let Some(token) = super::common::test_token(super::common::Backend::SoftHsm) {
                        super::$name(token);
                    }
                }
            )*
        }
        mod kryoptic {
            $(
                #[test]
                fn $name() {
                    if let Some(token) = super::common::test_token(super::common::Backend::Kryoptic) {
                        super::$name(token);
                    }
                }
            )*
        }
    };
}

/// A rules file for the fault module (`PKCS11_FAULTS_CONFIG`), changed in
/// the middle of a run: each [`set`](FaultRules::set) replaces the file at
/// once and moves its modification time forward, so the module reads it
/// again.
#[derive(Debug)]
pub struct FaultRules {
    /// The rules file.
    pub path: PathBuf,
    writes: std::sync::atomic::AtomicU64,
}

impl FaultRules {
    /// Point the fault module at `dir/faults.rules` (no rules until
    /// [`set`](FaultRules::set)) and forward it to `real_module`. Call it
    /// before anything loads the fault module.
    pub fn install(dir: &Path, real_module: &Path) -> FaultRules {
        let path = dir.join("faults.rules");
        std::env::set_var("PKCS11_FAULTS_MODULE", real_module);
        std::env::set_var("PKCS11_FAULTS_CONFIG", &path);
        std::env::remove_var("PKCS11_FAULTS");
        FaultRules { path, writes: std::sync::atomic::AtomicU64::new(0) }
    }

    /// Replace the rules.
    pub fn set(&self, rules: &str) {
        let n = self.writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let tmp = self.path.with_extension(format!("tmp{n}"));
        std::fs::write(&tmp, format!("# version {n}\n{rules}\n")).expect("write fault rules");
        let file = std::fs::File::options().write(true).open(&tmp).expect("open fault rules");
        let when = std::time::SystemTime::now() + std::time::Duration::from_secs(n * 10);
        file.set_modified(when).expect("move the rules' modification time forward");
        drop(file);
        std::fs::rename(&tmp, &self.path).expect("replace fault rules");
    }
}
