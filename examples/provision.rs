//! Provision the keys the tests and examples use on a token:
//! an AES-256 wrapping key, an RSA-3072 key pair and an EC P-384 signing key.
//!
//! ```text
//! cargo run --example provision -- 'pkcs11:token=dev?pin-source=file:/path/to/pin'
//! ```
//!
//! Prints each key's URI. Labels already in use are reported and skipped.

use hsm_keyring::pkcs11::{Pkcs11Uri, Token};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(arg) = std::env::args().nth(1) else {
        eprintln!("usage: provision 'pkcs11:token=<label>?pin-source=file:<path>'");
        std::process::exit(2);
    };
    let uri = Pkcs11Uri::parse(&arg)?;
    let token = Token::open(&uri)?;
    let steps: [(&str, &dyn Fn() -> hsm_keyring::Result<Pkcs11Uri>); 3] = [
        ("aes-master", &|| token.generate_aes_key("aes-master", None)),
        ("rsa-master", &|| token.generate_rsa_key_pair("rsa-master", 3072, None)),
        ("footer-signer", &|| token.generate_ec_p384_key_pair("footer-signer", None)),
    ];
    for (label, make) in steps {
        match make() {
            Ok(key) => println!("{label}: {key}"),
            Err(e) => eprintln!("{label}: skipped: {e}"),
        }
    }
    for key in token.list_keys()? {
        println!(
            "  {:<8} {:<14} {:?} bits={:?} usages={}",
            key.object_type.as_str(),
            key.label,
            key.kind,
            key.bits,
            key.usages.iter().map(|u| u.as_str()).collect::<Vec<_>>().join(",")
        );
    }
    Ok(())
}
