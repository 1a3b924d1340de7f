//! Helpers for the tests of the `hsm-keyring` command: a work directory with
//! its own SoftHSM dev token, a command builder with a clean environment, and
//! checks of exit codes, error lines and left-over files.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// The command under test, built by Cargo for integration tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_hsm-keyring");

/// Label of the dev token that `dev-token init` creates.
pub const DEV_TOKEN: &str = "hsm-keyring-dev";
/// URI of the dev token's AES wrapping key.
pub const DEV_WRAP_URI: &str = "pkcs11:token=hsm-keyring-dev;object=dev-wrapping-key;type=secret-key";
/// URI of the dev token's EC P-384 signing key.
pub const DEV_SIGN_URI: &str = "pkcs11:token=hsm-keyring-dev;object=dev-signing-key;type=private";

/// SoftHSM's module, used by the dev token.
const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

/// A temporary work directory; commands run in it with a clean environment.
pub struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    /// A work directory without a token (raw keys only).
    pub fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("hsm-keyring-cli-").tempdir().expect("temp dir");
        Work { dir }
    }

    /// A work directory with a fresh dev token in `dev/`, or `None` (after a
    /// skip notice) when SoftHSM is missing outside CI.
    pub fn with_dev_token() -> Option<Self> {
        if !Path::new(SOFTHSM_MODULE).is_file() {
            let what = format!("SoftHSM not available (module {SOFTHSM_MODULE} missing)");
            assert!(!in_ci(), "{what}; CI=true requires it");
            eprintln!("SKIPPED: {what}");
            return None;
        }
        let work = Work::new();
        let out = work.ok(["dev-token", "init", "--quiet"]);
        assert_eq!(out.lines().count(), 3, "dev-token init prints three URIs:\n{out}");
        Some(work)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The dev token's directory (`HSM_KEYRING_DEV_DIR`).
    pub fn dev_dir(&self) -> PathBuf {
        self.file("dev")
    }

    /// Write `bytes` to `name` and return its path as a string.
    pub fn write(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.file(name);
        std::fs::write(&path, bytes).expect("write test file");
        path.to_str().expect("UTF-8 temp path").to_owned()
    }

    /// Read a file of the directory.
    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.file(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
    }

    /// `hsm-keyring ARGS` in this directory, with only this test's settings:
    /// its dev token, no SoftHSM or module override, no PIN, no config.
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Command::from_std(self.std_cmd(args))
    }

    /// [`Work::cmd`] as a `std::process::Command`, for a process to spawn.
    pub fn std_cmd<I, S>(&self, args: I) -> std::process::Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = std::process::Command::new(BIN);
        cmd.current_dir(self.path())
            .env("HSM_KEYRING_DEV_DIR", self.dev_dir())
            .env("XDG_CONFIG_HOME", self.file("xdg-config"))
            .env("XDG_DATA_HOME", self.file("xdg-data"))
            .env_remove("SOFTHSM2_CONF")
            .env_remove("PKCS11_MODULE")
            .env_remove("HSM_KEYRING_PIN")
            .env_remove("HSM_KEYRING_CONFIG")
            .args(args);
        cmd
    }

    /// Run and require success; returns stdout.
    #[track_caller]
    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_ok(&mut self.cmd(args))
    }

    /// Run and require exit code `code`; returns the one-line error.
    #[track_caller]
    pub fn fails<I, S>(&self, code: i32, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_fails(&mut self.cmd(args), code)
    }

    /// Names in the directory (top level), sorted, for left-over checks.
    pub fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path())
            .expect("list work dir")
            .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The temporary `.partial` files in the directory.
    pub fn partials(&self) -> Vec<String> {
        self.listing().into_iter().filter(|n| n.contains(".partial")).collect()
    }

    /// No file `name` and no temporary `.partial` file in the directory.
    #[track_caller]
    pub fn assert_no_output(&self, name: &str) {
        let listing = self.listing();
        assert!(!self.file(name).exists(), "{name} was left behind: {listing:?}");
        assert!(!listing.iter().any(|n| n.contains(".partial")), "a temporary output was left behind: {listing:?}");
    }
}

/// Run and require success; returns stdout.
#[track_caller]
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run hsm-keyring");
    assert!(out.status.success(), "{cmd:?} failed with {}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 stdout")
}

/// Run and require exit code `code`, nothing on stdout, and exactly one
/// error line `hsm-keyring: ...` on stderr; returns that line.
#[track_caller]
pub fn run_fails(cmd: &mut Command, code: i32) -> String {
    let out = cmd.output().expect("run hsm-keyring");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{cmd:?}: expected exit code {code}, stderr: {stderr}");
    assert!(out.stdout.is_empty(), "{cmd:?} failed but wrote {} bytes to stdout", out.stdout.len());
    let line = stderr.strip_suffix('\n').unwrap_or(&stderr);
    assert!(!line.contains('\n'), "the error is not one line:\n{stderr}");
    assert!(line.starts_with("hsm-keyring: ") && line.len() > 20, "not an error line: {stderr:?}");
    line.to_owned()
}

/// Deterministic test bytes (xorshift), different for each `seed`.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    fill(&mut out, &mut Xorshift::new(seed));
    out
}

/// A small deterministic generator for streaming test data.
pub struct Xorshift(u64);

impl Xorshift {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Xorshift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Fill `buf` with the generator's next bytes.
pub fn fill(buf: &mut [u8], rng: &mut Xorshift) {
    for chunk in buf.chunks_mut(8) {
        let word = rng.next().to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

/// The parsed JSON of `inspect -i FILE`.
pub fn inspect(work: &Work, file: &str) -> serde_json::Value {
    let out = work.ok(["inspect", "-i", file]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("inspect output is not JSON ({e}):\n{out}"))
}
