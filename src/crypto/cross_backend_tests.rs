//! Cross-backend checks: what one backend produces, the other accepts,
//! byte for byte.

use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};

use super::*;

const SIZES: [usize; 3] = [16, 24, 32];

#[test]
fn aes_gcm_matches_rustcrypto_both_ways() {
    let iv = [7u8; IV_LEN];
    let aad = b"header bytes";
    for len in SIZES {
        let key: Vec<u8> = (0..len as u8).collect();
        let lc = AeadKey::new(&key).unwrap();
        let rc = rustcrypto::AeadKey::new(&key).unwrap();
        for plain_len in [0usize, 1, 15, 16, 17, 4096] {
            let plain: Vec<u8> = (0..plain_len).map(|i| (i * 31 % 251) as u8).collect();
            let mut a = plain.clone();
            let mut b = plain.clone();
            let tag_a = lc.seal_in_place(&iv, aad, &mut a).unwrap();
            let tag_b = rc.seal_in_place(&iv, aad, &mut b).unwrap();
            assert_eq!(a, b, "ciphertext differs for key of {len} bytes");
            assert_eq!(tag_a, tag_b);
            if plain_len > 0 {
                assert_ne!(a, plain);
            }
            // Each opens the other's output.
            let mut x = a.clone();
            rc.open_in_place(&iv, aad, &mut x, &tag_a).unwrap();
            assert_eq!(x, plain);
            let mut y = b.clone();
            lc.open_in_place(&iv, aad, &mut y, &tag_b).unwrap();
            assert_eq!(y, plain);
            // Tampering fails in both.
            let mut bad_tag = tag_a;
            bad_tag[0] ^= 1;
            assert!(lc.open_in_place(&iv, aad, &mut a.clone(), &bad_tag).is_err());
            assert!(lc.open_in_place(&iv, b"other aad", &mut a.clone(), &tag_a).is_err());
            if plain_len > 0 {
                let mut flipped = a.clone();
                flipped[0] ^= 0x80;
                assert!(lc.open_in_place(&iv, aad, &mut flipped, &tag_a).is_err());
            }
        }
    }
    assert!(matches!(AeadKey::new(&[0; 20]), Err(Error::InvalidKey { .. })));
}

