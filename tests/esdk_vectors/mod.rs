//! The official AWS Encryption SDK decrypt vectors (`v4-Net-4.0.1.zip`,
//! manifest "awses-decrypt" version 4), shared by the library and command
//! tests.
//!
//! The zip is read from `$ESDK_VECTORS_DIR`, or else from
//! `../shared/esdk-vectors/` (or `../../shared/esdk-vectors/`, for a work
//! tree one level deeper) next to the crate root; it is never copied into the
//! repository. Without the zip, [`Vectors::open`] prints a skip notice and
//! returns `None`, except with `CI=true`, where a missing zip is a failure.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// File name of the vector set.
pub const ZIP_NAME: &str = "v4-Net-4.0.1.zip";
/// Decrypt tests in the manifest.
pub const TOTAL_TESTS: usize = 132;
/// Tests whose keys are raw AES or raw RSA keys.
pub const RAW_TESTS: usize = 99;
/// Tests that need AWS KMS (not applicable offline).
pub const KMS_TESTS: usize = 33;

/// The zip's manifest, keys and files.
pub struct Vectors {
    /// `manifest.json`.
    pub manifest: Value,
    /// `keys.json`.
    pub keys: Value,
    /// Every file of the zip by name.
    pub files: BTreeMap<String, Vec<u8>>,
}

fn candidates() -> Vec<PathBuf> {
    match std::env::var_os("ESDK_VECTORS_DIR") {
        Some(dir) => vec![PathBuf::from(dir).join(ZIP_NAME)],
        None => {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            vec![
                root.join("../shared/esdk-vectors").join(ZIP_NAME),
                root.join("../../shared/esdk-vectors").join(ZIP_NAME),
            ]
        }
    }
}

impl Vectors {
    /// The vectors, or `None` (after a skip notice naming `what`) when the zip
    /// is absent outside CI.
    pub fn open(what: &str) -> Option<Vectors> {
        let candidates = candidates();
        let Some(path) = candidates.iter().find(|p| p.is_file()) else {
            let in_ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
            assert!(!in_ci, "CI=true but the official vectors are missing: {candidates:?}");
            println!("{what}: SKIPPED, {ZIP_NAME} not found in {candidates:?} (set ESDK_VECTORS_DIR)");
            return None;
        };
        let file = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        let mut archive = zip::ZipArchive::new(file).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let mut files = BTreeMap::new();
        for i in 0..archive.len() {
            let mut entry = archive.by_index(i).expect("zip entry");
            if entry.is_dir() {
                continue;
            }
            let name = entry.name().to_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap_or_else(|e| panic!("read {name} from the zip: {e}"));
            files.insert(name, bytes);
        }
        let json = |name: &str| -> Value {
            let bytes = files.get(name).unwrap_or_else(|| panic!("{name} missing from {ZIP_NAME}"));
            serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        let manifest = json("manifest.json");
        let keys = json("keys.json");
        assert_eq!(manifest["manifest"]["type"], "awses-decrypt");
        assert_eq!(manifest["manifest"]["version"], 4);
        Some(Vectors { manifest, keys, files })
    }

    /// The manifest's tests by name.
    pub fn tests(&self) -> &serde_json::Map<String, Value> {
        self.manifest["tests"].as_object().expect("manifest tests")
    }

    /// A `file://` reference of the manifest.
    pub fn file(&self, uri: &Value) -> &[u8] {
        let uri = uri.as_str().expect("file reference");
        let name = uri.strip_prefix("file://").unwrap_or(uri);
        self.files.get(name).unwrap_or_else(|| panic!("{name} missing from {ZIP_NAME}"))
    }
}
