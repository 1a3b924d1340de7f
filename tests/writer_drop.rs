//! An `EncryptingWriter` dropped without `finish()` leaves a truncated
//! message; the drop is reported on standard error, and `abandon()` is the
//! quiet way to give up. Each scenario runs in a child process of this test
//! binary so that its standard error can be read.

mod support;

use std::io::Write;
use std::process::Command;

use hsm_keyring::cmm::DefaultCmm;
use hsm_keyring::{Client, EncryptionContext};
use support::TestAesKeyring;

const SCENARIO: &str = "HSM_KEYRING_WRITER_DROP_SCENARIO";

/// In the child: run the scenario named in the environment.
fn scenario() -> Option<String> {
    std::env::var(SCENARIO).ok()
}

fn run_child(which: &str) -> String {
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new(exe)
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(SCENARIO, which)
        .output()
        .expect("run child");
    assert!(out.status.success(), "child {which} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn child() {
    let Some(which) = scenario() else { return };
    let keyring = TestAesKeyring::sample();
    let cmm = DefaultCmm::new(&keyring);
    // `-large` scenarios run several workers with batches in flight.
    let (which, workers, len) = match which.strip_suffix("-large") {
        Some(w) => (w.to_owned(), 3, 3_000_000),
        None => (which, 1, 10_000),
    };
    let client = Client::builder().workers(workers).build().unwrap();
    let mut writer = client.encrypt_stream(&cmm, &EncryptionContext::new(), Vec::new()).unwrap();
    writer.write_all(&vec![1u8; len]).unwrap();
    match which.as_str() {
        "drop" => drop(writer),
        "abandon" => writer.abandon(),
        "finish" => {
            let msg = writer.finish().unwrap();
            assert!(client.decrypt(&cmm, &msg, &EncryptionContext::new()).is_ok());
        }
        other => panic!("unknown scenario {other}"),
    }
}

#[test]
fn dropping_an_unfinished_writer_is_reported() {
    if scenario().is_some() {
        return;
    }
    let warning = "dropped without finish()";
    for size in ["", "-large"] {
        assert!(run_child(&format!("drop{size}")).contains(warning));
        assert!(!run_child(&format!("abandon{size}")).contains(warning));
        assert!(!run_child(&format!("finish{size}")).contains(warning));
    }
}
