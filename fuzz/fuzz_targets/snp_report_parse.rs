//! SEV-SNP report parser: never panics; only exactly REPORT_LEN bytes parse.
#![no_main]

use cocoon_attestation::snp::report::{REPORT_LEN, SIGNED_LEN};
use cocoon_attestation::snp::SnpReport;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = SnpReport::parse(data) {
        assert_eq!(data.len(), REPORT_LEN);
        assert_eq!(report.signed_bytes.as_slice(), &data[..SIGNED_LEN]);
    }
});
