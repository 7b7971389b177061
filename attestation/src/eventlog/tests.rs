#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use super::runtime::{cocoon_records, RuntimeLog};
use super::*;
use crate::test_vectors;
use base64::Engine as _;
use serde_json::Value;

const ZERO: &str = "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";

/// (file, RTMR0, RTMR1, RTMR2) from shared/vectors/README.md (RTMR3 zero). CCEL_data_gcp's
/// full values are those of the source repository's test (the README abbreviates them).
const REPLAYS: [(&str, &str, &str, &str); 6] = [
    ("CCEL_data", "2dc712306a963eadb894ad47dbaa17df44814151555aee11cbb843becca88950ffd079664902e6f22c66f7c8213543f4", "0fa3be56af61208bbd179dc7b124988eb929319154663c539d6f46445ecac2fec287075047ff7bd1922829fec28cd3cf", ZERO),
    ("CCEL_data_ovmf", "8566f998798db09443b244c62de9a3041fb02e2e6936c4396d784bba2e90177329ec5aba3bb484404f2ab9cc90abe193", "775b9f6bfe99f8a31396f0d0218e67ffa796d3b96ccf961cbb0deba48c79c00f082cda1a5567c1c16305f1fc210c13c6", "94eaf7a7bf398ed8d888c91057ae0261802e4f3df084213a76ca7f0b5055ac9d2241de43cd58d9e8b49c503bbf25f34a"),
    ("CCEL_data_grub", "cec0a104f691f60da2387fea3c2de00c4ac035e2bb479ff02edcce69039d9e9907f0b3e55031da3dc7038f423adebd79", "6c289e0c62182d41ebe97bdbc9872d10998a08eaa86adcdc684001a363207ee72942c7522cdf00a4bbc3d784bed7b670", "08919d017ba0e52cd6d966351c7de16fe76c1d3d3d3da4554239e4c7d16cb8b82a94e7eaea3a0e6e18eb690b999fd31e"),
    ("CCEL_data_grub_gke", "bc9945139042cf2cc75caf920aa57f14884ecfd7e893bccc51250c8ce90eb53ce72741e6adaa18183eb1331a87d4544a", "c17cb288a4dee302bb9ed8d27257a168f3264ad68cab53757f37eeaa7039657fa887cad65cf910e0fdc435ff110f8a7b", "334aeba2c985f8886cea97d1ecffbd512769d528b9a94009583db667ad7d2faa7d37fa145d75b192ceee2d2f10b2eb6d"),
    ("CCEL_data_gcp", "3300980705adf09d28b707b79699d9874892164280832be2c386a715b6e204e0897fb564a064f810659207ba862b304f", "204d49f78d29918fe7b2f694e76653861a0c2a018987d2c3a54266eff737232524cf0af68c4d180e2f8c2c0937f21967", ZERO),
    ("ccel.bin", "274c2344116db7c663470693b5ba62b8621eac28cb41d2f816ddf188f9f423f900a1c44d32386fd3c993dc814e62af9d", "bdcf4ee0f7fdfe7c73fbb19ded73193aee23a6726b86d3b282ea097cf4c9ed7a0db21b5c1ccd513e410d90e310836b26", ZERO),
];

fn expected(file: &str) -> Rtmrs {
    let (_, r0, r1, r2) = REPLAYS.iter().find(|(f, ..)| *f == file).unwrap();
    let mut out = [[0u8; 48]; 4];
    for (slot, hex_value) in out.iter_mut().zip([r0, r1, r2, &ZERO]) {
        slot.copy_from_slice(&hex::decode(hex_value).unwrap());
    }
    out
}

fn log(file: &str) -> EventLog {
    EventLog::parse(&test_vectors::read(&format!("eventlog/{file}"))).unwrap()
}

#[test]
fn every_ccel_vector_replays_to_its_published_rtmrs() {
    for (file, ..) in REPLAYS {
        let replayed = log(file).replay().unwrap();
        assert_eq!(replayed, expected(file), "{file}");
        assert!(compare_rtmrs(&replayed, &expected(file)).is_empty());
    }
}

#[test]
fn a_changed_digit_in_any_expected_rtmr_is_a_mismatch_of_that_register() {
    for (file, ..) in REPLAYS {
        let replayed = log(file).replay().unwrap();
        for register in 0..4 {
            for byte in [0usize, 47] {
                let mut quote = expected(file);
                quote[register][byte] ^= 0x01;
                let mismatches = compare_rtmrs(&replayed, &quote);
                assert_eq!(mismatches.len(), 1, "{file} RTMR{register}");
                assert!(
                    matches!(&mismatches[0], Error::RtmrMismatch { register: r, .. } if *r == register)
                );
            }
        }
    }
}

