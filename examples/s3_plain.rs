//! The reference of `bench/s3.sh`: a plain (unencrypted) put or get of a
//! file through the same AWS SDK S3 client, configuration and part size as
//! `hsm-keyring s3`, parts sent one after the other as the command does;
//! a get writes its file as the command does, synced in the background
//! every 16 MiB and once more at the end.
//!
//! `cargo run --release --features s3 --example s3_plain -- put|get FILE BUCKET KEY ENDPOINT PART_SIZE`

use std::io::{Read, Write};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

async fn client(endpoint: &str) -> Client {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest()).endpoint_url(endpoint).load().await;
    let config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(true)
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired)
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .build();
    Client::from_conf(config)
}

fn read_part(file: &mut std::fs::File, size: usize) -> Res<Vec<u8>> {
    let mut part = Vec::with_capacity(size);
    file.take(size as u64).read_to_end(&mut part)?;
    Ok(part)
}

async fn put(c: &Client, path: &str, bucket: &str, key: &str, part_size: usize) -> Res<()> {
    let mut file = std::fs::File::open(path)?;
    let upload = c.create_multipart_upload().bucket(bucket).key(key).send().await?;
    let id = upload.upload_id().unwrap_or_default();
    let mut parts = Vec::new();
    let mut n = 1;
    loop {
        let part = read_part(&mut file, part_size)?;
        if part.is_empty() && n > 1 {
            break;
        }
        let last = part.len() < part_size;
        let out = c
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(part))
            .send()
            .await?;
        parts.push(CompletedPart::builder().set_e_tag(out.e_tag().map(str::to_owned)).part_number(n).build());
        n += 1;
        if last {
            break;
        }
    }
    c.complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await?;
    Ok(())
}

async fn get(c: &Client, path: &str, bucket: &str, key: &str) -> Res<()> {
    const SYNC_EVERY: usize = 16 << 20;
    let mut body = c.get_object().bucket(bucket).key(key).send().await?.body;
    let file = std::fs::File::create(path)?;
    // The background syncs of the command's output files (a second handle,
    // a thread, requests merged while one runs).
    let second = file.try_clone()?;
    let (kick, kicked) = std::sync::mpsc::sync_channel::<()>(1);
    let syncer = std::thread::spawn(move || kicked.iter().try_for_each(|()| second.sync_data()));
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, file);
    let mut unsynced = 0;
    while let Some(chunk) = body.try_next().await? {
        out.write_all(&chunk)?;
        unsynced += chunk.len();
        if unsynced >= SYNC_EVERY {
            unsynced = 0;
            let _ = kick.try_send(());
        }
    }
    out.flush()?;
    drop(kick);
    syncer.join().map_err(|_| "the sync thread panicked")??;
    out.get_ref().sync_all()?;
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [op, file, bucket, key, endpoint, part_size] = args.as_slice() else {
        return Err("usage: s3_plain put|get FILE BUCKET KEY ENDPOINT PART_SIZE".into());
    };
    let part_size: usize = part_size.parse()?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        let c = client(endpoint).await;
        match op.as_str() {
            "put" => put(&c, file, bucket, key, part_size).await,
            "get" => get(&c, file, bucket, key).await,
            _ => Err("put or get".into()),
        }
    })
}
