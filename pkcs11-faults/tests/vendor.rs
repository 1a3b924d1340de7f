//! Vendor behaviours over SoftHSM: the IV appended after the GCM tag, and a
//! token without AES-GCM.

mod support;

use cryptoki::error::RvError;
use cryptoki::mechanism::{Mechanism, MechanismType};
use support::{aes_key, gcm, harness, rv};

macro_rules! harness_or_skip {
    () => {
        match harness(None) {
            Some(h) => h,
            None => return,
        }
    };
}

const TAG: usize = 16;
const IV: usize = 12;

#[test]
fn gcm_iv_is_drawn_and_appended_after_the_tag() {
    let h = harness_or_skip!();
    let rules = h.turn();
    let session = h.session();
    let key = aes_key(&session);
    let aad = b"header".as_slice();
    let plaintext = b"the module chooses the IV";
    rules.set("vendor=gcm-iv-after-tag");

    let mut caller_iv = [0u8; IV];
    let first = session.encrypt(&gcm(&mut caller_iv, aad), key, plaintext).expect("encrypt");
    assert_eq!(first.len(), plaintext.len() + TAG + IV);
    let second = session.encrypt(&gcm(&mut caller_iv, aad), key, plaintext).expect("encrypt");
    let (iv1, iv2) = (&first[first.len() - IV..], &second[second.len() - IV..]);
    assert_ne!(iv1, [0u8; IV], "the caller's IV was used");
    assert_ne!(iv1, iv2, "the same IV twice");
    assert_eq!(caller_iv, [0u8; IV], "the caller's IV buffer is left alone");

    // Decryption takes the IV from the tail, in the parameters as usual.
    let mut iv = [0u8; IV];
    iv.copy_from_slice(iv1);
    let opened = session.decrypt(&gcm(&mut iv, aad), key, &first[..first.len() - IV]).expect("decrypt");
    assert_eq!(opened, plaintext);
    // With the IV left attached, the tag check fails.
    assert!(session.decrypt(&gcm(&mut iv, aad), key, &first).is_err());
    // With the caller's own IV, too.
    assert!(session.decrypt(&gcm(&mut caller_iv, aad), key, &first[..first.len() - IV]).is_err());
}

#[test]
fn gcm_iv_after_tag_in_multi_part_encryption() {
    let h = harness_or_skip!();
    let rules = h.turn();
    let session = h.session();
    let key = aes_key(&session);
    rules.set("vendor=gcm-iv-after-tag");
    let mut caller_iv = [0u8; IV];
    session.encrypt_init(&gcm(&mut caller_iv, b""), key).expect("C_EncryptInit");
    let mut sealed = session.encrypt_update(b"part one, ").expect("C_EncryptUpdate");
    sealed.extend(session.encrypt_update(b"part two").expect("C_EncryptUpdate"));
    sealed.extend(session.encrypt_final().expect("C_EncryptFinal"));
    assert_eq!(sealed.len(), 18 + TAG + IV);
    let mut iv = [0u8; IV];
    iv.copy_from_slice(&sealed[sealed.len() - IV..]);
    let opened = session.decrypt(&gcm(&mut iv, b""), key, &sealed[..sealed.len() - IV]).expect("decrypt");
    assert_eq!(opened, b"part one, part two");
}

#[test]
fn gcm_without_the_vendor_switch_is_plain() {
    let h = harness_or_skip!();
    let rules = h.turn();
    let session = h.session();
    let key = aes_key(&session);
    rules.set("vendor=gcm-iv-after-tag");
    // Another mechanism is not touched.
    let cbc = session.encrypt(&Mechanism::AesCbcPad([3; 16]), key, b"sixteen bytes!!!").expect("CBC");
    assert_eq!(cbc.len(), 32);
    rules.set("");
    let mut iv = [9u8; IV];
    let sealed = session.encrypt(&gcm(&mut iv, b""), key, b"plain").expect("encrypt");
    assert_eq!(sealed.len(), 5 + TAG);
    assert_eq!(session.decrypt(&gcm(&mut iv, b""), key, &sealed).expect("decrypt"), b"plain");
}

#[test]
fn gcm_mechanism_missing() {
    let h = harness_or_skip!();
    let rules = h.turn();
    let session = h.session();
    let key = aes_key(&session);
    rules.set("vendor=no-gcm");
    let mechanisms = h.ctx.get_mechanism_list(h.slot).expect("mechanisms");
    assert!(!mechanisms.contains(&MechanismType::AES_GCM));
    assert!(mechanisms.contains(&MechanismType::AES_CBC_PAD), "only GCM is hidden");
    assert_eq!(rv(h.ctx.get_mechanism_info(h.slot, MechanismType::AES_GCM)), RvError::MechanismInvalid);
    h.ctx.get_mechanism_info(h.slot, MechanismType::AES_CBC_PAD).expect("other mechanisms have info");
    let mut iv = [0u8; IV];
    assert_eq!(rv(session.encrypt(&gcm(&mut iv, b""), key, b"x")), RvError::MechanismInvalid);
    assert_eq!(rv(session.decrypt(&gcm(&mut iv, b""), key, &[0u8; 32])), RvError::MechanismInvalid);
    // The session is still usable, and other mechanisms work.
    let cbc = session.encrypt(&Mechanism::AesCbcPad([3; 16]), key, b"still here").expect("CBC");
    assert_eq!(session.decrypt(&Mechanism::AesCbcPad([3; 16]), key, &cbc).expect("CBC"), b"still here");

    rules.set("");
    let mechanisms = h.ctx.get_mechanism_list(h.slot).expect("mechanisms");
    assert!(mechanisms.contains(&MechanismType::AES_GCM));
    session.encrypt(&gcm(&mut iv, b""), key, b"x").expect("GCM is back");
}

#[test]
fn gcm_iv_is_generated_into_the_parameter() {
    let h = harness_or_skip!();
    let rules = h.turn();
    let session = h.session();
    let key = aes_key(&session);
    let aad = b"header".as_slice();
    let plaintext = b"the token writes the IV back";
    rules.set("vendor=gcm-iv-generated");

    let mut iv1 = [0u8; IV];
    let first = session.encrypt(&gcm(&mut iv1, aad), key, plaintext).expect("encrypt");
    assert_eq!(first.len(), plaintext.len() + TAG, "no IV appended");
    let mut iv2 = [0u8; IV];
    session.encrypt(&gcm(&mut iv2, aad), key, plaintext).expect("encrypt");
    assert_ne!(iv1, [0u8; IV], "no IV written back");
    assert_ne!(iv1, iv2, "the same IV twice");
    // The IV written back is the one used.
    rules.set("");
    let opened = session.decrypt(&gcm(&mut iv1, aad), key, &first).expect("decrypt");
    assert_eq!(opened, plaintext);
    let mut zero = [0u8; IV];
    assert!(session.decrypt(&gcm(&mut zero, aad), key, &first).is_err());
}
