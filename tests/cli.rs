//! The `hsm-keyring` command end to end: every subcommand and option through
//! the real binary, exit codes, one-line errors, and that a failed command
//! leaves no output file (nor a temporary one) behind.
//!
//! Tests that need a token create their own SoftHSM dev token
//! (`HSM_KEYRING_DEV_DIR=<temp dir>`, `dev-token init`); without SoftHSM they
//! are skipped with a notice, except with `CI=true`.

mod cli_support;

use std::path::PathBuf;

use cli_support::{bytes, inspect, run_fails, run_ok, Work, DEV_SIGN_URI, DEV_TOKEN, DEV_WRAP_URI};
use hsm_keyring::cmm::{DefaultCmm, RequiredEncryptionContextCmm};
use hsm_keyring::keyrings::RawAesKeyring;
use hsm_keyring::{Client, EncryptionContext};
use serde_json::Value;

macro_rules! dev_token_or_skip {
    () => {
        match Work::with_dev_token() {
            Some(work) => work,
            None => return,
        }
    };
}

fn data_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name);
    path.to_str().expect("UTF-8 path").to_owned()
}

fn pkcs11(uri: &str) -> String {
    format!("type=pkcs11,uri={uri}")
}

fn raw_aes(path: &str, name: &str) -> String {
    format!("type=aes,path={path},namespace=test-ns,name={name}")
}

fn raw_rsa(path: &str, padding: &str) -> String {
    format!("type=rsa,path={path},namespace=test-rsa,name=rsa2048-a,padding={padding}")
}

/// Encrypt `input` (a file in the work dir) into `output` with extra args.
#[track_caller]
fn encrypt(work: &Work, input: &str, output: &str, args: &[&str]) {
    let mut all = vec!["encrypt", "-i", input, "-o", output];
    all.extend_from_slice(args);
    work.ok(all);
    assert!(work.file(output).is_file());
}

/// Decrypt `input` into `output` and require the plaintext `expected`.
#[track_caller]
fn decrypts_to(work: &Work, input: &str, output: &str, args: &[&str], expected: &[u8]) {
    let mut all = vec!["decrypt", "-i", input, "-o", output];
    all.extend_from_slice(args);
    work.ok(all);
    assert!(work.read(output) == expected, "{output}: wrong plaintext");
    std::fs::remove_file(work.file(output)).expect("remove output");
}

/// Decrypt must fail with `code`, leave no output, and name `what` in its error.
#[track_caller]
fn decrypt_fails(work: &Work, code: i32, input: &str, args: &[&str], what: &str) -> String {
    let mut all = vec!["decrypt", "-i", input, "-o", "refused.out"];
    all.extend_from_slice(args);
    let line = work.fails(code, all);
    assert!(line.to_lowercase().contains(&what.to_lowercase()), "error does not mention `{what}`: {line}");
    work.assert_no_output("refused.out");
    line
}

/// The exit code of a run whose output does not matter.
fn exit_code(work: &Work, args: &[&str]) -> i32 {
    work.cmd(args).output().expect("run hsm-keyring").status.code().expect("exit code")
}

fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

fn edk_names(header: &Value) -> Vec<(String, String)> {
    header["encrypted_data_keys"]
        .as_array()
        .expect("EDK list")
        .iter()
        .map(|e| (e["provider_id"].as_str().unwrap().to_owned(), e["key_name"].as_str().unwrap_or("").to_owned()))
        .collect()
}

// ---------------------------------------------------------------------------
// dev-token and keys
// ---------------------------------------------------------------------------

#[test]
fn the_command_runs_on_the_aws_lc_backend() {
    let work = Work::new();
    let version = work.ok(["--version"]);
    assert!(version.starts_with(&format!("hsm-keyring {}", env!("CARGO_PKG_VERSION"))), "{version}");
    assert!(version.contains("crypto backend: aws-lc"), "{version}");
}

