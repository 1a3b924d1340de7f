//! `hsm-keyring s3 rewrap` against an S3-API server (`ci/s3-server.sh
//! start` exports `HSM_KEYRING_S3_ENDPOINT`): single objects with metadata
//! in the object and in an instruction file, V3 and V2; a prefix with a
//! checkpoint and a second run that skips everything; body bytes compared
//! through the plain client before and after; the old key refused after,
//! the new one accepted; a wrong --from key writes nothing.

use std::collections::HashMap;
use std::process::Output;

use aws_sdk_s3::Client;
use s3_support::{bucket, plain_client, runtime, ENV};

#[macro_use]
mod s3_support;

const OLD: &str = "type=aes,path=old.key";
const NEW: &str = "type=aes,path=new.key";

struct Work {
    dir: tempfile::TempDir,
    endpoint: String,
    bucket: String,
    client: Client,
}

impl Work {
    fn new(endpoint: &str, name: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("old.key"), [5u8; 32]).unwrap();
        std::fs::write(dir.path().join("new.key"), [6u8; 32]).unwrap();
        std::fs::write(dir.path().join("other.key"), [7u8; 32]).unwrap();
        let client = plain_client(endpoint);
        let bucket = bucket(&client, name);
        Work { dir, endpoint: endpoint.to_owned(), bucket, client }
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = assert_cmd::Command::cargo_bin("hsm-keyring").unwrap();
        cmd.current_dir(self.dir.path()).envs(ENV).env_remove("AWS_PROFILE").env("HOME", self.dir.path());
        cmd.args(["s3"]).args(args).args(["--endpoint-url", &self.endpoint]);
        cmd.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{args:?}: {stderr}");
        stderr
    }

    fn put(&self, key: &str, plain: &[u8], extra: &[&str]) {
        std::fs::write(self.dir.path().join("in.bin"), plain).unwrap();
        let url = self.url(key);
        let mut args = vec!["put", "in.bin", url.as_str(), "-w", OLD];
        args.extend(extra);
        self.ok(&args);
    }

    /// Decrypted with `spec`, or None when refused.
    fn get(&self, key: &str, spec: &str) -> Option<Vec<u8>> {
        let out = self.run(&["get", &self.url(key), "-", "-w", spec]);
        out.status.success().then_some(out.stdout)
    }

    /// Raw body and user metadata through the plain client.
    fn raw(&self, key: &str) -> (Vec<u8>, HashMap<String, String>) {
        runtime().block_on(async {
            let o = self.client.get_object().bucket(&self.bucket).key(key).send().await.unwrap();
            let md = o.metadata().cloned().unwrap_or_default();
            (o.body.collect().await.unwrap().into_bytes().to_vec(), md)
        })
    }
}

#[test]
fn single_objects_in_both_forms_and_formats() {
    let endpoint = endpoint_or_skip!();
    let work = Work::new(&endpoint, "rewrap-single");
    for format in ["v3", "v2"] {
        for instruction in [false, true] {
            let key = format!("o/{format}-{instruction}");
            let plain = format!("object {key}").into_bytes();
            let mut extra = vec!["--format", format];
            if instruction {
                extra.push("--instruction-file");
            }
            work.put(&key, &plain, &extra);
            let (body_before, md_before) = work.raw(&key);
            let instr_before = instruction.then(|| work.raw(&format!("{key}.instruction")).0);

            // A wrong --from key: refused, nothing written.
            let out = work.run(&["rewrap", &work.url(&key), "--from", "type=aes,path=other.key", "-w", NEW]);
            assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(work.raw(&key), (body_before.clone(), md_before.clone()));
            if let Some(before) = &instr_before {
                assert_eq!(&work.raw(&format!("{key}.instruction")).0, before);
            }

            let stderr = work.ok(&["rewrap", &work.url(&key), "--from", OLD, "-w", NEW]);
            assert!(stderr.contains("rewrapped"), "{stderr}");
            let (body_after, md_after) = work.raw(&key);
            assert_eq!(body_after, body_before, "{key}: the body changed");
            if instruction {
                // Only the instruction file changed.
                assert_eq!(md_after, md_before);
                assert_ne!(Some(work.raw(&format!("{key}.instruction")).0), instr_before);
            } else {
                let edk = if format == "v3" { "x-amz-3" } else { "x-amz-key-v2" };
                assert_ne!(md_after.get(edk), md_before.get(edk));
                for same in ["x-amz-c", "x-amz-d", "x-amz-i", "x-amz-iv"] {
                    assert_eq!(md_after.get(same), md_before.get(same), "{same}");
                }
            }
            assert_eq!(work.get(&key, NEW).as_deref(), Some(plain.as_slice()), "{key}");
            assert_eq!(work.get(&key, OLD), None, "{key}: the old key still opens it");

            // Again: already under the new key.
            let stderr = work.ok(&["rewrap", &work.url(&key), "--from", OLD, "-w", NEW]);
            assert!(stderr.contains("skipped"), "{stderr}");
            assert_eq!(work.raw(&key).0, body_before);
        }
    }
}

