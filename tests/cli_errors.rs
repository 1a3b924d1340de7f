//! Exit codes and error lines of the command for failures whose meaning
//! matters: a message that does not open (1), a usage error (2), a token
//! error (3); PIN sources; modules; the key names a message is for.

mod cli_support;

use cli_support::{bytes, run_fails, Work, DEV_WRAP_URI};
use hsm_keyring::format::{parse_header, HeaderLimits};

fn pkcs11(uri: &str) -> String {
    format!("type=pkcs11,uri={uri}")
}

fn raw_aes(work: &Work, name: &str, seed: u64) -> String {
    let path = work.write(&format!("{name}.key"), &bytes(32, seed));
    format!("type=aes,path={path},namespace=test-ns,name={name}")
}

macro_rules! dev_token_or_skip {
    () => {
        match Work::with_dev_token() {
            Some(work) => work,
            None => return,
        }
    };
}

/// Decrypt `input` with `args`; require exit `code` and no output file.
#[track_caller]
fn decrypt_fails(work: &Work, code: i32, input: &str, args: &[&str]) -> String {
    let mut all = vec!["decrypt", "-i", input, "-o", "refused.out"];
    all.extend_from_slice(args);
    let line = work.fails(code, all);
    work.assert_no_output("refused.out");
    line
}