#[test]
fn dev_token_init_prints_uris_and_refuses_a_second_init_without_force() {
    let Some(_) = Work::with_dev_token() else { return };
    let work = Work::new();
    let out = work.ok(["dev-token", "init"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("token") && lines[0].ends_with(&format!("pkcs11:token={DEV_TOKEN}")), "{out}");
    assert!(lines[1].starts_with("wrapping key") && lines[1].contains(";object=dev-wrapping-key;"), "{out}");
    assert!(lines[1].ends_with(";type=secret-key"), "{out}");
    assert!(lines[2].starts_with("signing key") && lines[2].contains(";object=dev-signing-key;"), "{out}");
    assert!(lines[2].ends_with(";type=private"), "{out}");
    // No module path and no PIN in the printed URIs.
    assert!(!out.contains("module-path") && !out.contains("pin-"), "{out}");
    assert!(work.dev_dir().join("softhsm2.conf").is_file());

    // The printed wrapping-key URI works as it is.
    let wrap_uri = lines[1].split_whitespace().last().unwrap().to_owned();
    work.write("p.bin", b"before --force");
    encrypt(&work, "p.bin", "old.enc", &["-w", &pkcs11(&wrap_uri)]);

    let line = work.fails(2, ["dev-token", "init"]);
    assert!(line.contains("already exists") && line.contains("--force"), "{line}");

    let again = work.ok(["dev-token", "init", "--force"]);
    assert_eq!(again.lines().count(), 3, "{again}");
    assert_ne!(again, out, "a forced init makes new keys (new ids)");
    // The old wrapping key is gone with the old token.
    decrypt_fails(&work, 1, "old.enc", &["-w", &pkcs11(DEV_WRAP_URI)], "no keyring could decrypt");
}

#[test]
fn keys_generate_and_list_show_sensitive_non_extractable_keys() {
    let work = dev_token_or_skip!();
    let cases = [("aes-256", "k-aes", "secret-key"), ("rsa-3072", "k-rsa", "private"), ("ec-p384", "k-ec", "private")];
    for (kind, label, object_type) in cases {
        let out = work.ok(["keys", "generate", "--type", kind, "--label", label]);
        let uri = out.trim_end();
        assert!(!uri.contains('\n'), "{out}");
        assert!(uri.starts_with(&format!("pkcs11:token={DEV_TOKEN};object={label};id=")), "{uri}");
        assert!(uri.ends_with(&format!(";type={object_type}")), "{uri}");
    }
    // A label already taken is refused.
    let line = work.fails(2, ["keys", "generate", "--type", "aes-256", "--label", "k-aes"]);
    assert!(line.contains("k-aes"), "{line}");
    assert_eq!(exit_code(&work, &["keys", "generate", "--type", "aes-1024", "--label", "x"]), 2);

    let table = work.ok(["keys", "list"]);
    for (label, kind, size) in [("k-aes", "Aes", "256"), ("k-rsa", "Rsa", "3072"), ("k-ec", "Ec", "384")] {
        let row = table
            .lines()
            .find(|l| l.contains(&format!(";object={label};")))
            .unwrap_or_else(|| panic!("{label} missing from:\n{table}"));
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!((cols[1], cols[2]), (kind, size), "{row}");
    }

    let rows = parse_json(&work.ok(["keys", "list", "--json"]));
    let rows = rows.as_array().expect("JSON array");
    let find = |label: &str, object_type: &str| {
        rows.iter()
            .find(|r| r["label"] == label && r["type"] == object_type)
            .unwrap_or_else(|| panic!("{label}/{object_type} missing from {rows:?}"))
    };
    for (label, object_type, bits) in [
        ("k-aes", "secret-key", 256),
        ("k-rsa", "private", 3072),
        ("k-ec", "private", 384),
        ("dev-wrapping-key", "secret-key", 256),
    ] {
        let row = find(label, object_type);
        assert_eq!(row["sensitive"], true, "{row}");
        assert_eq!(row["extractable"], false, "{row}");
        assert_eq!(row["bits"], bits, "{row}");
    }
    assert_eq!(find("k-ec", "private")["curve"], "P-384");
    assert_eq!(find("k-rsa", "public")["usages"], serde_json::json!(["encrypt"]));
    // Each pair has both halves, the same id, and the URIs are usable as printed.
    assert_eq!(find("k-rsa", "public")["id"], find("k-rsa", "private")["id"]);
    let uri = find("k-aes", "secret-key")["uri"].as_str().unwrap().to_owned();
    work.write("p.bin", b"listed URI");
    encrypt(&work, "p.bin", "p.enc", &["-w", &pkcs11(&uri)]);
    decrypts_to(&work, "p.enc", "p.out", &["-w", &pkcs11(&uri)], b"listed URI");
}

#[test]
fn rsa_4096_token_key_round_trip() {
    // One RSA-4096 key only: SoftHSM takes about a second to generate one.
    let work = dev_token_or_skip!();
    let uri = work.ok(["keys", "generate", "--type", "rsa-4096", "--label", "k-rsa4096"]).trim_end().to_owned();
    let rows = parse_json(&work.ok(["keys", "list", "--json"]));
    let row = rows.as_array().unwrap().iter().find(|r| r["label"] == "k-rsa4096" && r["type"] == "private").unwrap();
    assert_eq!(row["bits"], 4096);
    let plaintext = bytes(10_000, 1);
    work.write("p.bin", &plaintext);
    encrypt(&work, "p.bin", "p.enc", &["-w", &pkcs11(&uri)]);
    assert_eq!(edk_names(&inspect(&work, "p.enc")), [("hsm-keyring".to_owned(), "k-rsa4096".to_owned())]);
    let edk_len = inspect(&work, "p.enc")["encrypted_data_keys"][0]["ciphertext_len"].as_u64().unwrap();
    assert_eq!(edk_len, 512, "an RSA-4096 EDK is 512 bytes");
    decrypts_to(&work, "p.enc", "p.out", &["-w", &pkcs11(&uri)], &plaintext);
}

#[test]
fn export_public_gives_pems_that_other_keys_and_signers_accept() {
    let work = dev_token_or_skip!();
    work.ok(["keys", "generate", "--type", "rsa-3072", "--label", "k-rsa"]);
    work.ok(["keys", "generate", "--type", "ec-p384", "--label", "k-ec"]);

    // RSA: the PEM parses as a 3072-bit key, and a raw RSA keyring with it
    // (OAEP-SHA1, the padding SoftHSM supports) makes EDKs the token opens.
    work.ok([
        "keys",
        "export-public",
        "--key",
        "pkcs11:token=hsm-keyring-dev;object=k-rsa;type=public",
        "-o",
        "rsa.pem",
    ]);
    let pem = String::from_utf8(work.read("rsa.pem")).unwrap();
    use rsa::pkcs8::DecodePublicKey as _;
    use rsa::traits::PublicKeyParts as _;
    let key = rsa::RsaPublicKey::from_public_key_pem(&pem).expect("RSA public key PEM");
    assert_eq!(key.size(), 384);
    let plaintext = bytes(5000, 2);
    work.write("p.bin", &plaintext);
    let raw =
        format!("type=rsa,path={},namespace=hsm-keyring,name=k-rsa,padding=oaep-sha1", work.file("rsa.pem").display());
    encrypt(&work, "p.bin", "raw.enc", &["-w", &raw]);
    decrypts_to(&work, "raw.enc", "p.out", &["-w", &pkcs11("pkcs11:token=hsm-keyring-dev;object=k-rsa")], &plaintext);

    // EC: to stdout, from the private key's URI; a P-384 SPKI.
    let pem = work.ok(["keys", "export-public", "--key", "pkcs11:token=hsm-keyring-dev;object=k-ec;type=private"]);
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
    p384::PublicKey::from_public_key_pem(&pem).expect("P-384 public key PEM");
    work.write("ec.pem", pem.as_bytes());
    let signer = "pkcs11:token=hsm-keyring-dev;object=k-ec;type=private";
    encrypt(&work, "p.bin", "signed.enc", &["-w", &pkcs11(DEV_WRAP_URI), "--signer", signer]);
    let header = inspect(&work, "signed.enc");
    assert_eq!(header["signed"], true);
    decrypts_to(&work, "signed.enc", "p.out", &["-w", &pkcs11(DEV_WRAP_URI), "--trusted-signer", "ec.pem"], &plaintext);
    decrypts_to(&work, "signed.enc", "p.out", &["-w", &pkcs11(DEV_WRAP_URI), "--trusted-signer", signer], &plaintext);

    // Another signer's PEM, or its URI, is refused; so is a message signed by
    // the per-message key of the default suite.
    work.ok(["keys", "export-public", "--key", DEV_SIGN_URI, "-o", "dev.pem"]);
    assert_ne!(work.read("dev.pem"), work.read("ec.pem"));
    decrypt_fails(&work, 1, "signed.enc", &["-w", &pkcs11(DEV_WRAP_URI), "--trusted-signer", "dev.pem"], "signer");
    decrypt_fails(&work, 1, "signed.enc", &["-w", &pkcs11(DEV_WRAP_URI), "--trusted-signer", DEV_SIGN_URI], "signer");
    encrypt(&work, "p.bin", "unpinned.enc", &["-w", &pkcs11(DEV_WRAP_URI)]);
    decrypt_fails(&work, 1, "unpinned.enc", &["-w", &pkcs11(DEV_WRAP_URI), "--trusted-signer", "ec.pem"], "signer");
    // Two trusted signers: either one is enough.
    decrypts_to(
        &work,
        "signed.enc",
        "p.out",
        &["-w", &pkcs11(DEV_WRAP_URI), "--trusted-signer", "dev.pem", "--trusted-signer", "ec.pem"],
        &plaintext,
    );

    // No public half for a secret key; an RSA key is not a signer.
    let line = work.fails(3, ["keys", "export-public", "--key", DEV_WRAP_URI]);
    assert!(line.contains("dev-wrapping-key"), "{line}");
    work.fails(2, ["keys", "export-public", "--key", "not-a-uri"]);
    assert!(!work.file("-o").exists());
    let line = work.fails(
        2,
        [
            "encrypt",
            "-i",
            "p.bin",
            "-o",
            "bad.enc",
            "-w",
            &pkcs11(DEV_WRAP_URI),
            "--signer",
            "pkcs11:token=hsm-keyring-dev;object=k-rsa;type=private",
        ],
    );
    assert!(line.contains("signer"), "{line}");
    work.assert_no_output("bad.enc");
    // A signer with a suite that does not sign is refused, not silently dropped.
    let line = work.fails(
        2,
        [
            "encrypt",
            "-i",
            "p.bin",
            "-o",
            "bad.enc",
            "-w",
            &pkcs11(DEV_WRAP_URI),
            "--signer",
            signer,
            "--suite",
            "0x0478",
        ],
    );
    assert!(line.contains("0x0478") && line.contains("signer"), "{line}");
    work.assert_no_output("bad.enc");
}

#[test]
fn imported_aes_key_interoperates_with_the_raw_aes_keyring() {
    let work = dev_token_or_skip!();
    let key = work.write("key.bin", &bytes(32, 3));
    let out = work.ok(["keys", "import-aes", "--key-file", &key, "--label", "imported"]);
    assert!(out.trim_end().starts_with("pkcs11:token=hsm-keyring-dev;object=imported;"), "{out}");
    let rows = parse_json(&work.ok(["keys", "list", "--json"]));
    let row = rows.as_array().unwrap().iter().find(|r| r["label"] == "imported").expect("imported key listed");
    assert_eq!(
        (row["sensitive"].clone(), row["extractable"].clone(), row["bits"].clone()),
        (true.into(), false.into(), 256.into())
    );

    let token_spec = pkcs11("pkcs11:token=hsm-keyring-dev;object=imported;type=secret-key");
    // The token keyring's defaults: namespace "hsm-keyring", key name = label.
    let raw_spec = format!("type=aes,path={key},namespace=hsm-keyring,name=imported");
    let plaintext = bytes(9000, 4);
    work.write("p.bin", &plaintext);
    encrypt(&work, "p.bin", "token.enc", &["-w", &token_spec, "--context", "app=x"]);
    decrypts_to(&work, "token.enc", "p.out", &["-w", &raw_spec, "--context", "app=x"], &plaintext);
    encrypt(&work, "p.bin", "raw.enc", &["-w", &raw_spec]);
    decrypts_to(&work, "raw.enc", "p.out", &["-w", &token_spec], &plaintext);

    // Other key bytes under the same name, or the same bytes under another name, do not open it.
    let other = work.write("other.bin", &bytes(32, 5));
    decrypt_fails(
        &work,
        1,
        "token.enc",
        &["-w", &format!("type=aes,path={other},namespace=hsm-keyring,name=imported")],
        "decrypt",
    );
    decrypt_fails(
        &work,
        1,
        "token.enc",
        &["-w", &format!("type=aes,path={key},namespace=hsm-keyring,name=other")],
        "decrypt",
    );

    // Key files of a wrong size are refused before the token is touched.
    let short = work.write("short.bin", &bytes(20, 6));
    let line = work.fails(2, ["keys", "import-aes", "--key-file", &short, "--label", "short"]);
    assert!(line.to_lowercase().contains("aes") || line.contains("key"), "{line}");
    work.fails(2, ["keys", "import-aes", "--key-file", "missing.bin", "--label", "missing"]);
}

// ---------------------------------------------------------------------------
// encrypt / decrypt
// ---------------------------------------------------------------------------

#[test]
fn pkcs11_aes_and_rsa_keys_round_trip() {
    let work = dev_token_or_skip!();
    let rsa = work.ok(["keys", "generate", "--type", "rsa-3072", "--label", "k-rsa"]).trim_end().to_owned();
    for (i, len) in [0usize, 1, 4095, 4096, 70_000].into_iter().enumerate() {
        let plaintext = bytes(len, 10 + i as u64);
        work.write("p.bin", &plaintext);
        for spec in [pkcs11(DEV_WRAP_URI), pkcs11(&rsa), format!("{},padding=pkcs1", pkcs11(&rsa))] {
            for suite in ["0x0578", "0x0478"] {
                encrypt(&work, "p.bin", "p.enc", &["-w", &spec, "--suite", suite]);
                let enc = work.read("p.enc");
                assert!(enc.len() > len, "ciphertext shorter than plaintext");
                if len > 64 {
                    assert!(!enc.windows(64).any(|w| w == &plaintext[..64]), "plaintext visible in the message");
                }
                decrypts_to(&work, "p.enc", "p.out", &["-w", &spec], &plaintext);
            }
        }
    }
    // The token keys are not interchangeable.
    work.write("p.bin", b"aes only");
    encrypt(&work, "p.bin", "p.enc", &["-w", &pkcs11(DEV_WRAP_URI)]);
    decrypt_fails(&work, 1, "p.enc", &["-w", &pkcs11(&rsa)], "no keyring could decrypt");
}

#[test]
fn raw_aes_round_trip_through_files_and_pipes() {
    let work = Work::new();
    let key = work.write("k.bin", &bytes(32, 20));
    let spec = raw_aes(&key, "k1");
    let plaintext = bytes(100_000, 21);
    work.write("p.bin", &plaintext);
    encrypt(&work, "p.bin", "p.enc", &["-w", &spec]);
    decrypts_to(&work, "p.enc", "p.out", &["-w", &spec], &plaintext);
    // stdin -> stdout, with `-` and with no -i/-o.
    let enc = work.cmd(["encrypt", "-w", &spec, "-i", "-", "-o", "-"]).write_stdin(plaintext.clone()).output().unwrap();
    assert!(enc.status.success());
    let dec = work.cmd(["decrypt", "-w", &spec]).write_stdin(enc.stdout).output().unwrap();
    assert!(dec.status.success() && dec.stdout == plaintext);
    // 128- and 192-bit raw keys work too.
    for len in [16, 24] {
        let key = work.write("short.bin", &bytes(len, 22));
        encrypt(&work, "p.bin", "short.enc", &["-w", &raw_aes(&key, "k")]);
        decrypts_to(&work, "short.enc", "p.out", &["-w", &raw_aes(&key, "k")], &plaintext);
    }
    // An existing output file is replaced on success only.
    work.write("kept.out", b"previous contents");
    let other = work.write("other.bin", &bytes(32, 23));
    work.fails(1, ["decrypt", "-i", "p.enc", "-o", "kept.out", "-w", &raw_aes(&other, "k1")]);
    assert_eq!(work.read("kept.out"), b"previous contents");
    assert!(!work.listing().iter().any(|n| n.contains(".partial")));
    work.ok(["decrypt", "-i", "p.enc", "-o", "kept.out", "-w", &spec]);
    assert!(work.read("kept.out") == plaintext);
}

#[test]
fn workers_option_sets_the_threads_and_any_count_reads_any_message() {
    let work = Work::new();
    let key = work.write("k.bin", &bytes(32, 24));
    let spec = raw_aes(&key, "k1");
    // Large enough for several batches of frames on the workers.
    let plaintext = bytes(1_500_000, 25);
    work.write("p.bin", &plaintext);
    encrypt(&work, "p.bin", "one.enc", &["-w", &spec, "--workers", "1"]);
    encrypt(&work, "p.bin", "three.enc", &["-w", &spec, "--workers", "3", "--suite", "0x0478"]);
    for input in ["one.enc", "three.enc"] {
        for workers in ["1", "2", "4"] {
            decrypts_to(&work, input, "p.out", &["-w", &spec, "--workers", workers], &plaintext);
        }
    }
    // A flipped tag byte is refused with any number of workers, and nothing is written.
    let mut bad = work.read("three.enc");
    let at = bad.len() / 2;
    bad[at] ^= 1;
    work.write("bad.enc", &bad);
    for workers in ["1", "3"] {
        decrypt_fails(&work, 1, "bad.enc", &["-w", &spec, "--workers", workers], "failed authentication");
    }
    // Zero workers is a usage error.
    assert_eq!(exit_code(&work, &["encrypt", "-i", "p.bin", "-o", "zero.enc", "-w", &spec, "--workers", "0"]), 2);
    work.assert_no_output("zero.enc");
}

#[test]
fn raw_rsa_round_trip_with_each_padding() {
    let work = Work::new();
    let (public, private) = (data_file("rsa2048-a.pub.pem"), data_file("rsa2048-a.pem"));
    let plaintext = bytes(3000, 30);
    work.write("p.bin", &plaintext);
    let paddings = ["pkcs1", "oaep-sha1", "oaep-sha256", "oaep-sha384", "oaep-sha512"];
    for padding in paddings {
        encrypt(&work, "p.bin", "p.enc", &["-w", &raw_rsa(&public, padding)]);
        assert_eq!(edk_names(&inspect(&work, "p.enc")), [("test-rsa".to_owned(), "rsa2048-a".to_owned())]);
        decrypts_to(&work, "p.enc", "p.out", &["-w", &raw_rsa(&private, padding)], &plaintext);
        // The same key with another padding does not open it.
        let other = if padding == "pkcs1" { "oaep-sha256" } else { "pkcs1" };
        decrypt_fails(&work, 1, "p.enc", &["-w", &raw_rsa(&private, other)], "decrypt");
        // Nor does another private key under the same name.
        let b =
            format!("type=rsa,path={},namespace=test-rsa,name=rsa2048-a,padding={padding}", data_file("rsa2048-b.pem"));
        decrypt_fails(&work, 1, "p.enc", &["-w", &b], "decrypt");
    }
    // A public key cannot decrypt.
    encrypt(&work, "p.bin", "p.enc", &["-w", &raw_rsa(&public, "oaep-sha256")]);
    decrypt_fails(&work, 1, "p.enc", &["-w", &raw_rsa(&public, "oaep-sha256")], "decrypt");
}

#[test]
fn several_wrapping_keys_each_decrypt_alone() {
    let work = dev_token_or_skip!();
    let key = work.write("k.bin", &bytes(32, 40));
    let token = pkcs11(DEV_WRAP_URI);
    let aes = raw_aes(&key, "k1");
    let rsa_pub = raw_rsa(&data_file("rsa2048-a.pub.pem"), "oaep-sha256");
    let rsa_priv = raw_rsa(&data_file("rsa2048-a.pem"), "oaep-sha256");
    let plaintext = bytes(20_000, 41);
    work.write("p.bin", &plaintext);
    encrypt(&work, "p.bin", "p.enc", &["-w", &token, "-w", &aes, "-w", &rsa_pub]);
    let header = inspect(&work, "p.enc");
    assert_eq!(
        edk_names(&header),
        [
            ("hsm-keyring".to_owned(), "dev-wrapping-key".to_owned()),
            ("test-ns".to_owned(), "k1".to_owned()),
            ("test-rsa".to_owned(), "rsa2048-a".to_owned())
        ]
    );
    for spec in [&token, &aes, &rsa_priv] {
        decrypts_to(&work, "p.enc", "p.out", &["-w", spec], &plaintext);
    }
    // A key that is not among them fails and names every reason.
    let other = work.write("other.bin", &bytes(32, 42));
    decrypt_fails(&work, 1, "p.enc", &["-w", &raw_aes(&other, "k1")], "no keyring could decrypt");
    // Several decrypting keys, of which only the last one fits.
    decrypts_to(&work, "p.enc", "p.out", &["-w", &raw_aes(&other, "k1"), "-w", &rsa_priv], &plaintext);
}

#[test]
fn suite_by_id_and_by_name_and_frame_length() {
    let work = Work::new();
    let spec = raw_aes(&work.write("k.bin", &bytes(32, 50)), "k1");
    let plaintext = bytes(10_000, 51);
    work.write("p.bin", &plaintext);

    encrypt(&work, "p.bin", "default.enc", &["-w", &spec]);
    let h = inspect(&work, "default.enc");
    assert_eq!(
        (h["version"].clone(), h["algorithm_suite"]["id"].clone(), h["signed"].clone()),
        (2.into(), "0x0578".into(), true.into())
    );
    assert!(h["encryption_context"]["aws-crypto-public-key"].is_string());
    assert_eq!(h["frame_length"], 4096);

    for suite in ["0x0478", "0478", "ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY", "alg_aes_256_gcm_hkdf_sha512_commit_key"]
    {
        encrypt(&work, "p.bin", "p.enc", &["-w", &spec, "--suite", suite]);
        let h = inspect(&work, "p.enc");
        assert_eq!(h["algorithm_suite"]["id"], "0x0478", "{suite}");
        assert_eq!(h["algorithm_suite"]["name"], "ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY");
        assert_eq!(h["signed"], false);
        assert!(h["encryption_context"].as_object().unwrap().is_empty(), "{h}");
        decrypts_to(&work, "p.enc", "p.out", &["-w", &spec], &plaintext);
    }
    for bad in ["0x9999", "ALG_NOPE", "0x04", ""] {
        let line = work.fails(2, ["encrypt", "-i", "p.bin", "-o", "bad.enc", "-w", &spec, "--suite", bad]);
        assert!(line.contains("--suite"), "{line}");
        work.assert_no_output("bad.enc");
    }

    // Frame length: 10 000 bytes in frames of 1000 are 10 frames (+ an empty final
    // one); each frame costs 4 (sequence) + 12 (IV) + 16 (tag) bytes.
    encrypt(&work, "p.bin", "f1000.enc", &["-w", &spec, "--suite", "0x0478", "--frame-length", "1000"]);
    encrypt(&work, "p.bin", "f5000.enc", &["-w", &spec, "--suite", "0x0478", "--frame-length", "5000"]);
    let (h1, h5) = (inspect(&work, "f1000.enc"), inspect(&work, "f5000.enc"));
    assert_eq!((h1["frame_length"].clone(), h5["frame_length"].clone()), (1000.into(), 5000.into()));
    let body = |name: &str, h: &Value| work.read(name).len() - h["header_length"].as_u64().unwrap() as usize;
    assert_eq!(body("f1000.enc", &h1) - body("f5000.enc", &h5), 8 * 32);
    decrypts_to(&work, "f1000.enc", "p.out", &["-w", &spec], &plaintext);
    decrypts_to(&work, "f5000.enc", "p.out", &["-w", &spec], &plaintext);
    let line = work.fails(2, ["encrypt", "-i", "p.bin", "-o", "bad.enc", "-w", &spec, "--frame-length", "0"]);
    assert!(line.contains("frame length"), "{line}");
    assert_eq!(
        exit_code(&work, &["encrypt", "-i", "p.bin", "-o", "bad.enc", "-w", &spec, "--frame-length", "lots"]),
        2
    );
    work.assert_no_output("bad.enc");
}

#[test]
fn commitment_policy_governs_legacy_suites() {
    let work = Work::new();
    let spec = raw_aes(&work.write("k.bin", &bytes(32, 60)), "k1");
    let plaintext = bytes(5000, 61);
    work.write("p.bin", &plaintext);

    // The default policy refuses to write a suite without key commitment.
    let line = work.fails(2, ["encrypt", "-i", "p.bin", "-o", "v1.enc", "-w", &spec, "--suite", "0x0178"]);
    assert!(line.contains("policy") && line.contains("0x0178"), "{line}");
    work.assert_no_output("v1.enc");
    // forbid-encrypt-allow-decrypt writes it, as a version 1 message, and refuses committing suites.
    let forbid = ["--commitment-policy", "forbid-encrypt-allow-decrypt"];
    encrypt(&work, "p.bin", "v1.enc", &["-w", &spec, "--suite", "0x0178", forbid[0], forbid[1]]);
    let h = inspect(&work, "v1.enc");
    assert_eq!((h["version"].clone(), h["algorithm_suite"]["id"].clone()), (1.into(), "0x0178".into()));
    assert_eq!(h["algorithm_suite"]["key_commitment"], false);
    work.fails(2, ["encrypt", "-i", "p.bin", "-o", "v2.enc", "-w", &spec, "--suite", "0x0578", forbid[0], forbid[1]]);
    work.assert_no_output("v2.enc");
    // Without a suite, forbid-encrypt writes the AWS SDKs' legacy default (a signed v1 suite).
    encrypt(&work, "p.bin", "legacy.enc", &["-w", &spec, forbid[0], forbid[1]]);
    assert_eq!(inspect(&work, "legacy.enc")["version"], 1);

    // The default policy (require-encrypt-require-decrypt) refuses to read it:
    // a configuration refusal (exit 2), not a failed authentication.
    let line = decrypt_fails(&work, 2, "v1.enc", &["-w", &spec], "policy");
    assert!(line.contains("0x0178"), "{line}");
    decrypt_fails(
        &work,
        2,
        "v1.enc",
        &["-w", &spec, "--commitment-policy", "require-encrypt-require-decrypt"],
        "policy",
    );
    for policy in ["require-encrypt-allow-decrypt", "forbid-encrypt-allow-decrypt"] {
        decrypts_to(&work, "v1.enc", "p.out", &["-w", &spec, "--commitment-policy", policy], &plaintext);
        decrypts_to(&work, "legacy.enc", "p.out", &["-w", &spec, "--commitment-policy", policy], &plaintext);
    }
    assert_eq!(
        exit_code(&work, &["decrypt", "-i", "v1.enc", "-o", "p.out", "-w", &spec, "--commitment-policy", "x"]),
        2
    );
    work.assert_no_output("p.out");
}

#[test]
fn max_encrypted_data_keys_limits_both_directions() {
    let work = Work::new();
    let keys: Vec<String> =
        (0..3).map(|i| raw_aes(&work.write(&format!("k{i}.bin"), &bytes(32, 70 + i)), &format!("k{i}"))).collect();
    let plaintext = bytes(2000, 73);
    work.write("p.bin", &plaintext);
    encrypt(&work, "p.bin", "p.enc", &["-w", &keys[0], "-w", &keys[1], "-w", &keys[2]]);
    assert_eq!(inspect(&work, "p.enc")["encrypted_data_keys"].as_array().unwrap().len(), 3);

    let line =
        decrypt_fails(&work, 1, "p.enc", &["-w", &keys[0], "--max-encrypted-data-keys", "2"], "encrypted data keys");
    assert!(line.contains('3') && line.contains('2'), "{line}");
    decrypts_to(&work, "p.enc", "p.out", &["-w", &keys[2], "--max-encrypted-data-keys", "3"], &plaintext);

    // On encrypt a keyring that makes more EDKs than allowed is a configuration error.
    let line = work.fails(
        2,
        [
            "encrypt",
            "-i",
            "p.bin",
            "-o",
            "too.enc",
            "-w",
            &keys[0],
            "-w",
            &keys[1],
            "-w",
            &keys[2],
            "--max-encrypted-data-keys",
            "2",
        ],
    );
    assert!(line.contains("encrypted data keys"), "{line}");
    work.assert_no_output("too.enc");
    encrypt(&work, "p.bin", "two.enc", &["-w", &keys[0], "-w", &keys[1], "--max-encrypted-data-keys", "2"]);
}

#[test]
fn encryption_context_on_decrypt() {
    let work = Work::new();
    let key_bytes = bytes(32, 80);
    let spec = raw_aes(&work.write("k.bin", &key_bytes), "k1");
    let plaintext = bytes(3000, 81);
    work.write("p.bin", &plaintext);
    encrypt(
        &work,
        "p.bin",
        "p.enc",
        &["-w", &spec, "-c", "tenant=acme", "--context", "purpose=test=1", "--suite", "0x0478"],
    );
    let h = inspect(&work, "p.enc");
    assert_eq!(h["encryption_context"], serde_json::json!({"tenant": "acme", "purpose": "test=1"}));

    for given in [&[][..], &["tenant=acme"][..], &["tenant=acme", "purpose=test=1"][..]] {
        let mut args = vec!["-w", spec.as_str()];
        for pair in given {
            args.extend(["--context", pair]);
        }
        decrypts_to(&work, "p.enc", "p.out", &args, &plaintext);
    }
    decrypt_fails(&work, 1, "p.enc", &["-w", &spec, "--context", "tenant=other"], "context");
    decrypt_fails(
        &work,
        1,
        "p.enc",
        &["-w", &spec, "--context", "tenant=acme", "--context", "purpose=test"],
        "context",
    );
    // A pair the message does not hold is checked as required context: it fails.
    decrypt_fails(&work, 1, "p.enc", &["-w", &spec, "--context", "extra=1"], "decrypt");
    for bad in ["novalue", "=v", "aws-crypto-public-key=x"] {
        let line = work.fails(2, ["decrypt", "-i", "p.enc", "-o", "p.out", "-w", &spec, "--context", bad]);
        assert!(line.contains("--context"), "{line}");
    }
    work.fails(2, ["decrypt", "-i", "p.enc", "-o", "p.out", "-w", &spec, "--context", "a=1", "--context", "a=2"]);
    work.assert_no_output("p.out");

    // A message whose `secret` pair is required but not stored (made with the
    // library's required-encryption-context CMM) needs that pair on decrypt.
    let keyring = RawAesKeyring::new("test-ns", "k1", &key_bytes).unwrap();
    let cmm = RequiredEncryptionContextCmm::new(DefaultCmm::new(keyring), vec!["secret".to_owned()]).unwrap();
    let context = EncryptionContext::from_pairs([("secret", "s3cr3t"), ("stored", "yes")]).unwrap();
    let message = Client::new().encrypt(&cmm, &plaintext, &context).unwrap();
    work.write("req.enc", &message);
    let h = inspect(&work, "req.enc");
    assert_eq!(h["encryption_context"]["stored"], "yes");
    assert!(h["encryption_context"].get("secret").is_none(), "{h}");
    decrypts_to(&work, "req.enc", "p.out", &["-w", &spec, "--context", "secret=s3cr3t"], &plaintext);
    decrypts_to(
        &work,
        "req.enc",
        "p.out",
        &["-w", &spec, "--context", "secret=s3cr3t", "--context", "stored=yes"],
        &plaintext,
    );
    decrypt_fails(&work, 1, "req.enc", &["-w", &spec], "decrypt");
    decrypt_fails(&work, 1, "req.enc", &["-w", &spec, "--context", "stored=yes"], "decrypt");
    decrypt_fails(&work, 1, "req.enc", &["-w", &spec, "--context", "secret=wrong"], "decrypt");
}

#[test]
fn inspect_reports_the_header() {
    let work = dev_token_or_skip!();
    let aes = raw_aes(&work.write("k.bin", &bytes(32, 90)), "k1");
    let rsa = raw_rsa(&data_file("rsa2048-a.pub.pem"), "oaep-sha1");
    work.write("p.bin", &bytes(100, 91));
    encrypt(
        &work,
        "p.bin",
        "p.enc",
        &[
            "-w",
            &pkcs11(DEV_WRAP_URI),
            "-w",
            &aes,
            "-w",
            &rsa,
            "-c",
            "app=inspect",
            "--signer",
            DEV_SIGN_URI,
            "--frame-length",
            "512",
        ],
    );
    // From a file and from stdin: the same JSON.
    let from_file = inspect(&work, "p.enc");
    let stdin = run_ok(work.cmd(["inspect"]).write_stdin(work.read("p.enc")));
    assert_eq!(parse_json(&stdin), from_file);
    let h = from_file;
    assert_eq!(h["version"], 2);
    assert_eq!(h["algorithm_suite"]["id"], "0x0578");
    assert_eq!(h["algorithm_suite"]["key_commitment"], true);
    assert_eq!(h["signed"], true);
    assert_eq!(h["content_type"], "framed");
    assert_eq!(h["frame_length"], 512);
    assert_eq!(h["message_id"].as_str().unwrap().len(), 64);
    assert_eq!(h["encryption_context"]["app"], "inspect");
    // The public key stored in the context is the token signer's.
    let pem = work.ok(["keys", "export-public", "--key", DEV_SIGN_URI]);
    use p384::pkcs8::DecodePublicKey as _;
    let signer = p384::PublicKey::from_public_key_pem(&pem).unwrap();
    use base64::Engine as _;
    let stored = base64::engine::general_purpose::STANDARD
        .decode(h["encryption_context"]["aws-crypto-public-key"].as_str().unwrap())
        .unwrap();
    use p384::elliptic_curve::sec1::ToEncodedPoint as _;
    assert_eq!(stored, signer.to_encoded_point(true).as_bytes());
    assert_eq!(
        edk_names(&h),
        [
            ("hsm-keyring".to_owned(), "dev-wrapping-key".to_owned()),
            ("test-ns".to_owned(), "k1".to_owned()),
            ("test-rsa".to_owned(), "rsa2048-a".to_owned())
        ]
    );
    assert_eq!(h["encrypted_data_keys"][2]["ciphertext_len"], 256);
    let header_len = h["header_length"].as_u64().unwrap() as usize;
    assert!(header_len > 200 && header_len < work.read("p.enc").len());

    // Not a message: exit 1 with one line; nothing on stdout.
    work.write("junk.bin", b"this is not an encrypted message at all");
    work.fails(1, ["inspect", "-i", "junk.bin"]);
    work.fails(2, ["inspect", "-i", "missing.enc"]);
}

#[test]
fn named_keyring_from_a_config_file() {
    let work = dev_token_or_skip!();
    let key = work.write("k.bin", &bytes(32, 100));
    work.ok(["keys", "export-public", "--key", DEV_SIGN_URI, "-o", "signer.pem"]);
    let config = format!(
        "[keyrings.main]\nwrapping-keys = [\n  \"{}\",\n  \"{}\",\n]\nsigner = \"{DEV_SIGN_URI}\"\ntrusted-signers = [\"{}\"]\n\n\
         [keyrings.escrow]\nwrapping-keys = [\"{}\"]\n\n\
         [keyrings.pinned-elsewhere]\nwrapping-keys = [\"{}\"]\ntrusted-signers = [\"{}\"]\n",
        pkcs11(DEV_WRAP_URI),
        raw_aes(&key, "k1"),
        work.file("signer.pem").display(),
        raw_aes(&key, "k1"),
        raw_aes(&key, "k1"),
        work.file("other.pem").display(),
    );
    let conf = work.write("config.toml", config.as_bytes());
    let plaintext = bytes(6000, 101);
    work.write("p.bin", &plaintext);
    encrypt(&work, "p.bin", "p.enc", &["--config", &conf, "--keyring", "main"]);
    let h = inspect(&work, "p.enc");
    assert_eq!(h["signed"], true);
    assert_eq!(
        edk_names(&h),
        [("hsm-keyring".to_owned(), "dev-wrapping-key".to_owned()), ("test-ns".to_owned(), "k1".to_owned())]
    );
    decrypts_to(&work, "p.enc", "p.out", &["--config", &conf, "--keyring", "main"], &plaintext);
    decrypts_to(&work, "p.enc", "p.out", &["--config", &conf, "-k", "escrow"], &plaintext);
    // The config's trusted signers apply: a message signed by a per-message key is refused.
    encrypt(&work, "p.bin", "unpinned.enc", &["-w", &raw_aes(&key, "k1")]);
    decrypt_fails(&work, 1, "unpinned.enc", &["--config", &conf, "--keyring", "main"], "signer");
    // A trusted-signer file that does not exist is a configuration error.
    decrypt_fails(&work, 2, "p.enc", &["--config", &conf, "--keyring", "pinned-elsewhere"], "other.pem");
    // The config file can also come from HSM_KEYRING_CONFIG, or the default location.
    let line = run_fails(&mut work.cmd(["decrypt", "-i", "p.enc", "-o", "p.out", "--keyring", "main"]), 2);
    assert!(line.contains("config.toml"), "{line}");
    let out =
        work.cmd(["decrypt", "-i", "p.enc", "--keyring", "main"]).env("HSM_KEYRING_CONFIG", &conf).output().unwrap();
    assert!(out.status.success() && out.stdout == plaintext);
    std::fs::create_dir_all(work.file("xdg-config/hsm-keyring")).unwrap();
    std::fs::copy(&conf, work.file("xdg-config/hsm-keyring/config.toml")).unwrap();
    decrypts_to(&work, "p.enc", "p.out", &["--keyring", "main"], &plaintext);

    // Unknown names, bad TOML and unknown fields are usage errors that say what is wrong.
    let line = decrypt_fails(&work, 2, "p.enc", &["--config", &conf, "--keyring", "nope"], "nope");
    assert!(line.contains("main"), "lists the keyrings it has: {line}");
    let bad = work.write("bad.toml", b"[keyrings.main]\nwrapping-keys = [\"type=aes\"]\ncolour = \"red\"\n");
    decrypt_fails(&work, 2, "p.enc", &["--config", &bad, "--keyring", "main"], "bad.toml");
    let broken = work.write("broken.toml", b"[keyrings.main\n");
    decrypt_fails(&work, 2, "p.enc", &["--config", &broken, "--keyring", "main"], "broken.toml");
}

#[test]
fn quiet_silences_informational_messages() {
    let Some(_) = Work::with_dev_token() else { return };
    let work = Work::new();
    let out = work.cmd(["dev-token", "init"]).output().unwrap();
    assert!(out.status.success() && !out.stderr.is_empty(), "init explains itself without --quiet");
    let out = work.cmd(["dev-token", "init", "--force", "--quiet"]).output().unwrap();
    assert!(out.status.success());
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);

    let key = work.write("k.bin", &bytes(32, 110));
    let out = work.cmd(["keys", "import-aes", "--key-file", &key, "--label", "loud"]).output().unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stderr).contains("outside the token"));
    let out = work.cmd(["-q", "keys", "import-aes", "--key-file", &key, "--label", "quiet"]).output().unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("object=quiet"));

    // Encrypt and decrypt print nothing but errors, with or without --quiet; errors stay.
    work.write("p.bin", &bytes(5 << 20, 111));
    for quiet in [true, false] {
        let q: &[&str] = if quiet { &["--quiet"] } else { &[] };
        let out =
            work.cmd(["encrypt", "-i", "p.bin", "-o", "p.enc", "-w", &pkcs11(DEV_WRAP_URI)]).args(q).output().unwrap();
        assert!(out.status.success() && out.stderr.is_empty() && out.stdout.is_empty());
        let out =
            work.cmd(["decrypt", "-i", "p.enc", "-o", "p.out", "-w", &pkcs11(DEV_WRAP_URI)]).args(q).output().unwrap();
        assert!(out.status.success() && out.stderr.is_empty() && out.stdout.is_empty());
        let other = raw_aes(&key, "k");
        run_fails(work.cmd(["decrypt", "-i", "p.enc", "-o", "bad.out", "-w", &other]).args(q), 1);
    }
}

