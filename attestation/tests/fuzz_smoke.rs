//! A short, deterministic stand-in for the cargo-fuzz targets in `fuzz/` (which need nightly):
//! every parser of untrusted input gets the real vectors plus a few thousand mutations of them
//! (bit flips, truncations, extensions, insertions, length-field rewrites, splices) and must
//! return — never panic — and must reject inputs whose length cannot be right.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use cocoon_attestation::encoding::{binary_or_hex, der_or_pem_certificate, pem_certificates};
use cocoon_attestation::policy::Policy;
use cocoon_attestation::snp::report::{REPORT_LEN, SIGNED_LEN};
use cocoon_attestation::snp::SnpReport;
use cocoon_attestation::tdx::{Collateral, Quote};
use cocoon_attestation::Subject;
use std::path::PathBuf;

fn vector(relative: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors")
        .join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn hex_vector(relative: &str) -> Vec<u8> {
    binary_or_hex(&vector(relative), Subject::Quote).unwrap()
}

/// Marsaglia's xorshift64: deterministic mutations without a dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// Values that tend to break length and offset handling.
const INTERESTING: [u32; 10] = [
    0,
    1,
    0x7f,
    0xff,
    0x100,
    0x7fff,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0xffff_ffff,
];

fn mutate(rng: &mut XorShift, seed: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    let len = data.len();
    match rng.below(8) {
        0 => {
            for _ in 0..=rng.below(8) {
                if len > 0 {
                    let i = rng.below(len);
                    data[i] ^= rng.byte() | 1;
                }
            }
        }
        1 => data.truncate(rng.below(len)),
        2 => {
            for _ in 0..=rng.below(64) {
                data.push(rng.byte());
            }
        }
        3 => {
            let at = rng.below(len + 1);
            data.insert(at, rng.byte());
        }
        4 => {
            if len > 0 {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(64)).min(len);
                data.drain(start..end);
            }
        }
        5 => {
            // Overwrite a little-endian u16 or u32: hits the length and type fields.
            let value = INTERESTING[rng.below(INTERESTING.len())].to_le_bytes();
            let width = if rng.below(2) == 0 { 2 } else { 4 };
            if len >= width {
                let at = rng.below(len - width + 1);
                data[at..at + width].copy_from_slice(&value[..width]);
            }
        }
        6 => {
            // Splice: copy a chunk of the input over another place.
            if len > 1 {
                let from = rng.below(len);
                let to = rng.below(len);
                let n = (1 + rng.below(128)).min(len - from).min(len - to);
                let chunk = data[from..from + n].to_vec();
                data[to..to + n].copy_from_slice(&chunk);
            }
        }
        _ => {
            if len > 0 {
                let i = rng.below(len);
                data[i] = if rng.below(2) == 0 { 0 } else { 0xff };
            }
        }
    }
    data
}

fn seed_quotes() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("tdx_quote", vector("tdx/tdx_quote")),
        ("sgx_quote", vector("tdx/sgx_quote")),
        ("tdx_quote_outdated (v5)", vector("tdx/tdx_quote_outdated")),
        ("tdx_quote_4.dat", vector("tdx/tdx_quote_4.dat")),
        ("tdx_prod_quote_SPR_E4.dat (text tail removed)", spr_e4()),
        ("occlum_quote.dat", vector("tdx/occlum_quote.dat")),
        ("az_td_quote.bin", vector("tdx/az_td_quote.bin")),
        ("quote_hex.txt", hex_vector("tdx/quote_hex.txt")),
    ]
}

/// go-tdx-guest appended a line of text to this quote; the quote is what precedes it.
fn spr_e4() -> Vec<u8> {
    let raw = vector("tdx/tdx_prod_quote_SPR_E4.dat");
    raw.strip_suffix(b"\nextra bytes(only for testing purpose)\n")
        .expect("the known text tail")
        .to_vec()
}

fn seed_reports() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("attestation.bin", vector("snp/attestation.bin")),
        ("test-report.bin", vector("snp/test-report.bin")),
        (
            "DERIVED_e2e_snp_report.bin",
            vector("snp/DERIVED_e2e_snp_report.bin"),
        ),
        ("report_milan.hex", hex_vector("snp/report_milan.hex")),
    ]
}

