//! The primitives the item format itself requires for one item of the
//! benchmark's shape (0x6700, six encrypted attributes of 120 bytes, a
//! record of about 1.4 KB), with the data key found in a cache: what any
//! implementation of the format must compute per item, whatever its code
//! around them. Run on AWS-LC, as the encrypted client does here.

use std::sync::OnceLock;

use aws_lc_rs::{aead, cipher, digest, hmac, rand};

/// One item's worth: a message id, HKDF-SHA512 (one extraction, two
/// expansions; the zero salt's HMAC key set up once), the AES-256-CTR
/// keystream of six field keys, six AES-256-GCM operations under fresh
/// keys, the header commitment (HMAC-SHA512), the record hash (SHA-384) and
/// its tag (HMAC-SHA384), and one SHA-512 of a cache entry id. Decryption
/// needs the same set. No allocation beyond what AWS-LC makes.
pub fn primitives() -> Result<(), Box<dyn std::error::Error>> {
    static ZERO_SALT: OnceLock<hmac::Key> = OnceLock::new();
    let fail = |_| "AWS-LC failed";
    let mut id = [0u8; 32];
    rand::fill(&mut id).map_err(fail)?;
    let salt = ZERO_SALT.get_or_init(|| hmac::Key::new(hmac::HMAC_SHA512, &[0u8; 64]));
    let prk = hmac::sign(salt, &[7u8; 32]);
    let prk = hmac::Key::new(hmac::HMAC_SHA512, prk.as_ref());
    let derive = |label: &[u8]| {
        let mut c = hmac::Context::with_key(&prk);
        c.update(label);
        c.update(&id);
        c.update(&[1]);
        c.sign()
    };
    let (commit, root) = (derive(b"AWS_DBE_COMMIT_KEY"), derive(b"AWS_DBE_DERIVE_KEY"));
    let ctr = cipher::EncryptingKey::ctr(cipher::UnboundCipherKey::new(&cipher::AES_256, &root.as_ref()[..32])?)?;
    let mut stream = [0u8; 6 * 48];
    ctr.less_safe_encrypt(&mut stream, cipher::EncryptionContext::Iv128([3u8; 16].into()))?;
    let mut record = digest::Context::new(&digest::SHA384);
    record.update(&[1u8; 400]);
    for field in stream.chunks(48) {
        let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_256_GCM, &field[..32])?);
        let nonce = aead::Nonce::try_assume_unique_for_key(&field[32..44])?;
        let mut value = [5u8; 122];
        let tag = key.seal_in_place_separate_tag(nonce, aead::Aad::from(b"bench-table.attr0"), &mut value)?;
        record.update(b"path and length");
        record.update(&value);
        record.update(tag.as_ref());
    }
    record.update(&[2u8; 300]);
    let mut commitment = hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA512, &commit.as_ref()[..32]));
    commitment.update(&[9u8; 180]);
    std::hint::black_box(commitment.sign());
    std::hint::black_box(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA384, &[5u8; 32]), record.finish().as_ref()));
    std::hint::black_box(digest::digest(&digest::SHA512, &[3u8; 250]));
    Ok(())
}