#[test]
fn a_hostile_frame_length_is_malformed_input() {
    let work = Work::new();
    let key = raw_aes(&work, "k", 1);
    work.write("p.bin", &bytes(1000, 2));
    work.ok(["encrypt", "-i", "p.bin", "-o", "p.enc", "-w", &key]);
    let mut message = work.read("p.enc");
    let header = parse_header(&message, &HeaderLimits::default()).unwrap();
    let at = header.body().len() - header.suite_data.len() - 4;
    assert_eq!(&message[at..at + 4], &header.frame_length.to_be_bytes());
    message[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    work.write("hostile.enc", &message);
    let line = decrypt_fails(&work, 1, "hostile.enc", &["-w", &key]);
    assert!(line.contains("frame length") && line.contains("malformed"), "{line}");
}

#[test]
fn the_wrong_key_error_names_the_keys_the_message_is_for() {
    let work = Work::new();
    let keys: Vec<String> = (0..7).map(|i| raw_aes(&work, &format!("key-{i}"), 10 + i)).collect();
    work.write("p.bin", b"secret");
    work.ok(["encrypt", "-i", "p.bin", "-o", "two.enc", "-w", &keys[0], "-w", &keys[1]]);
    let other = raw_aes(&work, "other", 99);
    let line = decrypt_fails(&work, 1, "two.enc", &["-w", &other]);
    assert!(line.contains("test-ns/key-0") && line.contains("test-ns/key-1"), "{line}");
    assert!(!line.contains("more"), "{line}");

    // Many EDKs: the first few are named, the rest counted.
    let mut args = vec!["encrypt", "-i", "p.bin", "-o", "seven.enc"];
    for k in &keys {
        args.extend(["-w", k.as_str()]);
    }
    work.ok(args);
    let line = decrypt_fails(&work, 1, "seven.enc", &["-w", &other]);
    assert!(line.contains("test-ns/key-4") && !line.contains("test-ns/key-5"), "{line}");
    assert!(line.contains("and 2 more"), "{line}");
}

#[test]
fn a_token_key_that_does_not_open_the_edk_is_exit_1_not_a_token_failure() {
    let work = dev_token_or_skip!();
    work.write("p.bin", b"secret");
    work.ok(["encrypt", "-i", "p.bin", "-o", "p.enc", "-w", &pkcs11(DEV_WRAP_URI)]);
    // Another AES key in the token, under the wrapping key's name: the EDK is
    // its own by name but does not open with it.
    let other = work.ok(["keys", "generate", "--type", "aes-256", "--label", "other-aes"]).trim_end().to_owned();
    let spec = format!("{},name=dev-wrapping-key", pkcs11(&other));
    let line = decrypt_fails(&work, 1, "p.enc", &["-w", &spec]);
    assert!(line.contains("does not open with this key"), "{line}");
    assert!(!line.contains("internal failure"), "{line}");
    assert!(line.contains("hsm-keyring/dev-wrapping-key"), "{line}");
    // A wrong encryption context with the right key: not authentic, exit 1.
    decrypt_fails(&work, 1, "p.enc", &["-w", &pkcs11(DEV_WRAP_URI), "--context", "purpose=other"]);
}

#[test]
fn a_token_that_refuses_the_unwrap_is_exit_3_also_next_to_a_raw_key() {
    let work = dev_token_or_skip!();
    let rsa = work.ok(["keys", "generate", "--type", "rsa-3072", "--label", "k-rsa"]).trim_end().to_owned();
    work.ok(["keys", "export-public", "--key", &rsa, "-o", "k-rsa.pub.pem"]);
    let public = work.file("k-rsa.pub.pem");
    // Wrapped in software with OAEP-SHA-256, which SoftHSM cannot unwrap:
    // the token refuses the mechanism, that is not a wrong key.
    let wrap =
        format!("type=rsa,path={},namespace=hsm-keyring,name=k-rsa,padding=oaep-sha256", public.to_str().unwrap());
    work.write("p.bin", b"secret");
    work.ok(["encrypt", "-i", "p.bin", "-o", "p.enc", "-w", &wrap]);
    let unwrap = format!("{},padding=oaep-sha256", pkcs11(&rsa));
    let line = decrypt_fails(&work, 3, "p.enc", &["-w", &unwrap]);
    assert!(line.contains("C_Decrypt"), "{line}");
    let raw = raw_aes(&work, "unrelated", 5);
    decrypt_fails(&work, 3, "p.enc", &["-w", &raw, "-w", &unwrap]);
    decrypt_fails(&work, 3, "p.enc", &["-w", &unwrap, "-w", &raw]);
}

#[test]
fn an_explicit_pin_source_that_cannot_be_used_is_an_error_in_dev_mode_too() {
    let work = dev_token_or_skip!();
    work.write("p.bin", b"secret");
    let missing = work.file("no-such-pin-file");
    for (source, what) in [
        (format!("file:{}", missing.display()), "PIN file"),
        ("env:HSM_KEYRING_TEST_UNSET_PIN".to_owned(), "HSM_KEYRING_TEST_UNSET_PIN"),
        ("https://example.com/pin".to_owned(), "pin-source"),
    ] {
        let spec = pkcs11(&format!("{DEV_WRAP_URI}?pin-source={source}"));
        let line = run_fails(
            work.cmd(["encrypt", "-i", "p.bin", "-o", "p.enc", "-w", &spec]).env_remove("HSM_KEYRING_TEST_UNSET_PIN"),
            2,
        );
        assert!(line.contains(what), "{source}: {line}");
        work.assert_no_output("p.enc");
    }
    // No PIN configured at all still falls back to the dev token's PIN file.
    work.ok(["encrypt", "-i", "p.bin", "-o", "p.enc", "-w", &pkcs11(DEV_WRAP_URI)]);
    // And a usable pin-source is used.
    let pin = work.read("dev/user.pin");
    let pin_file = work.write("pin.txt", &pin);
    let spec = pkcs11(&format!("{DEV_WRAP_URI}?pin-source=file:{pin_file}"));
    work.ok(["decrypt", "-i", "p.enc", "-o", "p.out", "-w", &spec]);
    assert_eq!(work.read("p.out"), b"secret");
}

#[test]
fn a_module_that_does_not_load_is_reported_before_the_pin() {
    let work = Work::new();
    work.write("p.bin", b"secret");
    let module = work.file("no-such-module.so");
    let spec = pkcs11(&format!("pkcs11:token=t;object=k;type=secret-key?module-path={}", module.display()));
    let line = work.fails(3, ["encrypt", "-i", "p.bin", "-o", "p.enc", "-w", &spec]);
    assert!(line.contains("no-such-module.so") && line.contains("module"), "{line}");
    assert!(!line.contains("no PIN"), "{line}");
}

#[test]
fn import_aes_accepts_16_24_and_32_byte_keys_only() {
    let work = dev_token_or_skip!();
    work.write("p.bin", b"secret");
    for len in [16usize, 24, 32] {
        let material = bytes(len, 40 + len as u64);
        let key_file = work.write(&format!("k{len}.bin"), &material);
        let label = format!("imported-{len}");
        let uri = work.ok(["keys", "import-aes", "--key-file", &key_file, "--label", &label]).trim_end().to_owned();
        // The token key and a raw keyring with the same material open each other's messages.
        let raw = format!("type=aes,path={key_file},namespace=hsm-keyring,name={label}");
        work.ok(["encrypt", "-i", "p.bin", "-o", "t.enc", "-w", &pkcs11(&uri)]);
        work.ok(["decrypt", "-i", "t.enc", "-o", "t.out", "-w", &raw]);
        assert_eq!(work.read("t.out"), b"secret");
        std::fs::remove_file(work.file("t.out")).unwrap();
        work.ok(["encrypt", "-i", "p.bin", "-o", "r.enc", "-w", &raw]);
        work.ok(["decrypt", "-i", "r.enc", "-o", "r.out", "-w", &pkcs11(&uri)]);
        assert_eq!(work.read("r.out"), b"secret");
        std::fs::remove_file(work.file("r.out")).unwrap();
    }
    for len in [0usize, 15, 20, 33, 64] {
        let key_file = work.write("bad.bin", &bytes(len, 50));
        let line = work.fails(2, ["keys", "import-aes", "--key-file", &key_file, "--label", &format!("bad-{len}")]);
        assert!(line.contains("16, 24 or 32"), "{line}");
    }
}