#[test]
fn open_to_and_open_append_agree_and_release_nothing_on_failure() {
    let iv = [3u8; IV_LEN];
    let aad = b"frame aad";
    let key = [0x5Au8; 32];
    let lc = AeadKey::new(&key).unwrap();
    let rc = rustcrypto::AeadKey::new(&key).unwrap();
    for plain_len in [0usize, 1, 17, 4096] {
        let plain: Vec<u8> = (0..plain_len).map(|i| (i * 7 % 253) as u8).collect();
        let mut ct = plain.clone();
        let tag = lc.seal_in_place(&iv, aad, &mut ct).unwrap();
        let mut bad_tag = tag;
        bad_tag[15] ^= 1;
        // open_to: both backends, good and bad tag, and a length mismatch.
        let mut out_lc = vec![0xEEu8; plain_len];
        let mut out_rc = vec![0xEEu8; plain_len];
        lc.open_to(&iv, aad, &ct, &tag, &mut out_lc).unwrap();
        rc.open_to(&iv, aad, &ct, &tag, &mut out_rc).unwrap();
        assert_eq!((&out_lc, &out_rc), (&plain, &plain));
        assert!(lc.open_to(&iv, aad, &ct, &bad_tag, &mut out_lc).is_err());
        assert!(rc.open_to(&iv, aad, &ct, &bad_tag, &mut out_rc).is_err());
        assert!(out_lc.iter().chain(&out_rc).all(|&b| b == 0), "unauthenticated bytes left in the output");
        assert!(lc.open_to(&iv, aad, &ct, &tag, &mut vec![0u8; plain_len + 1]).is_err());
        assert!(rc.open_to(&iv, aad, &ct, &tag, &mut vec![0u8; plain_len + 1]).is_err());
        // open_append: appends after what is there; on failure restores the length.
        type Append<'a> = Box<dyn Fn(&[u8], &[u8; TAG_LEN], &mut Vec<u8>) -> Result<(), ()> + 'a>;
        let backends: [(&str, Append<'_>); 2] = [
            ("aws-lc", Box::new(|ct, tag, out| lc.open_append(&iv, aad, ct, tag, out))),
            ("rustcrypto", Box::new(|ct, tag, out| rc.open_append(&iv, aad, ct, tag, out))),
        ];
        for (name, open) in backends {
            let mut out = b"prefix".to_vec();
            open(&ct, &tag, &mut out).unwrap();
            assert_eq!(&out[..6], b"prefix", "{name}");
            assert_eq!(&out[6..], &plain[..], "{name}");
            let mut out = b"prefix".to_vec();
            assert!(open(&ct, &bad_tag, &mut out).is_err(), "{name}");
            assert_eq!(out, b"prefix", "{name}");
        }
    }
}

#[test]
fn hkdf_and_hashes_match_rustcrypto() {
    let ikm = [0x42u8; 32];
    let salt = [9u8; 32];
    for hash in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
        for salt in [None, Some(&salt[..])] {
            let (mut a1, mut a2) = ([0u8; 32], [0u8; 77]);
            let (mut b1, mut b2) = ([0u8; 32], [0u8; 77]);
            hkdf(hash, salt, &ikm, &mut [(b"one", &mut a1), (b"two", &mut a2)]).unwrap();
            rustcrypto::hkdf(hash, salt, &ikm, &mut [(b"one", &mut b1), (b"two", &mut b2)]).unwrap();
            assert_eq!(a1, b1);
            assert_eq!(a2, b2);
            assert_ne!(a1[..], a2[..32]);
        }
    }
    // RFC 5869 limit: 255 blocks.
    let mut too_long = vec![0u8; 255 * 32 + 1];
    assert!(hkdf(HashAlg::Sha256, None, &ikm, &mut [(b"", &mut too_long)]).is_err());
    assert_eq!(sha512(b"abc"), rustcrypto::sha512(b"abc"));
    assert_ne!(sha512(b"abc"), sha512(b"abd"));
    for curve in [SignatureCurve::P256, SignatureCurve::P384] {
        let mut a = SignatureHasher::new(curve);
        let mut b = rustcrypto::SignatureHasher::new(curve);
        for part in [&b"head"[..], b"", b"body"] {
            a.update(part);
            b.update(part);
        }
        assert_eq!(a.finalize(), b.finalize());
    }
}

#[test]
fn ecdsa_signatures_cross_verify() {
    for curve in [SignatureCurve::P256, SignatureCurve::P384] {
        let mut h = SignatureHasher::new(curve);
        h.update(b"message");
        let digest = h.finalize();
        let lc = SoftwareSigner::generate(curve);
        let rc = rustcrypto::SoftwareSigner::generate(curve);
        assert_eq!(lc.public_key().len(), curve.compressed_point_len());
        let sig_lc = lc.sign_digest(&digest).unwrap();
        let sig_rc = rc.sign_digest(&digest).unwrap();
        rustcrypto::ecdsa_verify_digest(curve, &lc.public_key(), &digest, &sig_lc).unwrap();
        ecdsa_verify_digest(curve, &rc.public_key(), &digest, &sig_rc).unwrap();
        ecdsa_verify_digest(curve, &lc.public_key(), &digest, &sig_lc).unwrap();
        // Another key does not verify it.
        assert!(ecdsa_verify_digest(curve, &rc.public_key(), &digest, &sig_lc).is_err());
        let mut other = digest.clone();
        other[0] ^= 1;
        assert!(matches!(ecdsa_verify_digest(curve, &lc.public_key(), &other, &sig_lc), Err(Error::Signature { .. })));
        let mut bad = sig_lc.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(ecdsa_verify_digest(curve, &lc.public_key(), &digest, &bad).is_err());
        assert!(ecdsa_verify_digest(curve, &lc.public_key()[1..], &digest, &sig_lc).is_err());
        assert!(lc.sign_digest(&digest[1..]).is_err());
    }
}

