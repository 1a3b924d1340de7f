//! Temporary files that SIGTERM, SIGINT or SIGHUP must not leave behind.
//!
//! Each temporary output file is registered while it exists. A signal
//! thread removes every registered file, then exits with the conventional
//! status 128 + signal number. SIGKILL cannot be caught: a file left by it is
//! 0600 and named `.NAME.XXXXXX.partial`.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

static PATHS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn paths() -> MutexGuard<'static, Vec<PathBuf>> {
    PATHS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Catch SIGTERM, SIGINT and SIGHUP for the rest of the run.
pub fn install() -> std::io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        if let Some(signal) = signals.forever().next() {
            // Keep the lock until exit: no file can be committed meanwhile.
            let paths = paths();
            for path in paths.iter() {
                let _ = std::fs::remove_file(path);
            }
            std::process::exit(128 + signal);
        }
    })?;
    Ok(())
}

/// A registered temporary file; dropping it forgets the path (it does not
/// remove the file: its owner does).
#[derive(Debug)]
pub struct Registered(PathBuf);

impl Registered {
    pub fn new(path: &Path) -> Self {
        paths().push(path.to_path_buf());
        Registered(path.to_path_buf())
    }

    /// Run `f` (which moves the file away) so that no signal removes the file
    /// meanwhile, then forget it.
    pub fn commit<T>(mut self, f: impl FnOnce() -> T) -> T {
        let mut paths = paths();
        let out = f();
        forget(&mut paths, &self.0);
        // Nothing left for `drop` to forget.
        self.0 = PathBuf::new();
        out
    }
}

fn forget(paths: &mut Vec<PathBuf>, path: &Path) {
    if let Some(i) = paths.iter().position(|p| p == path) {
        paths.swap_remove(i);
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        forget(&mut paths(), &self.0);
    }
}
