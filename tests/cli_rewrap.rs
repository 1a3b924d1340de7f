//! `hsm-keyring rewrap`: one message, and a directory killed halfway and resumed.

mod cli_support;

use std::collections::HashMap;
use std::time::Duration;

use cli_support::{bytes, Work};
use hsm_keyring::format::{parse_header, HeaderLimits};
use hsm_keyring::keyrings::RawAesKeyring;
use hsm_keyring::{AlgorithmSuite, Client, EncryptionContext};

const OLD: &str = "type=aes,path=old.key,namespace=rot,name=old";
const NEW: &str = "type=aes,path=new.key,namespace=rot,name=new";

fn work() -> Work {
    let w = Work::new();
    w.write("old.key", &[1; 32]);
    w.write("new.key", &[2; 32]);
    w
}

fn body(message: &[u8]) -> &[u8] {
    &message[parse_header(message, &HeaderLimits::default()).unwrap().len()..]
}

#[test]
fn a_message_is_rewrapped_and_its_body_kept() {
    let w = work();
    let plain = w.write("plain", &bytes(100_000, 7));
    w.ok(["encrypt", "-i", &plain, "-o", "old.msg", "-w", OLD, "--frame-length", "1024", "--suite", "0x0478"]);
    w.ok(["rewrap", "-i", "old.msg", "-o", "new.msg", "--from", OLD, "-w", NEW, "--verify"]);
    assert_eq!(body(&w.read("new.msg")), body(&w.read("old.msg")));
    w.ok(["decrypt", "-i", "new.msg", "-o", "out", "-w", NEW]);
    assert_eq!(w.read("out"), w.read("plain"));
    w.fails(1, ["decrypt", "-i", "new.msg", "-o", "out2", "-w", OLD]);
    w.assert_no_output("out2");
    assert!(w.partials().is_empty());
}

#[test]
fn failures_write_nothing() {
    let w = work();
    let plain = w.write("plain", b"some plaintext");
    w.ok(["encrypt", "-i", &plain, "-o", "old.msg", "-w", OLD, "--suite", "0x0478"]);
    // The --from keys cannot open it.
    let err = w.fails(1, ["rewrap", "-i", "old.msg", "-o", "x.msg", "--from", NEW, "-w", NEW]);
    assert!(err.contains("rot/new") || err.contains("no keyring"), "{err}");
    w.assert_no_output("x.msg");
    // A tampered header.
    let mut m = w.read("old.msg");
    let h = parse_header(&m, &HeaderLimits::default()).unwrap().len();
    m[h - 1] ^= 1;
    w.write("bad.msg", &m);
    w.fails(1, ["rewrap", "-i", "bad.msg", "-o", "y.msg", "--from", OLD, "-w", NEW]);
    w.assert_no_output("y.msg");
    // A message signed with a per-message key.
    w.ok(["encrypt", "-i", &plain, "-o", "signed.msg", "-w", OLD, "--suite", "0x0578"]);
    let err = w.fails(1, ["rewrap", "-i", "signed.msg", "-o", "z.msg", "--from", OLD, "-w", NEW]);
    assert!(err.contains("cannot be rewrapped"), "{err}");
    w.assert_no_output("z.msg");
    assert!(w.partials().is_empty());
}