/// What any successfully parsed quote must satisfy.
fn check_parsed_quote(input: &[u8]) {
    if let Ok(quote) = Quote::parse(input) {
        assert!(
            input.len() <= Quote::MAX_SIZE,
            "{} bytes parsed",
            input.len()
        );
        assert!(
            input.starts_with(&quote.signed_bytes),
            "signed bytes are not a prefix of the input"
        );
        assert!(quote.trailing_zero_padding < input.len());
    }
}

#[test]
fn quote_parser_survives_mutations_of_real_quotes() {
    let mut rng = XorShift(0x5eed_0001_c0c0_0001);
    let mut seeds = seed_quotes();
    seeds.push((
        "raw SPR_E4 with text tail",
        vector("tdx/tdx_prod_quote_SPR_E4.dat"),
    ));
    for (_, seed) in seeds {
        check_parsed_quote(&seed);
        for _ in 0..400 {
            check_parsed_quote(&mutate(&mut rng, &seed));
        }
    }
}

#[test]
fn quote_parser_survives_random_and_degenerate_input() {
    let mut rng = XorShift(0x5eed_0002);
    for len in [0usize, 1, 2, 47, 48, 49, 431, 432, 632, 1020, 4096] {
        check_parsed_quote(&vec![0u8; len]);
        check_parsed_quote(&vec![0xffu8; len]);
        let random: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
        check_parsed_quote(&random);
    }
    let oversized = vec![0u8; Quote::MAX_SIZE + 1];
    assert!(Quote::parse(&oversized).is_err());
}

#[test]
fn snp_report_of_any_other_length_is_rejected() {
    let mut rng = XorShift(0x5eed_0003);
    for (name, seed) in seed_reports() {
        assert_eq!(seed.len(), REPORT_LEN, "{name}");
        let report = SnpReport::parse(&seed).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(
            report.signed_bytes.as_slice(),
            &seed[..SIGNED_LEN],
            "{name}"
        );
        for cut in [0, 1, SIGNED_LEN, REPORT_LEN - 1] {
            let err = SnpReport::parse(&seed[..cut]);
            assert!(err.is_err(), "{name} truncated to {cut} parsed");
        }
        let mut longer = seed.clone();
        longer.push(0);
        assert!(SnpReport::parse(&longer).is_err(), "{name} + 1 byte parsed");
        for _ in 0..500 {
            let mutated = mutate(&mut rng, &seed);
            let parsed = SnpReport::parse(&mutated);
            if mutated.len() != REPORT_LEN {
                assert!(parsed.is_err(), "{name}: {} bytes parsed", mutated.len());
            } else if let Ok(report) = parsed {
                assert_eq!(report.signed_bytes.as_slice(), &mutated[..SIGNED_LEN]);
            }
        }
    }
}