// ---------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------

/// Flip one bit of `message` at `offset` and write it as `name`.
fn flipped(work: &Work, message: &[u8], offset: usize, name: &str) -> String {
    let mut m = message.to_vec();
    m[offset] ^= 0x01;
    work.write(name, &m)
}

#[test]
fn tampered_and_truncated_messages_exit_1_without_output() {
    let work = Work::new();
    let spec = raw_aes(&work.write("k.bin", &bytes(32, 120)), "k1");
    let plaintext = bytes(3000, 121);
    work.write("p.bin", &plaintext);
    for suite in ["0x0578", "0x0478"] {
        encrypt(&work, "p.bin", "p.enc", &["-w", &spec, "--suite", suite, "--frame-length", "1024", "-c", "a=b"]);
        let message = work.read("p.enc");
        let header_len = inspect(&work, "p.enc")["header_length"].as_u64().unwrap() as usize;
        let mut offsets = vec![
            ("version byte", 0),
            ("suite id", 2),
            ("message id", 10),
            ("context", 40),
            ("EDK", header_len - 60),
            ("header tag", header_len - 1),
            ("first frame sequence number", header_len + 3),
            ("first frame body", header_len + 4 + 12 + 100),
            ("first frame tag", header_len + 4 + 12 + 1024 + 5),
            ("last byte", message.len() - 1),
        ];
        if suite == "0x0578" {
            // The footer: 2-byte length then the DER signature at the very end.
            offsets.push(("footer signature", message.len() - 30));
        }
        for (what, offset) in offsets {
            let file = flipped(&work, &message, offset, "t.enc");
            let mut cmd = work.cmd(["decrypt", "-i", &file, "-o", "t.out", "-w", &spec]);
            let line = run_fails(&mut cmd, 1);
            assert!(line.contains("decrypt"), "{suite} {what}: {line}");
            work.assert_no_output("t.out");
        }
        for len in [0, 1, 30, header_len - 1, header_len, header_len + 500, message.len() - 1] {
            work.write("t.enc", &message[..len]);
            let line = run_fails(&mut work.cmd(["decrypt", "-i", "t.enc", "-o", "t.out", "-w", &spec]), 1);
            assert!(line.contains("decrypt"), "{suite} truncated to {len}: {line}");
            work.assert_no_output("t.out");
        }
        // Trailing bytes after the message are refused too.
        let mut longer = message.clone();
        longer.push(0);
        work.write("t.enc", &longer);
        run_fails(&mut work.cmd(["decrypt", "-i", "t.enc", "-o", "t.out", "-w", &spec]), 1);
        work.assert_no_output("t.out");
        // The untouched message still decrypts (the failures are the tampering's).
        decrypts_to(&work, "p.enc", "p.out", &["-w", &spec], &plaintext);
    }
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let work = dev_token_or_skip!();
    let key = work.write("k.bin", &bytes(32, 130));
    work.write("p.bin", b"plaintext");
    let good = raw_aes(&key, "k1");
    encrypt(&work, "p.bin", "p.enc", &["-w", &good]);
    let pin = String::from_utf8(std::fs::read(work.dev_dir().join("user.pin")).unwrap()).unwrap();
    let pin_uri = format!("{DEV_WRAP_URI}?pin-value={pin}");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["-w".into(), "type=nope,path=k.bin".into()], "nope"),
        (vec!["-w".into(), "type=aes,path=k.bin".into()], "namespace"),
        (vec!["-w".into(), format!("{good},padding=pkcs1")], "padding"),
        (vec!["-w".into(), "k.bin".into()], "k.bin"),
        (vec!["-w".into(), raw_aes("missing-key.bin", "k1")], "missing-key.bin"),
        (vec!["-w".into(), raw_aes("p.bin", "k1")], "p.bin"),
        (
            vec![
                "-w".into(),
                format!("type=rsa,path={},namespace=n,name=k,padding=oaep-md5", data_file("rsa2048-a.pem")),
            ],
            "oaep-md5",
        ),
        (vec!["-w".into(), raw_rsa("k.bin", "pkcs1")], "k.bin"),
        (vec!["-w".into(), "type=pkcs11,uri=notauri".into()], "notauri"),
        (vec!["-w".into(), "type=pkcs11,uri=pkcs11:token=a%zz".into()], "%zz"),
        (vec!["-w".into(), pkcs11(&pin_uri)], "pin-value"),
        (vec!["-w".into(), pkcs11(DEV_SIGN_URI)], "dev-signing-key"),
        (vec![], "wrapping key"),
        (vec!["--keyring".into(), "main".into()], "config"),
        (vec!["-w".into(), good.clone(), "--trusted-signer".into(), "missing.pem".into()], "missing.pem"),
    ];
    for (args, what) in &cases {
        for verb in ["encrypt", "decrypt"] {
            if verb == "encrypt" && args.iter().any(|a| a == "--trusted-signer") {
                continue;
            }
            let input = if verb == "encrypt" { "p.bin" } else { "p.enc" };
            let mut cmd = work.cmd([verb, "-i", input, "-o", "out.bin"]);
            cmd.args(args);
            let line = run_fails(&mut cmd, 2);
            assert!(line.to_lowercase().contains(&what.to_lowercase()), "{verb} {args:?}: `{what}` not in: {line}");
            assert!(!line.contains(&pin), "the PIN was printed: {line}");
            work.assert_no_output("out.bin");
        }
    }
    // A missing input file names it.
    let line = work.fails(2, ["decrypt", "-i", "missing.enc", "-o", "out.bin", "-w", &good]);
    assert!(line.contains("missing.enc"), "{line}");
    work.assert_no_output("out.bin");
    let line = work.fails(2, ["encrypt", "-i", "missing.bin", "-o", "out.bin", "-w", &good]);
    assert!(line.contains("missing.bin"), "{line}");
    work.assert_no_output("out.bin");
    // An output directory that does not exist.
    let line = work.fails(2, ["encrypt", "-i", "p.bin", "-o", "no/such/dir/out.bin", "-w", &good]);
    assert!(line.contains("no/such/dir"), "{line}");
    // The PIN in the URI is accepted with --insecure-pin-in-uri.
    encrypt(&work, "p.bin", "pin.enc", &["--insecure-pin-in-uri", "-w", &pkcs11(&pin_uri)]);
    decrypts_to(&work, "pin.enc", "p.out", &["-w", &pkcs11(DEV_WRAP_URI)], b"plaintext");
    // Argument errors from the parser exit 2 too (with clap's usage text).
    assert_eq!(exit_code(&work, &["encrypt", "--no-such-flag"]), 2);
    assert_eq!(exit_code(&work, &["frobnicate"]), 2);
    assert_eq!(exit_code(&work, &["decrypt", "-i", "p.enc", "-w", &good, "--max-encrypted-data-keys", "-1"]), 2);
    // --help and --version are not errors.
    assert_eq!(exit_code(&work, &["--help"]), 0);
    assert_eq!(exit_code(&work, &["--version"]), 0);
}