#[test]
fn a_killed_bulk_rewrap_resumes_and_rewraps_each_file_once() {
    let w = work();
    let old = RawAesKeyring::new("rot", "old", &[1; 32]).unwrap();
    let new = RawAesKeyring::new("rot", "new", &[2; 32]).unwrap();
    let client = Client::builder().algorithm_suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey).build().unwrap();
    let ctx = EncryptionContext::default();
    let count = 3000;
    let mut originals = HashMap::new();
    for i in 0..count {
        let rel = format!("d{}/m{i}", i % 7);
        std::fs::create_dir_all(w.file(&format!("tree/d{}", i % 7))).unwrap();
        let plain = bytes(200 + i, i as u64);
        let msg = client.encrypt_with_keyring(&old, &plain, &ctx).unwrap();
        std::fs::write(w.file(&format!("tree/{rel}")), &msg).unwrap();
        originals.insert(rel, (plain, msg));
    }
    let args = ["rewrap", "--dir", "tree", "--from", OLD, "-w", NEW, "--jobs", "4", "--checkpoint", "ckpt", "--quiet"];
    let mut child = w.std_cmd(args).spawn().unwrap();
    let lines =
        || std::fs::read_to_string(w.file("ckpt")).unwrap_or_default().lines().filter(|l| !l.is_empty()).count();
    while lines() < 200 {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done_before = lines();
    assert!(done_before < count, "killed after {done_before} of {count}");

    w.ok(args);
    let ckpt = std::fs::read_to_string(w.file("ckpt")).unwrap();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for line in ckpt.lines().filter(|l| !l.is_empty()) {
        let (word, id) = line.split_once(' ').unwrap();
        assert!(word == "rewrapped" || word == "skipped", "{line}");
        *seen.entry(id).or_default() += 1;
    }
    assert_eq!(seen.len(), count, "every file recorded");
    assert!(seen.values().all(|&n| n == 1), "no file recorded twice");
    for (rel, (plain, msg)) in &originals {
        let now = std::fs::read(w.file(&format!("tree/{rel}"))).unwrap();
        assert_eq!(body(&now), body(msg), "{rel}: body changed");
        assert_eq!(&client.decrypt_with_keyring(&new, &now, &ctx).unwrap().plaintext, plain, "{rel}");
        assert!(client.decrypt_with_keyring(&old, &now, &ctx).is_err(), "{rel}: the old key still opens it");
    }
    // A third run has nothing left to do and changes nothing.
    let before: Vec<u8> = std::fs::read(w.file("tree/d0/m0")).unwrap();
    w.ok(args);
    assert_eq!(std::fs::read(w.file("tree/d0/m0")).unwrap(), before);
}

#[test]
fn a_bulk_rewrap_reports_failures_and_skips_rewrapped_files() {
    let w = work();
    std::fs::create_dir_all(w.file("tree")).unwrap();
    let old = RawAesKeyring::new("rot", "old", &[1; 32]).unwrap();
    let new = RawAesKeyring::new("rot", "new", &[2; 32]).unwrap();
    let client = Client::builder().algorithm_suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey).build().unwrap();
    let ctx = EncryptionContext::default();
    std::fs::write(w.file("tree/a"), client.encrypt_with_keyring(&old, b"a", &ctx).unwrap()).unwrap();
    std::fs::write(w.file("tree/b"), client.encrypt_with_keyring(&new, b"b", &ctx).unwrap()).unwrap();
    std::fs::write(w.file("tree/c"), b"not a message").unwrap();
    let out = w.cmd(["rewrap", "--dir", "tree", "--from", OLD, "-w", NEW]).assert().code(1).get_output().clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("rewrapped 1, skipped 1"), "{err}");
    assert!(err.contains("c: "), "{err}");
    assert_eq!(std::fs::read(w.file("tree/c")).unwrap(), b"not a message");
    assert_eq!(
        client.decrypt_with_keyring(&new, &std::fs::read(w.file("tree/a")).unwrap(), &ctx).unwrap().plaintext,
        b"a"
    );
}

#[test]
fn a_signed_message_is_rewrapped_with_a_token_signer() {
    let Some(w) = Work::with_dev_token() else { return };
    w.write("old.key", &[1; 32]);
    w.write("new.key", &[2; 32]);
    let plain = w.write("plain", &bytes(50_000, 3));
    w.ok(["encrypt", "-i", &plain, "-o", "old.msg", "-w", OLD, "--suite", "0x0578"]);
    w.fails(1, ["rewrap", "-i", "old.msg", "-o", "new.msg", "--from", OLD, "-w", NEW]);
    w.assert_no_output("new.msg");
    w.ok(["rewrap", "-i", "old.msg", "-o", "new.msg", "--from", OLD, "-w", NEW, "--signer", cli_support::DEV_SIGN_URI]);
    w.ok(["decrypt", "-i", "new.msg", "-o", "out", "-w", NEW, "--trusted-signer", cli_support::DEV_SIGN_URI]);
    assert_eq!(w.read("out"), w.read("plain"));
    w.fails(1, ["decrypt", "-i", "new.msg", "-o", "out2", "-w", OLD]);
    w.fails(1, ["decrypt", "-i", "old.msg", "-o", "out3", "-w", OLD, "--trusted-signer", cli_support::DEV_SIGN_URI]);
    // The same file: the footer is recomputed, so the file is rewritten whole.
    let err = ok_stderr(
        &w,
        &[
            "rewrap",
            "-i",
            "old.msg",
            "-o",
            "old.msg",
            "--from",
            OLD,
            "-w",
            NEW,
            "--signer",
            cli_support::DEV_SIGN_URI,
            "-v",
        ],
    );
    assert!(err.contains("rewritten whole") && err.contains("signs"), "{err}");
    assert!(!w.file(".old.msg.rewrap-journal").exists());
    w.ok(["decrypt", "-i", "old.msg", "-o", "out4", "-w", NEW, "--trusted-signer", cli_support::DEV_SIGN_URI]);
    assert_eq!(w.read("out4"), w.read("plain"));
}

