//! Whole messages written through the caching CMM, read by an uncached reader.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hsm_keyring::cmm::CachingCmm;
use hsm_keyring::cmm::DefaultCmm;
use hsm_keyring::{
    Client, DataKey, DecryptionMaterials, EncryptedDataKey, EncryptionContext, EncryptionMaterials, Error, Keyring,
};

/// A minimal AES-256-GCM wrapping keyring that counts its wraps and unwraps.
#[derive(Debug)]
struct CountingKeyring {
    key: [u8; 32],
    wraps: AtomicUsize,
    unwraps: AtomicUsize,
}

impl CountingKeyring {
    fn new() -> Arc<Self> {
        Arc::new(CountingKeyring { key: [0x42; 32], wraps: AtomicUsize::new(0), unwraps: AtomicUsize::new(0) })
    }
}

impl Keyring for CountingKeyring {
    fn on_encrypt(&self, mut materials: EncryptionMaterials) -> hsm_keyring::Result<EncryptionMaterials> {
        self.wraps.fetch_add(1, Ordering::SeqCst);
        if materials.data_key().is_none() {
            materials.set_data_key(DataKey::generate(materials.algorithm_suite().key_len())?)?;
        }
        let data_key = materials.data_key().map(|k| k.as_bytes().to_vec()).unwrap_or_default();
        let iv: [u8; 12] = {
            let fresh = DataKey::generate(12)?;
            fresh.as_bytes().try_into().unwrap()
        };
        let mut ct = data_key;
        let cipher = Aes256Gcm::new_from_slice(&self.key).unwrap();
        let tag = cipher.encrypt_in_place_detached(Nonce::from_slice(&iv), b"counting", &mut ct).unwrap();
        ct.extend_from_slice(&tag);
        materials.add_encrypted_data_key(EncryptedDataKey {
            provider_id: "counting".into(),
            provider_info: iv.to_vec(),
            ciphertext: ct,
        })?;
        Ok(materials)
    }

    fn on_decrypt(
        &self,
        mut materials: DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> hsm_keyring::Result<DecryptionMaterials> {
        self.unwraps.fetch_add(1, Ordering::SeqCst);
        let cipher = Aes256Gcm::new_from_slice(&self.key).unwrap();
        for edk in edks.iter().filter(|e| e.provider_id == "counting" && e.provider_info.len() == 12) {
            let Some(split) = edk.ciphertext.len().checked_sub(16) else { continue };
            let mut key = edk.ciphertext[..split].to_vec();
            let tag = Tag::from_slice(&edk.ciphertext[split..]);
            let nonce = Nonce::from_slice(&edk.provider_info);
            if cipher.decrypt_in_place_detached(nonce, b"counting", &mut key, tag).is_ok() {
                materials.set_data_key(DataKey::new(key))?;
                return Ok(materials);
            }
        }
        Err(Error::NotMine { keyring: self.description(), edk_count: edks.len() })
    }

    fn description(&self) -> String {
        "counting test keyring".into()
    }
}

#[test]
fn cached_key_messages_decrypt_with_an_uncached_reader() {
    let keyring = CountingKeyring::new();
    let cmm = CachingCmm::builder_for_keyring(keyring.clone())
        .max_age(Duration::from_secs(300))
        .max_messages_per_key(3)
        .build()
        .unwrap();
    let client = Client::new();
    let context = EncryptionContext::from_pairs([("tenant", "a")]).unwrap();
    let plaintexts: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 100 + usize::from(i)]).collect();
    let messages: Vec<Vec<u8>> = plaintexts.iter().map(|p| client.encrypt(&cmm, p, &context).unwrap()).collect();
    assert_eq!(keyring.wraps.load(Ordering::SeqCst), 2, "3 messages per data key: 5 messages need 2 keys");
    assert_eq!(cmm.stats().hits, 3);

    let reader = DefaultCmm::new(keyring.clone());
    for (message, plaintext) in messages.iter().zip(&plaintexts) {
        let decrypted = client.decrypt(&reader, message, &context).unwrap();
        assert_eq!(&decrypted.plaintext, plaintext);
    }
    // Messages that share a data key share the EDK, but not the message id.
    let h0 = client.inspect(&messages[0][..]).unwrap();
    let h1 = client.inspect(&messages[1][..]).unwrap();
    let h3 = client.inspect(&messages[3][..]).unwrap();
    assert_eq!(h0.encrypted_data_keys, h1.encrypted_data_keys);
    assert_ne!(h0.encrypted_data_keys, h3.encrypted_data_keys);
    assert_ne!(h0.message_id, h1.message_id);
    // Tampering is still detected.
    let mut bad = messages[1].clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(client.decrypt(&reader, &bad, &context).is_err());

    // A caching reader unwraps each data key once.
    let unwraps_before = keyring.unwraps.load(Ordering::SeqCst);
    let caching_reader =
        CachingCmm::builder(DefaultCmm::new(keyring.clone())).max_age(Duration::from_secs(300)).build().unwrap();
    for (message, plaintext) in messages.iter().zip(&plaintexts) {
        assert_eq!(&client.decrypt(&caching_reader, message, &context).unwrap().plaintext, plaintext);
    }
    assert_eq!(keyring.unwraps.load(Ordering::SeqCst) - unwraps_before, 2);
}

