//! `hsm-keyring s3 put|get` end to end against an S3-API server
//! (`ci/s3-server.sh start` exports `HSM_KEYRING_S3_ENDPOINT`): round trips
//! of several sizes and a multipart object, metadata in the object and in an
//! instruction file, V3 and V2, a token AES key, objects altered through the
//! plain client refused with no output file left.

mod common;
#[macro_use]
mod s3_support;

use std::path::Path;
use std::process::Output;

use aws_sdk_s3::primitives::ByteStream;
use hsm_keyring::s3::{S3Crypto, S3Keyring, S3Metadata};
use s3_support::{bucket, plain_client, runtime, ENV};

struct Work {
    dir: tempfile::TempDir,
    endpoint: String,
}

impl Work {
    fn new(endpoint: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("aes.key"), [5u8; 32]).unwrap();
        Work { dir, endpoint: endpoint.to_owned() }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = assert_cmd::Command::cargo_bin("hsm-keyring").unwrap();
        cmd.current_dir(self.dir.path()).envs(ENV).env_remove("AWS_PROFILE").env("HOME", self.dir.path());
        cmd.args(["--quiet", "--insecure-pin-in-uri", "s3"]);
        cmd.args(args).args(["--endpoint-url", &self.endpoint]);
        cmd.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    }

    fn fails(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        stderr
    }
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 253) as u8).collect()
}

const AES: &str = "type=aes,path=aes.key";

#[test]
fn round_trips_sizes_formats_and_locations() {
    let endpoint = endpoint_or_skip!();
    let work = Work::new(&endpoint);
    let bucket = bucket(&plain_client(&endpoint), "roundtrip");
    for len in [0usize, 1, 3 * 1024 * 1024 + 5] {
        for format in ["v3", "v2"] {
            for instruction in [false, true] {
                let plain = data(len);
                std::fs::write(work.path("in.bin"), &plain).unwrap();
                let url = format!("s3://{bucket}/o/{len}-{format}-{instruction}");
                let mut put = vec!["put", "in.bin", url.as_str(), "-w", AES, "--format", format];
                if instruction {
                    put.push("--instruction-file");
                }
                work.ok(&put);
                let _ = std::fs::remove_file(work.path("out.bin"));
                work.ok(&["get", &url, "out.bin", "-w", AES]);
                assert_eq!(std::fs::read(work.path("out.bin")).unwrap(), plain, "{url}");
            }
        }
    }
}

#[test]
fn multipart_objects_and_pipes() {
    let endpoint = endpoint_or_skip!();
    let work = Work::new(&endpoint);
    let bucket = bucket(&plain_client(&endpoint), "multipart");
    let plain = data(12 * 1024 * 1024 + 99);
    std::fs::write(work.path("in.bin"), &plain).unwrap();
    let url = format!("s3://{bucket}/big");
    work.ok(&["put", "in.bin", &url, "-w", AES, "--part-size", "5242880", "--context", "purpose=test"]);
    // Stored as ciphertext || tag, in the reference clients' layout.
    let client = plain_client(&endpoint);
    let (body, metadata) = runtime().block_on(async {
        let o = client.get_object().bucket(&bucket).key("big").send().await.unwrap();
        let md = o.metadata().cloned().unwrap_or_default();
        (o.body.collect().await.unwrap().into_bytes(), md)
    });
    assert_eq!(body.len(), plain.len() + 16);
    let fields = metadata.into_iter().collect();
    let parsed = S3Metadata::from_object_metadata(&fields).unwrap();
    assert_eq!(parsed.material_description().get("purpose").map(String::as_str), Some("test"));
    let keyring = S3Keyring::aes(&[5u8; 32]).unwrap().with_material_description(parsed.material_description().clone());
    assert_eq!(S3Crypto::new(keyring).decrypt(&parsed, &body).unwrap(), plain);
    // To stdout.
    let out = work.ok(&["get", &url, "-", "-w", AES, "--context", "purpose=test"]);
    assert_eq!(out.stdout, plain);
    // A different material description is refused.
    work.fails(1, &["get", &url, "x.bin", "-w", AES, "--context", "purpose=other"]);
    assert!(!work.path("x.bin").exists());
    // From stdin.
    let mut cmd = assert_cmd::Command::cargo_bin("hsm-keyring").unwrap();
    cmd.current_dir(work.dir.path()).envs(ENV).env("HOME", work.dir.path());
    cmd.args(["--quiet", "s3", "put", "-", &format!("s3://{bucket}/piped"), "-w", AES, "--endpoint-url", &endpoint]);
    cmd.write_stdin(b"from a pipe".to_vec()).assert().success();
    work.ok(&["get", &format!("s3://{bucket}/piped"), "p.out", "-w", AES]);
    assert_eq!(std::fs::read(work.path("p.out")).unwrap(), b"from a pipe");
}

