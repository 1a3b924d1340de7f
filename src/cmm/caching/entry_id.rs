//! The entry identifiers: one SHA-512 over the direction, the partition,
//! the suite, the commitment policy and the encryption context (and, for
//! decryption, the sorted encrypted data keys and the reproduced context),
//! each variable part preceded by its length so that no two requests give
//! the same input. The AWS Encryption SDK's caching CMM specifies nested
//! hashes of the same parts; identifiers never leave the process, so only
//! what they cover and their collision resistance matter, and one pass
//! hashes about half as many blocks.

use super::store::EntryId;
use crate::format::edk;
use crate::materials::{CommitmentPolicy, DecryptMaterialsRequest, EncryptionMaterialsRequest};

fn policy_byte(policy: CommitmentPolicy) -> u8 {
    match policy {
        CommitmentPolicy::ForbidEncryptAllowDecrypt => 1,
        CommitmentPolicy::RequireEncryptAllowDecrypt => 2,
        CommitmentPolicy::RequireEncryptRequireDecrypt => 3,
    }
}

/// Append `part` after its length.
fn put(buf: &mut Vec<u8>, part: &[u8]) {
    buf.extend_from_slice(&(part.len() as u64).to_be_bytes());
    buf.extend_from_slice(part);
}

/// The identifier of an encryption request; `None` if the context cannot be
/// serialized (the request is then not cached).
pub(super) fn encrypt_entry_id(partition_hash: &[u8; 64], request: &EncryptionMaterialsRequest) -> Option<EntryId> {
    let context = request.encryption_context.serialize().ok()?;
    let mut buf = Vec::with_capacity(1 + 64 + 4 + 8 + context.len());
    buf.push(b'E');
    buf.extend_from_slice(partition_hash);
    match request.algorithm_suite {
        None => buf.push(0),
        Some(suite) => {
            buf.push(1);
            buf.extend_from_slice(&suite.id().to_be_bytes());
        }
    }
    buf.push(policy_byte(request.commitment_policy));
    put(&mut buf, &context);
    Some(crate::crypto::sha512(&buf))
}

/// The identifier of a decryption request, whatever the order of its EDKs;
/// `None` if a context or an EDK cannot be serialized.
pub(super) fn decrypt_entry_id(partition_hash: &[u8; 64], request: &DecryptMaterialsRequest) -> Option<EntryId> {
    let mut edks = request.encrypted_data_keys.iter().map(|e| edk::serialize(e).ok()).collect::<Option<Vec<_>>>()?;
    edks.sort_unstable();
    let context = request.encryption_context.serialize().ok()?;
    let reproduced = match &request.reproduced_encryption_context {
        None => None,
        Some(reproduced) => Some(reproduced.serialize().ok()?),
    };
    let parts = edks.iter().chain([&context]).chain(&reproduced);
    let mut buf = Vec::with_capacity(128 + parts.map(|p| 8 + p.len()).sum::<usize>());
    buf.push(b'D');
    buf.extend_from_slice(partition_hash);
    buf.extend_from_slice(&request.algorithm_suite.id().to_be_bytes());
    buf.push(policy_byte(request.commitment_policy));
    buf.extend_from_slice(&(edks.len() as u64).to_be_bytes());
    for e in &edks {
        put(&mut buf, e);
    }
    put(&mut buf, &context);
    match &reproduced {
        None => buf.push(0),
        Some(r) => {
            buf.push(1);
            put(&mut buf, r);
        }
    }
    Some(crate::crypto::sha512(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::materials::{AlgorithmSuite, EncryptedDataKey, EncryptionContext};

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
            decrypt_entry_id(&p, &req(vec![edk("a", 1), edk("b", 2)], ctx("x"), Some(ctx("y")))),
            decrypt_entry_id(&p, &req(vec![edk("a", 1), edk("b", 2)], EncryptionContext::new(), None)),
            decrypt_entry_id(
                &p,
                &req(vec![edk("a", 1), edk("b", 2)], EncryptionContext::new(), Some(EncryptionContext::new())),
            ),
        ];
        let mut ids: Vec<EntryId> = others.into_iter().map(Option::unwrap).collect();
        ids.push(base);
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count, "every request must have an id of its own");
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