/// Our parse in the normalised form of the source's `_out.json` files.
fn normalised(event: &Event) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let details = event.details();
    let mut d = serde_json::Map::new();
    if let Some(s) = &details.string {
        d.insert("string".into(), Value::from(s.clone()));
    }
    if let Some(v) = &details.variable {
        d.insert("unicode_name".into(), Value::from(v.name.clone()));
        d.insert("unicode_name_length".into(), Value::from(v.name_length));
        d.insert("variable_data".into(), Value::from(b64.encode(&v.data)));
        d.insert("variable_data_length".into(), Value::from(v.data.len()));
        // The source prints the GUID's bytes in log order, grouped 4-2-2-2-6.
        let g = hex::encode(v.guid);
        d.insert(
            "variable_name".into(),
            Value::from(format!(
                "{}-{}-{}-{}-{}",
                &g[0..8],
                &g[8..12],
                &g[12..16],
                &g[16..20],
                &g[20..32]
            )),
        );
    }
    if let Some(paths) = &details.device_paths {
        d.insert("device_paths".into(), Value::from(paths.clone()));
    }
    serde_json::json!({
        "details": Value::Object(d),
        "digest_matches_event": event.digest_matches_data(),
        "digests": event.digests.iter().map(|dg| serde_json::json!({
            "alg": algorithm_name(dg.algorithm).unwrap(),
            "digest": hex::encode(&dg.value),
        })).collect::<Vec<_>>(),
        "event": b64.encode(&event.data),
        "index": event.mr_index,
        "type_name": event_type_label(event.event_type),
    })
}

#[test]
fn parsed_events_equal_the_published_parses_field_by_field() {
    for file in [
        "CCEL_data",
        "CCEL_data_ovmf",
        "CCEL_data_grub",
        "CCEL_data_grub_gke",
    ] {
        let published: Value =
            serde_json::from_slice(&test_vectors::read(&format!("eventlog/{file}_out.json")))
                .unwrap();
        let published = published["uefi_event_logs"].as_array().unwrap();
        let ours = log(file);
        assert_eq!(ours.events.len(), published.len(), "{file}: event count");
        for (i, (event, want)) in ours.events.iter().zip(published).enumerate() {
            let got = normalised(event);
            for field in [
                "index",
                "type_name",
                "digests",
                "event",
                "digest_matches_event",
                "details",
            ] {
                assert_eq!(got[field], want[field], "{file} event {i} field {field}");
            }
        }
    }
}

#[test]
fn dstack_ccel_events_equal_its_snapshot() {
    let snap = String::from_utf8(test_vectors::read(
        "eventlog/cc_eventlog__tests__parse_ccel.snap",
    ))
    .unwrap();
    // The insta snapshot's Debug form: imr_index, event_type, digests (hex), event (hex).
    let mut want: Vec<(u32, u32, Vec<String>, String)> = Vec::new();
    let mut digests_open = false;
    for line in snap.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("imr_index: ") {
            want.push((
                v.trim_end_matches(',').parse().unwrap(),
                0,
                vec![],
                String::new(),
            ));
        } else if let Some(v) = line.strip_prefix("event_type: ") {
            want.last_mut().unwrap().1 = v.trim_end_matches(',').parse().unwrap();
        } else if line == "digests: [" {
            digests_open = true;
        } else if digests_open && line.starts_with(']') {
            digests_open = false;
        } else if digests_open {
            let d = line.trim_end_matches(',').trim_matches('"').to_string();
            want.last_mut().unwrap().2.push(d);
        } else if let Some(v) = line.strip_prefix("event: ") {
            want.last_mut().unwrap().3 = v.trim_end_matches(',').trim_matches('"').to_string();
        }
    }
    assert_eq!(want.len(), 18);
    let ours = log("ccel.bin");
    assert_eq!(ours.events.len(), want.len());
    for (event, (imr, ty, digests, data)) in ours.events.iter().zip(&want) {
        assert_eq!(event.mr_index, *imr);
        assert_eq!(event.event_type, *ty);
        let ours_digests: Vec<String> = event
            .digests
            .iter()
            .map(|d| hex::encode(&d.value))
            .collect();
        assert_eq!(&ours_digests, digests);
        assert_eq!(&hex::encode(&event.data), data);
    }
}

#[test]
fn the_spec_id_event_declares_sha384_only() {
    let l = log("CCEL_data_ovmf");
    assert_eq!(l.spec_id.algorithms, vec![(ALG_SHA384, 48)]);
    assert_eq!(l.spec_id.spec_version_major, 2);
    assert_eq!(log("CCEL_data").spec_id.vendor_info, b"td-shim".to_vec());
}

