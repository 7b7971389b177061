//! Collateral JSON decoder: never panics on any bytes.
#![no_main]

use cocoon_attestation::tdx::Collateral;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Collateral::from_json(data);
});
