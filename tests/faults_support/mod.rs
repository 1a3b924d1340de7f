//! The fault-injecting PKCS#11 module (`pkcs11-faults`) in front of this
//! process's SoftHSM test token, for the `faults_*` tests: the module from
//! [`common::fault_module`] (skipped with a notice without it, a failure
//! under `CI=true`), rules in a [`common::FaultRules`] file the module reads
//! again whenever it changes, one test at a time ([`Faults::turn`]), and
//! bounded waits. The command's processes get their rules in
//! `PKCS11_FAULTS`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::common;

/// The fault module over the test token, and its rule file.
pub struct Faults {
    /// The fault module's path.
    pub module: PathBuf,
    /// The SoftHSM token behind it.
    pub hsm: &'static common::SoftHsm,
    rules: common::FaultRules,
}

/// The process's fault module over its SoftHSM token; `None` (after a skip
/// notice) when either is missing outside CI.
pub fn faults() -> Option<&'static Faults> {
    static FAULTS: OnceLock<Option<Faults>> = OnceLock::new();
    FAULTS
        .get_or_init(|| {
            let hsm = common::softhsm()?;
            let module = common::fault_module()?;
            let rules = common::FaultRules::install(&hsm.dir, &hsm.module);
            rules.set("");
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

    /// Replace the rules in force (their counters start from zero).
    pub fn set_rules(&self, text: &str) {
        self.rules.set(text);
    }

    /// Wait for this test's turn (no rules in force): rules, counters and
    /// the login state are the process's.
    pub fn turn(&self) -> Turn<'_> {
        static LOCK: Mutex<()> = Mutex::new(());
        let lock = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        self.set_rules("");
        Turn { faults: self, _lock: lock }
    }
}

/// One test's turn; clears the rules when dropped.
pub struct Turn<'a> {
    faults: &'a Faults,
    _lock: std::sync::MutexGuard<'static, ()>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.faults.set_rules("");
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
