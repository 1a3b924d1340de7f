//! `hsm-keyring item decrypt --legacy` on JSON Lines mixing items written by
//! the legacy client's Python package and items in the new format.

mod cli_support;
mod common;
mod legacy_support;

use cli_support::{bytes, Work};
use legacy_support::{aes_key, canonical, hmac_key, item, peer_items, PeerItem};

const TABLE: [&str; 10] = [
    "--table",
    "legacy-table",
    "--partition-key",
    "pk",
    "--sort-key",
    "sk",
    "--action",
    "public=sign",
    "--allowed-unsigned",
    "ignored",
];

/// The peer's table actions, for the command.
const MORE: [&str; 6] =
    ["--action", "public_map=sign", "--action", "public_numbers=sign", "--action", "public_big=sign"];

struct Keys {
    new: String,
    wrap: String,
    stat: String,
    hmac: String,
    rsa_private: String,
    rsa_public: String,
}

fn keys(work: &Work) -> Keys {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/");
    Keys {
        new: format!("type=aes,path={},namespace=ns,name=new", work.write("new.key", &bytes(32, 7))),
        wrap: format!("type=aes,path={}", work.write("wrap.key", &aes_key())),
        stat: format!("type=aes,path={}", work.write("static.key", &aes_key())),
        hmac: format!("type=hmac,path={}", work.write("hmac.key", &hmac_key())),
        rsa_private: format!("type=rsa,path={data}interop-rsa-2048-private.pem"),
        rsa_public: format!("type=rsa,path={data}interop-rsa-2048-public.pem"),
    }
}

fn stored_line(item: &PeerItem) -> String {
    // The stored item as the peer wrote it, DynamoDB JSON.
    let line =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/legacy-items/peer-items.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["case"] == item.case.as_str())
            .unwrap();
    line["stored"].to_string()
}

fn base<'a>(verb: &'a str, key: &'a str, input: &'a str, output: &'a str) -> Vec<&'a str> {
    let mut v = vec!["item", verb, "-w", key, "-i", input, "-o", output];
    v.extend_from_slice(&TABLE);
    v.extend_from_slice(&MORE);
    v
}

fn output(work: &Work, name: &str) -> Vec<hsm_keyring::items::Item> {
    let text = String::from_utf8(work.read(name)).unwrap();
    text.lines().map(|l| item(&serde_json::from_str(l).unwrap())).collect()
}

#[test]
fn decrypt_legacy_reads_both_formats_with_each_provider() {
    let work = Work::new();
    let k = keys(&work);
    let peer = peer_items();
    // New-format items of the same table, written by the command.
    let new_items: Vec<&PeerItem> = peer.iter().filter(|i| i.wrap == "aes-wrap" && i.sign == "hmac").collect();
    let plain: String = new_items.iter().map(|i| serde_json::to_string(&json(&i.expected)).unwrap() + "\n").collect();
    work.write("plain.jsonl", plain.as_bytes());
    work.ok(base("encrypt", &k.new, "plain.jsonl", "new.jsonl"));
    let new_lines = String::from_utf8(work.read("new.jsonl")).unwrap();

    for (wrap, sign, legacy_opts) in [
        ("aes-wrap", "hmac", vec!["--legacy-wrap", &k.wrap, "--legacy-sign", &k.hmac]),
        ("rsa-oaep", "rsa-sign", vec!["--legacy-wrap", &k.rsa_private, "--legacy-sign", &k.rsa_public]),
        ("aes-wrap", "rsa-sign", vec!["--legacy-wrap", &k.wrap, "--legacy-sign", &k.rsa_private]),
        ("aes-static", "hmac", vec!["--legacy-static", &k.stat, "--legacy-sign", &k.hmac]),
    ] {
        let legacy: Vec<&PeerItem> = peer.iter().filter(|i| i.wrap == wrap && i.sign == sign).collect();
        let mut input: String = legacy.iter().map(|i| stored_line(i) + "\n").collect();
        input.push_str(&new_lines);
        work.write("mixed.jsonl", input.as_bytes());
        let mut args = base("decrypt", &k.new, "mixed.jsonl", "out.jsonl");
        args.push("--legacy");
        args.extend(legacy_opts.iter().copied());
        work.ok(&args);
        let out = output(&work, "out.jsonl");
        let expected: Vec<_> = legacy.iter().chain(new_items.iter()).map(|i| canonical(&i.expected)).collect();
        assert_eq!(out.iter().map(canonical).collect::<Vec<_>>(), expected, "{wrap} {sign}");

        // Without --legacy the legacy items fail (named by line), the new ones are written.
        let err = item_failures(&work, &base("decrypt", &k.new, "mixed.jsonl", "out2.jsonl"));
        assert!(err.contains(&format!("{} item(s) failed", legacy.len())), "{err}");
        assert_eq!(output(&work, "out2.jsonl").len(), new_items.len());
    }
}

