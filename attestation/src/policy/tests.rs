//! Policy tests. Verified evidence types are sealed (`non_exhaustive`), so the tests build them
//! here: a baseline that passes a policy pinning all of its values, and helpers that change one
//! field at a time (Oak's pattern). Real evidence tests are at the end.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use super::tdx::{
    SGX_ATTR_DEBUG, TD_ATTR_DEBUG, TD_ATTR_MIGRATABLE, TD_ATTR_RESERVED, TD_ATTR_SEPT_VE_DISABLE,
    TD_ATTR_SERVTD_EXT,
};
use super::*;
use crate::snp::VerifiedSnpReport;
use crate::snp::{Generation, GuestPolicy, SigningKey, SnpReport, TcbParts, TcbVersion};
use crate::tdx::quote::{CertificationData, EnclaveReport, QuoteSignature};
use crate::tdx::{Quote, QuoteBody, QuoteHeader, TcbStatus, TdReport10, TdReport15, VerifiedQuote};

// ------------------------------------------------------------------ baseline evidence

const XFAM: [u8; 8] = [0xe7, 0x02, 0x06, 0, 0, 0, 0, 0];

fn td10() -> TdReport10 {
    TdReport10 {
        tee_tcb_svn: [5, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        mr_seam: [0x11; 48],
        mr_signer_seam: [0; 48],
        seam_attributes: [0; 8],
        td_attributes: TD_ATTR_SEPT_VE_DISABLE.to_le_bytes(),
        xfam: XFAM,
        mr_td: [0xa1; 48],
        mr_config_id: [0xc0; 48],
        mr_owner: [0xc1; 48],
        mr_owner_config: [0xc2; 48],
        rt_mr: [[0xb0; 48], [0xb1; 48], [0xb2; 48], [0xb3; 48]],
        report_data: [0x42; 64],
    }
}

fn enclave() -> EnclaveReport {
    EnclaveReport {
        cpu_svn: [3; 16],
        misc_select: 0,
        // INIT | MODE64BIT, not DEBUG.
        attributes: [0x05, 0, 0, 0, 0, 0, 0, 0, 0x03, 0, 0, 0, 0, 0, 0, 0],
        mr_enclave: [0xe1; 32],
        mr_signer: [0xe2; 32],
        isv_prod_id: 7,
        isv_svn: 4,
        report_data: [0x42; 64],
    }
}

fn quote(version: u16, tee_type: u32, body_type: u16, body: QuoteBody) -> Quote {
    Quote {
        header: QuoteHeader {
            version,
            attestation_key_type: 2,
            tee_type,
            qe_svn: 0,
            pce_svn: 0,
            qe_vendor_id: [0x93; 16],
            user_data: [0; 20],
        },
        body_type,
        body,
        signature: QuoteSignature {
            ecdsa_signature: [0; 64],
            attestation_key: [0; 64],
            qe_report: enclave(),
            qe_report_raw: vec![0; 384],
            qe_report_signature: [0; 64],
            qe_auth_data: Vec::new(),
            certification_data: CertificationData {
                cert_type: 5,
                data: Vec::new(),
            },
        },
        signed_bytes: Vec::new(),
        trailing_zero_padding: 0,
    }
}

fn verified_quote(quote: Quote) -> VerifiedQuote {
    VerifiedQuote {
        quote,
        tcb_status: TcbStatus::UpToDate,
        advisory_ids: Vec::new(),
        fmspc: [0xb0, 0xc0, 0x6f, 0, 0, 0],
        pce_id: [0, 0],
        root: TrustRoot::Intel,
        collateral_valid_from: 0,
        collateral_valid_until: 0,
        tcb_date: "2024-03-13T00:00:00Z".into(),
        tcb_evaluation_data_number: 17,
        current_tcb_status: None,
        relaunch_advised: false,
        qe_tcb_status: TcbStatus::UpToDate,
    }
}

/// A TD 1.0 quote (v4) passing the pinned TDX policy.
fn tdx() -> VerifiedQuote {
    verified_quote(quote(4, 0x81, 2, QuoteBody::Td10(td10())))
}

/// The baseline TDX quote with one change to its TD report.
fn tdx_with(change: impl FnOnce(&mut TdReport10)) -> VerifiedQuote {
    let mut td = td10();
    change(&mut td);
    verified_quote(quote(4, 0x81, 2, QuoteBody::Td10(td)))
}

/// A TD 1.5 quote (v5): the baseline plus TEE_TCB_SVN2 and MRSERVICETD.
fn tdx15_with(change: impl FnOnce(&mut TdReport15)) -> VerifiedQuote {
    let mut td = TdReport15 {
        base: td10(),
        tee_tcb_svn2: td10().tee_tcb_svn,
        mr_service_td: [0; 48],
    };
    change(&mut td);
    verified_quote(quote(5, 0x81, 3, QuoteBody::Td15(td)))
}

fn sgx_with(change: impl FnOnce(&mut EnclaveReport)) -> VerifiedQuote {
    let mut report = enclave();
    change(&mut report);
    verified_quote(quote(3, 0, 1, QuoteBody::SgxEnclave(report)))
}

fn sgx() -> VerifiedQuote {
    sgx_with(|_| {})
}

fn tcb(bootloader: u8, tee: u8, snp: u8, microcode: u8) -> TcbParts {
    TcbParts {
        fmc: None,
        bootloader,
        tee,
        snp,
        microcode,
    }
}

/// A Milan v2 report with AMD's default guest policy 0x30000 (SMT, reserved bit 17), VMPL 0.
fn snp() -> VerifiedSnpReport {
    let report = SnpReport {
        version: 2,
        guest_svn: 3,
        policy: GuestPolicy(0x30000),
        family_id: [0xf1; 16],
        image_id: [0xf2; 16],
        vmpl: 0,
        signature_algo: 1,
        current_tcb: TcbVersion { raw: 0 },
        platform_info: 1,
        author_key_en: false,
        mask_chip_key: false,
        signing_key: SigningKey::Vcek,
        report_data: [0x42; 64],
        measurement: [0x3a; 48],
        host_data: [0x3b; 32],
        id_key_digest: [0x3c; 48],
        author_key_digest: [0x3d; 48],
        report_id: [0; 32],
        report_id_ma: [0xff; 32],
        reported_tcb: TcbVersion { raw: 0 },
        cpuid_fam_id: None,
        cpuid_mod_id: None,
        cpuid_step: None,
        chip_id: [0x5c; 64],
        committed_tcb: TcbVersion { raw: 0 },
        current_build: 3,
        current_minor: 55,
        current_major: 1,
        committed_build: 3,
        committed_minor: 55,
        committed_major: 1,
        launch_tcb: TcbVersion { raw: 0 },
        launch_mit_vector: None,
        current_mit_vector: None,
        signature_r: [0; 72],
        signature_s: [0; 72],
        signed_bytes: Vec::new(),
    };
    let parts = tcb(3, 0, 8, 115);
    VerifiedSnpReport {
        report,
        generation: Generation::Milan,
        signing_key: SigningKey::Vcek,
        root: TrustRoot::Amd,
        reported_tcb: parts,
        current_tcb: parts,
        committed_tcb: parts,
        launch_tcb: parts,
    }
}

fn snp_with(change: impl FnOnce(&mut VerifiedSnpReport)) -> VerifiedSnpReport {
    let mut v = snp();
    change(&mut v);
    v
}

// ------------------------------------------------------------------ policies

/// A policy pinning every value of the TDX baseline.
fn pinned_tdx() -> String {
    let td = td10();
    let h = |b: &[u8]| format!("[\"{}\"]", hex::encode(b));
    format!(
        "version = 1\n[tdx]\nmrtd = {}\nrtmr0 = {}\nrtmr1 = {}\nrtmr2 = {}\nrtmr3 = {}\n\
         mr_config_id = {}\nmr_owner = {}\nmr_owner_config = {}\nmr_service_td = {}\n\
         xfam = {}\ntd_attributes = {}\nmin_tee_tcb_svn = \"{}\"\n\
         allowed_tcb_statuses = [\"UpToDate\"]\nallowed_advisory_ids = []\n",
        h(&td.mr_td),
        h(&td.rt_mr[0]),
        h(&td.rt_mr[1]),
        h(&td.rt_mr[2]),
        h(&td.rt_mr[3]),
        h(&td.mr_config_id),
        h(&td.mr_owner),
        h(&td.mr_owner_config),
        h(&[0u8; 48]),
        h(&td.xfam),
        h(&td.td_attributes),
        hex::encode(td.tee_tcb_svn),
    )
}

fn pinned_sgx() -> String {
    let e = enclave();
    format!(
        "version = 1\n[sgx]\nmr_enclave = [\"{}\"]\nmr_signer = [\"{}\"]\nisv_prod_id = {}\n\
         min_isv_svn = {}\nallowed_tcb_statuses = [\"UpToDate\"]\nallowed_advisory_ids = []\n",
        hex::encode(e.mr_enclave),
        hex::encode(e.mr_signer),
        e.isv_prod_id,
        e.isv_svn
    )
}

fn pinned_snp() -> String {
    let r = snp().report;
    let h = |b: &[u8]| format!("[\"{}\"]", hex::encode(b));
    format!(
        "version = 1\n[snp]\nmeasurement = {}\nhost_data = {}\nfamily_id = {}\nimage_id = {}\n\
         id_key_digest = {}\nauthor_key_digest = {}\nmin_guest_svn = {}\nmin_abi_major = 0\n\
         min_abi_minor = 0\nvmpl = [0]\nallowed_generations = [\"Milan\"]\n\
         [snp.min_tcb]\nbootloader = 3\ntee = 0\nsnp = 8\nmicrocode = 115\n\
         [snp.min_launch_tcb]\nbootloader = 3\ntee = 0\nsnp = 8\nmicrocode = 115\n",
        h(&r.measurement),
        h(&r.host_data),
        h(&r.family_id),
        h(&r.image_id),
        h(&r.id_key_digest),
        h(&r.author_key_digest),
        r.guest_svn,
    )
}

fn policy(text: &str) -> Policy {
    Policy::from_toml(text).unwrap_or_else(|e| panic!("policy must parse: {e}\n{text}"))
}

fn parse_err(text: &str) -> Error {
    Policy::from_toml(text).expect_err("policy must be refused")
}

fn tdx_failures(text: &str, v: &VerifiedQuote) -> Vec<Error> {
    policy(text).evaluate_tdx(v).failures
}

fn snp_failures(text: &str, v: &VerifiedSnpReport) -> Vec<Error> {
    policy(text).evaluate_snp(v).failures
}

/// The field of a `MeasurementNotAllowed` failure, for compact assertions.
fn not_allowed_field(e: &Error) -> Option<&'static str> {
    match e {
        Error::MeasurementNotAllowed { field, .. } => Some(field),
        _ => None,
    }
}

