//! Key rotation without touching the data.
//!
//! With envelope encryption the bulk data never needs re-encrypting: only the
//! encrypted data keys (EDKs) change. A [`Rewrapper`] opens a message's data
//! key with the old keyrings (`from`), wraps the same data key with the new
//! keyrings (`to`), and writes a new header whose EDKs are exactly those of
//! the new keyrings, with a header authentication tag recomputed with the
//! same derived key. Message id, suite, key commitment, encryption context,
//! frame length and every body byte stay as they were; the body is copied,
//! never decrypted. One rotation costs one unwrap and one wrap per message.
//!
//! * Version 1 messages are rewritten as version 1, with the same message id
//!   (the header layout is kept; only its EDK section and tag change).
//! * Messages of a signing suite carry a per-message signing key that nobody
//!   kept, so their footer cannot be re-signed: they are refused with
//!   [`Error::Signature`](crate::Error::Signature) and nothing is written,
//!   unless a long-lived signer is given ([`Rewrapper::with_signer`]): then
//!   the new header names its public key and the footer is recomputed over
//!   the new header and the body (read and hashed, never decrypted; the old
//!   footer is checked first).
//! * A message written with required-but-unstored encryption context pairs
//!   is refused as well (the pairs are not in the message to re-authenticate).
//!
//! [`Rewrapper::rewrap_file_in_place`] ([`in_place`]) rotates a message file where it
//! lies: when the suite does not sign and the new header has the old one's
//! length, only the header bytes are rewritten (under a journal that makes
//! the rewrite crash-safe), otherwise the file is rewritten through a
//! temporary file and a rename.
//!
//! [`ItemRewrapper`] does the same for DynamoDB items: new EDKs in
//! `aws_dbe_head`, the footer's HMACs (and 0x6701 signature, with a
//! long-lived signer) recomputed, every attribute value unchanged.
//!
//! [`S3Rewrapper`] does the same for S3 objects (Amazon S3 Encryption
//! Client formats): new wrapped key and material description in the
//! metadata, the body never read.
//!
//! [`bulk`] rewraps many objects (files of a directory tree, objects of a
//! bucket) with bounded concurrency and a resumable checkpoint, from any
//! [`bulk::RewrapSource`]; [`lines`] does the same for the lines of a file
//! (DynamoDB items as JSON lines), written in input order.

pub mod bulk;
pub mod in_place;
mod item;
mod journal;
pub mod lines;
mod lines_checkpoint;
mod message;
mod s3;
mod signed;

pub use in_place::{CopyReason, InPlaceMethod, InPlaceOutcome};
pub use item::ItemRewrapper;
pub use journal::JOURNAL_SUFFIX;
pub use message::{Rewrapped, Rewrapper};
pub use s3::{S3Rewrapped, S3Rewrapper};