#[test]
fn items_are_rewrapped_with_their_values_unchanged() {
    let w = work();
    let line = r#"{"pk":{"S":"p1"},"sk":{"N":"1"},"secret":{"S":"card"},"note":{"S":"kept"}}"#;
    w.write("items.jsonl", format!("{line}\n").as_bytes());
    let table =
        ["--table", "t", "--partition-key", "pk", "--sort-key", "sk", "--action", "note=sign", "--suite", "0x6700"];
    let run = |verb: &str, keys: &[&str], input: &str, output: &str| -> Vec<String> {
        let mut a: Vec<String> = vec!["item".into(), verb.into()];
        a.extend(table.iter().map(|s| s.to_string()));
        a.extend(keys.iter().map(|s| s.to_string()));
        a.extend(["-i".into(), input.into(), "-o".into(), output.into()]);
        a
    };
    w.ok(run("encrypt", &["-w", OLD], "items.jsonl", "enc.jsonl"));
    w.ok(run("rewrap", &["--from", OLD, "-w", NEW], "enc.jsonl", "new.jsonl"));
    let old: serde_json::Value = serde_json::from_slice(&w.read("enc.jsonl")).unwrap();
    let new: serde_json::Value = serde_json::from_slice(&w.read("new.jsonl")).unwrap();
    for name in ["pk", "sk", "secret", "note"] {
        assert_eq!(old[name], new[name], "`{name}` changed");
    }
    assert_ne!(old["aws_dbe_head"], new["aws_dbe_head"]);
    w.ok(run("decrypt", &["-w", NEW], "new.jsonl", "plain.jsonl"));
    let plain: serde_json::Value = serde_json::from_slice(&w.read("plain.jsonl")).unwrap();
    assert_eq!(plain, serde_json::from_str::<serde_json::Value>(line).unwrap());
    let out = w.cmd(run("decrypt", &["-w", OLD], "new.jsonl", "bad.jsonl")).assert().code(1).get_output().clone();
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1: "));
    // Rewrapping with keys that cannot open the items fails for each line.
    let out =
        w.cmd(run("rewrap", &["--from", NEW, "-w", NEW], "enc.jsonl", "x.jsonl")).assert().code(1).get_output().clone();
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1: no keyring could decrypt"));
}

// In place: `-i F -o F` and `--dir` rewrite only the header when they can.

const NEWER: &str = "type=aes,path=new.key,namespace=rot,name=newer";
const JOURNAL: &str = ".m.rewrap-journal";

fn keyrings() -> (RawAesKeyring, RawAesKeyring) {
    (RawAesKeyring::new("rot", "old", &[1; 32]).unwrap(), RawAesKeyring::new("rot", "new", &[2; 32]).unwrap())
}

fn header_len(message: &[u8]) -> usize {
    parse_header(message, &HeaderLimits::default()).unwrap().len()
}

fn inode(w: &Work, name: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(w.file(name)).unwrap().ino()
}