#[test]
fn altered_objects_are_refused_and_leave_no_file() {
    let endpoint = endpoint_or_skip!();
    let work = Work::new(&endpoint);
    let bucket = bucket(&plain_client(&endpoint), "tamper");
    std::fs::write(work.path("in.bin"), data(100_000)).unwrap();
    let client = plain_client(&endpoint);
    for (name, alter) in [("body", 0), ("metadata", 1), ("instruction", 2)] {
        let url = format!("s3://{bucket}/{name}");
        let mut put = vec!["put", "in.bin", url.as_str(), "-w", AES];
        if alter == 2 {
            put.extend(["--format", "v2", "--instruction-file"]);
        }
        work.ok(&put);
        runtime().block_on(async {
            let o = client.get_object().bucket(&bucket).key(name).send().await.unwrap();
            let mut md = o.metadata().cloned().unwrap_or_default();
            let mut body = o.body.collect().await.unwrap().into_bytes().to_vec();
            match alter {
                0 => body[50_000] ^= 0x20,
                1 => {
                    let d = md.get_mut("x-amz-d").unwrap();
                    let first = if d.starts_with('A') { "B" } else { "A" };
                    d.replace_range(0..1, first);
                }
                _ => {
                    let key = format!("{name}.instruction");
                    let i = client.get_object().bucket(&bucket).key(&key).send().await.unwrap();
                    let json = String::from_utf8(i.body.collect().await.unwrap().into_bytes().to_vec()).unwrap();
                    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
                    let iv = v["x-amz-iv"].as_str().unwrap().to_owned();
                    let first = if iv.starts_with('A') { "B" } else { "A" };
                    v["x-amz-iv"] = serde_json::Value::String(format!("{first}{}", &iv[1..]));
                    let body = ByteStream::from(v.to_string().into_bytes());
                    client.put_object().bucket(&bucket).key(&key).body(body).send().await.unwrap();
                }
            }
            client
                .put_object()
                .bucket(&bucket)
                .key(name)
                .set_metadata(Some(md))
                .body(ByteStream::from(body))
                .send()
                .await
                .unwrap();
        });
        std::fs::write(work.path("existing.bin"), b"keep me").unwrap();
        let err = work.fails(1, &["get", &url, "existing.bin", "-w", AES]);
        assert!(err.contains("authentication"), "{name}: {err}");
        assert_eq!(std::fs::read(work.path("existing.bin")).unwrap(), b"keep me");
        let err = work.fails(1, &["get", &url, "new.bin", "-w", AES]);
        assert!(!err.is_empty());
        assert!(!work.path("new.bin").exists(), "{name}: output file left");
        let leftovers: Vec<_> = std::fs::read_dir(work.dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
            .collect();
        assert!(leftovers.is_empty());
    }
}

#[test]
fn token_aes_key_and_errors() {
    let endpoint = endpoint_or_skip!();
    let hsm = softhsm_or_skip!();
    hsm.aes_key_with_usages("s3-cli-aes", true, true);
    let spec = format!("type=pkcs11,uri=\"{}\"", hsm.key_uri("s3-cli-aes", "secret-key"));
    let work = Work::new(&endpoint);
    let bucket = bucket(&plain_client(&endpoint), "token");
    let plain = data(6 * 1024 * 1024);
    std::fs::write(work.path("in.bin"), &plain).unwrap();
    let url = format!("s3://{bucket}/token-object");
    work.ok(&["put", "in.bin", &url, "-w", &spec, "--part-size", "5242880"]);
    work.ok(&["get", &url, "out.bin", "-w", &spec]);
    assert_eq!(std::fs::read(work.path("out.bin")).unwrap(), plain);
    // Another key: exit 1, no file.
    work.fails(1, &["get", &url, "wrong.bin", "-w", AES]);
    assert!(!work.path("wrong.bin").exists());
    // Usage errors: exit 2.
    work.fails(2, &["get", "not-a-url", "x.bin", "-w", AES]);
    work.fails(2, &["get", &format!("s3://{bucket}/absent"), "x.bin", "-w", AES]);
    assert!(!Path::new(&work.path("x.bin")).exists());
    work.fails(2, &["put", "in.bin", &url, "-w", "type=rsa,path=k.pem,padding=oaep-sha256"]);
    // A plain object: exit 1, says it is not encrypted.
    let client = plain_client(&endpoint);
    runtime().block_on(async {
        let body = ByteStream::from_static(b"plain");
        client.put_object().bucket(&bucket).key("plain").body(body).send().await.unwrap();
    });
    let err = work.fails(1, &["get", &format!("s3://{bucket}/plain"), "x.bin", "-w", AES]);
    assert!(err.contains("not encrypted"), "{err}");
    assert!(!work.path("x.bin").exists());
}

#[test]
fn plain_http_only_for_loopback() {
    let work = Work::new("http://192.0.2.1:9000");
    let err = work.fails(2, &["get", "s3://b/k", "x.bin", "-w", AES]);
    assert!(err.contains("loopback"), "{err}");
}