// ------------------------------------------------------------------ baselines pass

#[test]
fn default_policy_accepts_baseline_tdx_sgx_and_snp() {
    let p = Policy::default();
    assert_eq!(p.evaluate_tdx(&tdx()).failures, vec![]);
    assert_eq!(p.evaluate_tdx(&sgx()).failures, vec![]);
    assert_eq!(p.evaluate_snp(&snp()).failures, vec![]);
    assert!(p.evaluate_tdx(&tdx()).accepted());
}

#[test]
fn pinned_policies_accept_their_baselines() {
    assert_eq!(tdx_failures(&pinned_tdx(), &tdx()), vec![]);
    assert_eq!(tdx_failures(&pinned_sgx(), &sgx()), vec![]);
    assert_eq!(snp_failures(&pinned_snp(), &snp()), vec![]);
}

#[test]
fn version_only_policy_equals_default_policy() {
    assert_eq!(policy("version = 1"), Policy::default());
}

// ------------------------------------------------------------------ TDX: each pinned field

macro_rules! tdx_mismatch {
    ($name:ident, $field:literal, $change:expr) => {
        #[test]
        fn $name() {
            let failures = tdx_failures(&pinned_tdx(), &tdx_with($change));
            assert_eq!(failures.len(), 1, "{failures:?}");
            assert_eq!(
                not_allowed_field(&failures[0]),
                Some($field),
                "{failures:?}"
            );
        }
    };
}

tdx_mismatch!(tdx_mrtd_not_in_allowlist_is_rejected, "tdx.mrtd", |t| t
    .mr_td[0] ^=
    1);
tdx_mismatch!(tdx_rtmr0_not_in_allowlist_is_rejected, "tdx.rtmr0", |t| {
    t.rt_mr[0][47] ^= 1
});
tdx_mismatch!(tdx_rtmr1_not_in_allowlist_is_rejected, "tdx.rtmr1", |t| {
    t.rt_mr[1][0] ^= 1
});
tdx_mismatch!(tdx_rtmr2_not_in_allowlist_is_rejected, "tdx.rtmr2", |t| {
    t.rt_mr[2][9] ^= 1
});
tdx_mismatch!(tdx_rtmr3_not_in_allowlist_is_rejected, "tdx.rtmr3", |t| {
    t.rt_mr[3][5] ^= 1
});
tdx_mismatch!(
    tdx_mr_config_id_mismatch_is_rejected,
    "tdx.mr_config_id",
    |t| t.mr_config_id = [0; 48]
);
tdx_mismatch!(tdx_mr_owner_mismatch_is_rejected, "tdx.mr_owner", |t| t
    .mr_owner[1] ^=
    0x80);
tdx_mismatch!(
    tdx_mr_owner_config_mismatch_is_rejected,
    "tdx.mr_owner_config",
    |t| t.mr_owner_config[2] ^= 4
);
tdx_mismatch!(tdx_xfam_mismatch_is_rejected, "tdx.xfam", |t| t.xfam[2] =
    0x02);
// PKS (bit 30) is not checked by anything but the pinned attribute list.
tdx_mismatch!(
    tdx_td_attributes_mismatch_is_rejected,
    "tdx.td_attributes",
    |t| t.td_attributes[3] |= 0x40
);

#[test]
fn tdx_mismatch_reports_the_actual_value_in_hex() {
    let failures = tdx_failures(&pinned_tdx(), &tdx_with(|t| t.mr_td = [0xee; 48]));
    assert_eq!(
        failures,
        vec![Error::MeasurementNotAllowed {
            field: "tdx.mrtd",
            actual: "ee".repeat(48)
        }]
    );
}

#[test]
fn tdx_value_in_a_longer_allowlist_is_accepted() {
    let text = format!(
        "version = 1\n[tdx]\nmrtd = [\"{}\", \"{}\"]\n",
        "00".repeat(48),
        hex::encode(td10().mr_td)
    );
    assert_eq!(tdx_failures(&text, &tdx()), vec![]);
}

#[test]
fn tdx_mr_service_td_not_in_allowlist_is_rejected() {
    let text = format!(
        "version = 1\n[tdx]\nallow_service_td = true\nmr_service_td = [\"{}\"]\n",
        "5e".repeat(48)
    );
    let accepted = tdx15_with(|t| t.mr_service_td = [0x5e; 48]);
    assert_eq!(tdx_failures(&text, &accepted), vec![]);
    let other = tdx15_with(|t| t.mr_service_td = [0x5f; 48]);
    let failures = tdx_failures(&text, &other);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(not_allowed_field(&failures[0]), Some("tdx.mr_service_td"));
}

#[test]
fn three_mismatches_give_three_failures_in_schema_order() {
    let v = tdx_with(|t| {
        t.xfam[0] = 0;
        t.rt_mr[2][0] ^= 1;
        t.mr_td[0] ^= 1;
    });
    let fields: Vec<_> = tdx_failures(&pinned_tdx(), &v)
        .iter()
        .map(not_allowed_field)
        .collect();
    assert_eq!(
        fields,
        vec![Some("tdx.mrtd"), Some("tdx.rtmr2"), Some("tdx.xfam")]
    );
}