/// Run and require success; returns stderr.
fn ok_stderr(w: &Work, args: &[&str]) -> String {
    let out = w.cmd(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: {err}");
    err
}

/// A multi-frame unsigned message `m` under OLD; returns (plaintext, message).
fn old_message(w: &Work) -> (Vec<u8>, Vec<u8>) {
    let plain = bytes(100_000, 11);
    let p = w.write("plain", &plain);
    w.ok(["encrypt", "-i", &p, "-o", "m", "-w", OLD, "--frame-length", "1024", "--suite", "0x0478"]);
    (plain, w.read("m"))
}

/// The file `m` decrypts with NEW to `plain` and not with OLD; no journal or temporary file is left.
#[track_caller]
fn assert_under_new(w: &Work, plain: &[u8]) {
    let (old, new) = keyrings();
    let client = Client::builder().build().unwrap();
    let ctx = EncryptionContext::default();
    let now = w.read("m");
    assert_eq!(client.decrypt_with_keyring(&new, &now, &ctx).unwrap().plaintext, plain);
    assert!(client.decrypt_with_keyring(&old, &now, &ctx).is_err(), "the dropped key still opens it");
    assert!(!w.file(JOURNAL).exists(), "journal left behind");
    assert!(w.partials().is_empty());
}

/// The documented journal layout, written by hand.
fn journal(w: &Work, name: &str, old: &[u8], new: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(w.file(name)).unwrap();
    let mut j = b"hsm-keyring rewrap journal 1\n".to_vec();
    for n in [meta.dev(), meta.ino(), meta.len(), 0] {
        j.extend_from_slice(&n.to_be_bytes());
    }
    j.extend_from_slice(&(old.len() as u32).to_be_bytes());
    j.extend_from_slice(old);
    j.extend_from_slice(new);
    let sum = sha2::Sha512::digest(&j);
    j.extend_from_slice(&sum);
    j
}

/// A new header for `message` (same length: the same key kind, names of one length).
fn new_header(message: &[u8]) -> Vec<u8> {
    let (old, new) = keyrings();
    let rewrapper = hsm_keyring::rewrap::Rewrapper::new(
        Client::builder().build().unwrap(),
        std::sync::Arc::new(old),
        std::sync::Arc::new(new),
    );
    rewrapper.rewrap_header(&parse_header(message, &HeaderLimits::default()).unwrap()).unwrap()
}

#[test]
fn the_same_file_is_rewrapped_in_place() {
    let w = work();
    let (plain, before) = old_message(&w);
    let ino = inode(&w, "m");
    let err = ok_stderr(&w, &["rewrap", "-i", "m", "-o", "m", "--from", OLD, "-w", NEW, "-v"]);
    assert!(err.contains("m: header rewritten in place"), "{err}");
    let after = w.read("m");
    assert_eq!(inode(&w, "m"), ino, "the file was replaced");
    let h = header_len(&before);
    assert_eq!(header_len(&after), h);
    assert_ne!(after[..h], before[..h]);
    assert_eq!(after[h..], before[h..], "bytes after the header changed");
    assert_under_new(&w, &plain);
    // Again: already under the new keys, left as it is.
    let err = ok_stderr(&w, &["rewrap", "-i", "m", "-o", "m", "--from", OLD, "-w", NEW, "-v"]);
    assert!(err.contains("already under the new keys"), "{err}");
    assert_eq!(w.read("m"), after);
}

#[test]
fn a_header_of_another_length_or_a_read_only_file_is_copied() {
    use std::os::unix::fs::PermissionsExt;
    let w = work();
    let (plain, before) = old_message(&w);
    let ino = inode(&w, "m");
    let err = ok_stderr(&w, &["rewrap", "-i", "m", "-o", "m", "--from", OLD, "-w", NEWER, "-v"]);
    assert!(err.contains("rewritten whole") && err.contains("length"), "{err}");
    assert_ne!(inode(&w, "m"), ino);
    let after = w.read("m");
    assert_eq!(header_len(&after), header_len(&before) + 2);
    assert_eq!(body(&after), body(&before));
    w.ok(["decrypt", "-i", "m", "-o", "out", "-w", NEWER]);
    assert_eq!(w.read("out"), plain);
    w.fails(1, ["decrypt", "-i", "m", "-o", "out2", "-w", OLD]);

    // Read-only: copied too, and still read-only.
    let (plain, _) = old_message(&w);
    std::fs::set_permissions(w.file("m"), std::fs::Permissions::from_mode(0o444)).unwrap();
    let err = ok_stderr(&w, &["rewrap", "-i", "m", "-o", "m", "--from", OLD, "-w", NEW, "-v"]);
    assert!(err.contains("not writable"), "{err}");
    assert_eq!(std::fs::metadata(w.file("m")).unwrap().permissions().mode() & 0o777, 0o444);
    assert_under_new(&w, &plain);
    // Not a regular file.
    let err = w.fails(2, ["rewrap", "-i", "/dev/null", "-o", "/dev/null", "--from", OLD, "-w", NEW]);
    assert!(err.contains("not a regular file"), "{err}");
}

#[test]
fn a_torn_header_with_its_journal_is_recovered_by_the_next_run() {
    let w = work();
    let (plain, before) = old_message(&w);
    let h = header_len(&before);
    let new = new_header(&before);
    assert_eq!(new.len(), h);
    w.write(JOURNAL, &journal(&w, "m", &before[..h], &new));
    // The crash: half of the new header written over the old one.
    let mut torn = before.clone();
    torn[..h / 2].copy_from_slice(&new[..h / 2]);
    std::fs::write(w.file("m"), &torn).unwrap();
    let err = ok_stderr(&w, &["rewrap", "-i", "m", "-o", "m", "--from", OLD, "-w", NEW, "-v"]);
    assert!(err.contains("finished an interrupted in-place rewrite"), "{err}");
    let after = w.read("m");
    assert_eq!(after[..h], new[..], "the journal's new header was written");
    assert_eq!(after[h..], before[h..]);
    assert_under_new(&w, &plain);
}

#[test]
fn a_corrupted_journal_is_dropped_only_over_an_intact_header() {
    let w = work();
    let (plain, before) = old_message(&w);
    let h = header_len(&before);
    let new = new_header(&before);
    let mut bad = journal(&w, "m", &before[..h], &new);
    let at = bad.len() / 2;
    bad[at] ^= 1;

    // Torn header and a journal that fails its checksum: refused, nothing written.
    let mut torn = before.clone();
    torn[..h / 2].copy_from_slice(&new[..h / 2]);
    std::fs::write(w.file("m"), &torn).unwrap();
    w.write(JOURNAL, &bad);
    let err = w.fails(2, ["rewrap", "-i", "m", "-o", "m", "--from", OLD, "-w", NEW]);
    assert!(err.contains(JOURNAL), "{err}");
    assert_eq!(w.read("m"), torn);
    assert_eq!(w.read(JOURNAL), bad);

    // Intact header: the journal is ignored and removed, the rewrap done.
    std::fs::write(w.file("m"), &before).unwrap();
    w.ok(["rewrap", "-i", "m", "-o", "m", "--from", OLD, "-w", NEW]);
    assert_eq!(w.read("m")[h..], before[h..]);
    assert_under_new(&w, &plain);
}

#[test]
fn a_tampered_header_is_refused_before_anything_is_written() {
    let w = work();
    let (_, mut m) = old_message(&w);
    let h = header_len(&m);
    m[h - 1] ^= 1;
    std::fs::write(w.file("m"), &m).unwrap();
    w.fails(1, ["rewrap", "-i", "m", "-o", "m", "--from", OLD, "-w", NEW]);
    assert_eq!(w.read("m"), m);
    assert!(!w.file(JOURNAL).exists());
    assert!(w.partials().is_empty());
}

#[test]
fn a_directory_is_rewrapped_in_place_after_recovering_a_journal() {
    let w = work();
    let (plain, before) = old_message(&w);
    std::fs::create_dir_all(w.file("tree/sub")).unwrap();
    for name in ["a", "sub/b", "m"] {
        std::fs::write(w.file(&format!("tree/{name}")), &before).unwrap();
    }
    // tree/m was being rewritten in place when the run crashed.
    let h = header_len(&before);
    let new = new_header(&before);
    std::fs::write(w.file("tree/.m.rewrap-journal"), journal(&w, "tree/m", &before[..h], &new)).unwrap();
    let mut torn = before.clone();
    torn[..h / 2].copy_from_slice(&new[..h / 2]);
    std::fs::write(w.file("tree/m"), &torn).unwrap();
    let inodes: Vec<u64> = ["tree/a", "tree/sub/b", "tree/m"].iter().map(|n| inode(&w, n)).collect();

    let args = ["rewrap", "--dir", "tree", "--from", OLD, "-w", NEW, "--checkpoint", "ckpt", "-v"];
    let err = ok_stderr(&w, &args);
    assert!(err.contains("a: header rewritten in place"), "{err}");
    assert!(err.contains("m: already under the new keys"), "{err}");
    assert!(err.contains("rewrapped 2, skipped 1"), "{err}");
    assert!(err.contains("header rewritten in place 2, file rewritten whole 0"), "{err}");
    let ckpt = std::fs::read_to_string(w.file("ckpt")).unwrap();
    for line in ["rewrapped a", "rewrapped sub/b", "skipped m"] {
        assert!(ckpt.lines().any(|l| l == line), "{line}: {ckpt}");
    }
    assert!(!w.file("tree/.m.rewrap-journal").exists());
    let after: Vec<u64> = ["tree/a", "tree/sub/b", "tree/m"].iter().map(|n| inode(&w, n)).collect();
    assert_eq!(after, inodes);
    for name in ["a", "sub/b", "m"] {
        let now = w.read(&format!("tree/{name}"));
        assert_eq!(now[h..], before[h..], "{name}");
        std::fs::write(w.file("m"), &now).unwrap();
        assert_under_new(&w, &plain);
    }
    // Resumed: everything recorded, nothing touched.
    let err = ok_stderr(&w, &args);
    assert!(err.contains("done by an earlier run 3"), "{err}");
}
