//! One conformance suite for every primitive backend.
//!
//! `conformance!(backend)` expands to the same tests over a backend module;
//! the pure-Rust backend always runs them, and with the `aws-lc` feature the
//! aws-lc-rs backend runs them too (`cargo test --lib crypto`,
//! `cargo test --lib --features aws-lc crypto`). Deterministic operations are
//! checked against published vectors written here by value: AES-GCM (the
//! GCM specification's test cases and a NIST CAVS `gcmEncryptExtIV256`
//! vector), HKDF (RFC 5869), SHA-2 (FIPS 180 "abc"), ECDSA (RFC 6979 A.2.5
//! and A.2.6 signatures, verified); RSA decryption is checked against
//! ciphertexts of `tests/data/rsa2048-a.pem` made once with OpenSSL.

/// Decode a hex string (whitespace allowed).
pub(super) fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert_eq!(digits.len() % 2, 0, "odd hex length");
    let nibble = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("not hex: {c}"),
    };
    digits.chunks(2).map(|p| nibble(p[0]) << 4 | nibble(p[1])).collect()
}

/// AES-GCM vectors: key, IV, AAD, plaintext, ciphertext, tag.
pub(super) const GCM_VECTORS: &[[&str; 6]] = &[
    // GCM specification (McGrew and Viega), test cases 1, 2, 7, 8, 13, 14.
    ["00000000000000000000000000000000", "000000000000000000000000", "", "", "", "58e2fccefa7e3061367f1d57a4e7455a"],
    [
        "00000000000000000000000000000000",
        "000000000000000000000000",
        "",
        "00000000000000000000000000000000",
        "0388dace60b6a392f328c2b971b2fe78",
        "ab6e47d42cec13bdf53a67b21257bddf",
    ],
    [
        "000000000000000000000000000000000000000000000000",
        "000000000000000000000000",
        "",
        "",
        "",
        "cd33b28ac773f74ba00ed1f312572435",
    ],
    [
        "000000000000000000000000000000000000000000000000",
        "000000000000000000000000",
        "",
        "00000000000000000000000000000000",
        "98e7247c07f0fe411c267e4384b0f600",
        "2ff58d80033927ab8ef4d4587514f0fb",
    ],
    [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000",
        "",
        "",
        "",
        "530f8afbc74536b9a963b4f1c4cb738b",
    ],
    [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000",
        "",
        "00000000000000000000000000000000",
        "cea7403d4d606b6e074ec5d3baf39d18",
        "d0d1c8a799996bf0265b98b5d48ab919",
    ],
    // NIST CAVS gcmEncryptExtIV256.rsp, with AAD.
    [
        "37ccdba1d929d6436c16bba5b5ff34deec88ed7df3d15d0f4ddf80c0c731ee1f",
        "5c1b21c8998ed6299006d3f9",
        "22ed235946235a85a45bc5fad7140bfa",
        "ad4260e3cdc76bcc10c7b2c06b80b3be948258e5ef20c508a81f51e96a518388",
        "3b335f8b08d33ccdcad228a74700f1007542a4d1e7fc1ebe3f447fe71af29816",
        "1fbf49cc46f458bf6e88f6370975e6d4",
    ],
];

/// RFC 6979 A.2.5 (P-256) and A.2.6 (P-384): public point (x, y) and the
/// signature `(r, s)` of "sample" with SHA-256 / SHA-384.
pub(super) const RFC6979: &[(crate::materials::SignatureCurve, &str, &str, &str, &str)] = &[
    (
        crate::materials::SignatureCurve::P256,
        "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6",
        "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299",
        "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716",
        "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8",
    ),
    (
        crate::materials::SignatureCurve::P384,
        "EC3A4E415B4E19A4568618029F427FA5DA9A8BC4AE92E02E06AAE5286B300C64DEF8F0EA9055866064A254515480BC13",
        "8015D9B72D7D57244EA8EF9AC0C621896708A59367F9DFB9F54CA84B3F1C9DB1288B231C3AE0D4FE7344FD2533264720",
        "94EDBB92A5ECB8AAD4736E56C691916B3F88140666CE9FA73D64C4EA95AD133C81A648152E44ACF96E36DD1E80FABE46",
        "99EF4AEB15F178CEA1FE40DB2603138F130E740A19624526203B6351D0A3A94FA329C145786E679E7B82C71A38628AC8",
    ),
];

