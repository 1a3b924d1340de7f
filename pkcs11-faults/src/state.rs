//! The active configuration of the process: the rules of `PKCS11_FAULTS`
//! (read once, when the module is loaded) and those of the file named by
//! `PKCS11_FAULTS_CONFIG` (read again whenever its modification time or
//! size changes; a missing file means no rules).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use crate::rules::{Config, ParseError, Plan, Vendor};

/// Environment variable holding rules.
pub const RULES_VAR: &str = "PKCS11_FAULTS";
/// Environment variable naming a rule file.
pub const CONFIG_VAR: &str = "PKCS11_FAULTS_CONFIG";

/// What identifies one version of the rule file.
type Stamp = Option<(SystemTime, u64)>;

struct FileRules {
    path: PathBuf,
    stamp: Stamp,
    config: Arc<Config>,
}

struct State {
    env: Config,
    file: Option<Mutex<FileRules>>,
}

static STATE: OnceLock<Result<State, String>> = OnceLock::new();

fn stamp(path: &PathBuf) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn read_file(path: &PathBuf) -> Result<(Stamp, Config), String> {
    let before = stamp(path);
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("{CONFIG_VAR}={}: {e}", path.display())),
    };
    let config = Config::parse(&text).map_err(|e: ParseError| format!("{CONFIG_VAR}={}: {e}", path.display()))?;
    Ok((before, config))
}

fn load() -> Result<State, String> {
    let env = match std::env::var(RULES_VAR) {
        Ok(text) => Config::parse(&text).map_err(|e| format!("{RULES_VAR}: {e}"))?,
        Err(std::env::VarError::NotPresent) => Config::default(),
        Err(e) => return Err(format!("{RULES_VAR}: {e}")),
    };
    let file = match std::env::var_os(CONFIG_VAR) {
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            let (stamp, config) = read_file(&path)?;
            Some(Mutex::new(FileRules { path, stamp, config: Arc::new(config) }))
        }
        _ => None,
    };
    Ok(State { env, file })
}

/// Reads the configuration, once per process; the error says what is wrong with it.
pub fn init() -> Result<(), String> {
    STATE.get_or_init(load).as_ref().map(|_| ()).map_err(Clone::clone)
}

fn state() -> &'static State {
    match STATE.get_or_init(load) {
        Ok(state) => state,
        // C_GetFunctionList refuses to hand out the function list when the
        // configuration is bad, so no call gets here with one.
        Err(e) => fail(e),
    }
}

/// A configuration that turned bad in the middle of a run cannot be
/// ignored (the test would pass without its faults) nor reported through a
/// return code (that could be the fault it expects): stop the process.
fn fail(message: &str) -> ! {
    eprintln!("pkcs11-faults: {message}");
    std::process::abort()
}

/// The file's rules, read again if the file changed since the last call.
fn file_config(file: &Mutex<FileRules>) -> Arc<Config> {
    let mut rules = file.lock().unwrap_or_else(|e| e.into_inner());
    let now = stamp(&rules.path);
    if now != rules.stamp {
        match read_file(&rules.path) {
            Ok((stamp, config)) => {
                rules.stamp = stamp;
                rules.config = Arc::new(config);
            }
            Err(e) => fail(&e),
        }
    }
    Arc::clone(&rules.config)
}

/// Counts a call of `function` and returns what to do with it, with the vendor switches in force.
pub fn plan(function: &str) -> (Plan, Vendor) {
    let state = state();
    let plan = state.env.plan(function);
    match &state.file {
        None => (plan, state.env.vendor),
        Some(file) => {
            let config = file_config(file);
            (plan.merge(config.plan(function)), state.env.vendor.union(config.vendor))
        }
    }
}
