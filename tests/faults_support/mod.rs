//! The fault-injecting PKCS#11 module (`pkcs11-faults`) in front of this
//! process's SoftHSM test token, for the `faults_*` tests.
//!
//! The module is the one `ci/faults.sh` builds, named by
//! `HSM_KEYRING_FAULT_MODULE` (else looked for in the target directory);
//! without it the tests are skipped with a notice, and fail under `CI=true`.
//! Rules go to a file (`PKCS11_FAULTS_CONFIG`) that the module reads again
//! whenever it changes; the command's processes get theirs in
//! `PKCS11_FAULTS`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use crate::common;

/// The fault module over the test token, and its rule file.
pub struct Faults {
    /// The fault module's path.
    pub module: PathBuf,
    /// The SoftHSM token behind it.
    pub hsm: &'static common::SoftHsm,
    rules: PathBuf,
}

fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// The fault module: `HSM_KEYRING_FAULT_MODULE`, else the debug build next
/// to this test binary's directory.
fn module_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HSM_KEYRING_FAULT_MODULE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let profile = exe.parent()?.parent()?;
    [profile.join("libpkcs11_faults.so"), profile.join("deps/libpkcs11_faults.so")].into_iter().find(|p| p.is_file())
}

/// The process's fault module over its SoftHSM token; `None` (after a skip
/// notice) when either is missing outside CI.
pub fn faults() -> Option<&'static Faults> {
    static FAULTS: OnceLock<Option<Faults>> = OnceLock::new();
    FAULTS
        .get_or_init(|| {
            let hsm = common::softhsm()?;
            let Some(module) = module_path().filter(|p| p.is_file()) else {
                let what = "fault module not available (set HSM_KEYRING_FAULT_MODULE=$(ci/faults.sh))";
                assert!(!in_ci(), "{what}; CI=true requires it");
                eprintln!("SKIPPED: {what}");
                return None;
            };
            let rules = hsm.dir.join("faults.rules");
            std::fs::write(&rules, "").expect("rule file");
            // Read by the fault module when it is loaded.
            std::env::set_var("PKCS11_FAULTS_MODULE", &hsm.module);
            std::env::set_var("PKCS11_FAULTS_CONFIG", &rules);
            std::env::remove_var("PKCS11_FAULTS");
            Some(Faults { module, hsm, rules })
        })
        .as_ref()
}

/// Return from the test when the fault module or SoftHSM is unavailable.
#[macro_export]
macro_rules! faults_or_skip {
    () => {
        match faults_support::faults() {
            Some(f) => f,
            None => return,
        }
    };
}

impl Faults {
    /// The token's URI through the fault module, with the PIN.
    pub fn token_uri(&self) -> String {
        format!(
            "pkcs11:token={}?module-path={}&pin-value={}",
            common::TOKEN_LABEL,
            self.module.display(),
            common::USER_PIN
        )
    }

    /// Replace the rules in force (their counters start from zero): a new
    /// file renamed over the old one, its modification time moved forward
    /// so the module sees the change within one tick of the clock.
    pub fn set_rules(&self, text: &str) {
        static BUMP: Mutex<u64> = Mutex::new(0);
        let mut bump = BUMP.lock().unwrap_or_else(|e| e.into_inner());
        *bump += 1;
        let next = self.rules.with_extension("next");
        std::fs::write(&next, text).expect("write rules");
        let file = std::fs::File::options().write(true).open(&next).expect("open rules");
        file.set_modified(SystemTime::now() + Duration::from_secs(*bump)).expect("set mtime");
        std::fs::rename(&next, &self.rules).expect("replace the rule file");
    }

    /// The rule file.
    pub fn rules_file(&self) -> &Path {
        &self.rules
    }
}

/// One test at a time per process: rules, counters and the login state are
/// the process's. Clears the rules when dropped.
pub struct Turn<'a> {
    faults: &'a Faults,
    _lock: std::sync::MutexGuard<'static, ()>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.faults.set_rules("");
    }
}

impl Faults {
    /// Wait for this test's turn (no rules in force).
    pub fn turn(&self) -> Turn<'_> {
        static LOCK: Mutex<()> = Mutex::new(());
        let lock = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        self.set_rules("");
        Turn { faults: self, _lock: lock }
    }
}

/// Run `f` on another thread and wait at most `limit` for it: a hang is a
/// failure, not a stuck test run.
pub fn bounded<T: Send + 'static>(what: &str, limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("{what}: no answer within {limit:?}"),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: the operation panicked"),
    }
}