#[test]
fn every_kind_of_tdx_failure_is_returned_together() {
    let mut v = tdx_with(|t| {
        t.td_attributes = (TD_ATTR_DEBUG | TD_ATTR_MIGRATABLE).to_le_bytes();
        t.tee_tcb_svn[0] = 0;
        t.mr_owner[0] ^= 1;
    });
    v.tcb_status = TcbStatus::OutOfDate;
    v.advisory_ids = vec!["INTEL-SA-00837".into()];
    let failures = tdx_failures(&pinned_tdx(), &v);
    assert!(
        matches!(failures[0], Error::TcbStatusNotAllowed { ref status } if status == "OutOfDate"),
        "{failures:?}"
    );
    assert!(
        matches!(failures[1], Error::AdvisoryNotAllowed { ref id } if id == "INTEL-SA-00837"),
        "{failures:?}"
    );
    assert!(
        matches!(failures[2], Error::DebugNotAllowed),
        "{failures:?}"
    );
    assert!(
        matches!(failures[3], Error::SeptVeDisableRequired),
        "{failures:?}"
    );
    assert!(
        matches!(failures[4], Error::FeatureNotAllowed { .. }),
        "{failures:?}"
    );
    assert!(
        matches!(
            failures[5],
            Error::BelowMinimum {
                field: "tdx.min_tee_tcb_svn",
                ..
            }
        ),
        "{failures:?}"
    );
    assert_eq!(not_allowed_field(&failures[6]), Some("tdx.mr_owner"));
    assert_eq!(not_allowed_field(&failures[7]), Some("tdx.td_attributes"));
    assert_eq!(failures.len(), 8, "{failures:?}");
}

// ------------------------------------------------------------------ TDX: empty allowlists

macro_rules! tdx_empty_allowlist {
    ($name:ident, $key:literal, $field:literal) => {
        #[test]
        fn $name() {
            let text = format!("version = 1\n[tdx]\n{} = []\n", $key);
            let failures = tdx_failures(&text, &tdx());
            assert_eq!(failures, vec![Error::EmptyAllowlist { field: $field }]);
        }
    };
}

tdx_empty_allowlist!(tdx_empty_mrtd_allowlist_denies, "mrtd", "tdx.mrtd");
tdx_empty_allowlist!(tdx_empty_rtmr0_allowlist_denies, "rtmr0", "tdx.rtmr0");
tdx_empty_allowlist!(tdx_empty_rtmr3_allowlist_denies, "rtmr3", "tdx.rtmr3");
tdx_empty_allowlist!(
    tdx_empty_mr_config_id_allowlist_denies,
    "mr_config_id",
    "tdx.mr_config_id"
);
tdx_empty_allowlist!(
    tdx_empty_mr_owner_allowlist_denies,
    "mr_owner",
    "tdx.mr_owner"
);
tdx_empty_allowlist!(
    tdx_empty_mr_owner_config_allowlist_denies,
    "mr_owner_config",
    "tdx.mr_owner_config"
);
tdx_empty_allowlist!(
    tdx_empty_mr_service_td_allowlist_denies,
    "mr_service_td",
    "tdx.mr_service_td"
);
tdx_empty_allowlist!(tdx_empty_xfam_allowlist_denies, "xfam", "tdx.xfam");
tdx_empty_allowlist!(
    tdx_empty_td_attributes_allowlist_denies,
    "td_attributes",
    "tdx.td_attributes"
);
tdx_empty_allowlist!(
    tdx_empty_tcb_status_allowlist_denies,
    "allowed_tcb_statuses",
    "tdx.allowed_tcb_statuses"
);

#[test]
fn absent_key_puts_no_constraint_but_empty_list_denies() {
    assert_eq!(tdx_failures("version = 1\n[tdx]\n", &tdx()), vec![]);
    assert_eq!(
        tdx_failures("version = 1\n[tdx]\nmrtd = []\n", &tdx()),
        vec![Error::EmptyAllowlist { field: "tdx.mrtd" }]
    );
}

// ------------------------------------------------------------------ TDX: attributes

#[test]
fn tdx_debug_attribute_is_rejected_by_default_policy() {
    let v = tdx_with(|t| t.td_attributes[0] |= TD_ATTR_DEBUG as u8);
    assert_eq!(
        Policy::default().evaluate_tdx(&v).failures,
        vec![Error::DebugNotAllowed]
    );
}

#[test]
fn tdx_debug_attribute_is_accepted_when_policy_allows_debug() {
    let v = tdx_with(|t| t.td_attributes[0] |= TD_ATTR_DEBUG as u8);
    assert_eq!(
        tdx_failures("version = 1\n[tdx]\nallow_debug = true\n", &v),
        vec![]
    );
}

#[test]
fn tdx_other_under_debug_bits_are_rejected_without_allow_debug() {
    let v = tdx_with(|t| t.td_attributes[0] |= 0x10);
    let failures = Policy::default().evaluate_tdx(&v).failures;
    assert!(
        matches!(failures.as_slice(), [Error::FeatureNotAllowed { feature }] if feature.contains("under-debug")),
        "{failures:?}"
    );
    assert_eq!(
        tdx_failures("version = 1\n[tdx]\nallow_debug = true\n", &v),
        vec![]
    );
}

#[test]
fn tdx_sept_ve_disable_clear_is_rejected_by_default_policy() {
    let v = tdx_with(|t| t.td_attributes = [0; 8]);
    assert_eq!(
        Policy::default().evaluate_tdx(&v).failures,
        vec![Error::SeptVeDisableRequired]
    );
}

#[test]
fn tdx_sept_ve_disable_clear_is_accepted_when_not_required() {
    let v = tdx_with(|t| t.td_attributes = [0; 8]);
    let text = "version = 1\n[tdx]\nrequire_sept_ve_disable = false\n";
    assert_eq!(tdx_failures(text, &v), vec![]);
}

#[test]
fn tdx_reserved_attribute_bits_are_rejected_even_when_debug_is_allowed() {
    for bit in [1u32, 3, 7, 15, 23, 26, 32, 61] {
        let attrs = TD_ATTR_SEPT_VE_DISABLE | (1u64 << bit);
        let v = tdx_with(|t| t.td_attributes = attrs.to_le_bytes());
        let failures = tdx_failures("version = 1\n[tdx]\nallow_debug = true\n", &v);
        assert_eq!(
            failures,
            vec![Error::ReservedFieldNonZero {
                subject: Subject::QuoteBody,
                field: "td_attributes"
            }],
            "bit {bit}"
        );
    }
}

#[test]
fn tdx_reserved_mask_matches_dcap_qvl_defined_bits() {
    // dcap-qvl 0.7.1's list of defined TDATTRIBUTES bits (TDX Module ABI 348551-008US).
    let defined = [
        0u32, 4, 5, 6, 16, 17, 18, 19, 20, 21, 22, 27, 28, 29, 30, 31, 62, 63,
    ];
    for bit in 0..64u32 {
        assert_eq!(
            TD_ATTR_RESERVED & (1u64 << bit) == 0,
            defined.contains(&bit),
            "bit {bit}"
        );
    }
}

#[test]
fn tdx_migratable_td_is_rejected_by_default_and_accepted_when_allowed() {
    let v = tdx_with(|t| {
        t.td_attributes = (TD_ATTR_SEPT_VE_DISABLE | TD_ATTR_MIGRATABLE).to_le_bytes()
    });
    let failures = Policy::default().evaluate_tdx(&v).failures;
    assert!(
        matches!(failures.as_slice(), [Error::FeatureNotAllowed { feature }] if feature.contains("MIGRATABLE")),
        "{failures:?}"
    );
    assert_eq!(
        tdx_failures("version = 1\n[tdx]\nallow_migratable = true\n", &v),
        vec![]
    );
}

#[test]
fn tdx_service_td_is_rejected_by_default_and_accepted_when_allowed() {
    let v = tdx15_with(|t| {
        t.base.td_attributes = (TD_ATTR_SEPT_VE_DISABLE | TD_ATTR_SERVTD_EXT).to_le_bytes();
        t.mr_service_td = [0x5e; 48];
    });
    let failures = Policy::default().evaluate_tdx(&v).failures;
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(
        failures
            .iter()
            .all(|f| matches!(f, Error::FeatureNotAllowed { .. })),
        "{failures:?}"
    );
    assert_eq!(
        tdx_failures("version = 1\n[tdx]\nallow_service_td = true\n", &v),
        vec![]
    );
}

