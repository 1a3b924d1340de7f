//! S3 objects exchanged with the Python S3 Encryption Client
//! (amazon-s3-encryption-client-python 4.0.0, harness `interop/s3/peer.py`
//! with raw AES-GCM and RSA-OAEP-SHA1 keyrings after the Java client's),
//! both directions: AES-128/256 and RSA-2048/3072 wrapping keys, V3 and V2,
//! metadata in the object and in an instruction file, sizes 0, 1 and
//! 16 MiB, with a material description; a token AES key read back by the
//! peer holding the same key material; tampered bodies and metadata refused
//! by both; objects of either writer moved from one key to another by
//! [`S3Rewrapper`](hsm_keyring::rewrap::S3Rewrapper), read by the peer
//! holding only the new key.
//!
//! The peer's interpreter comes from `HSM_KEYRING_S3_PEER_PYTHON`, or the
//! virtual environment `ci/s3-peer.sh` makes under `target/`. Without one
//! the tests are skipped with a notice, unless `CI=true`, where that fails.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use hsm_keyring::pkcs11::{Pkcs11AesKeyring, Pkcs11Uri, Token, TokenOptions};
use hsm_keyring::rewrap::{S3Rewrapped, S3Rewrapper};
use hsm_keyring::s3::{MetadataLocation, ObjectMetadata, S3Crypto, S3Format, S3Keyring, S3Metadata};
use hsm_keyring::ErrorKind;

const RSA_2048: &str = "tests/data/s3/rsa2048.pem";
const RSA_3072: &str = "tests/data/s3/rsa3072.pem";

fn peer_python() -> Option<PathBuf> {
    let python = std::env::var_os("HSM_KEYRING_S3_PEER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/s3-peer-venv/bin/python"));
    let works = Command::new(&python).args(["-c", "import s3_encryption"]).output().is_ok_and(|o| o.status.success());
    if works {
        return Some(python);
    }
    let what = format!("the Python S3 peer is not installed ({}; run ci/s3-peer.sh)", python.display());
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what}; CI=true requires it");
    }
    eprintln!("SKIPPED: {what}");
    None
}

macro_rules! peer_or_skip {
    () => {
        match peer_python() {
            Some(p) => p,
            None => return,
        }
    };
}

/// A wrapping key known to both sides.
struct Key {
    spec: String,
    keyring: S3Keyring,
}

fn aes(bytes: &[u8]) -> Key {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Key { spec: format!("aes:{hex}"), keyring: S3Keyring::aes(bytes).unwrap() }
}

fn rsa(path: &str) -> Key {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let pem = std::fs::read_to_string(&full).unwrap();
    Key { spec: format!("rsa:{}", full.display()), keyring: S3Keyring::rsa_from_private_pem(&pem).unwrap() }
}

fn keys() -> Vec<(&'static str, Key)> {
    vec![
        ("aes-128", aes(&[0x31; 16])),
        ("aes-256", aes(&[0x32; 32])),
        ("rsa-2048", rsa(RSA_2048)),
        ("rsa-3072", rsa(RSA_3072)),
    ]
}

/// One `peer.py serve` process for the test, fed one command per line.
struct Peer {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
    dir: tempfile::TempDir,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An object as stored: body, object metadata and maybe an instruction file.
struct Stored {
    body: Vec<u8>,
    metadata: ObjectMetadata,
    instruction: Option<String>,
}

impl Peer {
    fn new(python: PathBuf) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/s3/peer.py");
        let mut child =
            Command::new(python).arg(script).arg("serve").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Peer { child, stdin, stdout, dir: tempfile::tempdir().unwrap() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&mut self, args: &[&str]) -> Result<(), String> {
        writeln!(self.stdin, "{}", serde_json::to_string(args).unwrap()).unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let reply: serde_json::Value = serde_json::from_str(&line).expect("peer reply");
        match reply["status"].as_i64() {
            Some(0) => Ok(()),
            Some(3) => Err(reply["error"].as_str().unwrap_or_default().to_owned()),
            _ => panic!("peer failed: {line}"),
        }
    }

