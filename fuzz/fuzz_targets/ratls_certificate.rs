//! RA-TLS certificate parsers (ours and COCOON's) and the freshness response decoder: never panic
//! on any bytes.
#![no_main]

use cocoon_attestation::ratls::cocoon::CocoonCertificate;
use cocoon_attestation::ratls::{FreshAttestation, RaTlsCertificate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = RaTlsCertificate::parse(data);
    let _ = CocoonCertificate::parse(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = FreshAttestation::from_json(text);
    }
});
