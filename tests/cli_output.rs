//! Where the command's output goes and when: devices and FIFOs written in
//! place, temporary files removed on SIGTERM and SIGINT, plaintext held back
//! from a pipe until the message verified (`--buffer`), and `inspect`'s
//! bounded listing.

mod cli_support;

use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use cli_support::{bytes, inspect, Work};
use hsm_keyring::cmm::DefaultCmm;
use hsm_keyring::keyrings::{MultiKeyring, RawAesKeyring};
use hsm_keyring::{Client, Keyring};

const MIB: usize = 1 << 20;

/// A raw AES key file and a spec for it.
fn aes_spec(work: &Work) -> String {
    let key = work.write("k.bin", &bytes(32, 7));
    format!("type=aes,path={key},namespace=out,name=k1")
}

/// Encrypt `plaintext` (optionally with `--suite`) and return the message.
fn message(work: &Work, spec: &str, plaintext: &[u8], suite: Option<&str>) -> Vec<u8> {
    let mut args = vec!["encrypt", "-w", spec];
    if let Some(s) = suite {
        args.extend(["--suite", s]);
    }
    let out = work.cmd(args).write_stdin(plaintext.to_vec()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

// ---------------------------------------------------------------------------
// -o onto devices, FIFOs and stdout
// ---------------------------------------------------------------------------

#[test]
fn output_onto_a_fifo_is_written_in_place() {
    let work = Work::new();
    let spec = aes_spec(&work);
    work.write("p.bin", b"through a FIFO");
    let fifo = work.file("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    work.ok(["encrypt", "-w", &spec, "-i", "p.bin", "-o", "fifo"]);
    // (Checked before waiting for the reader, which waits forever for a
    // writer when the FIFO was replaced.)
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO was replaced");
    let message = reader.join().unwrap();
    assert!(work.partials().is_empty(), "{:?}", work.listing());
    let out = work.cmd(["decrypt", "-w", &spec]).write_stdin(message).output().unwrap();
    assert!(out.status.success() && out.stdout == b"through a FIFO");
}

#[test]
fn output_onto_a_character_device_is_written_in_place() {
    if !is_root() {
        eprintln!("SKIPPED: mknod of a character device needs root");
        return;
    }
    let work = Work::new();
    let spec = aes_spec(&work);
    work.write("p.bin", b"into a null device");
    let dev = work.file("null");
    let made = std::process::Command::new("mknod").arg(&dev).args(["c", "1", "3"]).status().unwrap();
    assert!(made.success(), "mknod failed");
    work.ok(["encrypt", "-w", &spec, "-i", "p.bin", "-o", "null"]);
    let meta = std::fs::symlink_metadata(&dev).unwrap();
    assert!(meta.file_type().is_char_device(), "the device was replaced by {:?}", meta.file_type());
    assert!(work.partials().is_empty(), "{:?}", work.listing());
    // A decrypt into it as well.
    let message = message(&work, &spec, b"again", None);
    work.write("m.enc", &message);
    work.ok(["decrypt", "-w", &spec, "-i", "m.enc", "-o", "null"]);
    assert!(std::fs::symlink_metadata(&dev).unwrap().file_type().is_char_device());
}

#[test]
fn output_to_dev_stdout_is_stdout_and_a_symlink_is_followed() {
    let work = Work::new();
    let spec = aes_spec(&work);
    let message = message(&work, &spec, b"to /dev/stdout", None);
    let out = work.cmd(["decrypt", "-w", &spec, "-o", "/dev/stdout"]).write_stdin(message.clone()).output().unwrap();
    assert!(out.status.success() && out.stdout == b"to /dev/stdout", "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::symlink_metadata("/dev/stdout").unwrap().file_type().is_symlink());

    // -o LINK to a regular file replaces the file and keeps the link.
    work.write("target.txt", b"old");
    std::os::unix::fs::symlink("target.txt", work.file("link")).unwrap();
    work.write("m.enc", &message);
    work.ok(["decrypt", "-w", &spec, "-i", "m.enc", "-o", "link"]);
    assert!(std::fs::symlink_metadata(work.file("link")).unwrap().file_type().is_symlink());
    assert_eq!(work.read("target.txt"), b"to /dev/stdout");
}

#[test]
fn output_errors_name_the_users_path_not_a_temporary_one() {
    let work = Work::new();
    let spec = aes_spec(&work);
    work.write("p.bin", b"x");
    let line = work.fails(2, ["encrypt", "-w", &spec, "-i", "p.bin", "-o", "no-such-dir/out.enc"]);
    assert!(line.contains("no-such-dir/out.enc") && !line.contains(".partial"), "{line}");
    std::fs::create_dir(work.file("a-dir")).unwrap();
    let line = work.fails(2, ["encrypt", "-w", &spec, "-i", "p.bin", "-o", "a-dir"]);
    assert!(line.contains("a-dir") && line.contains("directory") && !line.contains(".partial"), "{line}");
}

// ---------------------------------------------------------------------------
// SIGTERM and SIGINT
// ---------------------------------------------------------------------------

/// Run `args` (which write `-o out.bin`) on `input` fed slowly through a
/// pipe, send `signal` once the temporary output holds data, and return the
/// exit code.
fn stopped_by(work: &Work, args: &[&str], input: &[u8], signal: &str) -> Option<i32> {
    let mut child = work
        .std_cmd(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn hsm-keyring");
    let mut stdin = child.stdin.take().unwrap();
    // Part of the input only: the command then waits for the rest.
    stdin.write_all(&input[..input.len() / 2]).unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let holding = work.partials().iter().any(|n| std::fs::metadata(work.file(n)).is_ok_and(|m| m.len() > 0));
        if holding {
            break;
        }
        assert!(Instant::now() < deadline, "no temporary output with data appeared: {:?}", work.listing());
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    drop(stdin);
    status.code()
}

#[test]
fn sigterm_and_sigint_remove_the_temporary_output() {
    let work = Work::new();
    let spec = aes_spec(&work);
    let plaintext = bytes(8 * MIB, 11);
    let message = message(&work, &spec, &plaintext, None);
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let got = stopped_by(&work, &["decrypt", "-w", &spec, "-o", "out.bin"], &message, signal);
        assert_eq!(got, Some(code), "decrypt stopped by SIG{signal}");
        work.assert_no_output("out.bin");
    }
    let got = stopped_by(&work, &["encrypt", "-w", &spec, "-o", "out.bin"], &plaintext, "TERM");
    assert_eq!(got, Some(143), "encrypt stopped by SIGTERM");
    work.assert_no_output("out.bin");
}

/// Outputs larger than the background sync step (16 MiB) arrive whole, and
/// a decrypt that fails near the end still leaves nothing behind.
#[test]
fn large_outputs_synced_as_they_grow_arrive_whole_or_not_at_all() {
    let work = Work::new();
    let spec = aes_spec(&work);
    let plaintext = bytes(40 * MIB + 123, 5);
    work.write("big.bin", &plaintext);
    work.ok(["encrypt", "-q", "-w", &spec, "--suite", "0x0478", "-i", "big.bin", "-o", "big.enc"]);
    work.ok(["decrypt", "-q", "-w", &spec, "-i", "big.enc", "-o", "back.bin"]);
    assert!(work.read("back.bin") == plaintext, "the plaintext came back changed");

    // A flipped byte in the last frame: the first 40 MiB verify and are
    // written (and synced) before the failure, then the file is removed.
    let mut message = work.read("big.enc");
    let at = message.len() - 40;
    message[at] ^= 0x01;
    work.write("bad.enc", &message);
    let out = work.std_cmd(["decrypt", "-q", "-w", &spec, "-i", "bad.enc", "-o", "bad.bin"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    work.assert_no_output("bad.bin");
}

#[test]
fn help_says_what_sigkill_leaves() {
    let work = Work::new();
    let help = work.ok(["decrypt", "--help"]);
    assert!(help.contains("SIGKILL") && help.contains(".partial"), "{help}");
}

// ---------------------------------------------------------------------------
// --buffer and --no-buffer
// ---------------------------------------------------------------------------

/// Decrypt `message` to a pipe with `args`; returns (exit code, stdout).
fn to_pipe(work: &Work, spec: &str, args: &[&str], message: &[u8]) -> (i32, Vec<u8>) {
    let mut all = vec!["decrypt", "-w", spec];
    all.extend_from_slice(args);
    let out = work.cmd(all).write_stdin(message.to_vec()).output().unwrap();
    (out.status.code().expect("exit code"), out.stdout)
}

#[test]
fn a_signed_message_reaches_a_pipe_only_once_verified() {
    let work = Work::new();
    let spec = aes_spec(&work);
    let plaintext = bytes(3 * MIB, 12);
    // The default suite 0x0578 signs.
    let message = message(&work, &spec, &plaintext, None);
    assert_eq!(to_pipe(&work, &spec, &[], &message), (0, plaintext.clone()));

    let mut bad_signature = message.clone();
    *bad_signature.last_mut().unwrap() ^= 1;
    let missing_end = &message[..message.len() / 2];
    for bad in [&bad_signature[..], missing_end] {
        let (code, out) = to_pipe(&work, &spec, &[], bad);
        assert_eq!((code, out.len()), (1, 0), "bytes released before the message verified");
        // --no-buffer streams: verified frames are written before the failure.
        let (code, out) = to_pipe(&work, &spec, &["--no-buffer"], bad);
        assert_eq!(code, 1);
        assert!(!out.is_empty() && plaintext.starts_with(&out), "{} bytes", out.len());
    }
}

#[test]
fn an_unsigned_message_streams_unless_buffered() {
    let work = Work::new();
    let spec = aes_spec(&work);
    let plaintext = bytes(MIB, 13);
    let message = message(&work, &spec, &plaintext, Some("0x0478"));
    let missing_end = &message[..message.len() / 2];
    // Unsigned: each frame is released once its own tag verifies.
    let (code, out) = to_pipe(&work, &spec, &[], missing_end);
    assert_eq!(code, 1);
    assert!(!out.is_empty() && plaintext.starts_with(&out));
    let (code, out) = to_pipe(&work, &spec, &["--buffer"], missing_end);
    assert_eq!((code, out.len()), (1, 0), "--buffer released bytes of a truncated message");
    assert_eq!(to_pipe(&work, &spec, &["--buffer"], &message), (0, plaintext.clone()));
    // With -o FILE the output is a temporary file renamed on success anyway.
    work.write("m.enc", &message);
    work.ok(["decrypt", "-w", &spec, "--buffer", "-i", "m.enc", "-o", "p.out"]);
    assert_eq!(work.read("p.out"), plaintext);
    let out = work.cmd(["decrypt", "-w", &spec, "--buffer", "--no-buffer", "-i", "m.enc"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-buffer"));
}

// ---------------------------------------------------------------------------
// inspect
// ---------------------------------------------------------------------------

#[test]
fn inspect_lists_a_bounded_number_of_edks_unless_asked() {
    let work = Work::new();
    let key = bytes(32, 14);
    let rings: Vec<std::sync::Arc<dyn Keyring>> = (0..600)
        .map(|i| {
            let ring = RawAesKeyring::new(format!("ns-{}", i % 3), format!("k{i}"), &key).unwrap();
            std::sync::Arc::new(ring) as std::sync::Arc<dyn Keyring>
        })
        .collect();
    let mut rings = rings.into_iter();
    let generator = rings.next();
    let multi = MultiKeyring::new(generator, rings.collect()).unwrap();
    let cmm = DefaultCmm::new(std::sync::Arc::new(multi) as std::sync::Arc<dyn Keyring>);
    // More EDKs than the default limit: a writer must raise it to make such a message.
    let client = Client::builder().max_encrypted_data_keys(600).build().unwrap();
    let message = client.encrypt(&cmm, b"many keys", &Default::default()).unwrap();
    work.write("many.enc", &message);

    let text = work.ok(["inspect", "-i", "many.enc"]);
    assert!(text.len() < 64 * 1024, "inspect printed {} bytes", text.len());
    let header = inspect(&work, "many.enc");
    assert_eq!(header["encrypted_data_key_count"], 600);
    assert_eq!(header["encrypted_data_keys"].as_array().unwrap().len(), 32);
    assert_eq!(header["encrypted_data_keys_not_listed"], 568);
    let per_provider = header["encrypted_data_keys_per_provider"].as_array().unwrap();
    assert_eq!(per_provider.len(), 3, "{per_provider:?}");
    for p in per_provider {
        assert_eq!(p["count"], 200, "{p}");
    }
    assert!(header.get("other_provider_ids").is_none());

    let all: serde_json::Value = serde_json::from_str(&work.ok(["inspect", "--all-edks", "-i", "many.enc"])).unwrap();
    assert_eq!(all["encrypted_data_keys"].as_array().unwrap().len(), 600);
    assert!(all.get("encrypted_data_keys_not_listed").is_none());

    // A truncated header is still refused.
    work.write("cut.enc", &message[..message.len() / 3]);
    work.fails(1, ["inspect", "-i", "cut.enc"]);
    assert!(Path::new(&work.file("cut.enc")).is_file());
}

#[test]
fn inspect_of_65535_tiny_edks_prints_a_bounded_summary() {
    let work = Work::new();
    let spec = aes_spec(&work);
    let message = message(&work, &spec, b"x", Some("0x0478"));
    // A v2 header: version, suite id, message id, AAD, then the EDKs.
    let be16 = |at: usize| usize::from(u16::from_be_bytes([message[at], message[at + 1]]));
    assert_eq!(message[0], 2);
    let edks_at = 1 + 2 + 32 + 2 + be16(1 + 2 + 32);
    assert_eq!(be16(edks_at), 1);
    let mut end = edks_at + 2;
    for _ in 0..3 {
        end += 2 + be16(end);
    }
    // The same header with 65,535 EDKs of 7 bytes each (provider id `p`).
    let mut big = message[..edks_at].to_vec();
    big.extend_from_slice(&u16::MAX.to_be_bytes());
    for _ in 0..u16::MAX {
        big.extend_from_slice(&[0, 1, b'p', 0, 0, 0, 0]);
    }
    big.extend_from_slice(&message[end..]);
    work.write("big.enc", &big);

    let text = work.ok(["inspect", "-i", "big.enc"]);
    assert!(text.len() < 16 * 1024, "inspect printed {} bytes", text.len());
    let header: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(header["encrypted_data_key_count"], 65535);
    assert_eq!(header["encrypted_data_keys"].as_array().unwrap().len(), 32);
    assert_eq!(header["encrypted_data_keys_per_provider"], serde_json::json!([{"provider_id": "p", "count": 65535}]));
    // A header cut short in its EDKs is refused, with nothing printed.
    let mut cut = big.clone();
    cut.truncate(edks_at + 2 + 7 * 1000);
    work.write("cut.enc", &cut);
    let out = work.cmd(["inspect", "-i", "cut.enc"]).output().unwrap();
    assert!(!out.status.success() && out.stdout.is_empty());
}