    fn encrypt(
        &mut self,
        key: &Key,
        format: S3Format,
        plaintext: &[u8],
        instruction: bool,
        matdesc: Option<&str>,
    ) -> Stored {
        std::fs::write(self.path("plain"), plaintext).unwrap();
        let (body, meta, instr) = (self.path("body"), self.path("meta.json"), self.path("instr.json"));
        let fmt = if format == S3Format::V3 { "v3" } else { "v2" };
        let mut args = vec!["encrypt", "--key", &key.spec, "--format", fmt, "--in"];
        let plain = self.path("plain");
        let (plain, body_s, meta_s, instr_s) =
            (plain.to_str().unwrap(), body.to_str().unwrap(), meta.to_str().unwrap(), instr.to_str().unwrap());
        args.extend([plain, "--body", body_s, "--meta", meta_s]);
        if instruction {
            args.extend(["--instruction", instr_s]);
        }
        if let Some(m) = matdesc {
            args.extend(["--matdesc", m]);
        }
        self.run(&args).expect("peer encrypt");
        let metadata: ObjectMetadata = serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
        Stored {
            body: std::fs::read(&body).unwrap(),
            metadata,
            instruction: instruction.then(|| std::fs::read_to_string(&instr).unwrap()),
        }
    }

    fn decrypt(&mut self, key: &Key, stored: &Stored) -> Result<Vec<u8>, String> {
        let (body, meta, instr, out) =
            (self.path("body"), self.path("meta.json"), self.path("instr.json"), self.path("out"));
        std::fs::write(&body, &stored.body).unwrap();
        std::fs::write(&meta, serde_json::to_string(&stored.metadata).unwrap()).unwrap();
        let mut args = vec!["decrypt", "--key", &key.spec];
        let (body_s, meta_s, instr_s, out_s) =
            (body.to_str().unwrap(), meta.to_str().unwrap(), instr.to_str().unwrap(), out.to_str().unwrap());
        args.extend(["--body", body_s, "--meta", meta_s, "--out", out_s]);
        if let Some(text) = &stored.instruction {
            std::fs::write(&instr, text).unwrap();
            args.extend(["--instruction", instr_s]);
        }
        self.run(&args)?;
        Ok(std::fs::read(&out).unwrap())
    }
}

fn ours(crypto: &S3Crypto, plaintext: &[u8], instruction: bool) -> Stored {
    let (body, metadata) = crypto.encrypt(plaintext).unwrap();
    if instruction {
        let (object, json) = metadata.to_instruction_file().unwrap();
        Stored { body, metadata: object, instruction: Some(json) }
    } else {
        Stored { body, metadata: metadata.to_object_metadata().unwrap(), instruction: None }
    }
}

fn read_ours(crypto: &S3Crypto, stored: &Stored) -> hsm_keyring::Result<Vec<u8>> {
    let metadata = match (&stored.instruction, S3Metadata::location(&stored.metadata)) {
        (Some(json), MetadataLocation::InstructionFile) => S3Metadata::from_instruction_file(&stored.metadata, json)?,
        _ => S3Metadata::from_object_metadata(&stored.metadata)?,
    };
    crypto.decrypt(&metadata, &stored.body)
}

fn matdesc() -> BTreeMap<String, String> {
    [("purpose".to_owned(), "interop".to_owned())].into()
}

fn sample(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 253) as u8).collect()
}

