//! The command's keys, specs and configuration: URIs safe to paste into
//! specs, PINs never echoed, the dev token's directory, config-relative
//! paths, the environment's SoftHSM configuration, and `keys delete`.

mod cli_support;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use cli_support::{bytes, inspect, Work, DEV_SIGN_URI, DEV_TOKEN, DEV_WRAP_URI};

macro_rules! dev_token_or_skip {
    () => {
        match Work::with_dev_token() {
            Some(work) => work,
            None => return,
        }
    };
}

fn pkcs11(uri: &str) -> String {
    format!("type=pkcs11,uri={uri}")
}

/// (provider id, key name) of each EDK of a message file.
fn edk_names(work: &Work, file: &str) -> Vec<(String, String)> {
    let header = inspect(work, file);
    header["encrypted_data_keys"]
        .as_array()
        .expect("EDK list")
        .iter()
        .map(|e| (e["provider_id"].as_str().unwrap().to_owned(), e["key_name"].as_str().unwrap_or("").to_owned()))
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

// ---------------------------------------------------------------------------
// Specs and URIs
// ---------------------------------------------------------------------------

#[test]
fn a_label_with_a_comma_selects_its_own_key_or_is_refused() {
    let work = dev_token_or_skip!();
    work.ok(["keys", "generate", "--type", "rsa-3072", "--label", "rsa3k"]);
    let printed = work.ok(["keys", "generate", "--type", "aes-256", "--label", "rsa3k,name=foo"]);
    let printed = printed.trim_end();
    assert!(printed.contains(";object=rsa3k%2Cname=foo;") && !printed.contains(','), "{printed}");
    work.write("p.bin", b"for the key labelled rsa3k,name=foo");
    let own_key = vec![("hsm-keyring".to_owned(), "rsa3k,name=foo".to_owned())];

    // The printed URI, pasted as it is.
    work.ok(["encrypt", "-i", "p.bin", "-o", "a.enc", "-w", &pkcs11(printed)]);
    assert_eq!(edk_names(&work, "a.enc"), own_key);
    // Quoted whole, with the raw comma.
    for q in ['"', '\''] {
        let spec = format!("type=pkcs11,uri={q}pkcs11:token={DEV_TOKEN};object=rsa3k,name=foo;type=secret-key{q}");
        work.ok(["encrypt", "-i", "p.bin", "-o", "b.enc", "-w", &spec]);
        assert_eq!(edk_names(&work, "b.enc"), own_key);
        std::fs::remove_file(work.file("b.enc")).unwrap();
    }
    // Unquoted with the raw comma, as such a URI used to be printed:
    // refused, never the RSA key `rsa3k`.
    let id = printed.split(";id=").nth(1).and_then(|rest| rest.split(';').next()).expect("id in the URI");
    for uri in [
        format!("pkcs11:token={DEV_TOKEN};object=rsa3k,name=foo;type=secret-key"),
        format!("pkcs11:token={DEV_TOKEN};object=rsa3k,name=foo;id={id};type=secret-key"),
    ] {
        let line = work.fails(2, ["encrypt", "-i", "p.bin", "-o", "c.enc", "-w", &pkcs11(&uri)]);
        assert!(line.contains("%2C") && line.contains("quote"), "{line}");
        work.assert_no_output("c.enc");
    }
    work.ok(["decrypt", "-i", "a.enc", "-o", "a.out", "-w", &pkcs11(printed)]);
    assert_eq!(work.read("a.out"), work.read("p.bin"));
}

#[test]
fn key_kind_errors_name_the_kind_in_words() {
    let work = dev_token_or_skip!();
    work.write("p.bin", b"x");
    let line = work.fails(2, ["encrypt", "-i", "p.bin", "-o", "x.enc", "-w", &pkcs11(DEV_SIGN_URI)]);
    assert!(line.contains("is an EC key;"), "{line}");
    let line =
        work.fails(2, ["encrypt", "-i", "p.bin", "-o", "x.enc", "-w", &pkcs11(DEV_WRAP_URI), "--signer", DEV_WRAP_URI]);
    assert!(line.contains("is an AES key;"), "{line}");
}

// ---------------------------------------------------------------------------
// PINs
// ---------------------------------------------------------------------------

#[test]
fn pins_in_specs_signers_and_config_files_are_never_printed() {
    let work = Work::new();
    let key = work.write("k.bin", &bytes(32, 1));
    let aes = format!("type=aes,path={key},namespace=n,name=k");
    work.write("p.bin", b"x");
    let check = |line: String| {
        assert!(!line.contains("TOP") && !line.contains("SECRET99"), "a PIN was printed: {line}");
        assert!(line.contains("***"), "{line}");
    };
    for spec in [
        "type=pkcs11,uri=pkcs11:token=t?pin-value=TOPSECRET99,type=pkcs11",
        "type=pkcs11,uri=pkcs11:token=t?pin-value=TOP,SECRET99,name=n",
        "type=pkcs11,uri=pkcs11:token=t?pin-value=TOPSECRET99,bogus",
    ] {
        check(work.fails(2, ["--insecure-pin-in-uri", "encrypt", "-i", "p.bin", "-o", "x.enc", "-w", spec]));
        check(work.fails(2, ["encrypt", "-i", "p.bin", "-o", "x.enc", "-w", spec]));
    }
    // A signer given with a suite that does not sign.
    check(work.fails(
        2,
        [
            "encrypt",
            "-i",
            "p.bin",
            "-o",
            "x.enc",
            "-w",
            &aes,
            "--suite",
            "0x0478",
            "--signer",
            "pkcs11:object=s?pin-value=TOPSECRET99",
        ],
    ));
    // A config file.
    let conf = work.write(
        "c.toml",
        b"[keyrings.a]\nwrapping-keys = [\"type=pkcs11,uri=pkcs11:object=k?pin-value=TOPSECRET99,type=x\"]\n\
          [keyrings.b]\nwrapping-keys = \"type=pkcs11,uri=pkcs11:object=k?pin-value=TOPSECRET99\"\n",
    );
    check(work.fails(2, ["encrypt", "-i", "p.bin", "-o", "x.enc", "--config", &conf, "--keyring", "a"]));
    check(work.fails(2, ["encrypt", "-i", "p.bin", "-o", "x.enc", "--config", &conf, "--keyring", "b"]));
}

// ---------------------------------------------------------------------------
// dev-token init
// ---------------------------------------------------------------------------

#[test]
fn dev_token_init_touches_only_what_it_created() {
    let Some(work) = Work::with_dev_token() else { return };
    // A new directory is made 0700.
    assert_eq!(mode(&work.dev_dir()), 0o700);

    // A non-empty directory it did not make is refused and left alone.
    let other = work.file("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(other.join("notes.txt"), b"mine").unwrap();
    let dir = other.to_str().unwrap();
    for args in [vec!["dev-token", "init", "--dir", dir], vec!["dev-token", "init", "--dir", dir, "--force"]] {
        let line = work.fails(2, args);
        assert!(line.contains("not empty"), "{line}");
    }
    assert_eq!(std::fs::read(other.join("notes.txt")).unwrap(), b"mine");
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1);
    assert_eq!(mode(&other), 0o755);
    // Even with a SoftHSM configuration in it, next to other files.
    std::fs::write(other.join("softhsm2.conf"), b"# someone else's\n").unwrap();
    work.fails(2, ["dev-token", "init", "--dir", dir, "--force"]);
    assert_eq!(std::fs::read(other.join("notes.txt")).unwrap(), b"mine");
    assert_eq!(std::fs::read(other.join("softhsm2.conf")).unwrap(), b"# someone else's\n");

    // An empty existing directory is used, its permissions kept.
    let empty = work.file("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = empty.to_str().unwrap();
    let first = work.ok(["dev-token", "init", "--quiet", "--dir", dir]);
    assert_eq!(mode(&empty), 0o755);
    assert_eq!(mode(&empty.join("user.pin")), 0o600);
    assert_eq!(mode(&empty.join("tokens")), 0o700);
    // --force replaces the token and removes only the command's own files.
    std::fs::write(empty.join("keep.txt"), b"keep").unwrap();
    let line = work.fails(2, ["dev-token", "init", "--dir", dir]);
    assert!(line.contains("--force"), "{line}");
    let second = work.ok(["dev-token", "init", "--quiet", "--dir", dir, "--force"]);
    assert_ne!(first, second, "new keys");
    assert_eq!(std::fs::read(empty.join("keep.txt")).unwrap(), b"keep");
    assert_eq!(mode(&empty), 0o755);
    let listed = work.cmd(["keys", "list"]).env("HSM_KEYRING_DEV_DIR", &empty).output().unwrap();
    assert!(listed.status.success() && String::from_utf8_lossy(&listed.stdout).contains("dev-wrapping-key"));
}

// ---------------------------------------------------------------------------
// Config file paths and the environment's SoftHSM configuration
// ---------------------------------------------------------------------------

#[test]
fn relative_paths_in_the_config_file_start_at_its_folder() {
    let work = Work::new();
    let cfg = work.file("cfg");
    std::fs::create_dir(&cfg).unwrap();
    std::fs::write(cfg.join("k.bin"), bytes(32, 3)).unwrap();
    std::fs::write(
        cfg.join("config.toml"),
        b"[keyrings.r]\nwrapping-keys = [\"type=aes,path=k.bin,namespace=n,name=k\"]\n",
    )
    .unwrap();
    work.write("p.bin", b"relative to the config file");
    // The command runs in the work directory, which has no k.bin.
    work.ok(["encrypt", "-i", "p.bin", "-o", "p.enc", "--config", "cfg/config.toml", "--keyring", "r"]);
    work.ok(["decrypt", "-i", "p.enc", "-o", "p.out", "--config", "cfg/config.toml", "--keyring", "r"]);
    assert_eq!(work.read("p.out"), b"relative to the config file");
    // On the command line, paths stay relative to the working directory.
    let line = work.fails(2, ["encrypt", "-i", "p.bin", "-o", "q.enc", "-w", "type=aes,path=k.bin,namespace=n,name=k"]);
    assert!(line.contains("k.bin"), "{line}");
}

#[test]
fn relative_trusted_signer_paths_in_the_config_file_start_at_its_folder() {
    let work = dev_token_or_skip!();
    std::fs::create_dir(work.file("cfg")).unwrap();
    work.ok(["keys", "export-public", "--key", DEV_SIGN_URI, "-o", "cfg/signer.pem"]);
    let config = format!(
        "[keyrings.s]\nwrapping-keys = [\"{}\"]\nsigner = \"{DEV_SIGN_URI}\"\ntrusted-signers = [\"signer.pem\"]\n",
        pkcs11(DEV_WRAP_URI)
    );
    std::fs::write(work.file("cfg/config.toml"), config).unwrap();
    work.write("p.bin", b"signed");
    work.ok(["encrypt", "-i", "p.bin", "-o", "p.enc", "--config", "cfg/config.toml", "--keyring", "s"]);
    work.ok(["decrypt", "-i", "p.enc", "-o", "p.out", "--config", "cfg/config.toml", "--keyring", "s"]);
    assert_eq!(work.read("p.out"), b"signed");
}

#[test]
fn an_exported_softhsm2_conf_wins_over_the_dev_token() {
    let work = dev_token_or_skip!();
    let other = work.file("other-token");
    work.ok(["dev-token", "init", "--quiet", "--dir", other.to_str().unwrap()]);
    let made = work
        .cmd(["keys", "generate", "--type", "aes-256", "--label", "only-in-other"])
        .env("HSM_KEYRING_DEV_DIR", &other)
        .output()
        .unwrap();
    assert!(made.status.success());
    let pin = std::fs::read_to_string(other.join("user.pin")).unwrap();
    let listed = work
        .cmd(["keys", "list"])
        .env("SOFTHSM2_CONF", other.join("softhsm2.conf"))
        .env("HSM_KEYRING_PIN", pin.trim())
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    assert!(table.contains("only-in-other"), "the dev token was used instead of SOFTHSM2_CONF:\n{table}");
    // Without it, the dev token.
    assert!(!work.ok(["keys", "list"]).contains("only-in-other"));
}

// ---------------------------------------------------------------------------
// keys delete and export-public -o
// ---------------------------------------------------------------------------

#[test]
fn keys_delete_needs_yes_without_a_terminal_and_prints_what_it_deleted() {
    let work = dev_token_or_skip!();
    work.ok(["keys", "generate", "--type", "aes-256", "--label", "doomed"]);
    work.ok(["keys", "generate", "--type", "ec-p384", "--label", "doomed-pair"]);
    let uri = format!("pkcs11:token={DEV_TOKEN};object=doomed");
    // stdin is not a terminal here: refused without --yes, nothing deleted.
    let line = work.fails(2, ["keys", "delete", "--key", &uri]);
    assert!(line.contains("--yes"), "{line}");
    assert!(work.ok(["keys", "list"]).contains(";object=doomed;"));

    let out = work.ok(["keys", "delete", "--key", &uri, "--yes"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(lines[0].starts_with("deleted pkcs11:") && lines[0].contains(";object=doomed;"), "{out}");
    let table = work.ok(["keys", "list"]);
    assert!(!table.contains(";object=doomed;") && table.contains(";object=doomed-pair;"), "{table}");

    // Both halves of a pair.
    let out = work.ok(["keys", "delete", "--key", &format!("pkcs11:token={DEV_TOKEN};object=doomed-pair"), "--yes"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains(";type=private") && out.contains(";type=public"), "{out}");
    assert!(!work.ok(["keys", "list"]).contains("doomed"));

    // Nothing matches; no key named at all.
    work.fails(3, ["keys", "delete", "--key", &uri, "--yes"]);
    let line = work.fails(2, ["keys", "delete", "--key", &format!("pkcs11:token={DEV_TOKEN}"), "--yes"]);
    assert!(line.contains("object="), "{line}");
    assert!(work.ok(["keys", "list"]).contains("dev-wrapping-key"));
}

#[test]
fn export_public_onto_a_device_writes_in_place() {
    let work = dev_token_or_skip!();
    let root = std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if !root {
        eprintln!("SKIPPED: mknod of a character device needs root");
        return;
    }
    let dev = work.file("null");
    assert!(std::process::Command::new("mknod").arg(&dev).args(["c", "1", "3"]).status().unwrap().success());
    work.ok(["keys", "export-public", "--key", DEV_SIGN_URI, "-o", "null"]);
    assert!(std::fs::symlink_metadata(&dev).unwrap().file_type().is_char_device());
    assert!(work.partials().is_empty());
}

#[test]
fn keys_delete_asks_on_a_terminal() {
    let work = dev_token_or_skip!();
    if std::process::Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED: `script` (util-linux) is needed for a terminal");
        return;
    }
    work.ok(["keys", "generate", "--type", "aes-256", "--label", "asked"]);
    let command = format!("{} keys delete --key 'pkcs11:token={DEV_TOKEN};object=asked'", cli_support::BIN);
    let on_terminal = |answer: &str| {
        // The test's environment (dev token, no PIN), under a terminal.
        let template = work.std_cmd(Vec::<&str>::new());
        let mut cmd = std::process::Command::new("script");
        cmd.args(["-qec", &command, "/dev/null"]).current_dir(work.path());
        for (k, v) in template.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let mut child = cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(answer.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, text) = on_terminal("n\n");
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("object=asked") && text.contains("[y/N]") && text.contains("nothing deleted"), "{text}");
    assert!(work.ok(["keys", "list"]).contains(";object=asked;"));
    let (code, text) = on_terminal("y\n");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("deleted pkcs11:"), "{text}");
    assert!(!work.ok(["keys", "list"]).contains(";object=asked;"));
}