#[test]
fn tdx_servtd_ext_on_a_td10_body_is_rejected_even_when_service_tds_are_allowed() {
    let v = tdx_with(|t| {
        t.td_attributes = (TD_ATTR_SEPT_VE_DISABLE | TD_ATTR_SERVTD_EXT).to_le_bytes()
    });
    let failures = tdx_failures("version = 1\n[tdx]\nallow_service_td = true\n", &v);
    assert!(
        matches!(failures.as_slice(), [Error::FeatureNotAllowed { feature }] if feature.contains("SERVTD_EXT")),
        "{failures:?}"
    );
}

// ------------------------------------------------------------------ TDX: TCB

#[test]
fn tdx_out_of_date_tcb_is_rejected_by_policy_allowing_only_up_to_date() {
    let mut v = tdx();
    v.tcb_status = TcbStatus::OutOfDate;
    let failures = tdx_failures(
        "version = 1\n[tdx]\nallowed_tcb_statuses = [\"UpToDate\"]\n",
        &v,
    );
    assert_eq!(
        failures,
        vec![Error::TcbStatusNotAllowed {
            status: "OutOfDate".into()
        }]
    );
}

#[test]
fn default_policy_accepts_every_tcb_status_but_revoked() {
    for status in TcbStatus::ALL {
        let mut v = tdx();
        v.tcb_status = status;
        let failures = Policy::default().evaluate_tdx(&v).failures;
        if status == TcbStatus::Revoked {
            assert_eq!(
                failures,
                vec![Error::TcbStatusNotAllowed {
                    status: "Revoked".into()
                }]
            );
        } else {
            assert_eq!(failures, vec![], "{status}");
        }
    }
}

#[test]
fn revoked_tcb_is_rejected_by_a_policy_listing_every_other_status() {
    let mut v = sgx();
    v.tcb_status = TcbStatus::Revoked;
    let text = "version = 1\n[sgx]\nallowed_tcb_statuses = [\"UpToDate\", \"SWHardeningNeeded\", \
        \"ConfigurationNeeded\", \"ConfigurationAndSWHardeningNeeded\", \"OutOfDate\", \
        \"OutOfDateConfigurationNeeded\"]\n";
    assert_eq!(
        tdx_failures(text, &v),
        vec![Error::TcbStatusNotAllowed {
            status: "Revoked".into()
        }]
    );
}

#[test]
fn tdx_advisory_not_in_allowed_list_is_rejected_and_listed_one_accepted() {
    let mut v = tdx();
    v.advisory_ids = vec!["INTEL-SA-00289".into(), "INTEL-SA-00615".into()];
    let text = "version = 1\n[tdx]\nallowed_advisory_ids = [\"INTEL-SA-00289\"]\n";
    assert_eq!(
        tdx_failures(text, &v),
        vec![Error::AdvisoryNotAllowed {
            id: "INTEL-SA-00615".into()
        }]
    );
    // Without the key, advisories are not constrained.
    assert_eq!(tdx_failures("version = 1\n[tdx]\n", &v), vec![]);
}

#[test]
fn empty_advisory_list_tolerates_no_advisory_but_accepts_a_clean_quote() {
    let text = "version = 1\n[tdx]\nallowed_advisory_ids = []\n";
    assert_eq!(tdx_failures(text, &tdx()), vec![]);
    let mut v = tdx();
    v.advisory_ids = vec!["INTEL-SA-00837".into()];
    assert_eq!(
        tdx_failures(text, &v),
        vec![Error::AdvisoryNotAllowed {
            id: "INTEL-SA-00837".into()
        }]
    );
}

#[test]
fn tdx_tee_tcb_svn_below_minimum_in_one_component_is_rejected() {
    // Component 2 below the minimum, component 0 above: component-wise, not lexicographic.
    let v = tdx_with(|t| {
        t.tee_tcb_svn[0] = 9;
        t.tee_tcb_svn[2] = 1;
    });
    let failures = tdx_failures(&pinned_tdx(), &v);
    assert_eq!(
        failures,
        vec![Error::BelowMinimum {
            field: "tdx.min_tee_tcb_svn",
            minimum: hex::encode(td10().tee_tcb_svn),
            actual: hex::encode(v.quote.td_report().unwrap().tee_tcb_svn),
        }]
    );
}

#[test]
fn tdx_tee_tcb_svn_above_minimum_is_accepted() {
    let v = tdx_with(|t| t.tee_tcb_svn[1] = 200);
    let text = format!(
        "version = 1\n[tdx]\nmin_tee_tcb_svn = \"{}\"\n",
        hex::encode(td10().tee_tcb_svn)
    );
    assert_eq!(tdx_failures(&text, &v), vec![]);
}

#[test]
fn tdx15_tee_tcb_svn2_below_minimum_is_rejected() {
    let v = tdx15_with(|t| t.tee_tcb_svn2[0] = 4);
    let text = format!(
        "version = 1\n[tdx]\nmin_tee_tcb_svn = \"{}\"\n",
        hex::encode(td10().tee_tcb_svn)
    );
    let failures = tdx_failures(&text, &v);
    assert!(
        matches!(
            failures.as_slice(),
            [Error::BelowMinimum {
                field: "tdx.min_tee_tcb_svn (TEE_TCB_SVN2)",
                ..
            }]
        ),
        "{failures:?}"
    );
}

// ------------------------------------------------------------------ SGX

#[test]
fn sgx_debug_enclave_is_rejected_by_default_and_accepted_when_allowed() {
    let v = sgx_with(|e| e.attributes[0] |= SGX_ATTR_DEBUG);
    assert_eq!(
        Policy::default().evaluate_tdx(&v).failures,
        vec![Error::DebugNotAllowed]
    );
    assert_eq!(
        tdx_failures("version = 1\n[sgx]\nallow_debug = true\n", &v),
        vec![]
    );
}

#[test]
fn sgx_mr_enclave_not_in_allowlist_is_rejected() {
    let failures = tdx_failures(&pinned_sgx(), &sgx_with(|e| e.mr_enclave[31] ^= 1));
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(not_allowed_field(&failures[0]), Some("sgx.mr_enclave"));
}

#[test]
fn sgx_mr_signer_not_in_allowlist_is_rejected() {
    let failures = tdx_failures(&pinned_sgx(), &sgx_with(|e| e.mr_signer[0] ^= 1));
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(not_allowed_field(&failures[0]), Some("sgx.mr_signer"));
}

#[test]
fn sgx_isv_prod_id_mismatch_is_rejected() {
    let failures = tdx_failures(&pinned_sgx(), &sgx_with(|e| e.isv_prod_id = 8));
    assert_eq!(
        failures,
        vec![Error::ValueMismatch {
            field: "sgx.isv_prod_id",
            expected: "7".into(),
            actual: "8".into()
        }]
    );
}

#[test]
fn sgx_isv_svn_below_minimum_is_rejected() {
    let failures = tdx_failures(&pinned_sgx(), &sgx_with(|e| e.isv_svn = 3));
    assert_eq!(
        failures,
        vec![Error::BelowMinimum {
            field: "sgx.min_isv_svn",
            minimum: "4".into(),
            actual: "3".into()
        }]
    );
}

#[test]
fn sgx_tcb_status_and_advisories_are_checked_by_the_sgx_section() {
    let mut v = sgx();
    v.tcb_status = TcbStatus::ConfigurationAndSWHardeningNeeded;
    v.advisory_ids = vec!["INTEL-SA-00289".into(), "INTEL-SA-00615".into()];
    let failures = tdx_failures(&pinned_sgx(), &v);
    assert_eq!(
        failures,
        vec![
            Error::TcbStatusNotAllowed {
                status: "ConfigurationAndSWHardeningNeeded".into()
            },
            Error::AdvisoryNotAllowed {
                id: "INTEL-SA-00289".into()
            },
            Error::AdvisoryNotAllowed {
                id: "INTEL-SA-00615".into()
            },
        ]
    );
}

#[test]
fn sgx_empty_mr_enclave_allowlist_denies() {
    assert_eq!(
        tdx_failures("version = 1\n[sgx]\nmr_enclave = []\n", &sgx()),
        vec![Error::EmptyAllowlist {
            field: "sgx.mr_enclave"
        }]
    );
}

// ------------------------------------------------------------------ platforms and roots