#[test]
fn decrypt_legacy_refuses_a_tampered_item_and_bad_options() {
    let work = Work::new();
    let k = keys(&work);
    let peer = peer_items();
    let item = peer.iter().find(|i| i.wrap == "aes-wrap" && i.sign == "hmac").unwrap();
    let good = stored_line(item);
    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    v["public"]["S"] = serde_json::Value::from("signed, not encrypted!");
    work.write("items.jsonl", format!("{v}\n{good}\n").as_bytes());
    let mut args = base("decrypt", &k.new, "items.jsonl", "out.jsonl");
    args.extend(["--legacy", "--legacy-wrap", &k.wrap, "--legacy-sign", &k.hmac]);
    let stderr = item_failures(&work, &args);
    assert!(stderr.contains("line 1") && stderr.contains("item authentication failed"), "{stderr}");
    assert!(!stderr.contains("line 2"), "{stderr}");
    assert_eq!(output(&work, "out.jsonl").len(), 1);

    // The wrong wrapping key: not this key, exit 1.
    let other = format!("type=aes,path={}", work.write("other.key", &[9u8; 32]));
    let mut args = base("decrypt", &k.new, "items.jsonl", "out3.jsonl");
    args.extend(["--legacy", "--legacy-wrap", &other, "--legacy-sign", &k.hmac]);
    assert!(item_failures(&work, &args).contains("AES key unwrap failed"));

    // Usage errors: exit 2.
    let mut no_sign = base("decrypt", &k.new, "items.jsonl", "o.jsonl");
    no_sign.extend(["--legacy", "--legacy-wrap", &k.wrap]);
    assert!(usage_error(&work, &no_sign).contains("--legacy-sign"));
    let mut without_flag = base("decrypt", &k.new, "items.jsonl", "o.jsonl");
    without_flag.extend(["--legacy-sign", &k.hmac]);
    usage_error(&work, &without_flag);
    let mut both = base("decrypt", &k.new, "items.jsonl", "o.jsonl");
    both.extend(["--legacy", "--legacy-wrap", &k.wrap, "--legacy-static", &k.stat, "--legacy-sign", &k.hmac]);
    usage_error(&work, &both);
    let mut bad_spec = base("decrypt", &k.new, "items.jsonl", "o.jsonl");
    bad_spec.extend(["--legacy", "--legacy-sign", "type=hmac"]);
    assert!(usage_error(&work, &bad_spec).contains("path="));
    let mut on_encrypt = base("encrypt", &k.new, "items.jsonl", "o.jsonl");
    on_encrypt.extend(["--legacy", "--legacy-sign", &k.hmac]);
    assert!(usage_error(&work, &on_encrypt).contains("decrypt"));
}