/// The plaintext of the RSA ciphertexts below.
pub(super) const RSA_PLAINTEXT: &[u8] = b"known answer 16B";

/// Ciphertexts of [`RSA_PLAINTEXT`] under `tests/data/rsa2048-a.pem`, made with
/// `openssl pkeyutl -encrypt` (PKCS#1 v1.5, OAEP SHA-256, OAEP SHA-1).
pub(super) const RSA_VECTORS: &[(crate::crypto::RsaPadding, &[&str])] = &[
    (
        crate::crypto::RsaPadding::Pkcs1,
        &[
            "29d97f0287b743877e7fb8fa4a3bb2829a763ea198df530c8fdc2a8d62bd9377d3fbd74dc57756234bcc364e31110e42",
            "b3cbb656b7d8c84255bcc850ec6f2fb09e277eabd03b261f419b7d8c596968cee8c161c78d6e7a6080d1fcc54697cd9f",
            "e25a30f3219e6487b9cbf0bad4d2f339746957205bf4530bef66cd6e747bf57dd60803911c41c2acb99597d61bd9a4ac",
            "174001d584e0182fddafc740dd262c99f3831e77aa0a7f84e82c7f14117204098e11e492c530cfd3765522f5740242d2",
            "14b37b215bd1ec01fae6b962d99bb7fdb10c724a50a87e3c94db6e095f29afa1a341b3def25f7f5beecab02f41ce736a",
            "39c4422d30d2e709b9a0774224ed094e",
        ],
    ),
    (
        crate::crypto::RsaPadding::OaepSha256,
        &[
            "58ad5fd2d23b10499c098dca759b0f58bde8e3bc5dd9aeb44bd8b19b358849b5477710155963d8dc0edd39d9811a344b",
            "35f5ad0e4ee2423b2d8accaebc049fb926345d51ac7a256e121c5cec910fd61fb9e29bb4d47fe77b8fb5da079feda081",
            "aec3bac6cc77b491366161d60a61faf8dd220e452fa758faa476353410f7ea1e0641d29c59f1609a21f5ad02b3b0566f",
            "e76d6773b1a1cdfef639046b64f6a06dc44827c1ae2bdfe81bf87b4f27f5df0dfbdeb69326bdf71ef8948fe2faee71d8",
            "606eadb418df71dc20b6b06e9754d7b9546817ca7877c07e61982a00b2111613adaf78283641e8a2dce683b1fc73b157",
            "00772836dc80952820e8ec728bfb3d80",
        ],
    ),
    (
        crate::crypto::RsaPadding::OaepSha1,
        &[
            "5d595b5cea8434bb7c1bd95b0efbd5b14a5980cae677091dde95c91f7b96132b506830a9d34849ec6ae2943529e9a906",
            "7c9061e8abe7977933c4793cb5aeea18a735b2d33dcb69ed244c5a635594d8dbc93264ab36c2a4f7c90400468fc0022b",
            "3a0c1131d9e0c4fce016c6a30a1172e4f0dde5deb0668b65a0c14a29c50cfc6e2a6264a895ae12540dcc06f17b2287c0",
            "0de8113af76700a3d2084c835b05423ffad50cab08c571443d524b54bbc91da8fad3d1ce6d330042e8608a55cc9717a3",
            "a613ed1dddf3bb3e5c3514800ebd59e1518cebc56fc5090b72c258cad21dc41251fa2d1ea59bea1efe8a7b6ab50811a6",
            "0300fda2174a632d7a66564e08c42af7",
        ],
    ),
];

