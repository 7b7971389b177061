//! Hex/binary evidence and DER/PEM certificate decoding: never panics, never grows past the limits.
#![no_main]

use cocoon_attestation::encoding::{
    binary_or_hex, der_or_pem_certificate, pem_certificates, MAX_CERTIFICATES, MAX_INPUT,
};
use cocoon_attestation::Subject;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(decoded) = binary_or_hex(data, Subject::Quote) {
        assert!(decoded.len() <= data.len() && data.len() <= MAX_INPUT);
    }
    let _ = der_or_pem_certificate(data, Subject::Vcek);
    if let Ok(certs) = pem_certificates(data, Subject::Ask) {
        assert!(!certs.is_empty() && certs.len() <= MAX_CERTIFICATES);
    }
});