#[test]
fn tdx_only_policy_rejects_sgx_and_snp_evidence() {
    let p = policy("version = 1\n[tdx]\n");
    assert_eq!(
        p.evaluate_tdx(&sgx()).failures,
        vec![Error::PlatformNotAllowed {
            platform: "SGX".into()
        }]
    );
    assert_eq!(
        p.evaluate_snp(&snp()).failures,
        vec![Error::PlatformNotAllowed {
            platform: "SEV-SNP".into()
        }]
    );
    assert_eq!(p.evaluate_tdx(&tdx()).failures, vec![]);
}

#[test]
fn snp_only_policy_rejects_tdx_evidence() {
    assert_eq!(
        tdx_failures("version = 1\n[snp]\n", &tdx()),
        vec![Error::PlatformNotAllowed {
            platform: "TDX".into()
        }]
    );
}

#[test]
fn simulated_tdx_evidence_is_rejected_by_default_policy() {
    let mut v = tdx();
    v.root = TrustRoot::Simulated;
    assert_eq!(
        Policy::default().evaluate_tdx(&v).failures,
        vec![Error::SimulatedEvidenceNotAllowed]
    );
}

#[test]
fn simulated_snp_evidence_is_rejected_by_a_pinned_policy_it_otherwise_meets() {
    let v = snp_with(|v| v.root = TrustRoot::Simulated);
    assert_eq!(
        snp_failures(&pinned_snp(), &v),
        vec![Error::SimulatedEvidenceNotAllowed]
    );
}

#[cfg(not(feature = "sim"))]
#[test]
fn allow_simulated_is_refused_by_a_build_without_the_sim_feature() {
    let err = parse_err("version = 1\nallow_simulated = true\n");
    assert!(
        matches!(&err, Error::PolicyInvalid { reason } if reason.contains("no simulated TEE")),
        "{err:?}"
    );
}

#[cfg(feature = "sim")]
#[test]
fn allow_simulated_policy_accepts_simulated_evidence_in_a_sim_build() {
    let p = policy("version = 1\nallow_simulated = true\n");
    assert!(p.allow_simulated());
    assert_eq!(p, Policy::simulated());
    let mut v = tdx();
    v.root = TrustRoot::Simulated;
    assert_eq!(p.evaluate_tdx(&v).failures, vec![]);
    let s = snp_with(|v| v.root = TrustRoot::Simulated);
    assert_eq!(p.evaluate_snp(&s).failures, vec![]);
    // Still the default checks: debug is refused.
    let d = snp_with(|v| {
        v.root = TrustRoot::Simulated;
        v.report.policy = GuestPolicy(0xB0000);
    });
    assert_eq!(p.evaluate_snp(&d).failures, vec![Error::DebugNotAllowed]);
}

#[test]
fn allow_simulated_false_is_accepted_by_every_build() {
    assert_eq!(
        policy("version = 1\nallow_simulated = false\n"),
        Policy::default()
    );
}

// ------------------------------------------------------------------ SNP

macro_rules! snp_mismatch {
    ($name:ident, $field:literal, $change:expr) => {
        #[test]
        fn $name() {
            let failures = snp_failures(&pinned_snp(), &snp_with($change));
            assert_eq!(failures.len(), 1, "{failures:?}");
            assert_eq!(
                not_allowed_field(&failures[0]),
                Some($field),
                "{failures:?}"
            );
        }
    };
}

snp_mismatch!(
    snp_measurement_not_in_allowlist_is_rejected,
    "snp.measurement",
    |v| v.report.measurement[0] ^= 1
);
snp_mismatch!(
    snp_host_data_not_in_allowlist_is_rejected,
    "snp.host_data",
    |v| v.report.host_data[31] ^= 1
);
snp_mismatch!(
    snp_family_id_not_in_allowlist_is_rejected,
    "snp.family_id",
    |v| v.report.family_id = [0; 16]
);
snp_mismatch!(
    snp_image_id_not_in_allowlist_is_rejected,
    "snp.image_id",
    |v| v.report.image_id[3] ^= 1
);
snp_mismatch!(
    snp_id_key_digest_not_in_allowlist_is_rejected,
    "snp.id_key_digest",
    |v| v.report.id_key_digest = [0; 48]
);
snp_mismatch!(
    snp_author_key_digest_not_in_allowlist_is_rejected,
    "snp.author_key_digest",
    |v| v.report.author_key_digest[47] ^= 1
);
snp_mismatch!(
    snp_generation_not_allowed_is_rejected,
    "snp.allowed_generations",
    |v| v.generation = Generation::Genoa
);

macro_rules! snp_empty_allowlist {
    ($name:ident, $key:literal, $field:literal) => {
        #[test]
        fn $name() {
            let text = format!("version = 1\n[snp]\n{} = []\n", $key);
            let failures = snp_failures(&text, &snp());
            assert_eq!(failures, vec![Error::EmptyAllowlist { field: $field }]);
        }
    };
}

snp_empty_allowlist!(
    snp_empty_measurement_allowlist_denies,
    "measurement",
    "snp.measurement"
);
snp_empty_allowlist!(
    snp_empty_host_data_allowlist_denies,
    "host_data",
    "snp.host_data"
);
snp_empty_allowlist!(
    snp_empty_family_id_allowlist_denies,
    "family_id",
    "snp.family_id"
);
snp_empty_allowlist!(
    snp_empty_image_id_allowlist_denies,
    "image_id",
    "snp.image_id"
);
snp_empty_allowlist!(
    snp_empty_id_key_digest_allowlist_denies,
    "id_key_digest",
    "snp.id_key_digest"
);
snp_empty_allowlist!(
    snp_empty_author_key_digest_allowlist_denies,
    "author_key_digest",
    "snp.author_key_digest"
);
snp_empty_allowlist!(snp_empty_vmpl_allowlist_denies, "vmpl", "snp.vmpl");
snp_empty_allowlist!(
    snp_empty_generation_allowlist_denies,
    "allowed_generations",
    "snp.allowed_generations"
);

#[test]
fn snp_report_from_vmpl_1_is_rejected_by_default_policy() {
    let v = snp_with(|v| v.report.vmpl = 1);
    assert_eq!(
        Policy::default().evaluate_snp(&v).failures,
        vec![Error::MeasurementNotAllowed {
            field: "snp.vmpl",
            actual: "1".into()
        }]
    );
}

#[test]
fn snp_report_from_vmpl_1_is_accepted_when_listed() {
    let v = snp_with(|v| v.report.vmpl = 1);
    assert_eq!(
        snp_failures("version = 1\n[snp]\nvmpl = [0, 1]\n", &v),
        vec![]
    );
}

#[test]
fn snp_debug_guest_policy_is_rejected_by_default_and_accepted_when_allowed() {
    let v = snp_with(|v| v.report.policy = GuestPolicy(0x30000 | 1 << 19));
    assert_eq!(
        Policy::default().evaluate_snp(&v).failures,
        vec![Error::DebugNotAllowed]
    );
    assert_eq!(
        snp_failures("version = 1\n[snp]\nallow_debug = true\n", &v),
        vec![]
    );
}

#[test]
fn snp_migration_agent_is_rejected_by_default_and_accepted_when_allowed() {
    let v = snp_with(|v| v.report.policy = GuestPolicy(0x30000 | 1 << 18));
    let failures = Policy::default().evaluate_snp(&v).failures;
    assert!(
        matches!(failures.as_slice(), [Error::FeatureNotAllowed { feature }] if feature.contains("migration agent")),
        "{failures:?}"
    );
    assert_eq!(
        snp_failures("version = 1\n[snp]\nallow_migration_agent = true\n", &v),
        vec![]
    );
}

#[test]
fn snp_smt_is_accepted_by_default_and_rejected_when_forbidden() {
    assert_eq!(Policy::default().evaluate_snp(&snp()).failures, vec![]);
    let failures = snp_failures("version = 1\n[snp]\nallow_smt = false\n", &snp());
    assert!(
        matches!(failures.as_slice(), [Error::FeatureNotAllowed { feature }] if feature.contains("SMT")),
        "{failures:?}"
    );
    let no_smt = snp_with(|v| v.report.policy = GuestPolicy(0x20000));
    assert_eq!(
        snp_failures("version = 1\n[snp]\nallow_smt = false\n", &no_smt),
        vec![]
    );
}