#[test]
fn every_truncation_of_a_real_log_is_rejected_as_truncated_without_panicking() {
    let bytes = test_vectors::read("eventlog/CCEL_data_ovmf");
    let end = bytes.len() - 63416; // the log proper; the rest is 0xFF padding
    for cut in 0..end {
        let r = EventLog::parse(&bytes[..cut]);
        // A cut at an event boundary is a shorter, valid log.
        if let Err(e) = r {
            assert!(
                matches!(
                    e,
                    Error::Truncated {
                        subject: Subject::EventLog,
                        ..
                    }
                ),
                "cut {cut}: {e:?}"
            );
        }
    }
    assert!(matches!(
        EventLog::parse(&bytes[..end - 1]),
        Err(Error::Truncated { .. })
    ));
}

#[test]
fn garbage_after_the_padding_is_rejected_as_trailing_bytes() {
    let mut bytes = test_vectors::read("eventlog/CCEL_data_ovmf");
    let last = bytes.len() - 1;
    bytes[last] = 0x00;
    assert!(matches!(
        EventLog::parse(&bytes),
        Err(Error::TrailingBytes {
            subject: Subject::EventLog,
            count: 63416
        })
    ));
}

#[test]
fn a_log_without_the_spec_id_signature_is_rejected() {
    let mut bytes = test_vectors::read("eventlog/CCEL_data");
    bytes[32] = b'X';
    assert!(matches!(
        EventLog::parse(&bytes),
        Err(Error::EventLogSpecIdInvalid { .. })
    ));
    let mut bytes = test_vectors::read("eventlog/CCEL_data");
    bytes[4] = 4; // first event type EV_SEPARATOR
    assert!(matches!(
        EventLog::parse(&bytes),
        Err(Error::EventLogSpecIdInvalid { .. })
    ));
}

#[test]
fn a_sha384_declared_with_another_size_is_rejected() {
    let mut bytes = test_vectors::read("eventlog/CCEL_data_ovmf");
    // Spec ID: 16 signature + 4 class + 4 version bytes + 4 count, then id, size.
    let size_at = 32 + 16 + 4 + 4 + 4 + 2;
    bytes[size_at] = 32;
    assert!(matches!(
        EventLog::parse(&bytes),
        Err(Error::EventLogSpecIdInvalid { .. })
    ));
}

#[test]
fn a_digest_of_an_undeclared_algorithm_is_rejected() {
    let mut bytes = test_vectors::read("eventlog/CCEL_data_ovmf");
    let spec_size = u32::from_le_bytes(bytes[28..32].try_into().unwrap()) as usize;
    let first = 32 + spec_size;
    bytes[first + 12] = 0x0B; // SHA-256 where the log declares SHA-384 only
    assert!(matches!(
        EventLog::parse(&bytes),
        Err(Error::EventLogUnknownAlgorithm { algorithm: 0x000B })
    ));
}

#[test]
fn an_event_for_mr_index_5_is_refused_at_replay() {
    let mut bytes = test_vectors::read("eventlog/CCEL_data_ovmf");
    let spec_size = u32::from_le_bytes(bytes[28..32].try_into().unwrap()) as usize;
    let first = 32 + spec_size;
    bytes[first] = 5;
    let l = EventLog::parse(&bytes).unwrap();
    assert!(matches!(
        l.replay(),
        Err(Error::EventLogMrIndexOutOfRange { index: 5 })
    ));
}

#[test]
fn an_oversized_log_is_refused() {
    let bytes = vec![0u8; MAX_EVENT_LOG + 1];
    assert!(matches!(
        EventLog::parse(&bytes),
        Err(Error::InputTooLarge { .. })
    ));
}

#[test]
fn cocoon_records_replay_to_the_published_rtmr3() {
    let tree = "3498b88b6744207aa94ee56d84f5b00c3f126fe14756fb5c1b07a445b9eebb1e";
    let log = cocoon_records(tree);
    let mut rtmrs = [[0u8; 48]; 4];
    log.replay_onto(&mut rtmrs);
    assert_eq!(
        hex::encode(rtmrs[3]),
        "89f99c3435691f7f418be754b5a5bdfea51c76dd73919268397ce73037e4c8ca7dcab7e5f0500c699e3e81dec078da39"
    );
    // The text form parses back to the same records.
    let text = log.to_text();
    assert!(text.contains("rtmr3 text cocoon:spec.tree=3498b88b"));
    assert_eq!(RuntimeLog::parse(text.as_bytes()).unwrap(), log);
}

