//! The bulk runner with a store of its own: concurrency, summary, checkpoint.

use std::collections::HashMap;
use std::sync::Mutex;

use hsm_keyring::rewrap::bulk::{run, Checkpoint, Outcome, RewrapSource};
use hsm_keyring::{Error, Result};

/// Objects in memory: "old" ones are rewrapped, "new" ones skipped, "bad" ones fail.
struct Memory {
    objects: Mutex<HashMap<String, &'static str>>,
    calls: Mutex<HashMap<String, usize>>,
}

impl RewrapSource for Memory {
    fn list(&self) -> Result<Vec<String>> {
        let mut ids: Vec<String> = self.objects.lock().unwrap().keys().cloned().collect();
        ids.sort();
        Ok(ids)
    }

    fn rewrap(&self, id: &str) -> Result<Outcome> {
        *self.calls.lock().unwrap().entry(id.to_owned()).or_default() += 1;
        let mut objects = self.objects.lock().unwrap();
        match objects[id] {
            "old" => {
                objects.insert(id.to_owned(), "new");
                Ok(Outcome::Rewrapped)
            }
            "new" => Ok(Outcome::Skipped),
            _ => Err(Error::InvalidKey { reason: "cannot open".into() }),
        }
    }
}

fn store() -> Memory {
    let mut objects = HashMap::new();
    for i in 0..100 {
        objects.insert(format!("o{i:03}"), if i % 10 == 0 { "new" } else { "old" });
    }
    objects.insert("broken".into(), "bad");
    Memory { objects: Mutex::new(objects), calls: Mutex::new(HashMap::new()) }
}

#[test]
fn every_object_is_done_once_and_a_second_run_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt");
    let source = store();
    let seen = Mutex::new(0usize);
    let progress = |_: &str, _: &Result<Outcome>| *seen.lock().unwrap() += 1;
    let summary = run(&source, 7, Some(&Checkpoint::open(&path).unwrap()), &progress).unwrap();
    assert_eq!((summary.rewrapped, summary.skipped, summary.resumed), (90, 10, 0));
    assert_eq!(summary.failed.len(), 1);
    assert_eq!(summary.failed[0].0, "broken");
    assert!(summary.failed[0].1.contains("cannot open"));
    assert_eq!(*seen.lock().unwrap(), 101);
    assert!(source.calls.lock().unwrap().values().all(|&n| n == 1));

    // Resumed: only the failed object is tried again.
    let summary = run(&source, 3, Some(&Checkpoint::open(&path).unwrap()), &|_, _| {}).unwrap();
    assert_eq!((summary.rewrapped, summary.skipped, summary.resumed, summary.failed.len()), (0, 0, 100, 1));
    assert_eq!(source.calls.lock().unwrap()["o001"], 1);
    assert_eq!(source.calls.lock().unwrap()["broken"], 2);

    // A torn last line is ignored.
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("rewrapped o0");
    std::fs::write(&path, text).unwrap();
    assert!(!Checkpoint::open(&path).unwrap().is_done("o0"));
    assert!(run(&source, 0, None, &|_, _| {}).is_err());
}

#[test]
fn a_directory_source_rewrites_headers_in_place_and_counts_them() {
    use hsm_keyring::keyrings::RawAesKeyring;
    use hsm_keyring::rewrap::bulk::DirSource;
    use hsm_keyring::rewrap::{InPlaceMethod, Rewrapper};
    use hsm_keyring::{AlgorithmSuite, Client, EncryptionContext};
    use std::os::unix::fs::MetadataExt;
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let client = Client::builder().algorithm_suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey).build().unwrap();
    let old = Arc::new(RawAesKeyring::new("rot", "old", &[1; 32]).unwrap());
    let new = Arc::new(RawAesKeyring::new("rot", "new", &[2; 32]).unwrap());
    let ctx = EncryptionContext::default();
    let mut files = Vec::new();
    for i in 0..5 {
        let plain = vec![i as u8; 10_000 + i];
        let path = dir.path().join(format!("m{i}"));
        std::fs::write(&path, client.encrypt_with_keyring(&*old, &plain, &ctx).unwrap()).unwrap();
        files.push((path, plain));
    }
    let inodes: Vec<u64> = files.iter().map(|(p, _)| std::fs::metadata(p).unwrap().ino()).collect();
    let rewrapper = Rewrapper::new(client.clone(), old.clone(), new.clone());
    let ckpt = dir.path().join("ckpt");
    let source = DirSource::new(dir.path(), rewrapper.clone()).exclude(&ckpt);
    let summary = run(&source, 2, Some(&Checkpoint::open(&ckpt).unwrap()), &|_, _| {}).unwrap();
    assert_eq!((summary.rewrapped, summary.in_place, summary.skipped, summary.failed.len()), (5, 5, 0, 0));
    for ((path, plain), ino) in files.iter().zip(&inodes) {
        assert_eq!(std::fs::metadata(path).unwrap().ino(), *ino);
        let now = std::fs::read(path).unwrap();
        assert_eq!(&client.decrypt_with_keyring(&*new, &now, &ctx).unwrap().plaintext, plain);
        assert!(client.decrypt_with_keyring(&*old, &now, &ctx).is_err());
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let summary = run(&source, 2, Some(&Checkpoint::open(&ckpt).unwrap()), &|_, _| {}).unwrap();
    assert_eq!((summary.rewrapped, summary.resumed), (0, 5));

    // Back to a key of a longer name: whole files, counted as rewrapped but not in place.
    let longer = Arc::new(RawAesKeyring::new("rot", "longer", &[3; 32]).unwrap());
    let outcome =
        Rewrapper::new(client.clone(), new.clone(), longer.clone()).rewrap_file_in_place(&files[0].0).unwrap();
    assert!(matches!(outcome.method, InPlaceMethod::Copied(_)), "{outcome:?}");
    let source = DirSource::new(dir.path(), Rewrapper::new(client.clone(), new, longer.clone())).exclude(&ckpt);
    let summary = run(&source, 2, None, &|_, _| {}).unwrap();
    assert_eq!((summary.rewrapped, summary.in_place, summary.skipped), (4, 0, 1));
    let now = std::fs::read(&files[3].0).unwrap();
    assert_eq!(client.decrypt_with_keyring(&*longer, &now, &ctx).unwrap().plaintext, files[3].1);
}