#[test]
fn prefix_with_checkpoint_then_all_skipped() {
    let endpoint = endpoint_or_skip!();
    let work = Work::new(&endpoint, "rewrap-prefix");
    let mut bodies = Vec::new();
    for i in 0..20 {
        let key = format!("p/obj-{i:02}");
        let extra: &[&str] = if i % 5 == 0 { &["--instruction-file"] } else { &[] };
        work.put(&key, format!("plain {i}").as_bytes(), extra);
        bodies.push((key.clone(), work.raw(&key).0));
    }
    // Outside the prefix: untouched.
    work.put("q/outside", b"outside", &[]);
    let checkpoint = work.dir.path().join("cp.txt");
    let cp = checkpoint.to_str().unwrap();
    let prefix = work.url("p/");
    let stderr = work.ok(&["rewrap", &prefix, "--from", OLD, "-w", NEW, "--jobs", "4", "--checkpoint", cp]);
    assert!(stderr.contains("rewrapped 20, skipped 0"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&checkpoint).unwrap().matches("rewrapped p/obj-").count(), 20);
    for (i, (key, body)) in bodies.iter().enumerate() {
        assert_eq!(&work.raw(key).0, body, "{key}");
        assert_eq!(work.get(key, NEW), Some(format!("plain {i}").into_bytes()));
    }
    assert_eq!(work.get("p/obj-03", OLD), None);
    assert_eq!(work.get("q/outside", OLD).as_deref(), Some(&b"outside"[..]));
    // Resumed from the checkpoint: nothing to do.
    let stderr = work.ok(&["rewrap", &prefix, "--from", OLD, "-w", NEW, "--checkpoint", cp]);
    assert!(
        stderr.contains("rewrapped 0, skipped 0 (already under the new key), done by an earlier run 20"),
        "{stderr}"
    );
    // Without it: every object found already under the new key.
    let stderr = work.ok(&["rewrap", &prefix, "--from", OLD, "-w", NEW]);
    assert!(stderr.contains("rewrapped 0, skipped 20"), "{stderr}");
    // A wrong --from key: every object fails, nothing written.
    let out = work.run(&["rewrap", &prefix, "--from", "type=aes,path=other.key", "-w", OLD]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed 20"));
    assert_eq!(work.get("p/obj-07", NEW), Some(b"plain 7".to_vec()));
}

#[test]
fn other_user_metadata_and_content_type_kept() {
    let endpoint = endpoint_or_skip!();
    let work = Work::new(&endpoint, "rewrap-keep");
    work.put("k", b"kept", &[]);
    let (_, mut md) = work.raw("k");
    md.insert("owner".into(), "me".into());
    runtime().block_on(async {
        work.client
            .copy_object()
            .bucket(&work.bucket)
            .key("k")
            .copy_source(format!("{}/k", work.bucket))
            .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
            .set_metadata(Some(md))
            .content_type("text/plain")
            .send()
            .await
            .unwrap()
    });
    work.ok(&["rewrap", &work.url("k"), "--from", OLD, "-w", NEW, "--context", "gen=2"]);
    let head =
        runtime().block_on(async { work.client.head_object().bucket(&work.bucket).key("k").send().await.unwrap() });
    assert_eq!(head.content_type(), Some("text/plain"));
    let md = head.metadata().unwrap();
    assert_eq!(md.get("owner").map(String::as_str), Some("me"));
    assert_eq!(md.get("x-amz-m").map(String::as_str), Some(r#"{"gen":"2"}"#));
    // The new material description is required on get.
    let out = work.run(&["get", &work.url("k"), "-", "-w", NEW, "--context", "gen=2"]);
    assert_eq!(out.stdout, b"kept");
    assert_eq!(work.run(&["get", &work.url("k"), "-", "-w", NEW, "--context", "gen=3"]).status.code(), Some(1));
}