#[test]
fn snp_guest_policy_abi_below_minimum_is_rejected_as_a_version() {
    // Guest policy ABI 1.31 (0x01_1F).
    let v = snp_with(|v| v.report.policy = GuestPolicy(0x3011F));
    assert_eq!(
        snp_failures(
            "version = 1\n[snp]\nmin_abi_major = 1\nmin_abi_minor = 51\n",
            &v
        ),
        vec![Error::BelowMinimum {
            field: "snp.min_abi",
            minimum: "1.51".into(),
            actual: "1.31".into()
        }]
    );
    // 1.31 ≥ 0.60: the major version decides.
    assert_eq!(
        snp_failures(
            "version = 1\n[snp]\nmin_abi_major = 0\nmin_abi_minor = 60\n",
            &v
        ),
        vec![]
    );
}

#[test]
fn snp_provisional_firmware_version_is_rejected_by_default() {
    let v = snp_with(|v| v.report.current_build = 4);
    assert_eq!(
        Policy::default().evaluate_snp(&v).failures,
        vec![Error::ProvisionalFirmwareNotAllowed]
    );
}

#[test]
fn snp_committed_firmware_older_than_current_is_provisional_unless_allowed() {
    let v = snp_with(|v| {
        v.report.committed_major = 0;
        v.report.committed_minor = 52;
    });
    assert_eq!(
        Policy::default().evaluate_snp(&v).failures,
        vec![Error::ProvisionalFirmwareNotAllowed]
    );
    assert_eq!(
        snp_failures(
            "version = 1\n[snp]\nallow_provisional_firmware = true\n",
            &v
        ),
        vec![]
    );
}

#[test]
fn snp_current_tcb_above_committed_tcb_alone_is_not_provisional_firmware() {
    // Runtime microcode loads raise the current TCB without a firmware commit (test-report.bin
    // from real hardware shows this); the firmware version is what "provisional" means.
    let v = snp_with(|v| v.current_tcb.microcode = 0xce);
    assert_eq!(Policy::default().evaluate_snp(&v).failures, vec![]);
}

#[test]
fn snp_reported_tcb_below_minimum_fails_once_per_component() {
    let v = snp_with(|v| v.reported_tcb = tcb(2, 0, 7, 115));
    let failures = snp_failures(&pinned_snp(), &v);
    assert_eq!(
        failures,
        vec![
            Error::BelowMinimum {
                field: "snp.min_tcb.bootloader",
                minimum: "3".into(),
                actual: "2".into()
            },
            Error::BelowMinimum {
                field: "snp.min_tcb.snp",
                minimum: "8".into(),
                actual: "7".into()
            },
        ]
    );
}

#[test]
fn snp_launch_tcb_below_minimum_is_rejected() {
    let v = snp_with(|v| v.launch_tcb = tcb(3, 0, 8, 114));
    assert_eq!(
        snp_failures(&pinned_snp(), &v),
        vec![Error::BelowMinimum {
            field: "snp.min_launch_tcb.microcode",
            minimum: "115".into(),
            actual: "114".into()
        }]
    );
}

#[test]
fn snp_fmc_minimum_applies_to_turin_only() {
    let text = "version = 1\n[snp.min_tcb]\nfmc = 2\n";
    // Milan has no FMC SPL: the component does not apply.
    assert_eq!(snp_failures(text, &snp()), vec![]);
    let turin = snp_with(|v| {
        v.generation = Generation::Turin;
        v.reported_tcb.fmc = Some(1);
    });
    assert_eq!(
        snp_failures(text, &turin),
        vec![Error::BelowMinimum {
            field: "snp.min_tcb.fmc",
            minimum: "2".into(),
            actual: "1".into()
        }]
    );
}

#[test]
fn snp_guest_svn_below_minimum_is_rejected() {
    let v = snp_with(|v| v.report.guest_svn = 2);
    assert_eq!(
        snp_failures(&pinned_snp(), &v),
        vec![Error::BelowMinimum {
            field: "snp.min_guest_svn",
            minimum: "3".into(),
            actual: "2".into()
        }]
    );
}

#[test]
fn every_kind_of_snp_failure_is_returned_together() {
    let v = snp_with(|v| {
        v.report.vmpl = 2;
        v.report.policy = GuestPolicy(0x30000 | 1 << 19 | 1 << 18);
        v.report.committed_minor = 54;
        v.report.measurement = [0; 48];
        v.report.host_data = [0; 32];
    });
    let failures = snp_failures(&pinned_snp(), &v);
    assert_eq!(failures.len(), 6, "{failures:?}");
    assert!(matches!(
        failures[0],
        Error::MeasurementNotAllowed {
            field: "snp.vmpl",
            ..
        }
    ));
    assert!(matches!(failures[1], Error::DebugNotAllowed));
    assert!(matches!(failures[2], Error::FeatureNotAllowed { .. }));
    assert!(matches!(failures[3], Error::ProvisionalFirmwareNotAllowed));
    assert_eq!(not_allowed_field(&failures[4]), Some("snp.measurement"));
    assert_eq!(not_allowed_field(&failures[5]), Some("snp.host_data"));
}

// ------------------------------------------------------------------ parsing

#[test]
fn unknown_top_level_key_is_policy_invalid() {
    let err = parse_err("version = 1\nallow_debug = true\n");
    assert!(
        matches!(&err, Error::PolicyInvalid { reason } if reason.contains("allow_debug")),
        "{err:?}"
    );
}

#[test]
fn unknown_key_in_a_section_is_policy_invalid() {
    let err = parse_err("version = 1\n[tdx]\nmrtd_typo = []\n");
    assert!(
        matches!(&err, Error::PolicyInvalid { reason } if reason.contains("mrtd_typo")),
        "{err:?}"
    );
    let err = parse_err("version = 1\n[snp.min_tcb]\nucode = 1\n");
    assert!(
        matches!(&err, Error::PolicyInvalid { reason } if reason.contains("ucode")),
        "{err:?}"
    );
}

#[test]
fn unknown_section_is_policy_invalid() {
    let err = parse_err("version = 1\n[sev]\n");
    assert!(
        matches!(&err, Error::PolicyInvalid { reason } if reason.contains("sev")),
        "{err:?}"
    );
}

#[test]
fn short_hex_value_is_policy_invalid_naming_the_key() {
    let text = format!(
        "version = 1\n[tdx]\nmrtd = [\"{}\", \"{}\"]\n",
        "00".repeat(48),
        "00".repeat(32)
    );
    let err = parse_err(&text);
    assert!(
        matches!(&err, Error::PolicyInvalid { reason } if reason.contains("tdx.mrtd[1]") && reason.contains("48 bytes")),
        "{err:?}"
    );
}

#[test]
fn bad_hex_lengths_are_policy_invalid_for_every_width() {
    for (section, key) in [
        ("tdx", "xfam = [\"00\"]"),
        ("tdx", "min_tee_tcb_svn = \"0001\""),
        ("sgx", "mr_signer = [\"00\"]"),
        ("snp", "host_data = [\"00\"]"),
        ("snp", "family_id = [\"00\"]"),
    ] {
        let err = parse_err(&format!("version = 1\n[{section}]\n{key}\n"));
        let name = key.split(' ').next().unwrap();
        assert!(
            matches!(&err, Error::PolicyInvalid { reason } if reason.contains(&format!("{section}.{name}"))),
            "{err:?}"
        );
    }
}

#[test]
fn non_hex_value_is_policy_invalid() {
    let text = format!(
        "version = 1\n[snp]\nmeasurement = [\"{}\"]\n",
        "zz".repeat(48)
    );
    let err = parse_err(&text);
    assert!(
        matches!(&err, Error::PolicyInvalid { reason } if reason.contains("snp.measurement[0]")),
        "{err:?}"
    );
}

#[test]
fn missing_or_unknown_version_is_policy_invalid() {
    assert!(matches!(parse_err("[tdx]\n"), Error::PolicyInvalid { .. }));
    assert!(matches!(parse_err(""), Error::PolicyInvalid { .. }));
    let err = parse_err("version = 2\n");
    assert!(
        matches!(&err, Error::PolicyInvalid { reason } if reason.contains("version")),
        "{err:?}"
    );
}