#[test]
fn streaming_encryption_is_not_cached() {
    use std::io::Write;
    let keyring = CountingKeyring::new();
    let cmm = CachingCmm::builder_for_keyring(keyring.clone()).max_age(Duration::from_secs(300)).build().unwrap();
    let client = Client::new();
    let context = EncryptionContext::new();
    for _ in 0..2 {
        let mut writer = client.encrypt_stream(&cmm, &context, Vec::new()).unwrap();
        writer.write_all(b"streamed").unwrap();
        let message = writer.finish().unwrap();
        assert_eq!(client.decrypt_with_keyring(&*keyring, &message, &context).unwrap().plaintext, b"streamed");
    }
    assert_eq!(keyring.wraps.load(Ordering::SeqCst), 2);
    assert_eq!(cmm.stats().hits, 0);
}

#[test]
fn streaming_encryption_with_a_stated_length_is_cached_and_held_to_it() {
    use std::io::Write;
    let keyring = CountingKeyring::new();
    let cmm = CachingCmm::builder_for_keyring(keyring.clone())
        .max_age(Duration::from_secs(300))
        .max_bytes_per_key(20)
        .build()
        .unwrap();
    let client = Client::new();
    let context = EncryptionContext::new();
    for _ in 0..2 {
        let mut writer = client.encrypt_stream_with_max_length(&cmm, &context, Vec::new(), 8).unwrap();
        writer.write_all(b"streamed").unwrap();
        let message = writer.finish().unwrap();
        assert_eq!(client.decrypt_with_keyring(&*keyring, &message, &context).unwrap().plaintext, b"streamed");
    }
    assert_eq!(keyring.wraps.load(Ordering::SeqCst), 1, "the second message reuses the cached data key");
    assert_eq!(cmm.stats().hits, 1);
    // The stated length is counted against the byte limit: 8 + 8 + 8 > 20.
    let writer = client.encrypt_stream_with_max_length(&cmm, &context, Vec::new(), 8).unwrap();
    writer.abandon();
    assert_eq!(keyring.wraps.load(Ordering::SeqCst), 2, "over the byte limit: a fresh data key");

    // Writing past the stated length fails, and the message cannot be finished.
    let mut writer = client.encrypt_stream_with_max_length(&cmm, &context, Vec::new(), 4).unwrap();
    writer.write_all(b"four").unwrap();
    let err = writer.write_all(b"+").unwrap_err();
    assert!(err.to_string().contains("maximum length"), "{err}");
    assert!(writer.finish().is_err());
}
