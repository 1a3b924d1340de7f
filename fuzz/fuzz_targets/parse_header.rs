//! The header parser must never panic, and whatever it accepts must be
//! exactly the bytes it reports.
#![no_main]

use hsm_keyring::format::{parse_header, HeaderLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = HeaderLimits { max_header_len: 64 * 1024, max_encrypted_data_keys: Some(16) };
    if let Ok(header) = parse_header(data, &limits) {
        assert!(header.len() <= data.len());
        assert_eq!(header.raw(), &data[..header.len()]);
        assert!(header.body().len() < header.len());
        assert!(!header.encrypted_data_keys.is_empty());
    }
});
