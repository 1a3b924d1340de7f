//! Interoperability with other implementations of the message format.
//!
//! * [`aws_esdk`]: use this crate's keyrings inside the AWS Encryption SDK for
//!   Rust (`aws-esdk` crate) and its keyrings inside this crate.

pub mod aws_esdk;
