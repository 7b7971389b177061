//! Profiling aid for the cold path of TDX verification (nothing cached between calls) against
//! `dcap_qvl::verify::verify` on the same quote and collateral, one at a time so that a
//! profiler sees only one of them:
//!
//! ```text
//! cargo build --release -p cocoon-attestation --example cold
//! perf record -g ./target/release/examples/cold ours   # or: dcap
//! ```
//!
//! The comparison itself is the ignored test `bench_tdx_quote_against_dcap_qvl`.
#![allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]

use cocoon_attestation::tdx::{Collateral, Quote, TdxVerifier};

/// The vectors' verification time for `tdx_quote` (see shared/vectors/README.md).
const AT: i64 = 1_752_919_234;
const CALLS: u32 = 3000;

fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors/tdx/");
    let raw = std::fs::read(format!("{dir}tdx_quote")).unwrap();
    let json = std::fs::read(format!("{dir}tdx_quote_collateral.json")).unwrap();
    let coll = Collateral::from_json(&json).unwrap();
    let which = std::env::args().nth(1).unwrap_or_else(|| "ours".into());
    let verifier = TdxVerifier::new();
    let t = std::time::Instant::now();
    for _ in 0..CALLS {
        if which == "dcap" {
            dcap_qvl::verify::verify(&raw, &coll.inner, AT as u64).unwrap();
        } else {
            verifier.clear_cache();
            verifier
                .verify(&Quote::parse(&raw).unwrap(), &coll, AT)
                .unwrap();
        }
    }
    println!("{which}: {:?} per call", t.elapsed() / CALLS);
}