#[test]
fn token_errors_exit_3_with_one_line() {
    let work = dev_token_or_skip!();
    work.write("p.bin", b"plaintext");
    encrypt(&work, "p.bin", "p.enc", &["-w", &pkcs11(DEV_WRAP_URI)]);
    let cases = [
        ("pkcs11:token=no-such-token;object=dev-wrapping-key;type=secret-key", "no-such-token"),
        ("pkcs11:token=hsm-keyring-dev;object=no-such-key;type=secret-key", "no-such-key"),
        ("pkcs11:token=hsm-keyring-dev;object=no-such-key", "no-such-key"),
    ];
    for (uri, what) in cases {
        for (verb, input) in [("encrypt", "p.bin"), ("decrypt", "p.enc")] {
            let line = work.fails(3, [verb, "-i", input, "-o", "out.bin", "-w", &pkcs11(uri)]);
            assert!(line.contains(what), "{verb} {uri}: {line}");
            work.assert_no_output("out.bin");
        }
    }
    let line = work.fails(
        3,
        [
            "encrypt",
            "-i",
            "p.bin",
            "-o",
            "out.bin",
            "-w",
            &pkcs11(DEV_WRAP_URI),
            "--signer",
            "pkcs11:token=hsm-keyring-dev;object=no-signer;type=private",
        ],
    );
    assert!(line.contains("no-signer"), "{line}");
    work.assert_no_output("out.bin");
    let line = work.fails(3, ["keys", "list", "--token", "pkcs11:token=no-such-token"]);
    assert!(line.contains("no-such-token"), "{line}");

    // A wrong PIN from HSM_KEYRING_PIN (it takes precedence over the dev token's PIN file).
    let line = run_fails(
        work.cmd(["decrypt", "-i", "p.enc", "-o", "out.bin", "-w", &pkcs11(DEV_WRAP_URI)])
            .env("HSM_KEYRING_PIN", "wrong-pin"),
        3,
    );
    assert!(line.contains("PIN"), "{line}");
    assert!(!line.contains("wrong-pin"), "the PIN was printed: {line}");
    work.assert_no_output("out.bin");
    run_fails(work.cmd(["keys", "list"]).env("HSM_KEYRING_PIN", "wrong-pin"), 3);
    // The right PIN from the environment works.
    let pin = String::from_utf8(std::fs::read(work.dev_dir().join("user.pin")).unwrap()).unwrap();
    let out = run_ok(work.cmd(["decrypt", "-i", "p.enc", "-w", &pkcs11(DEV_WRAP_URI)]).env("HSM_KEYRING_PIN", &pin));
    assert_eq!(out, "plaintext");

    // Without a dev token and without a PIN: a usage error that says how to get one.
    let bare = Work::new();
    bare.write("p.bin", b"x");
    let line = bare.fails(2, ["encrypt", "-i", "p.bin", "-o", "out.bin", "-w", &pkcs11(DEV_WRAP_URI)]);
    assert!(line.contains("PIN") && line.contains("dev-token init"), "{line}");
    bare.assert_no_output("out.bin");
}