#[test]
fn policy_parser_survives_mutated_toml() {
    let seeds: [&[u8]; 4] = [
        b"version = 1\n[tdx]\nallow_debug = true\nmrtd = [\"00\"]\n",
        b"version = 1\n[snp]\nmeasurement = [\"ab\"]\nvmpl_max = 0\n",
        b"version = 1\n[tdx]\nallowed_tcb_statuses = [\"UpToDate\"]\n[snp]\nallow_debug = false\n",
        b"",
    ];
    let examples: Vec<Vec<u8>> = ["default", "policy", "tdx", "sgx", "snp"]
        .iter()
        .map(|name| {
            let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../docs/examples")
                .join(format!("{name}.toml"));
            std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .collect();
    for (example, name) in examples
        .iter()
        .zip(["default", "policy", "tdx", "sgx", "snp"])
    {
        let text = std::str::from_utf8(example).unwrap();
        assert!(Policy::from_toml(text).is_ok(), "docs/examples/{name}.toml");
    }
    let mut rng = XorShift(0x5eed_0004);
    let mut parsed_text = 0usize;
    for seed in seeds.into_iter().chain(examples.iter().map(Vec::as_slice)) {
        let _ = Policy::from_toml(std::str::from_utf8(seed).unwrap());
        for _ in 0..300 {
            let mutated = mutate(&mut rng, seed);
            if let Ok(text) = std::str::from_utf8(&mutated) {
                parsed_text += 1;
                let _ = Policy::from_toml(text);
            }
        }
    }
    assert!(
        parsed_text > 500,
        "too few mutations were UTF-8: {parsed_text}"
    );
}

#[test]
fn encoding_helpers_survive_mutated_hex_and_pem() {
    let seeds = [
        vector("tdx/quote_hex.txt"),
        vector("snp/report_milan.hex"),
        vector("tdx/trusted_root.pem"),
        vector("snp/ask_ark_milan.pem"),
        vector("snp/vcek_milan.der"),
    ];
    let mut rng = XorShift(0x5eed_0005);
    for seed in &seeds {
        for _ in 0..200 {
            let mutated = mutate(&mut rng, seed);
            if let Ok(decoded) = binary_or_hex(&mutated, Subject::Quote) {
                assert!(decoded.len() <= mutated.len());
            }
            let _ = der_or_pem_certificate(&mutated, Subject::Vcek);
            if let Ok(certs) = pem_certificates(&mutated, Subject::Ask) {
                assert!(!certs.is_empty());
            }
        }
    }
}

#[test]
fn truncated_or_extended_real_quotes_are_rejected() {
    let mut rng = XorShift(0x5eed_0006);
    for (name, seed) in seed_quotes() {
        let quote = Quote::parse(&seed).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        // Everything before the zero padding is quote data: any cut into it must fail.
        let data_len = seed.len() - quote.trailing_zero_padding;
        let mut cuts: Vec<usize> = vec![0, 1, 47, 48, data_len / 2, data_len - 1];
        cuts.extend((0..40).map(|_| rng.below(data_len)));
        for cut in cuts {
            assert!(
                Quote::parse(&seed[..cut]).is_err(),
                "{name} truncated to {cut} of {data_len} bytes parsed"
            );
        }
        // Non-zero bytes after the quote are garbage, not padding.
        for tail in [&[1u8][..], &[0, 0, 0x80], &[0xff; 16]] {
            let mut extended = seed.clone();
            extended.extend_from_slice(tail);
            assert!(Quote::parse(&extended).is_err(), "{name} + {tail:?} parsed");
        }
    }
}

#[test]
fn collateral_json_decoder_survives_mutations_of_real_collateral() {
    let seeds = [
        "tdx/tdx_quote_collateral.json",
        "tdx/sgx_quote_collateral.json",
        "tdx/tdx_quote_outdated_collateral.json",
        "tdx/quote_collateral.json",
        "tdx/DERIVED_dcapqvl_collateral_SPR_E4.json",
    ];
    let mut rng = XorShift(0x5eed_0007);
    for name in seeds {
        let seed = vector(name);
        assert!(Collateral::from_json(&seed).is_ok(), "{name}");
        // Cut into the JSON itself, not its trailing newline.
        let end = seed.trim_ascii_end().len();
        for cut in [0, 1, end / 2, end - 1] {
            assert!(
                Collateral::from_json(&seed[..cut]).is_err(),
                "{name} truncated to {cut} bytes decoded"
            );
        }
        for _ in 0..150 {
            let _ = Collateral::from_json(&mutate(&mut rng, &seed));
        }
    }
    let oversized = vec![b' '; Collateral::MAX_SIZE + 1];
    assert!(Collateral::from_json(&oversized).is_err());
}

#[test]
fn gpu_evidence_parser_survives_mutations_of_the_h100_report() {
    use cocoon_attestation::gpu::{self, GpuEvidence, GpuTrustAnchors};
    let seed = hex_vector("gpu/hopperAttestationReport.txt");
    let chain = gpu::parse_pem_chain(&vector("gpu/hopper_cert_chain_case1.txt")).unwrap();
    let anchors = GpuTrustAnchors::nvidia().unwrap();
    let mut rng = XorShift(0x6770_755f_6675_7a7a);
    let mut parsed = 0;
    for _ in 0..400 {
        let input = mutate(&mut rng, &seed);
        if let Ok(ev) = GpuEvidence::parse(&input) {
            parsed += 1;
            // Whatever parses has exactly one 96-byte signature at the end.
            assert_eq!(ev.signature[..], input[input.len() - 96..]);
            // A mutated report never verifies (the mutation changed signed or signature bytes).
            if input != seed {
                let err = gpu::verify(&input, &chain, &anchors, None, 1_767_225_600).unwrap_err();
                assert!(
                    matches!(
                        err,
                        cocoon_attestation::Error::GpuSignatureInvalid
                            | cocoon_attestation::Error::GpuFwidMismatch { .. }
                            | cocoon_attestation::Error::GpuFwidMissing { .. }
                            | cocoon_attestation::Error::GpuEvidenceMalformed { .. }
                    ),
                    "{err:?}"
                );
            }
        }
    }
    assert!(
        parsed > 0,
        "no mutation parsed: the mutator never kept the layout"
    );
}