#[test]
fn both_directions_every_key_format_and_location() {
    let mut peer = Peer::new(peer_or_skip!());
    for (name, key) in keys() {
        for format in [S3Format::V3, S3Format::V2] {
            for instruction in [false, true] {
                for len in [0usize, 1] {
                    let what = format!("{name} {format:?} instruction={instruction} len={len}");
                    let with_desc = len == 1;
                    let keyring = if with_desc {
                        key.keyring.clone().with_material_description(matdesc())
                    } else {
                        key.keyring.clone()
                    };
                    let crypto = S3Crypto::new(keyring).with_format(format).unwrap();
                    let plaintext = sample(len);
                    // Ours -> peer.
                    let stored = ours(&crypto, &plaintext, instruction);
                    assert_eq!(peer.decrypt(&key, &stored).unwrap(), plaintext, "peer reads ours: {what}");
                    // Peer -> ours.
                    let desc = with_desc.then_some(r#"{"purpose": "interop"}"#);
                    let stored = peer.encrypt(&key, format, &plaintext, instruction, desc);
                    assert_eq!(read_ours(&crypto, &stored).unwrap(), plaintext, "we read the peer's: {what}");
                }
            }
        }
    }
}

/// 16 MiB each way (one combination per direction: debug builds run
/// AES-GCM at a few MB/s, and the other combinations are covered above).
#[test]
fn sixteen_mebibytes_both_directions() {
    let mut peer = Peer::new(peer_or_skip!());
    let plaintext = sample(16 * 1024 * 1024);
    // Ours (AES-256, V3, object metadata) -> peer.
    let key = aes(&[0x32; 32]);
    let crypto = S3Crypto::new(key.keyring.clone());
    let stored = ours(&crypto, &plaintext, false);
    assert!(peer.decrypt(&key, &stored).unwrap() == plaintext, "peer reads ours");
    // Peer (RSA-2048, V2, instruction file) -> ours, through the streaming
    // reader (bounded memory on our side).
    let key = rsa(RSA_2048);
    let crypto = S3Crypto::new(key.keyring.clone());
    let stored = peer.encrypt(&key, S3Format::V2, &plaintext, true, None);
    let metadata = S3Metadata::from_instruction_file(&stored.metadata, stored.instruction.as_deref().unwrap()).unwrap();
    let mut out = Vec::new();
    std::io::copy(&mut crypto.decrypting_reader(&metadata, &stored.body[..]).unwrap(), &mut out).unwrap();
    assert!(out == plaintext, "we read the peer's");
}

#[test]
fn tampered_objects_are_refused_by_both() {
    let mut peer = Peer::new(peer_or_skip!());
    for (name, key) in [("aes-256", aes(&[0x32; 32])), ("rsa-2048", rsa(RSA_2048))] {
        for format in [S3Format::V3, S3Format::V2] {
            let crypto = S3Crypto::new(key.keyring.clone()).with_format(format).unwrap();
            let fields: &[&str] =
                if format == S3Format::V3 { &["x-amz-3", "x-amz-d", "x-amz-i"] } else { &["x-amz-key-v2", "x-amz-iv"] };
            // Both writers' objects, altered the same ways, refused by both readers.
            let theirs = peer.encrypt(&key, format, b"tamper", false, None);
            for stored in [ours(&crypto, b"tamper", false), theirs] {
                let mut body =
                    Stored { body: stored.body.clone(), metadata: stored.metadata.clone(), instruction: None };
                body.body[2] ^= 1;
                assert!(peer.decrypt(&key, &body).is_err(), "{name} {format:?}: peer accepted an altered body");
                assert_eq!(read_ours(&crypto, &body).unwrap_err().kind(), ErrorKind::NotAuthentic);
                for field in fields {
                    let mut altered =
                        Stored { body: stored.body.clone(), metadata: stored.metadata.clone(), instruction: None };
                    let value = altered.metadata.get_mut(*field).unwrap();
                    let mut bytes = base64_decode(value);
                    bytes[5] ^= 1;
                    *value = base64_encode(&bytes);
                    assert!(peer.decrypt(&key, &altered).is_err(), "{name} {format:?}: peer accepted altered {field}");
                    let err = read_ours(&crypto, &altered).unwrap_err();
                    assert!(
                        matches!(err.kind(), ErrorKind::NotAuthentic | ErrorKind::NotThisKey),
                        "{name} {format:?} {field}: {err}"
                    );
                }
            }
        }
    }
}

#[test]
fn token_aes_key_objects_are_read_by_the_peer() {
    let python = peer_or_skip!();
    let hsm = softhsm_or_skip!();
    let mut peer = Peer::new(python);
    let uri = Pkcs11Uri::parse(&hsm.token_uri()).unwrap();
    let token = Token::open_with(&uri, TokenOptions::default().pool_size(2)).unwrap();
    let material = [0x5Cu8; 32];
    let key_uri = token.import_aes_key("s3-peer-aes", &material, None).unwrap();
    let in_token = S3Keyring::from_pkcs11_aes(&Pkcs11AesKeyring::new(token, &key_uri).unwrap());
    let key = aes(&material);
    for format in [S3Format::V3, S3Format::V2] {
        for instruction in [false, true] {
            let crypto = S3Crypto::new(in_token.clone()).with_format(format).unwrap();
            let stored = ours(&crypto, b"from the token", instruction);
            assert_eq!(peer.decrypt(&key, &stored).unwrap(), b"from the token", "{format:?} {instruction}");
            let stored = peer.encrypt(&key, format, b"to the token", instruction, None);
            assert_eq!(read_ours(&crypto, &stored).unwrap(), b"to the token", "{format:?} {instruction}");
        }
    }
}

/// The object moved from `from` to `to` by hsm-keyring's rewrapper: new
/// metadata in the object's form (object metadata or instruction file), the
/// same body.
fn rewrap(from: &S3Keyring, to: &S3Keyring, stored: &Stored) -> hsm_keyring::Result<Stored> {
    let metadata = match &stored.instruction {
        Some(json) => S3Metadata::from_instruction_file(&stored.metadata, json)?,
        None => S3Metadata::from_object_metadata(&stored.metadata)?,
    };
    let new = match S3Rewrapper::new(from.clone(), to.clone()).rewrap(&metadata)? {
        S3Rewrapped::Rewrapped(new) => new,
        other => panic!("expected a rewrap, got {other:?}"),
    };
    Ok(match stored.instruction {
        Some(_) => {
            let (object, json) = new.to_instruction_file()?;
            Stored { body: stored.body.clone(), metadata: object, instruction: Some(json) }
        }
        None => Stored { body: stored.body.clone(), metadata: new.to_object_metadata()?, instruction: None },
    })
}

/// Key rotation read by the peer: objects written under AES key A (by
/// hsm-keyring, and by the peer), rewrapped by hsm-keyring to AES key B
/// (with a material description) or RSA key B, V3 and V2, object metadata
/// and instruction file, are read by the peer holding only B; the peer
/// holding only A refuses them, as it refuses B's object with an altered
/// wrapped key.
#[test]
fn rewrapped_objects_are_read_by_the_peer() {
    let mut peer = Peer::new(peer_or_skip!());
    let old = aes(&[0x41; 32]);
    let new_keys = [("aes-256", aes(&[0x42; 32]), Some(matdesc())), ("rsa-2048", rsa(RSA_2048), None)];
    let mut cells = 0;
    for (name, new, desc) in &new_keys {
        let to = match desc {
            Some(d) => new.keyring.clone().with_material_description(d.clone()),
            None => new.keyring.clone(),
        };
        for format in [S3Format::V3, S3Format::V2] {
            for instruction in [false, true] {
                for peer_writes in [false, true] {
                    for len in [0usize, 70_001] {
                        let writer = if peer_writes { "peer" } else { "hsm-keyring" };
                        let what =
                            format!("{writer} writes, A -> {name}, {format:?} instruction={instruction} len={len}");
                        let plaintext = sample(len);
                        let stored = if peer_writes {
                            peer.encrypt(&old, format, &plaintext, instruction, None)
                        } else {
                            ours(
                                &S3Crypto::new(old.keyring.clone()).with_format(format).unwrap(),
                                &plaintext,
                                instruction,
                            )
                        };
                        assert_eq!(peer.decrypt(&old, &stored).unwrap(), plaintext, "{what}: before");
                        let rewrapped = rewrap(&old.keyring, &to, &stored).unwrap_or_else(|e| panic!("{what}: {e}"));
                        assert_eq!(
                            rewrapped.instruction.is_some(),
                            instruction,
                            "{what}: the metadata stays where it was"
                        );
                        if let (Some(desc), Some(json)) = (desc, &rewrapped.instruction) {
                            assert!(json.contains(&desc["purpose"]), "{what}: the new material description is written");
                        }
                        assert_eq!(
                            peer.decrypt(new, &rewrapped).unwrap(),
                            plaintext,
                            "{what}: the peer reads it with B"
                        );
                        assert_eq!(
                            read_ours(&S3Crypto::new(to.clone()), &rewrapped).unwrap(),
                            plaintext,
                            "{what}: hsm-keyring reads it with B"
                        );
                        let refused = peer.decrypt(&old, &rewrapped);
                        assert!(refused.is_err(), "{what}: the peer still opens it with the dropped key A");
                        let mut altered = Stored {
                            body: rewrapped.body.clone(),
                            metadata: rewrapped.metadata.clone(),
                            instruction: rewrapped.instruction.clone(),
                        };
                        alter_wrapped_key(&mut altered, format);
                        assert!(
                            peer.decrypt(new, &altered).is_err(),
                            "{what}: the peer accepted an altered wrapped key"
                        );
                        cells += 1;
                    }
                }
            }
        }
    }
    println!("s3 peer rewrap: {cells} cells passed, 0 failed");
}

/// Flip a bit in the wrapped data key, wherever the object keeps it.
fn alter_wrapped_key(stored: &mut Stored, format: S3Format) {
    let field = if format == S3Format::V3 { "x-amz-3" } else { "x-amz-key-v2" };
    match &mut stored.instruction {
        Some(json) => {
            let mut map: BTreeMap<String, serde_json::Value> = serde_json::from_str(json).unwrap();
            let value = map.get_mut(field).unwrap();
            let mut bytes = base64_decode(value.as_str().unwrap());
            bytes[5] ^= 1;
            *value = base64_encode(&bytes).into();
            *json = serde_json::to_string(&map).unwrap();
        }
        None => {
            let value = stored.metadata.get_mut(field).unwrap();
            let mut bytes = base64_decode(value);
            bytes[5] ^= 1;
            *value = base64_encode(&bytes);
        }
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}