/// The suite over one backend module.
macro_rules! conformance {
    ($backend:ident) => {
        mod $backend {
            use super::super::$backend as b;
            use super::{hex, GCM_VECTORS, RFC6979, RSA_PLAINTEXT, RSA_VECTORS};
            use crate::crypto::{RsaPadding, IV_LEN, TAG_LEN};
            use crate::error::Error;
            use crate::materials::{FooterSigner, HashAlg, SignatureCurve};

            const CURVES: [SignatureCurve; 2] = [SignatureCurve::P256, SignatureCurve::P384];

            fn iv_of(text: &str) -> [u8; IV_LEN] {
                hex(text).try_into().unwrap()
            }

            #[test]
            fn aes_gcm_known_answers_seal_and_open_in_place() {
                for [key, iv, aad, plain, cipher, tag] in GCM_VECTORS {
                    let (key, iv, aad, plain) = (hex(key), iv_of(iv), hex(aad), hex(plain));
                    let (cipher, tag): (Vec<u8>, [u8; TAG_LEN]) = (hex(cipher), hex(tag).try_into().unwrap());
                    let k = b::AeadKey::new(&key).unwrap();
                    let mut buf = plain.clone();
                    assert_eq!(k.seal_in_place(&iv, &aad, &mut buf).unwrap(), tag, "key of {} bytes", key.len());
                    assert_eq!(buf, cipher);
                    k.open_in_place(&iv, &aad, &mut buf, &tag).unwrap();
                    assert_eq!(buf, plain);
                    // A flipped tag, ciphertext or AAD bit, or another IV, fails.
                    let mut bad_tag = tag;
                    bad_tag[TAG_LEN - 1] ^= 1;
                    assert!(k.open_in_place(&iv, &aad, &mut cipher.clone(), &bad_tag).is_err());
                    if !cipher.is_empty() {
                        let mut flipped = cipher.clone();
                        flipped[0] ^= 0x80;
                        assert!(k.open_in_place(&iv, &aad, &mut flipped, &tag).is_err());
                    }
                    let mut other_aad = aad.clone();
                    other_aad.push(0);
                    assert!(k.open_in_place(&iv, &other_aad, &mut cipher.clone(), &tag).is_err());
                    let mut other_iv = iv;
                    other_iv[0] ^= 1;
                    assert!(k.open_in_place(&other_iv, &aad, &mut cipher.clone(), &tag).is_err());
                }
                for bad_len in [0, 15, 20, 33] {
                    assert!(matches!(b::AeadKey::new(&vec![0; bad_len]), Err(Error::InvalidKey { .. })));
                }
            }

            #[test]
            fn aes_gcm_open_to_and_open_append_release_nothing_on_failure() {
                let key = [0x5Au8; 32];
                let k = b::AeadKey::new(&key).unwrap();
                let iv = [3u8; IV_LEN];
                let aad = b"frame aad";
                for len in [0usize, 1, 17, 4096] {
                    let plain: Vec<u8> = (0..len).map(|i| (i * 7 % 253) as u8).collect();
                    let mut ct = plain.clone();
                    let tag = k.seal_in_place(&iv, aad, &mut ct).unwrap();
                    let mut bad_tag = tag;
                    bad_tag[0] ^= 1;
                    let mut out = vec![0xEE; len];
                    k.open_to(&iv, aad, &ct, &tag, &mut out).unwrap();
                    assert_eq!(out, plain);
                    out.fill(0xEE);
                    assert!(k.open_to(&iv, aad, &ct, &bad_tag, &mut out).is_err());
                    assert!(out.iter().all(|&x| x == 0), "unauthenticated bytes left in the output");
                    // Output of another length than the ciphertext.
                    assert!(k.open_to(&iv, aad, &ct, &tag, &mut vec![0; len + 1]).is_err());
                    if len > 0 {
                        assert!(k.open_to(&iv, aad, &ct, &tag, &mut vec![0; len - 1]).is_err());
                    }
                    let mut out = b"prefix".to_vec();
                    k.open_append(&iv, aad, &ct, &tag, &mut out).unwrap();
                    assert_eq!((&out[..6], &out[6..]), (&b"prefix"[..], &plain[..]));
                    let mut out = b"prefix".to_vec();
                    assert!(k.open_append(&iv, aad, &ct, &bad_tag, &mut out).is_err());
                    assert_eq!(out, b"prefix");
                }
            }

            #[test]
            fn hkdf_known_answers() {
                // RFC 5869 test cases 1 and 3 (SHA-256); case 3 has an empty
                // salt, which HMAC pads exactly like the zero salt of `None`.
                let mut okm = [0u8; 42];
                let ikm = [0x0Bu8; 22];
                b::hkdf(HashAlg::Sha256, Some(&hex("000102030405060708090a0b0c")), &ikm, &mut [(&hex("f0f1f2f3f4f5f6f7f8f9")[..], &mut okm)])
                    .unwrap();
                assert_eq!(
                    okm.to_vec(),
                    hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
                );
                let case3 = hex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
                for salt in [None, Some(&[][..])] {
                    let mut okm = [0u8; 42];
                    b::hkdf(HashAlg::Sha256, salt, &ikm, &mut [(&b""[..], &mut okm)]).unwrap();
                    assert_eq!(okm.to_vec(), case3, "salt {salt:?}");
                }
                // Several outputs from one extraction equal separate runs.
                for hash in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
                    let (mut a, mut c) = ([0u8; 32], [0u8; 77]);
                    b::hkdf(hash, Some(b"salt"), &ikm, &mut [(b"one", &mut a), (b"two", &mut c)]).unwrap();
                    let mut c2 = [0u8; 77];
                    b::hkdf(hash, Some(b"salt"), &ikm, &mut [(b"two", &mut c2)]).unwrap();
                    assert_eq!(c, c2);
                    assert_ne!(a[..], c[..32]);
                }
                // RFC 5869 limit: 255 blocks.
                let mut too_long = vec![0u8; 255 * 32 + 1];
                assert!(b::hkdf(HashAlg::Sha256, None, &ikm, &mut [(b"", &mut too_long)]).is_err());
            }

            #[test]
            fn hmac_known_answers_and_truncation() {
                // RFC 4231, test case 2, the data given in two parts.
                let parts: [&[u8]; 2] = [b"what do ya want ", b"for nothing?"];
                let expected = [
                    (HashAlg::Sha256, hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")),
                    (
                        HashAlg::Sha384,
                        hex("af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e
                             8e2240ca5e69e2c78b3239ecfab21649"),
                    ),
                    (
                        HashAlg::Sha512,
                        hex("164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554
                             9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"),
                    ),
                ];
                for (hash, tag) in expected {
                    let mut full = vec![0u8; tag.len()];
                    b::hmac(hash, b"Jefe", &parts, &mut full).unwrap();
                    assert_eq!(full, tag, "{hash:?}");
                    let mut short = [0u8; 16];
                    b::hmac(hash, b"Jefe", &parts, &mut short).unwrap();
                    assert_eq!(short[..], tag[..16], "{hash:?} truncated");
                    let mut long = vec![0u8; tag.len() + 1];
                    assert!(b::hmac(hash, b"Jefe", &parts, &mut long).is_err(), "{hash:?} longer than the hash");
                    let mut other = vec![0u8; tag.len()];
                    b::hmac(hash, b"Jeff", &parts, &mut other).unwrap();
                    assert_ne!(other, tag, "{hash:?} another key");
                }
            }

            #[test]
            fn sha2_known_answers() {
                assert_eq!(
                    b::sha512(b"abc").to_vec(),
                    hex("ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a
                         2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f")
                );
                let expected = [
                    hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
                    hex("cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"),
                ];
                for (curve, expected) in CURVES.into_iter().zip(expected) {
                    let mut h = b::SignatureHasher::new(curve);
                    for part in [&b"a"[..], b"", b"bc"] {
                        h.update(part);
                    }
                    assert_eq!(h.finalize(), expected, "{curve:?}");
                }
            }

            /// The uncompressed SEC1 point of an RFC 6979 key.
            fn rfc6979_key(x: &str, y: &str) -> Vec<u8> {
                let mut point = vec![4u8];
                point.extend(hex(x));
                point.extend(hex(y));
                point
            }

            #[test]
            fn ecdsa_known_signatures_verify_and_tampered_ones_do_not() {
                for &(curve, x, y, r, s) in RFC6979 {
                    let point = rfc6979_key(x, y);
                    let mut h = b::SignatureHasher::new(curve);
                    h.update(b"sample");
                    let digest = h.finalize();
                    let mut raw = hex(r);
                    raw.extend(hex(s));
                    let der = b::ecdsa_raw_to_der(curve, &raw).unwrap();
                    assert_eq!(der[0], 0x30, "DER SEQUENCE");
                    b::ecdsa_verify_digest(curve, &point, &digest, &der).unwrap();
                    // The compressed form of the same key verifies too.
                    let compressed = b::ec_compress_point(curve, &point).unwrap();
                    b::ecdsa_verify_digest(curve, &compressed, &digest, &der).unwrap();
                    // The other y (the negated point) does not.
                    let mut negated = compressed.clone();
                    negated[0] ^= 1;
                    assert!(matches!(
                        b::ecdsa_verify_digest(curve, &negated, &digest, &der),
                        Err(Error::Signature { .. })
                    ));
                    // An x of no point on the curve, or not below p, is refused.
                    let off_curve = (1..=255u8)
                        .map(|i| {
                            let mut c = compressed.clone();
                            c[1] ^= i;
                            c
                        })
                        .find(|c| b::ec_compress_point(curve, c).is_err())
                        .expect("about half of all x have no point");
                    assert!(matches!(
                        b::ecdsa_verify_digest(curve, &off_curve, &digest, &der),
                        Err(Error::Signature { .. })
                    ));
                    let mut too_large = vec![0xff; compressed.len()];
                    too_large[0] = 2;
                    assert!(b::ecdsa_verify_digest(curve, &too_large, &digest, &der).is_err());
                    let mut other = digest.clone();
                    other[0] ^= 1;
                    assert!(matches!(b::ecdsa_verify_digest(curve, &point, &other, &der), Err(Error::Signature { .. })));
                    let mut bad = der.clone();
                    let last = bad.len() - 1;
                    bad[last] ^= 1;
                    assert!(b::ecdsa_verify_digest(curve, &point, &digest, &bad).is_err());
                    assert!(b::ecdsa_verify_digest(curve, &point, &digest, &raw).is_err(), "raw r||s is not DER");
                    assert!(b::ecdsa_verify_digest(curve, &point[1..], &digest, &der).is_err());
                    assert!(b::ecdsa_raw_to_der(curve, &raw[1..]).is_err());
                }
            }

            #[test]
            fn ecdsa_sign_and_verify_round_trip() {
                for curve in CURVES {
                    let signer = b::SoftwareSigner::generate(curve);
                    assert_eq!(signer.curve(), curve);
                    let public = signer.public_key();
                    assert_eq!(public.len(), curve.compressed_point_len());
                    let mut h = b::SignatureHasher::new(curve);
                    h.update(b"message");
                    let digest = h.finalize();
                    let der = signer.sign_digest(&digest).unwrap();
                    b::ecdsa_verify_digest(curve, &public, &digest, &der).unwrap();
                    let other = b::SoftwareSigner::generate(curve);
                    assert!(b::ecdsa_verify_digest(curve, &other.public_key(), &digest, &der).is_err());
                    assert!(signer.sign_digest(&digest[1..]).is_err(), "a digest of the wrong length");
                    // The other curve's key does not parse.
                    let wrong = if curve == SignatureCurve::P256 { SignatureCurve::P384 } else { SignatureCurve::P256 };
                    assert!(b::ecdsa_verify_digest(wrong, &public, &digest, &der).is_err());
                }
            }

            #[test]
            fn ec_point_compression_known_answers() {
                for &(curve, x, y, _, _) in RFC6979 {
                    let point = rfc6979_key(x, y);
                    let compressed = b::ec_compress_point(curve, &point).unwrap();
                    // SEC1: 02 for an even y (the P-384 key), 03 for an odd one (the P-256 key).
                    let mut expected = vec![2 + (hex(y).last().unwrap() & 1)];
                    expected.extend(hex(x));
                    assert_eq!(compressed, expected);
                    assert_eq!(b::ec_compress_point(curve, &compressed).unwrap(), expected);
                    let mut off_curve = point.clone();
                    let last = off_curve.len() - 1;
                    off_curve[last] ^= 1;
                    assert!(matches!(b::ec_compress_point(curve, &off_curve), Err(Error::InvalidKey { .. })));
                    assert!(b::ec_compress_point(curve, &point[..point.len() - 1]).is_err());
                }
            }

            fn rsa_key() -> b::RsaPrivateKey {
                b::RsaPrivateKey::from_pem(include_str!("../../tests/data/rsa2048-a.pem")).unwrap()
            }

            #[test]
            fn rsa_known_ciphertexts_decrypt() {
                let key = rsa_key();
                for (padding, ct) in RSA_VECTORS {
                    let ct = hex(&ct.concat());
                    assert_eq!(key.decrypt(*padding, &ct).unwrap().as_bytes(), RSA_PLAINTEXT, "{padding:?}");
                    let mut bad = ct.clone();
                    bad[100] ^= 1;
                    assert!(key.decrypt(*padding, &bad).map(|k| k.as_bytes() != RSA_PLAINTEXT).unwrap_or(true));
                    assert!(key.decrypt(*padding, &ct[1..]).is_err(), "{padding:?}: short ciphertext");
                }
                let (_, oaep256) = RSA_VECTORS[1];
                let ct = hex(&oaep256.concat());
                assert!(key.decrypt(RsaPadding::OaepSha1, &ct).map(|k| k.as_bytes() != RSA_PLAINTEXT).unwrap_or(true));
            }

            #[test]
            fn rsa_encrypt_decrypt_round_trip_every_padding() {
                let key = rsa_key();
                let public = key.public_key();
                assert_eq!(public.bits(), 2048);
                let from_pem = b::RsaPublicKey::from_pem(&public.to_pem().unwrap()).unwrap();
                assert_eq!(from_pem, public);
                for padding in [
                    RsaPadding::Pkcs1,
                    RsaPadding::OaepSha1,
                    RsaPadding::OaepSha256,
                    RsaPadding::OaepSha384,
                    RsaPadding::OaepSha512,
                ] {
                    let ct = from_pem.encrypt(padding, &[0x5A; 32]).unwrap();
                    assert_eq!(ct.len(), 256);
                    assert_ne!(from_pem.encrypt(padding, &[0x5A; 32]).unwrap(), ct, "{padding:?} is randomized");
                    assert_eq!(key.decrypt(padding, &ct).unwrap().as_bytes(), [0x5A; 32], "{padding:?}");
                }
                // More than the padding leaves room for.
                assert!(from_pem.encrypt(RsaPadding::OaepSha512, &[0; 200]).is_err());
                assert!(b::RsaPrivateKey::from_pem("not a key").is_err());
                assert!(b::RsaPublicKey::from_components(&[], &[1, 0, 1]).is_err());
            }
        }
    };
}

conformance!(rustcrypto);
#[cfg(feature = "aws-lc")]
conformance!(aws_lc);
