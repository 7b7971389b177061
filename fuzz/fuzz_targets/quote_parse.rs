//! Intel DCAP quote parser: never panics; what parses is within the size limit and signs a
//! prefix of the input.
#![no_main]

use cocoon_attestation::tdx::Quote;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(quote) = Quote::parse(data) {
        assert!(data.len() <= Quote::MAX_SIZE);
        assert!(data.starts_with(&quote.signed_bytes));
        assert!(quote.trailing_zero_padding < data.len());
    }
});
