//! `hsm-keyring item encrypt|decrypt` on JSON Lines of DynamoDB JSON.

mod cli_support;

use cli_support::{bytes, Work, DEV_SIGN_URI};

fn raw_aes(work: &Work, name: &str, seed: u64) -> String {
    let path = work.write(&format!("{name}.key"), &bytes(32, seed));
    format!("type=aes,path={path},namespace=test-ns,name={name}")
}

const TABLE: [&str; 10] = [
    "--table",
    "orders",
    "--partition-key",
    "id",
    "--sort-key",
    "n",
    "--action",
    "card=encrypt",
    "--allowed-unsigned-prefix",
    "tmp:",
];

const LINES: &str = concat!(
    r#"{"id":{"S":"a"},"n":{"N":"1"},"card":{"M":{"no":{"S":"4111 ✓"},"b":{"B":"AAE="}}},"tmp:x":{"BOOL":true}}"#,
    "\n",
    r#"{"id":{"S":"b"},"n":{"N":"2"},"card":{"SS":["x","y"]}}"#,
    "\n",
);

fn args<'a>(verb: &'a str, key: &'a str, input: &'a str, output: &'a str) -> Vec<&'a str> {
    let mut v = vec!["item", verb, "-w", key, "-i", input, "-o", output];
    v.extend_from_slice(&TABLE);
    v
}

fn lines(work: &Work, name: &str) -> Vec<serde_json::Value> {
    let text = String::from_utf8(work.read(name)).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn items_round_trip_through_the_command() {
    let work = Work::new();
    let key = raw_aes(&work, "k", 1);
    work.write("items.jsonl", LINES.as_bytes());
    work.ok(args("encrypt", &key, "items.jsonl", "enc.jsonl"));
    let encrypted = lines(&work, "enc.jsonl");
    assert_eq!(encrypted.len(), 2);
    for item in &encrypted {
        assert!(item["card"]["B"].is_string(), "{item}");
        assert!(item["aws_dbe_head"]["B"].is_string() && item["aws_dbe_foot"]["B"].is_string());
    }
    work.ok(args("decrypt", &key, "enc.jsonl", "dec.jsonl"));
    let expected: Vec<serde_json::Value> = LINES.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines(&work, "dec.jsonl"), expected);
}