#[test]
fn a_sha384_record_extends_its_digest() {
    let digest = Sha384::digest(b"cocoon:tdx_inited");
    let text = format!("rtmr3 sha384 {} marker\n", hex::encode(digest));
    let a = RuntimeLog::parse(text.as_bytes()).unwrap();
    let b = RuntimeLog::parse(b"rtmr3 text cocoon:tdx_inited").unwrap();
    let (mut ra, mut rb) = ([[0u8; 48]; 4], [[0u8; 48]; 4]);
    a.replay_onto(&mut ra);
    b.replay_onto(&mut rb);
    assert_eq!(ra, rb);
    assert_eq!(a.entries[0].label.as_deref(), Some("marker"));
}

#[test]
fn malformed_runtime_lines_name_their_line() {
    for (text, line) in [
        ("rtmr3 text ok\nrtmr4 text x", 2),
        ("# c\n\nrtmr3 sha384 abcd", 3),
        ("rtmr3 sha384 zz", 1),
        ("rtmr3 digest 00", 1),
        ("rtmr3", 1),
        ("rtmr3 text a\r\n", 1),
    ] {
        let e = RuntimeLog::parse(text.as_bytes()).unwrap_err();
        assert!(
            matches!(e, Error::RuntimeLogLineInvalid { line: l, .. } if l == line),
            "{text:?}: {e:?}"
        );
    }
    assert!(matches!(
        RuntimeLog::parse(&[0xff, 0xfe]),
        Err(Error::Malformed {
            subject: Subject::RuntimeLog,
            ..
        })
    ));
}

#[test]
fn device_paths_and_guids_print_in_uefi_text_form() {
    let g: [u8; 16] = hex::decode("61dfe48bca93d211aa0d00e098032b8c")
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(
        details::efi_guid(&g),
        "8BE4DF61-93CA-11D2-AA0D-00E098032B8C"
    );
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_after_a_valid_spec_id_never_panic(tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        let bytes = test_vectors::read("eventlog/CCEL_data_ovmf");
        let spec_size = u32::from_le_bytes(bytes[28..32].try_into().unwrap()) as usize;
        let mut input = bytes[..32 + spec_size].to_vec();
        input.extend_from_slice(&tail);
        if let Ok(l) = EventLog::parse(&input) {
            let _ = l.replay();
            for e in &l.events { let _ = e.details(); }
        }
    }
}

#[test]
fn a_verified_real_quote_with_other_rtmrs_fails_the_check_on_rtmr0_and_rtmr1() {
    let quote = crate::tdx::Quote::parse(&test_vectors::read("tdx/tdx_quote_4.dat")).unwrap();
    let collateral = crate::tdx::Collateral::from_json(&test_vectors::read(
        "tdx/DERIVED_dcapqvl_collateral_SPR_E4.json",
    ))
    .unwrap();
    let verified = crate::tdx::TdxVerifier::new()
        .verify(&quote, &collateral, 1_688_173_200)
        .unwrap();
    let replayed = log("CCEL_data").replay().unwrap();
    let errors = check_against_quote(&replayed, &verified).unwrap_err();
    let registers: Vec<usize> = errors
        .iter()
        .map(|e| match e {
            Error::RtmrMismatch { register, .. } => *register,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(registers, [0, 1]);
}

#[cfg(feature = "sim")]
#[test]
fn a_verified_quote_carrying_the_replayed_rtmrs_passes_the_check() {
    use crate::sim::tdx::{SimTdReport, SimTdx};
    let sim = SimTdx::new().unwrap();
    let mut rtmrs = log("CCEL_data_ovmf").replay().unwrap();
    cocoon_records("3498b88b6744207aa94ee56d84f5b00c3f126fe14756fb5c1b07a445b9eebb1e")
        .replay_onto(&mut rtmrs);
    let td = SimTdReport {
        rt_mr: rtmrs,
        ..SimTdReport::default()
    };
    let quote = crate::tdx::Quote::parse(&sim.issue_quote(&td).unwrap()).unwrap();
    let verified = crate::tdx::TdxVerifier::with_roots(crate::sim::tdx::anchors_with_intel())
        .verify(
            &quote,
            &sim.collateral().unwrap(),
            crate::sim::SIM_VALID_FROM + 3600,
        )
        .unwrap();
    assert_eq!(check_against_quote(&rtmrs, &verified), Ok(()));
    let mut other = rtmrs;
    other[3][0] ^= 1;
    assert!(matches!(
        check_against_quote(&other, &verified)
            .unwrap_err()
            .as_slice(),
        [Error::RtmrMismatch { register: 3, .. }]
    ));
}
