//! The line runner: a checkpointed run stopped halfway (its files copied as
//! a crash would leave them) resumes with byte-identical output, every line
//! done once; a changed input is refused.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use hsm_keyring::rewrap::lines::{rewrap_lines, LineOutcome, LinesCheckpoint};
use hsm_keyring::{Error, Result};

const COUNT: usize = 1000;

fn upper(line: &[u8]) -> Result<LineOutcome> {
    if line.starts_with(b"skip") {
        return Ok(LineOutcome::Skipped);
    }
    Ok(LineOutcome::Rewrapped(line.to_ascii_uppercase()))
}

fn input(dir: &Path) -> Vec<u8> {
    let mut text = String::new();
    for i in 0..COUNT {
        text.push_str(&if i % 9 == 0 { format!("skip {i}\n") } else { format!("line {i}\n") });
    }
    std::fs::write(dir.join("in"), &text).unwrap();
    text.into_bytes()
}

fn recorded_lines(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().find_map(|l| l.strip_prefix("input-lines ")).and_then(|n| n.parse().ok()).unwrap_or(0)
}

#[test]
fn a_stopped_run_resumes_with_the_same_output_and_each_line_done_once() {
    let dir = tempfile::tempdir().unwrap();
    let crash = tempfile::tempdir().unwrap();
    let text = input(dir.path());
    let mut expected = Vec::new();
    let summary = rewrap_lines(&mut &text[..], &mut expected, 3, &upper, &|_| {}).unwrap();
    assert_eq!((summary.rewrapped, summary.skipped), (COUNT - 112, 112));

    // A run whose line 701 never returns (until released).
    let (release, stuck) = mpsc::channel::<()>();
    let stuck = Mutex::new(stuck);
    let hanging = |line: &[u8]| {
        if line == b"line 700" {
            let _ = stuck.lock().unwrap().recv();
            return Err(Error::Config { reason: "released".into() });
        }
        upper(line)
    };
    let (ckpt, out) = (dir.path().join("ckpt"), dir.path().join("out"));
    std::thread::scope(|s| {
        let run = LinesCheckpoint::open(&ckpt, &dir.path().join("in"), &out).unwrap();
        let worker = s.spawn(|| run.run(4, &hanging, &|_| {}));
        while recorded_lines(&ckpt) < 512 {
            assert!(!worker.is_finished());
            std::thread::sleep(Duration::from_millis(1));
        }
        // What a crash leaves: the checkpoint, and a partial output with unsynced lines after it.
        for name in ["in", "ckpt", "out.partial"] {
            std::fs::copy(dir.path().join(name), crash.path().join(name)).unwrap();
        }
        drop(release);
        let summary = worker.join().unwrap().unwrap();
        assert_eq!(summary.failed, vec![("line 701".to_owned(), "invalid configuration: released".to_owned())]);
    });
    assert!(!out.exists() && !ckpt.exists() && !dir.path().join("out.partial").exists());

    let (ckpt, out) = (crash.path().join("ckpt"), crash.path().join("out"));
    let done = recorded_lines(&ckpt);
    assert!((512..COUNT).contains(&done), "{done}");
    let mut partial = std::fs::OpenOptions::new().append(true).open(crash.path().join("out.partial")).unwrap();
    std::io::Write::write_all(&mut partial, b"LINE 99999 (torn, never recorded)\nLI").unwrap();

    // A changed input is refused, whatever changed.
    let changed = crash.path().join("changed");
    let mut bytes = text.clone();
    bytes[3] ^= 0x20;
    std::fs::write(&changed, &bytes).unwrap();
    let e = LinesCheckpoint::open(&ckpt, &changed, &out).unwrap_err();
    assert!(e.to_string().contains("the input changed"), "{e}");
    std::fs::write(&changed, [&text[..], b"more\n"].concat()).unwrap();
    assert!(LinesCheckpoint::open(&ckpt, &changed, &out).unwrap_err().to_string().contains("it was"));

    let calls = AtomicUsize::new(0);
    let counting = |line: &[u8]| {
        calls.fetch_add(1, Ordering::SeqCst);
        upper(line)
    };
    let run = LinesCheckpoint::open(&ckpt, &crash.path().join("in"), &out).unwrap();
    assert_eq!(run.resumed(), done);
    let summary = run.run(4, &counting, &|_| {}).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), COUNT - done, "a recorded line was done again");
    assert_eq!(summary.resumed + summary.rewrapped + summary.skipped, COUNT);
    assert!(summary.failed.is_empty());
    assert_eq!(std::fs::read(&out).unwrap(), expected, "output differs from an uninterrupted run");
    assert!(!ckpt.exists() && !crash.path().join("out.partial").exists());

    // A missing partial output is refused.
    LinesCheckpoint::open(&ckpt, &crash.path().join("in"), &crash.path().join("out2")).unwrap();
    std::fs::remove_file(crash.path().join("out2.partial")).unwrap();
    let e = LinesCheckpoint::open(&ckpt, &crash.path().join("in"), &crash.path().join("out2")).unwrap_err();
    assert!(e.to_string().contains("is missing"), "{e}");
}