#[test]
fn a_failed_item_is_named_by_its_line_and_left_out() {
    let work = Work::new();
    let key = raw_aes(&work, "k", 1);
    work.write("items.jsonl", LINES.as_bytes());
    work.ok(args("encrypt", &key, "items.jsonl", "enc.jsonl"));
    let text = String::from_utf8(work.read("enc.jsonl")).unwrap();
    let mut rows: Vec<String> = text.lines().map(str::to_owned).collect();
    // Line 1 is altered: another id for the same signed item.
    rows[0] = rows[0].replace(r#""id":{"S":"a"}"#, r#""id":{"S":"z"}"#);
    rows.insert(1, "not json".to_owned());
    work.write("mixed.jsonl", (rows.join("\n") + "\n").as_bytes());
    let out = work.cmd(args("decrypt", &key, "mixed.jsonl", "dec.jsonl")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 1:") && stderr.contains("line 2:") && !stderr.contains("line 3:"), "{stderr}");
    let decrypted = lines(&work, "dec.jsonl");
    assert_eq!(decrypted.len(), 1);
    assert_eq!(decrypted[0]["id"]["S"], "b");
    // Another key opens nothing.
    let other_path = work.write("other.key", &bytes(32, 2));
    let other = format!("type=aes,path={other_path},namespace=test-ns,name=k");
    let out = work.cmd(args("decrypt", &other, "enc.jsonl", "none.jsonl")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(lines(&work, "none.jsonl").is_empty());
}

#[test]
fn configuration_errors_are_usage_errors() {
    let work = Work::new();
    let key = raw_aes(&work, "k", 1);
    work.write("items.jsonl", LINES.as_bytes());
    for extra in
        [["--suite", "0x0578"], ["--action", "card=bogus"], ["--action", "id=encrypt"], ["--default-action", "none"]]
    {
        let mut a = args("encrypt", &key, "items.jsonl", "x.jsonl");
        a.extend_from_slice(&extra);
        work.fails(2, a);
        work.assert_no_output("x.jsonl");
    }
}

/// Items decrypted with `extra` fail: exit 1, every line named, nothing written.
#[track_caller]
fn refused(work: &Work, key: &str, input: &str, extra: &[&str], expect: &str) {
    let mut a = args("decrypt", key, input, "refused.jsonl");
    a.extend_from_slice(extra);
    let out = work.cmd(a).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 1:") && stderr.contains("line 2:") && stderr.contains(expect), "{stderr}");
    assert!(lines(work, "refused.jsonl").is_empty());
}

#[test]
fn token_signer_and_trusted_signers() {
    let Some(work) = Work::with_dev_token() else { return };
    let key = raw_aes(&work, "k", 1);
    work.write("items.jsonl", LINES.as_bytes());
    work.ok(["keys", "export-public", "--key", DEV_SIGN_URI, "-o", "signer.pem"]);
    let mut a = args("encrypt", &key, "items.jsonl", "signed.jsonl");
    a.extend_from_slice(&["--signer", DEV_SIGN_URI]);
    work.ok(a);
    let expected: Vec<serde_json::Value> = LINES.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for trusted in ["signer.pem", DEV_SIGN_URI] {
        let mut a = args("decrypt", &key, "signed.jsonl", "dec.jsonl");
        a.extend_from_slice(&["--trusted-signer", trusted]);
        work.ok(a);
        assert_eq!(lines(&work, "dec.jsonl"), expected, "{trusted}");
    }
    // Without pinning the signed items read as any others.
    work.ok(args("decrypt", &key, "signed.jsonl", "dec.jsonl"));
    assert_eq!(lines(&work, "dec.jsonl"), expected);

    // A fresh per-item key, and the unsigned suite, are refused when pinned.
    work.ok(args("encrypt", &key, "items.jsonl", "fresh.jsonl"));
    refused(&work, &key, "fresh.jsonl", &["--trusted-signer", "signer.pem"], "trusted signers");
    let mut a = args("encrypt", &key, "items.jsonl", "unsigned.jsonl");
    a.extend_from_slice(&["--suite", "0x6700"]);
    work.ok(a);
    refused(&work, &key, "unsigned.jsonl", &["--trusted-signer", DEV_SIGN_URI], "not signed");

    // A signer with the unsigned suite, or a trusted signer that is no key, is a usage error.
    let mut a = args("encrypt", &key, "items.jsonl", "x.jsonl");
    a.extend_from_slice(&["--suite", "0x6700", "--signer", DEV_SIGN_URI]);
    assert!(work.fails(2, a).contains("does not sign"));
    work.assert_no_output("x.jsonl");
    work.write("bad.pem", b"not a key");
    let mut a = args("decrypt", &key, "signed.jsonl", "x.jsonl");
    a.extend_from_slice(&["--trusted-signer", "bad.pem"]);
    work.fails(2, a);
    work.assert_no_output("x.jsonl");
}

/// `count` items of a few attributes each, one a line; item `i` has id `i`.
fn many_items(count: usize) -> String {
    (0..count)
        .map(|i| {
            let tags: Vec<String> = (0..i % 4).map(|t| format!("\"t{t}\"")).collect();
            let tags =
                if tags.is_empty() { String::new() } else { format!(r#","tags":{{"SS":[{}]}}"#, tags.join(",")) };
            format!(
                r#"{{"id":{{"S":"item-{i}"}},"n":{{"N":"{i}"}},"card":{{"S":"{}"}},"tmp:x":{{"BOOL":{}}}{tags}}}"#,
                "c".repeat(i % 97),
                i % 2 == 0
            ) + "\n"
        })
        .collect()
}

fn with<'a>(mut a: Vec<&'a str>, extra: &[&'a str]) -> Vec<&'a str> {
    a.extend_from_slice(extra);
    a
}

#[test]
fn many_items_on_three_jobs_come_out_in_input_order() {
    let work = Work::new();
    let key = &raw_aes(&work, "k", 1);
    let input = many_items(2000);
    work.write("items.jsonl", input.as_bytes());
    let fast = ["--suite", "0x6700", "--jobs", "3"];
    work.ok(with(args("encrypt", key, "items.jsonl", "enc.jsonl"), &fast));
    let encrypted = lines(&work, "enc.jsonl");
    assert_eq!(encrypted.len(), 2000);
    for (i, item) in encrypted.iter().enumerate() {
        // The keys are signed, not encrypted: they show the order.
        assert_eq!(item["id"]["S"], format!("item-{i}"));
        assert!(item["card"]["B"].is_string(), "{item}");
    }
    work.ok(with(args("decrypt", key, "enc.jsonl", "dec3.jsonl"), &["--jobs", "3"]));
    let expected: Vec<serde_json::Value> = input.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines(&work, "dec3.jsonl"), expected);
    // One at a time gives the same bytes.
    work.ok(with(args("decrypt", key, "enc.jsonl", "dec1.jsonl"), &["--jobs", "1"]));
    assert_eq!(work.read("dec1.jsonl"), work.read("dec3.jsonl"));
    // Encrypting one at a time differs only by its randomness.
    work.ok(with(args("encrypt", key, "items.jsonl", "enc1.jsonl"), &["--suite", "0x6700", "--jobs", "1"]));
    assert_ne!(work.read("enc1.jsonl"), work.read("enc.jsonl"));
    work.ok(with(args("decrypt", key, "enc1.jsonl", "dec.jsonl"), &["--jobs", "2"]));
    assert_eq!(work.read("dec.jsonl"), work.read("dec3.jsonl"));
}

#[test]
fn bad_lines_among_many_are_named_exactly_and_the_rest_written_in_order() {
    let work = Work::new();
    let key = &raw_aes(&work, "k", 1);
    let input = many_items(300);
    work.write("items.jsonl", input.as_bytes());
    work.ok(with(args("encrypt", key, "items.jsonl", "enc.jsonl"), &["--suite", "0x6700", "--jobs", "3"]));
    let text = String::from_utf8(work.read("enc.jsonl")).unwrap();
    let mut rows: Vec<String> = text.lines().map(str::to_owned).collect();
    // Item 40 gets another key value (its signature no longer holds), item
    // 150 is not JSON, item 151 not an item, and item 220 lost its tail.
    rows[40] = rows[40].replace(r#""id":{"S":"item-40"}"#, r#""id":{"S":"item-41"}"#);
    rows[150] = "not json".to_owned();
    rows[151] = "[1,2]".to_owned();
    let half = rows[220].len() / 2;
    rows[220].truncate(half);
    // Blank lines are skipped but counted.
    rows.insert(100, String::new());
    work.write("mixed.jsonl", (rows.join("\n") + "\n").as_bytes());
    let out = work.cmd(with(args("decrypt", key, "mixed.jsonl", "dec.jsonl"), &["--jobs", "3"])).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let named: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("hsm-keyring: line "))
        .filter_map(|l| l.split(':').next())
        .collect();
    // Line numbers are 1-based and count the blank line.
    assert_eq!(named, ["41", "152", "153", "222"], "{stderr}");
    assert!(stderr.contains("not JSON"), "{stderr}");
    assert!(stderr.contains("4 item(s) failed"), "{stderr}");
    let expected: Vec<serde_json::Value> = input
        .lines()
        .enumerate()
        .filter(|(i, _)| ![40, 150, 151, 220].contains(i))
        .map(|(_, l)| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines(&work, "dec.jsonl"), expected);
    // One at a time: the same output and the same report.
    let one = work.cmd(with(args("decrypt", key, "mixed.jsonl", "dec1.jsonl"), &["--jobs", "1"])).output().unwrap();
    assert_eq!(one.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&one.stderr), stderr);
    assert_eq!(work.read("dec1.jsonl"), work.read("dec.jsonl"));
}

#[test]
fn jobs_zero_is_a_usage_error() {
    let work = Work::new();
    let key = &raw_aes(&work, "k", 1);
    work.write("items.jsonl", LINES.as_bytes());
    for verb in ["encrypt", "decrypt"] {
        let message = work.fails(2, with(args(verb, key, "items.jsonl", "x.jsonl"), &["--jobs", "0"]));
        assert!(message.contains("--jobs must be at least 1"), "{message}");
        work.assert_no_output("x.jsonl");
    }
    let help = work.ok(["item", "encrypt", "--help"]);
    assert!(help.contains("--jobs <N>") && help.contains("input order"), "{help}");
}

#[test]
fn a_read_error_stops_the_command_and_a_line_not_utf8_fails_alone() {
    let work = Work::new();
    let key = &raw_aes(&work, "k", 1);
    // A directory reads with an error: a usage error, no output.
    std::fs::create_dir(work.file("dir")).unwrap();
    let message = work.fails(2, with(args("encrypt", key, "dir", "x.jsonl"), &["--jobs", "2"]));
    assert!(message.contains("reading the input"), "{message}");
    work.assert_no_output("x.jsonl");
    // A line that is not UTF-8 is one bad item among good ones.
    let mut input = LINES.as_bytes().to_vec();
    input.splice(0..0, b"\xff\xfe{}\n".iter().copied());
    work.write("bytes.jsonl", &input);
    let out = work.cmd(with(args("encrypt", key, "bytes.jsonl", "enc.jsonl"), &["--jobs", "2"])).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 1: the line is not UTF-8") && !stderr.contains("line 2"), "{stderr}");
    work.ok(args("decrypt", key, "enc.jsonl", "dec.jsonl"));
    let expected: Vec<serde_json::Value> = LINES.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines(&work, "dec.jsonl"), expected);
}
