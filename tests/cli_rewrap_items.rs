//! `hsm-keyring item rewrap` in bulk: order with --jobs, skipped and failed
//! items, and a checkpointed run killed halfway and resumed.

mod cli_support;

use std::time::Duration;

use base64::Engine as _;
use cli_support::Work;
use serde_json::Value;

const OLD: &str = "type=aes,path=old.key,namespace=rot,name=old";
const NEW: &str = "type=aes,path=new.key,namespace=rot,name=new";
const TABLE: [&str; 10] =
    ["--table", "t", "--partition-key", "pk", "--sort-key", "sk", "--action", "note=sign", "--suite", "0x6700"];

fn work() -> Work {
    let w = Work::new();
    w.write("old.key", &[1; 32]);
    w.write("new.key", &[2; 32]);
    w
}

/// `item VERB` with the table options, `keys`, `-i input -o output` and `extra`.
fn args(verb: &str, keys: &[&str], input: &str, output: &str, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec!["item".into(), verb.into()];
    a.extend(TABLE.iter().chain(keys).map(|s| s.to_string()));
    a.extend(["-i".into(), input.into(), "-o".into(), output.into()]);
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// `count` plaintext items, one per line.
fn plain_items(w: &Work, name: &str, count: usize) -> String {
    let mut text = String::new();
    for i in 0..count {
        text.push_str(&format!(
            r#"{{"pk":{{"S":"p{i}"}},"sk":{{"N":"{i}"}},"secret":{{"S":"card {i}"}},"note":{{"S":"n{}"}}}}"#,
            i % 13
        ));
        text.push('\n');
    }
    w.write(name, text.as_bytes())
}

fn lines(w: &Work, name: &str) -> Vec<Value> {
    String::from_utf8(w.read(name)).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn stderr_of(w: &Work, a: &[String], code: i32) -> String {
    let out = w.cmd(a).assert().code(code).get_output().clone();
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn items_keep_their_order_with_jobs_and_rewrapped_ones_are_skipped() {
    let w = work();
    plain_items(&w, "plain.jsonl", 300);
    w.ok(args("encrypt", &["-w", OLD], "plain.jsonl", "old.jsonl", &[]));
    w.ok(args("encrypt", &["-w", NEW], "plain.jsonl", "new-enc.jsonl", &[]));
    // Every 15th item is already under the new key.
    let old = String::from_utf8(w.read("old.jsonl")).unwrap();
    let new = String::from_utf8(w.read("new-enc.jsonl")).unwrap();
    let mixed: Vec<&str> =
        old.lines().zip(new.lines()).enumerate().map(|(i, (o, n))| if i % 15 == 0 { n } else { o }).collect();
    w.write("mixed.jsonl", format!("{}\n", mixed.join("\n")).as_bytes());

    let a = args("rewrap", &["--from", OLD, "-w", NEW], "mixed.jsonl", "out.jsonl", &["--jobs", "4"]);
    let err = stderr_of(&w, &a, 0);
    assert!(err.contains("rewrapped 280, skipped 20 (already under the new keys)"), "{err}");
    assert!(err.contains("failed 0"), "{err}");
    let out = String::from_utf8(w.read("out.jsonl")).unwrap();
    assert_eq!(out.lines().count(), 300);
    for (i, (line, input)) in out.lines().zip(&mixed).enumerate() {
        let (o, n): (Value, Value) = (serde_json::from_str(line).unwrap(), serde_json::from_str(input).unwrap());
        for name in ["pk", "sk", "secret", "note"] {
            assert_eq!(o[name], n[name], "line {}: `{name}` changed or moved", i + 1);
        }
        if i % 15 == 0 {
            assert_eq!(line, *input, "a skipped item is copied through unchanged");
        } else {
            assert_ne!(o["aws_dbe_head"], n["aws_dbe_head"]);
        }
    }
    w.ok(args("decrypt", &["-w", NEW], "out.jsonl", "back.jsonl", &[]));
    assert_eq!(lines(&w, "back.jsonl"), lines(&w, "plain.jsonl"));
    let err = stderr_of(&w, &args("decrypt", &["-w", OLD], "out.jsonl", "bad.jsonl", &[]), 1);
    assert!(err.contains("300 item(s) failed"), "{err}");
    assert!(w.partials().is_empty());

    // To stdout, in order too, with one job.
    let mut a = args("rewrap", &["--from", OLD, "-w", NEW], "mixed.jsonl", "-", &["--jobs", "1", "-q"]);
    a.retain(|s| s != "-o" && s != "-");
    let stdout = w.ok(&a);
    assert_eq!(stdout.lines().count(), 300);
    w.fails(2, args("rewrap", &["--from", OLD, "-w", NEW], "mixed.jsonl", "x.jsonl", &["--jobs", "0"]));
}

/// `line` with a byte of its header flipped.
fn tamper_head(line: &str) -> String {
    let mut item: Value = serde_json::from_str(line).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut head = b64.decode(item["aws_dbe_head"]["B"].as_str().unwrap()).unwrap();
    let last = head.len() - 1;
    head[last] ^= 1;
    item["aws_dbe_head"]["B"] = Value::from(b64.encode(head));
    item.to_string()
}

#[test]
fn failed_items_are_named_by_line_and_nothing_is_written() {
    let w = work();
    plain_items(&w, "plain.jsonl", 40);
    w.ok(args("encrypt", &["-w", OLD], "plain.jsonl", "old.jsonl", &[]));
    let old = String::from_utf8(w.read("old.jsonl")).unwrap();
    let mut bad: Vec<String> = old.lines().map(str::to_owned).collect();
    bad[4] = tamper_head(&bad[4]);
    bad[30] = "{not json".to_owned();
    w.write("bad.jsonl", format!("{}\n", bad.join("\n")).as_bytes());
    for extra in [&["--jobs", "3"][..], &["--jobs", "3", "--checkpoint", "ckpt"]] {
        let err = stderr_of(&w, &args("rewrap", &["--from", OLD, "-w", NEW], "bad.jsonl", "out.jsonl", extra), 1);
        assert!(err.contains("hsm-keyring: line 5: "), "{err}");
        assert!(err.contains("hsm-keyring: line 31: malformed item: not JSON"), "{err}");
        assert!(err.contains("rewrapped 38, skipped 0"), "{err}");
        assert!(err.contains("failed 2"), "{err}");
        assert!(err.contains("2 items could not be rewrapped"), "{err}");
        w.assert_no_output("out.jsonl");
        assert!(!w.file("ckpt").exists(), "the checkpoint was left behind");
    }
    // --checkpoint needs files on both sides.
    let mut a = args("rewrap", &["--from", OLD, "-w", NEW], "old.jsonl", "-", &["--checkpoint", "ckpt"]);
    a.retain(|s| s != "-o" && s != "-");
    let err = w.fails(2, &a);
    assert!(err.contains("-i FILE -o FILE"), "{err}");
}

fn checkpoint_lines(w: &Work) -> u64 {
    let text = std::fs::read_to_string(w.file("ckpt")).unwrap_or_default();
    text.lines().find_map(|l| l.strip_prefix("input-lines ")).and_then(|n| n.parse().ok()).unwrap_or(0)
}

#[test]
fn a_killed_item_rewrap_resumes_and_rewraps_each_item_once() {
    let w = work();
    let count = 5000;
    plain_items(&w, "plain.jsonl", count);
    w.ok(args("encrypt", &["-w", OLD], "plain.jsonl", "old.jsonl", &[]));
    let a =
        args("rewrap", &["--from", OLD, "-w", NEW], "old.jsonl", "out.jsonl", &["--jobs", "4", "--checkpoint", "ckpt"]);
    let mut child = w.std_cmd(&a).stderr(std::process::Stdio::null()).spawn().unwrap();
    while checkpoint_lines(&w) < 512 {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done = checkpoint_lines(&w);
    assert!(done < count as u64, "killed after {done} of {count}");
    assert!(!w.file("out.jsonl").exists());
    let ckpt = std::fs::read_to_string(w.file("ckpt")).unwrap();
    let synced: usize =
        ckpt.lines().find_map(|l| l.strip_prefix("output-bytes ")).and_then(|n| n.parse().ok()).unwrap();
    let prefix = w.read("out.jsonl.partial")[..synced].to_vec();

    // A changed input is refused, and the checkpoint kept.
    let original = w.read("old.jsonl");
    let mut changed = original.clone();
    changed[10] ^= 1;
    w.write("old.jsonl", &changed);
    let err = w.fails(2, &a);
    assert!(err.contains("the input changed"), "{err}");
    w.write("old.jsonl", &[&original[..], b"\n"].concat());
    let err = w.fails(2, &a);
    assert!(err.contains("the input changed"), "{err}");
    w.write("old.jsonl", &original);

    let err = stderr_of(&w, &a, 0);
    assert!(err.contains(&format!("done by an earlier run {done}")), "{err}");
    assert!(err.contains(&format!("rewrapped {}", count as u64 - done)), "{err}");
    assert!(!w.file("ckpt").exists() && w.partials().is_empty(), "{:?}", w.listing());
    let out = w.read("out.jsonl");
    assert_eq!(&out[..synced], &prefix[..], "the recorded lines were kept byte for byte");

    // Every item exactly once, in order, as an uninterrupted run writes it.
    w.ok(args("rewrap", &["--from", OLD, "-w", NEW], "old.jsonl", "full.jsonl", &["--jobs", "4"]));
    let (resumed, full, input) = (lines(&w, "out.jsonl"), lines(&w, "full.jsonl"), lines(&w, "old.jsonl"));
    assert_eq!(resumed.len(), count);
    assert_eq!(full.len(), count);
    for (i, ((r, f), o)) in resumed.iter().zip(&full).zip(&input).enumerate() {
        for name in ["pk", "sk", "secret", "note"] {
            assert_eq!(r[name], o[name], "line {}", i + 1);
            assert_eq!(r[name], f[name], "line {}", i + 1);
        }
        assert_ne!(r["aws_dbe_head"], o["aws_dbe_head"], "line {} was not rewrapped", i + 1);
    }
    w.ok(args("decrypt", &["-w", NEW], "out.jsonl", "back.jsonl", &[]));
    w.ok(args("decrypt", &["-w", NEW], "full.jsonl", "back-full.jsonl", &[]));
    assert_eq!(w.read("back.jsonl"), w.read("back-full.jsonl"));
    assert_eq!(lines(&w, "back.jsonl"), lines(&w, "plain.jsonl"));
    let err = stderr_of(&w, &args("decrypt", &["-w", OLD], "out.jsonl", "no.jsonl", &["-q"]), 1);
    assert!(err.contains(&format!("{count} item(s) failed")), "{err}");

    // Rewrapping the result again skips every item.
    let err = stderr_of(&w, &args("rewrap", &["--from", OLD, "-w", NEW], "out.jsonl", "again.jsonl", &[]), 0);
    assert!(err.contains(&format!("rewrapped 0, skipped {count}")), "{err}");
    assert_eq!(w.read("again.jsonl"), out);
}

#[test]
fn token_items_are_rewrapped_between_two_token_keys_on_many_threads() {
    let Some(w) = Work::with_dev_token() else { return };
    w.ok(["keys", "generate", "--type", "aes-256", "--label", "rotated"]);
    let old = format!("type=pkcs11,uri={}", cli_support::DEV_WRAP_URI);
    let new = "type=pkcs11,uri=pkcs11:token=hsm-keyring-dev;object=rotated;type=secret-key";
    plain_items(&w, "plain.jsonl", 120);
    w.ok(args("encrypt", &["-w", &old], "plain.jsonl", "old.jsonl", &[]));
    let a =
        args("rewrap", &["--from", &old, "-w", new], "old.jsonl", "new.jsonl", &["--jobs", "8", "--checkpoint", "c"]);
    let err = stderr_of(&w, &a, 0);
    assert!(err.contains("rewrapped 120, skipped 0"), "{err}");
    assert!(!w.file("c").exists() && w.partials().is_empty());
    w.ok(args("decrypt", &["-w", new], "new.jsonl", "back.jsonl", &[]));
    assert_eq!(lines(&w, "back.jsonl"), lines(&w, "plain.jsonl"));
    let err = stderr_of(&w, &args("decrypt", &["-w", &old], "new.jsonl", "no.jsonl", &["-q"]), 1);
    assert!(err.contains("120 item(s) failed"), "{err}");
    // Again: every item is already under the new key.
    let err = stderr_of(&w, &args("rewrap", &["--from", &old, "-w", new], "new.jsonl", "again.jsonl", &[]), 0);
    assert!(err.contains("rewrapped 0, skipped 120"), "{err}");
    assert_eq!(w.read("again.jsonl"), w.read("new.jsonl"));
}
