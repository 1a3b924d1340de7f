//! Several processes on one SoftHSM token: `hsm-keyring encrypt | hsm-keyring
//! decrypt` pipes and pairs of commands run at the same time all succeed.
//!
//! SoftHSM 2's file store rewrites the token file at every login and fails a
//! reader that meets it half-written (`C_Login`, `C_GetTokenInfo` answer
//! `CKR_GENERAL_ERROR`); the token retries those calls. A process whose
//! `C_Initialize` met the file half-written does not see the token at all,
//! or sees it without a user PIN (`CKR_USER_PIN_NOT_INITIALIZED`), for its
//! whole life: opening the token then initializes the module again (nothing
//! else in the process uses it yet) and looks once more. By default 20 pipes
//! and 10 pairs; `HSM_KEYRING_SHARED_TOKEN_FULL=1` runs 200 pipes and 50
//! pairs (before that handling, 30 to 43 of those 500 commands failed here).

mod cli_support;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cli_support::{bytes, Work};

const WRAP: &str = "type=pkcs11,uri=pkcs11:token=hsm-keyring-dev;object=dev-wrapping-key;type=secret-key";

fn counts() -> (usize, usize) {
    match std::env::var("HSM_KEYRING_SHARED_TOKEN_FULL").as_deref() {
        Ok("1") => (200, 50),
        _ => (20, 10),
    }
}

/// Wait for `child` at most 60 s (then kill it and fail).
fn finish(mut child: Child, what: &str) -> Output {
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.wait_with_output().expect("output")
}

fn spawn(cmd: &mut Command) -> Child {
    cmd.stderr(Stdio::piped()).spawn().expect("spawn hsm-keyring")
}

fn failure(out: &Output, what: &str) -> Option<String> {
    (!out.status.success()).then(|| format!("{what}: {}", String::from_utf8_lossy(&out.stderr).trim()))
}

#[test]
fn pipes_and_parallel_commands_on_one_token_always_succeed() {
    let Some(work) = Work::with_dev_token() else { return };
    let (pipes, pairs) = counts();
    let mut failures = Vec::new();

    for i in 0..pipes {
        let plaintext = bytes(100 + i, i as u64);
        std::fs::write(work.file("p.bin"), &plaintext).unwrap();
        let mut enc = spawn(
            work.std_cmd(["encrypt", "--quiet", "-i", "p.bin", "-w", WRAP]).stdin(Stdio::null()).stdout(Stdio::piped()),
        );
        let pipe = enc.stdout.take().expect("encrypt stdout");
        let dec = spawn(work.std_cmd(["decrypt", "--quiet", "-w", WRAP]).stdin(pipe).stdout(Stdio::piped()));
        let enc = finish(enc, "encrypt");
        let dec = finish(dec, "decrypt");
        failures.extend(failure(&enc, &format!("pipe {i} encrypt")));
        failures.extend(failure(&dec, &format!("pipe {i} decrypt")));
        if enc.status.success() && dec.status.success() && dec.stdout != plaintext {
            failures.push(format!("pipe {i}: WRONG PLAINTEXT"));
        }
    }

    std::fs::write(work.file("m.bin"), bytes(4096, 7)).unwrap();
    work.ok(["encrypt", "--quiet", "-i", "m.bin", "-o", "m.enc", "-w", WRAP]);
    for i in 0..pairs {
        // Two listings, or an encryption and a decryption, at the same time.
        let (a, b): (Vec<&str>, Vec<&str>) = if i % 2 == 0 {
            (vec!["keys", "list"], vec!["keys", "list"])
        } else {
            (
                vec!["encrypt", "--quiet", "-i", "m.bin", "-o", "-", "-w", WRAP],
                vec!["decrypt", "--quiet", "-i", "m.enc", "-o", "-", "-w", WRAP],
            )
        };
        let first = spawn(work.std_cmd(&a).stdin(Stdio::null()).stdout(Stdio::piped()));
        let second = spawn(work.std_cmd(&b).stdin(Stdio::null()).stdout(Stdio::piped()));
        let (one, two) = (finish(first, "first"), finish(second, "second"));
        failures.extend(failure(&one, &format!("pair {i} {}", a.join(" "))));
        failures.extend(failure(&two, &format!("pair {i} {}", b.join(" "))));
    }
    eprintln!(
        "shared SoftHSM token: {pipes} encrypt | decrypt pipes, {pairs} pairs of parallel commands, {} failures",
        failures.len()
    );
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}