#[test]
fn decrypt_legacy_with_rsa_oaep_sha256_and_hmac_keys_in_kryoptic() {
    // Kryoptic runs RSA-OAEP with SHA-256 (SoftHSM does not): the command
    // unwraps and verifies the peer's RSA items with the key pair in the
    // token, and its AES-wrapped HMAC items with the token's AES and HMAC keys.
    let Some(t) = common::test_token(common::Backend::Kryoptic) else { return };
    legacy_support::import_peer_keys(&t.raw_session());
    let work = Work::new();
    let k = keys(&work);
    let peer = peer_items();
    // The URIs hold no comma: the legacy key specs take them unquoted, or
    // quoted whole as -w does.
    let spec = |label: &str, object_type: &str| format!("type=pkcs11,uri={}", t.key_uri(label, object_type));
    let quoted = |label: &str, object_type: &str| format!("type=pkcs11,uri=\"{}\"", t.key_uri(label, object_type));
    for (wrap, sign, wrap_key, sign_key) in [
        ("rsa-oaep", "rsa-sign", spec("legacy-rsa", "private"), spec("legacy-rsa", "public")),
        ("aes-wrap", "hmac", quoted("legacy-wrap", "secret-key"), quoted("legacy-hmac", "secret-key")),
    ] {
        let legacy: Vec<&PeerItem> = peer.iter().filter(|i| i.wrap == wrap && i.sign == sign).collect();
        assert!(legacy.len() >= 2, "{wrap} {sign}");
        let input: String = legacy.iter().map(|i| stored_line(i) + "\n").collect();
        work.write("items.jsonl", input.as_bytes());
        let mut args = vec!["--insecure-pin-in-uri"];
        args.extend(base("decrypt", &k.new, "items.jsonl", "out.jsonl"));
        args.extend(["--legacy", "--legacy-wrap", &wrap_key, "--legacy-sign", &sign_key]);
        work.ok(&args);
        let expected: Vec<_> = legacy.iter().map(|i| canonical(&i.expected)).collect();
        assert_eq!(output(&work, "out.jsonl").iter().map(canonical).collect::<Vec<_>>(), expected, "{wrap}");

        // A tampered first item fails alone (exit 1); the others are written.
        let mut v: serde_json::Value = serde_json::from_str(&stored_line(legacy[0])).unwrap();
        v["public"]["S"] = serde_json::Value::from("signed, not encrypted!");
        let rest: String = legacy[1..].iter().map(|i| stored_line(i) + "\n").collect();
        work.write("tampered.jsonl", format!("{v}\n{rest}").as_bytes());
        let mut args = vec!["--insecure-pin-in-uri"];
        args.extend(base("decrypt", &k.new, "tampered.jsonl", "out2.jsonl"));
        args.extend(["--legacy", "--legacy-wrap", &wrap_key, "--legacy-sign", &sign_key]);
        let stderr = item_failures(&work, &args);
        assert!(stderr.contains("line 1") && stderr.contains("item authentication failed"), "{wrap}: {stderr}");
        assert!(!stderr.contains("line 2"), "{wrap}: {stderr}");
        assert_eq!(output(&work, "out2.jsonl").len(), legacy.len() - 1, "{wrap}");
    }
    // Another RSA key in the token: every RSA item is "not this key" (exit
    // 1), not a token fault (exit 3).
    let rsa: Vec<&PeerItem> = peer.iter().filter(|i| i.wrap == "rsa-oaep").collect();
    work.write("rsa.jsonl", rsa.iter().map(|i| stored_line(i) + "\n").collect::<String>().as_bytes());
    let (other, public) = (spec("legacy-rsa-other", "private"), spec("legacy-rsa", "public"));
    let mut args = vec!["--insecure-pin-in-uri"];
    args.extend(base("decrypt", &k.new, "rsa.jsonl", "out3.jsonl"));
    args.extend(["--legacy", "--legacy-wrap", &other, "--legacy-sign", &public]);
    let stderr = item_failures(&work, &args);
    assert!(stderr.contains(&format!("{} item(s) failed", rsa.len())), "{stderr}");
}

/// Run a command refused as misused (exit 2); its stderr.
fn usage_error(work: &Work, args: &[&str]) -> String {
    let out = work.cmd(args).assert().code(2).get_output().clone();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Run a decrypt where some items fail (exit 1); its stderr.
fn item_failures(work: &Work, args: &[&str]) -> String {
    let out = work.cmd(args).assert().code(1).get_output().clone();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn help_documents_the_legacy_options() {
    let work = Work::new();
    let help = work.ok(["item", "decrypt", "--help"]);
    for text in
        ["--legacy", "--legacy-wrap", "--legacy-static", "--legacy-sign", "CKM_AES_KEY_WRAP", "type=hmac,path=FILE"]
    {
        assert!(help.contains(text), "{text} missing from:\n{help}");
    }
}

fn json(item: &hsm_keyring::items::Item) -> serde_json::Value {
    use base64::Engine;
    use hsm_keyring::items::AttributeValue as A;
    fn value(v: &A) -> serde_json::Value {
        let b64 = |b: &[u8]| serde_json::Value::from(base64::engine::general_purpose::STANDARD.encode(b));
        let (tag, inner) = match v {
            A::S(s) => ("S", serde_json::Value::from(s.as_str())),
            A::N(n) => ("N", serde_json::Value::from(n.as_str())),
            A::B(b) => ("B", b64(b)),
            A::Bool(b) => ("BOOL", serde_json::Value::from(*b)),
            A::Null => ("NULL", serde_json::Value::from(true)),
            A::Ss(s) => ("SS", serde_json::Value::from(s.clone())),
            A::Ns(s) => ("NS", serde_json::Value::from(s.clone())),
            A::Bs(s) => ("BS", s.iter().map(|b| b64(b)).collect()),
            A::L(l) => ("L", l.iter().map(value).collect()),
            A::M(m) => ("M", serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), value(v))).collect())),
            _ => unreachable!(),
        };
        serde_json::json!({ tag: inner })
    }
    serde_json::Value::Object(item.iter().map(|(k, v)| (k.clone(), value(v))).collect())
}
