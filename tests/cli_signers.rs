//! `decrypt --trusted-signer` and `--require-signed` through the command:
//! only messages signed by a pinned key decrypt; unsigned ones, ones forged
//! with a public escrow key and ones signed by a per-message key exit 1 and
//! write nothing, to a file or to stdout.

mod cli_support;

use cli_support::{bytes, Work, DEV_SIGN_URI, DEV_WRAP_URI};

const ESCROW_PRIVATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rsa2048-a.pem");
const ESCROW_PUBLIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rsa2048-a.pub.pem");

fn escrow(path: &str) -> String {
    format!("type=rsa,path={path},namespace=escrow,name=escrow-2026,padding=oaep-sha256")
}

/// Refused with exit 1: no output file, nothing on stdout, an error naming the signature.
#[track_caller]
fn refused(work: &Work, input: &str, args: &[&str], expect: &str) {
    let mut all = vec!["decrypt", "-i", input, "-o", "out.bin"];
    all.extend_from_slice(args);
    let line = work.fails(1, &all);
    assert!(line.contains(expect), "{line}");
    work.assert_no_output("out.bin");
    let mut to_stdout = vec!["decrypt", "-i", input];
    to_stdout.extend_from_slice(args);
    let out = work.cmd(&to_stdout).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "{} bytes reached stdout", out.stdout.len());
}

#[test]
fn only_messages_signed_by_a_trusted_key_decrypt() {
    let Some(work) = Work::with_dev_token() else { return };
    let plaintext = bytes(100_000, 7);
    work.write("p.bin", &plaintext);
    work.ok(["keys", "export-public", "--key", DEV_SIGN_URI, "-o", "signer.pem"]);
    let wrap = format!("type=pkcs11,uri={DEV_WRAP_URI}");
    let escrow_public = escrow(ESCROW_PUBLIC);
    let escrow_private = escrow(ESCROW_PRIVATE);

    // The legitimate writer signs with the token key, for the token key and the escrow key.
    work.ok(["encrypt", "-i", "p.bin", "-o", "good.enc", "-w", &wrap, "-w", &escrow_public, "--signer", DEV_SIGN_URI]);
    // Anyone with the public escrow key can write messages the escrow holder opens:
    // unsigned, or signed with a per-message key.
    work.ok(["encrypt", "-i", "p.bin", "-o", "unsigned.enc", "-w", &escrow_public, "--suite", "0x0478"]);
    work.ok(["encrypt", "-i", "p.bin", "-o", "per-message.enc", "-w", &escrow_public]);
    // A reader of the token key, too, without a pin.
    work.ok(["encrypt", "-i", "p.bin", "-o", "unsigned-token.enc", "-w", &wrap, "--suite", "0x0478"]);

    // Without a pin, the forgeries decrypt: that is what pinning is for.
    work.ok(["decrypt", "-i", "unsigned.enc", "-o", "plain.bin", "-w", &escrow_private]);
    assert_eq!(work.read("plain.bin"), plaintext);
    std::fs::remove_file(work.file("plain.bin")).unwrap();

    for reader in [&escrow_private, &wrap] {
        let pinned = ["-w", reader.as_str(), "--trusted-signer", "signer.pem"];
        work.ok(["decrypt", "-i", "good.enc", "-o", "plain.bin", pinned[0], pinned[1], pinned[2], pinned[3]]);
        assert_eq!(work.read("plain.bin"), plaintext);
        std::fs::remove_file(work.file("plain.bin")).unwrap();
        refused(&work, "per-message.enc", &pinned, "trusted signers");
    }
    refused(&work, "unsigned.enc", &["-w", &escrow_private, "--trusted-signer", "signer.pem"], "not signed");
    refused(&work, "unsigned-token.enc", &["-w", &wrap, "--trusted-signer", DEV_SIGN_URI], "not signed");

    // --require-signed: any signer will do, unsigned messages are refused.
    work.ok(["decrypt", "-i", "per-message.enc", "-o", "plain.bin", "-w", &escrow_private, "--require-signed"]);
    assert_eq!(work.read("plain.bin"), plaintext);
    refused(&work, "unsigned.enc", &["-w", &escrow_private, "--require-signed"], "not signed");

    // The same rule from a named keyring in the config file.
    let config = format!(
        "[keyrings.strict]\nwrapping-keys = [\"{escrow_private}\"]\nrequire-signed = true\n\n\
         [keyrings.pinned]\nwrapping-keys = [\"{escrow_private}\"]\ntrusted-signers = [\"signer.pem\"]\n"
    );
    let config = work.write("config.toml", config.as_bytes());
    refused(&work, "unsigned.enc", &["--config", &config, "--keyring", "strict"], "not signed");
    refused(&work, "per-message.enc", &["--config", &config, "--keyring", "pinned"], "trusted signers");
}
