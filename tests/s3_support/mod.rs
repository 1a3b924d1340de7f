//! Helpers for the tests of `hsm-keyring s3` against an S3-API server
//! (`ci/s3-server.sh start` exports `HSM_KEYRING_S3_ENDPOINT`): the endpoint
//! (a failure under `CI=true` when it is missing), one runtime, the dummy
//! credentials and a plain S3 client for setting up and altering objects.
#![allow(dead_code)]

use std::sync::OnceLock;

use aws_sdk_s3::Client;

/// The server's endpoint; `None` (test skipped) when none runs, a panic under `CI=true`.
pub fn endpoint() -> Option<String> {
    match std::env::var("HSM_KEYRING_S3_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("HSM_KEYRING_S3_ENDPOINT is not set; CI=true requires the S3 server (ci/s3-server.sh start)");
            }
            eprintln!("SKIPPED: no S3 server (run `eval \"$(ci/s3-server.sh start)\"`)");
            None
        }
    }
}

/// The endpoint, or return from the test (`#[macro_use] mod s3_support;`).
macro_rules! endpoint_or_skip {
    () => {
        match $crate::s3_support::endpoint() {
            Some(e) => e,
            None => return,
        }
    };
}

/// One runtime for the tests of a binary.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap())
}

/// The command's environment: the server's dummy credentials.
pub const ENV: [(&str, &str); 3] =
    [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_REGION", "us-east-1")];

/// The plain S3 client, for setting up buckets and altering objects.
pub fn plain_client(endpoint: &str) -> Client {
    let creds = aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "tests");
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .force_path_style(true)
        .build();
    Client::from_conf(config)
}

/// A fresh bucket `NAME-PID` on the server, and its name.
pub fn bucket(client: &Client, name: &str) -> String {
    let bucket = format!("{name}-{}", std::process::id());
    runtime().block_on(async { client.create_bucket().bucket(&bucket).send().await.unwrap() });
    bucket
}
