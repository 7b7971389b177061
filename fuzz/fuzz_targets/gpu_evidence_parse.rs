//! NVIDIA GPU evidence parser: never panics; whatever parses ends in its 96-byte signature.
#![no_main]

use cocoon_attestation::gpu::{GpuEvidence, SIGNATURE_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(evidence) = GpuEvidence::parse(data) {
        assert!(data.len() >= SIGNATURE_LEN);
        assert_eq!(&evidence.signature[..], &data[data.len() - SIGNATURE_LEN..]);
    }
});
