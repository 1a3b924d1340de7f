//! The entry identifiers: SHA-512 over the partition, the suite, the
//! encryption context (and, for decryption, the sorted encrypted data keys),
//! as the AWS Encryption SDK's caching CMM specifies, followed by the
//! commitment policy (and the reproduced context).

use super::store::EntryId;
use crate::format::edk;
use crate::materials::{CommitmentPolicy, DecryptMaterialsRequest, EncryptionContext, EncryptionMaterialsRequest};

fn policy_byte(policy: CommitmentPolicy) -> u8 {
    match policy {
        CommitmentPolicy::ForbidEncryptAllowDecrypt => 1,
        CommitmentPolicy::RequireEncryptAllowDecrypt => 2,
        CommitmentPolicy::RequireEncryptRequireDecrypt => 3,
    }
}

fn context_hash(context: &EncryptionContext) -> Option<[u8; 64]> {
    Some(crate::crypto::sha512(&context.serialize().ok()?))
}

/// The specification's formula, followed by the commitment policy; `None`
/// if the context cannot be serialized (the request is then not cached).
pub(super) fn encrypt_entry_id(partition_hash: &[u8; 64], request: &EncryptionMaterialsRequest) -> Option<EntryId> {
    let mut buf = Vec::with_capacity(64 + 3 + 64 + 1);
    buf.extend_from_slice(partition_hash);
    match request.algorithm_suite {
        None => buf.push(0),
        Some(suite) => {
            buf.push(1);
            buf.extend_from_slice(&suite.id().to_be_bytes());
        }
    }
    buf.extend_from_slice(&context_hash(&request.encryption_context)?);
    buf.push(policy_byte(request.commitment_policy));
    Some(crate::crypto::sha512(&buf))
}

/// The specification's formula, followed by the commitment policy and the
/// hash of the reproduced context (which the underlying CMM checks); `None`
/// if a context or an EDK cannot be serialized.
pub(super) fn decrypt_entry_id(partition_hash: &[u8; 64], request: &DecryptMaterialsRequest) -> Option<EntryId> {
    let mut edk_hashes = Vec::with_capacity(request.encrypted_data_keys.len());
    for edk in &request.encrypted_data_keys {
        edk_hashes.push(crate::crypto::sha512(&edk::serialize(edk).ok()?));
    }
    edk_hashes.sort_unstable();
    let mut buf = Vec::with_capacity(64 * (edk_hashes.len() + 4) + 4);
    buf.extend_from_slice(partition_hash);
    buf.extend_from_slice(&request.algorithm_suite.id().to_be_bytes());
    for hash in &edk_hashes {
        buf.extend_from_slice(hash);
    }
    buf.extend_from_slice(&[0u8; 64]);
    buf.extend_from_slice(&context_hash(&request.encryption_context)?);
    buf.push(policy_byte(request.commitment_policy));
    match &request.reproduced_encryption_context {
        None => buf.push(0),
        Some(reproduced) => {
            buf.push(1);
            buf.extend_from_slice(&context_hash(reproduced)?);
        }
    }
    Some(crate::crypto::sha512(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::materials::{AlgorithmSuite, EncryptedDataKey};

    const SUITE: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    const POLICY: CommitmentPolicy = CommitmentPolicy::RequireEncryptRequireDecrypt;

    fn edk(id: &str, ct: u8) -> EncryptedDataKey {
        EncryptedDataKey { provider_id: id.into(), provider_info: vec![1, 2], ciphertext: vec![ct; 4] }
    }

    fn ctx(v: &str) -> EncryptionContext {
        EncryptionContext::from_pairs([("k", v)]).unwrap()
    }

    #[test]
    fn decrypt_id_ignores_edk_order_and_covers_every_input() {
        let p = [7u8; 64];
        let req = |edks: Vec<EncryptedDataKey>, c: EncryptionContext, repro: Option<EncryptionContext>| {
            DecryptMaterialsRequest::new(SUITE, POLICY, edks, c, repro)
        };
        let base = decrypt_entry_id(&p, &req(vec![edk("a", 1), edk("b", 2)], ctx("x"), None)).unwrap();
        assert_eq!(decrypt_entry_id(&p, &req(vec![edk("b", 2), edk("a", 1)], ctx("x"), None)).unwrap(), base);
        let others = [
            decrypt_entry_id(&[8u8; 64], &req(vec![edk("a", 1), edk("b", 2)], ctx("x"), None)),
            decrypt_entry_id(&p, &req(vec![edk("a", 1), edk("b", 3)], ctx("x"), None)),
            decrypt_entry_id(&p, &req(vec![edk("a", 1)], ctx("x"), None)),
            decrypt_entry_id(&p, &req(vec![edk("a", 1), edk("b", 2)], ctx("y"), None)),
            decrypt_entry_id(&p, &req(vec![edk("a", 1), edk("b", 2)], ctx("x"), Some(ctx("x")))),
        ];
        for other in others {
            assert_ne!(other.unwrap(), base);
        }
        // An EDK too long for the format has no id: such a request is not cached.
        let mut long = edk("a", 1);
        long.ciphertext = vec![0; 70_000];
        assert!(decrypt_entry_id(&p, &req(vec![long], ctx("x"), None)).is_none());
    }

    #[test]
    fn encrypt_id_covers_suite_context_and_policy() {
        let p = [7u8; 64];
        let mut r = EncryptionMaterialsRequest::new(ctx("x"), POLICY);
        let none = encrypt_entry_id(&p, &r).unwrap();
        r.algorithm_suite = Some(SUITE);
        let with_suite = encrypt_entry_id(&p, &r).unwrap();
        assert_ne!(none, with_suite);
        r.commitment_policy = CommitmentPolicy::RequireEncryptAllowDecrypt;
        assert_ne!(encrypt_entry_id(&p, &r).unwrap(), with_suite);
        r.encryption_context = ctx("y");
        r.commitment_policy = POLICY;
        assert_ne!(encrypt_entry_id(&p, &r).unwrap(), with_suite);
        let long = EncryptionContext::from_pairs([("k", "v".repeat(70_000))]).unwrap();
        r.encryption_context = long;
        assert!(encrypt_entry_id(&p, &r).is_none());
    }
}