#[test]
fn unknown_tcb_status_name_is_policy_invalid() {
    let err = parse_err("version = 1\n[tdx]\nallowed_tcb_statuses = [\"UptoDate\"]\n");
    assert!(
        matches!(&err, Error::PolicyInvalid { reason } if reason.contains("UptoDate")),
        "{err:?}"
    );
}

#[test]
fn revoked_in_allowed_tcb_statuses_is_policy_invalid() {
    let err = parse_err("version = 1\n[sgx]\nallowed_tcb_statuses = [\"UpToDate\", \"Revoked\"]\n");
    assert!(
        matches!(&err, Error::PolicyInvalid { reason } if reason.contains("Revoked")),
        "{err:?}"
    );
}

#[test]
fn vmpl_above_3_is_policy_invalid() {
    let err = parse_err("version = 1\n[snp]\nvmpl = [0, 4]\n");
    assert!(
        matches!(&err, Error::PolicyInvalid { reason } if reason.contains("snp.vmpl")),
        "{err:?}"
    );
}

#[test]
fn unknown_generation_is_policy_invalid() {
    let err = parse_err("version = 1\n[snp]\nallowed_generations = [\"Rome\"]\n");
    assert!(
        matches!(&err, Error::PolicyInvalid { reason } if reason.contains("Rome")),
        "{err:?}"
    );
}

#[test]
fn out_of_range_integer_is_policy_invalid() {
    assert!(matches!(
        parse_err("version = 1\n[snp.min_tcb]\nmicrocode = 256\n"),
        Error::PolicyInvalid { .. }
    ));
    assert!(matches!(
        parse_err("version = 1\n[sgx]\nisv_prod_id = -1\n"),
        Error::PolicyInvalid { .. }
    ));
}

#[test]
fn wrong_value_type_is_policy_invalid() {
    // A single string where a list is expected: refused, not silently wrapped.
    let text = format!("version = 1\n[tdx]\nmrtd = \"{}\"\n", "00".repeat(48));
    assert!(matches!(parse_err(&text), Error::PolicyInvalid { .. }));
    assert!(matches!(
        parse_err("version = 1\n[tdx]\nallow_debug = \"no\"\n"),
        Error::PolicyInvalid { .. }
    ));
}

#[test]
fn pinned_service_td_without_allow_service_td_is_policy_invalid() {
    let text = format!(
        "version = 1\n[tdx]\nmr_service_td = [\"{}\"]\n",
        "5e".repeat(48)
    );
    let err = parse_err(&text);
    assert!(
        matches!(&err, Error::PolicyInvalid { reason } if reason.contains("allow_service_td")),
        "{err:?}"
    );
}

#[test]
fn oversized_policy_is_refused_before_parsing() {
    let text = format!("version = 1\n#{}\n", "x".repeat(MAX_POLICY_SIZE));
    assert!(matches!(
        parse_err(&text),
        Error::InputTooLarge {
            subject: Subject::Policy,
            ..
        }
    ));
}

#[test]
fn malformed_toml_is_policy_invalid() {
    assert!(matches!(
        parse_err("version = \n"),
        Error::PolicyInvalid { .. }
    ));
}

// ------------------------------------------------------------------ canonical form and digest

#[test]
fn canonical_toml_round_trips() {
    for text in [
        pinned_tdx(),
        pinned_sgx(),
        pinned_snp(),
        "version = 1".into(),
    ] {
        let p = policy(&text);
        let canonical = p.to_toml().unwrap();
        assert_eq!(policy(&canonical), p, "{canonical}");
        assert_eq!(policy(&canonical).digest(), p.digest());
    }
}

#[test]
fn digest_ignores_order_case_duplicates_and_spelled_out_defaults() {
    let a = format!(
        "version = 1\n[tdx]\nmrtd = [\"{}\", \"{}\"]\n",
        "AA".repeat(48),
        "bb".repeat(48)
    );
    let b = format!(
        "[tdx]\nallow_debug = false\nrequire_sept_ve_disable = true\nmrtd = [\"{}\", \"{}\", \"{}\"]\n",
        "bb".repeat(48),
        "aa".repeat(48),
        "bb".repeat(48)
    );
    let b = format!("version = 1\n{b}");
    assert_eq!(policy(&a), policy(&b));
    assert_eq!(policy(&a).digest(), policy(&b).digest());
}

#[test]
fn digest_changes_with_any_change_of_meaning() {
    let texts = [
        "version = 1".to_string(),
        "version = 1\n[tdx]\n".into(),
        "version = 1\n[sgx]\n".into(),
        "version = 1\n[snp]\n".into(),
        "version = 1\n[tdx]\nmrtd = []\n".into(),
        format!("version = 1\n[tdx]\nmrtd = [\"{}\"]\n", "aa".repeat(48)),
        format!("version = 1\n[tdx]\nmrtd = [\"{}\"]\n", "ab".repeat(48)),
        format!("version = 1\n[tdx]\nrtmr0 = [\"{}\"]\n", "aa".repeat(48)),
        "version = 1\n[tdx]\nallow_debug = true\n".into(),
        "version = 1\n[tdx]\nallowed_advisory_ids = []\n".into(),
        "version = 1\n[snp]\nvmpl = [0, 1]\n".into(),
        "version = 1\n[snp]\nallow_smt = false\n".into(),
        "version = 1\n[snp.min_tcb]\nsnp = 8\n".into(),
        "version = 1\n[snp.min_launch_tcb]\nsnp = 8\n".into(),
        pinned_tdx(),
        pinned_sgx(),
        pinned_snp(),
    ];
    let digests: BTreeSet<[u8; 32]> = texts.iter().map(|t| policy(t).digest()).collect();
    assert_eq!(digests.len(), texts.len());
}

#[test]
fn default_policy_digest_is_stable() {
    // The canonical form of the default policy; a change here invalidates every cached decision.
    assert_eq!(
        Policy::default().to_toml().unwrap().trim(),
        "version = 1\nallow_simulated = false"
    );
    let mut h = Sha256::new();
    h.update(b"cocoon-policy-digest-v1\0");
    h.update(br#"{"version":1,"allow_simulated":false}"#);
    let expected: [u8; 32] = h.finalize().into();
    assert_eq!(Policy::default().digest(), expected);
}

// ------------------------------------------------------------------ documented examples

fn examples_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/examples")
}

#[test]
fn example_policy_file_parses() {
    let text = std::fs::read_to_string(examples_dir().join("policy.toml")).unwrap();
    let p = policy(&text);
    assert!(p.tdx().is_some() && p.sgx().is_some() && p.snp().is_some());
}

#[test]
fn every_example_toml_file_parses() {
    let mut count = 0;
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let path = entry.unwrap().path();
        // enclave.toml is cocoon-enclave's configuration file (docs/api.md), not a policy.
        if path.extension().is_some_and(|e| e == "toml")
            && path.file_name().is_some_and(|n| n != "enclave.toml")
        {
            let text = std::fs::read_to_string(&path).unwrap();
            Policy::from_toml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            count += 1;
        }
    }
    assert!(
        count >= 4,
        "expected the per-platform examples, found {count}"
    );
}

#[test]
// The only way other crates can build a `non_exhaustive` section: default, then assign.
#[allow(clippy::field_reassign_with_default)]
fn programmatic_policy_equals_parsed_policy() {
    let mut tdx = TdxPolicy::default();
    tdx.mrtd = Some(BTreeSet::from([[0xa1; 48]]));
    let built = Policy::default().with_tdx(Some(tdx));
    let parsed = policy(&format!(
        "version = 1\n[tdx]\nmrtd = [\"{}\"]\n",
        "a1".repeat(48)
    ));
    assert_eq!(built, parsed);
    assert_eq!(built.digest(), parsed.digest());
}

