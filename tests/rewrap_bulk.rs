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