fn rsa_pem_pair(bits: usize) -> String {
    if bits >= 2048 {
        let key = PrivateDecryptingKey::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let der = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key).unwrap();
        let rc = rsa::RsaPrivateKey::from_pkcs8_der(der.as_ref()).unwrap();
        rc.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
    } else {
        let rc = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, bits).unwrap();
        rc.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
    }
}

#[test]
fn rsa_cross_backend_all_paddings() {
    // 2048 bits runs in AWS-LC; 1024 bits falls back to the pure-Rust code.
    for (bits, in_aws_lc) in [(2048, true), (1024, false)] {
        let pem = rsa_pem_pair(bits);
        let lc = RsaPrivateKey::from_pem(&pem).unwrap();
        let rc = rustcrypto::RsaPrivateKey::from_pem(&pem).unwrap();
        assert_eq!(lc.lc.is_some(), in_aws_lc);
        let lc_pub = lc.public_key();
        assert_eq!(lc_pub.lc.is_some(), in_aws_lc);
        assert_eq!(lc_pub.bits(), bits);
        assert_eq!(lc_pub.to_pem().unwrap(), rc.public_key().to_pem().unwrap());
        let from_pem = RsaPublicKey::from_pem(&lc_pub.to_pem().unwrap()).unwrap();
        assert_eq!(from_pem, lc_pub);
        assert_eq!(from_pem.lc.is_some(), in_aws_lc);
        let data_key = [0x5Au8; 16];
        for padding in [
            RsaPadding::Pkcs1,
            RsaPadding::OaepSha1,
            RsaPadding::OaepSha256,
            RsaPadding::OaepSha384,
            RsaPadding::OaepSha512,
        ] {
            if bits < 2048 && padding == RsaPadding::OaepSha512 {
                // 2 * 64 + 2 bytes of padding leave no room in a 1024-bit block.
                assert!(from_pem.encrypt(padding, &data_key).is_err());
                continue;
            }
            let ct_lc = from_pem.encrypt(padding, &data_key).unwrap();
            assert_eq!(ct_lc.len(), bits / 8);
            let ct_rc = rc.public_key().encrypt(padding, &data_key).unwrap();
            assert_eq!(rc.decrypt(padding, &ct_lc).unwrap().as_bytes(), data_key, "{padding:?}");
            assert_eq!(lc.decrypt(padding, &ct_rc).unwrap().as_bytes(), data_key, "{padding:?}");
            let mut bad = ct_rc.clone();
            bad[10] ^= 1;
            assert!(lc.decrypt(padding, &bad).is_err(), "{padding:?}");
            let wrong = if padding == RsaPadding::OaepSha256 { RsaPadding::OaepSha1 } else { RsaPadding::OaepSha256 };
            assert!(lc.decrypt(wrong, &ct_rc).map(|k| k.as_bytes() != data_key).unwrap_or(true));
        }
    }
}

#[test]
fn rsa_from_components_matches() {
    let pem = rsa_pem_pair(2048);
    let rc = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
    use rsa::traits::PublicKeyParts;
    let key = RsaPublicKey::from_components(&rc.n().to_bytes_be(), &rc.e().to_bytes_be()).unwrap();
    assert!(key.lc.is_some());
    let ct = key.encrypt(RsaPadding::OaepSha256, b"0123456789abcdef").unwrap();
    let priv_lc = RsaPrivateKey::from_pem(&pem).unwrap();
    assert_eq!(priv_lc.decrypt(RsaPadding::OaepSha256, &ct).unwrap().as_bytes(), b"0123456789abcdef");
    assert!(RsaPublicKey::from_components(&[], &[1, 0, 1]).is_err());
    assert!(RsaPrivateKey::from_pem("not a key").is_err());
}