#[test]
fn pinned_td_attributes_the_policy_refuses_is_policy_invalid() {
    // DEBUG | SEPT_VE_DISABLE pinned while debug is forbidden: nothing could ever match.
    let err = parse_err("version = 1\n[tdx]\ntd_attributes = [\"0100001000000000\"]\n");
    assert!(
        matches!(&err, Error::PolicyInvalid { reason } if reason.contains("tdx.td_attributes") && reason.contains("debug")),
        "{err:?}"
    );
    // Consistent once debug is allowed; a reserved bit stays refused.
    policy("version = 1\n[tdx]\nallow_debug = true\ntd_attributes = [\"0100001000000000\"]\n");
    assert!(matches!(
        parse_err(
            "version = 1\n[tdx]\nallow_debug = true\ntd_attributes = [\"0200001000000000\"]\n"
        ),
        Error::PolicyInvalid { .. }
    ));
}

// ------------------------------------------------------------------ properties

mod properties {
    use super::*;
    use proptest::prelude::*;

    const TDX_FIELDS: [&str; 9] = [
        "tdx.mrtd",
        "tdx.rtmr0",
        "tdx.rtmr1",
        "tdx.rtmr2",
        "tdx.rtmr3",
        "tdx.mr_config_id",
        "tdx.mr_owner",
        "tdx.mr_owner_config",
        "tdx.xfam",
    ];

    const SNP_FIELDS: [&str; 6] = [
        "snp.measurement",
        "snp.host_data",
        "snp.family_id",
        "snp.image_id",
        "snp.id_key_digest",
        "snp.author_key_digest",
    ];

    proptest! {
        #[test]
        fn flipping_any_bit_of_a_pinned_tdx_register_fails_exactly_that_field(
            field in 0usize..TDX_FIELDS.len(), byte in 0usize..48, bit in 0u32..8,
        ) {
            let v = tdx_with(|t| {
                let target: &mut [u8] = match field {
                    0 => &mut t.mr_td,
                    1..=4 => &mut t.rt_mr[field - 1],
                    5 => &mut t.mr_config_id,
                    6 => &mut t.mr_owner,
                    7 => &mut t.mr_owner_config,
                    _ => &mut t.xfam,
                };
                let i = byte % target.len();
                target[i] ^= 1 << bit;
            });
            let failures = tdx_failures(&pinned_tdx(), &v);
            prop_assert_eq!(failures.len(), 1, "{:?}", failures);
            prop_assert_eq!(not_allowed_field(&failures[0]), Some(TDX_FIELDS[field]));
        }

        #[test]
        fn flipping_any_bit_of_a_pinned_snp_field_fails_exactly_that_field(
            field in 0usize..SNP_FIELDS.len(), byte in 0usize..48, bit in 0u32..8,
        ) {
            let v = snp_with(|v| {
                let r = &mut v.report;
                let target: &mut [u8] = match field {
                    0 => &mut r.measurement,
                    1 => &mut r.host_data,
                    2 => &mut r.family_id,
                    3 => &mut r.image_id,
                    4 => &mut r.id_key_digest,
                    _ => &mut r.author_key_digest,
                };
                let i = byte % target.len();
                target[i] ^= 1 << bit;
            });
            let failures = snp_failures(&pinned_snp(), &v);
            prop_assert_eq!(failures.len(), 1, "{:?}", failures);
            prop_assert_eq!(not_allowed_field(&failures[0]), Some(SNP_FIELDS[field]));
        }

        #[test]
        fn any_tcb_svn_component_below_the_minimum_fails_and_at_or_above_passes(
            component in 0usize..16, delta in 1u8..=5, raise in 0u8..=5,
        ) {
            let min = [5u8; 16];
            let text = format!("version = 1\n[tdx]\nmin_tee_tcb_svn = \"{}\"\n", hex::encode(min));
            let below = tdx_with(|t| { t.tee_tcb_svn = [9; 16]; t.tee_tcb_svn[component] = 5 - delta; });
            let failures = tdx_failures(&text, &below);
            prop_assert!(
                matches!(failures.as_slice(), [Error::BelowMinimum { field: "tdx.min_tee_tcb_svn", .. }]),
                "{:?}", failures
            );
            let above = tdx_with(|t| { t.tee_tcb_svn = [5; 16]; t.tee_tcb_svn[component] = 5 + raise; });
            prop_assert_eq!(tdx_failures(&text, &above), vec![]);
        }

        #[test]
        fn arbitrary_text_parses_or_is_policy_invalid(text in "\\PC{0,200}") {
            let result = Policy::from_toml(&text);
            prop_assert!(matches!(result, Ok(_) | Err(Error::PolicyInvalid { .. })), "{:?}", result);
        }
    }
}

#[test]
fn td15_current_tcb_status_must_be_allowed_too() {
    let mut v = tdx15_with(|_| {});
    v.current_tcb_status = Some(TcbStatus::OutOfDate);
    let failures = tdx_failures(
        "version = 1\n[tdx]\nallowed_tcb_statuses = [\"UpToDate\"]\n",
        &v,
    );
    assert!(
        matches!(failures.as_slice(), [Error::TcbStatusNotAllowed { status }] if status.starts_with("OutOfDate (current TCB")),
        "{failures:?}"
    );
    v.current_tcb_status = Some(TcbStatus::Revoked);
    let failures = Policy::default().evaluate_tdx(&v).failures;
    assert!(
        matches!(failures.as_slice(), [Error::TcbStatusNotAllowed { status }] if status.starts_with("Revoked")),
        "{failures:?}"
    );
}

#[test]
fn rolled_back_tcb_evaluation_data_number_is_rejected() {
    // Baseline collateral has evaluation data number 17.
    let text = "version = 1\n[tdx]\nmin_tcb_evaluation_data_number = 18\n";
    assert_eq!(
        tdx_failures(text, &tdx()),
        vec![Error::BelowMinimum {
            field: "tdx.min_tcb_evaluation_data_number",
            minimum: "18".into(),
            actual: "17".into()
        }]
    );
    let at = "version = 1\n[sgx]\nmin_tcb_evaluation_data_number = 17\n";
    assert_eq!(tdx_failures(at, &sgx()), vec![]);
}

#[test]
fn duplicate_key_is_policy_invalid() {
    let text = format!(
        "version = 1\n[tdx]\nmrtd = [\"{0}\"]\nmrtd = [\"{0}\"]\n",
        "aa".repeat(48)
    );
    assert!(matches!(parse_err(&text), Error::PolicyInvalid { .. }));
}

#[test]
fn hex_with_0x_prefix_is_policy_invalid_and_upper_case_is_accepted() {
    let prefixed = format!(
        "version = 1\n[snp]\nhost_data = [\"0x{}\"]\n",
        "3b".repeat(32)
    );
    let err = parse_err(&prefixed);
    assert!(
        matches!(&err, Error::PolicyInvalid { reason } if reason.contains("snp.host_data[0]")),
        "{err:?}"
    );
    let upper = format!(
        "version = 1\n[snp]\nhost_data = [\"{}\"]\n",
        "3B".repeat(32)
    );
    assert_eq!(snp_failures(&upper, &snp()), vec![]);
}

#[test]
fn empty_or_padded_advisory_id_is_policy_invalid() {
    for id in ["", " INTEL-SA-00289"] {
        let err = parse_err(&format!(
            "version = 1\n[tdx]\nallowed_advisory_ids = [\"{id}\"]\n"
        ));
        assert!(
            matches!(&err, Error::PolicyInvalid { reason } if reason.contains("tdx.allowed_advisory_ids[0]")),
            "{err:?}"
        );
    }
}

#[test]
fn vmpl_list_without_0_rejects_a_vmpl_0_report() {
    assert_eq!(
        snp_failures("version = 1\n[snp]\nvmpl = [1]\n", &snp()),
        vec![Error::MeasurementNotAllowed {
            field: "snp.vmpl",
            actual: "0".into()
        }]
    );
}

#[test]
fn min_abi_minor_alone_compares_against_major_0() {
    // Guest policy ABI 0.31 (0x1F) against a minimum of 0.32.
    let v = snp_with(|v| v.report.policy = GuestPolicy(0x3001F));
    assert_eq!(
        snp_failures("version = 1\n[snp]\nmin_abi_minor = 32\n", &v),
        vec![Error::BelowMinimum {
            field: "snp.min_abi",
            minimum: "0.32".into(),
            actual: "0.31".into()
        }]
    );
}
