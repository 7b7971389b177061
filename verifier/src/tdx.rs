//! `cocoon-verify tdx`: Intel DCAP quotes (TDX v4/v5, SGX v3) to a [`Report`].

use crate::report::{Field, Platform, Report};
use cocoon_attestation::encoding::binary_or_hex;
use cocoon_attestation::policy::Policy;
use cocoon_attestation::tdx::quote::EnclaveReport;
use cocoon_attestation::tdx::{Collateral, Quote, QuoteBody, TdReport10, TdxVerifier};
use cocoon_attestation::Subject;

/// Decodes, parses and verifies a quote, then evaluates the policy. Evidence that fails at any
/// step is a rejected report, never a usage error.
pub fn check(
    verifier: &TdxVerifier,
    quote_input: &[u8],
    collateral: &Collateral,
    policy: &Policy,
    now: i64,
) -> Report {
    let mut report = Report::new(Platform::Tdx, now);
    let quote = match binary_or_hex(quote_input, Subject::Quote).and_then(|b| Quote::parse(&b)) {
        Ok(quote) => quote,
        Err(e) => {
            report.errors.push(e);
            return report;
        }
    };
    report.parsed = true;
    if matches!(quote.body, QuoteBody::SgxEnclave(_)) {
        report.platform = Platform::Sgx;
    }
    report.details = quote_details(&quote);
    report.measurements = quote_fields(&quote);

    let verified = match verifier.verify(&quote, collateral, now) {
        Ok(verified) => verified,
        Err(e) => {
            report.errors.push(e);
            return report;
        }
    };
    report.verified = true;
    report.root = Some(verified.root);
    report.tcb_status = Some(verified.tcb_status.as_str().to_string());
    report.advisory_ids = verified.advisory_ids.clone();
    report.collateral_valid_from = Some(verified.collateral_valid_from);
    report.collateral_valid_until = Some(verified.collateral_valid_until);
    report.details.extend([
        Field::hex("fmspc", &verified.fmspc),
        Field::hex("pce_id", &verified.pce_id),
        Field::text("tcb_date", verified.tcb_date.clone()),
        Field::num(
            "tcb_evaluation_data_number",
            verified.tcb_evaluation_data_number,
        ),
    ]);
    report.errors = policy.evaluate_tdx(&verified).failures;
    report
}

fn quote_details(quote: &Quote) -> Vec<Field> {
    let body = match quote.body {
        QuoteBody::SgxEnclave(_) => "SGX enclave report",
        QuoteBody::Td10(_) => "TD report 1.0",
        QuoteBody::Td15(_) => "TD report 1.5",
    };
    vec![
        Field::num("quote_version", quote.header.version),
        Field::text("body", body),
        Field::hex("qe_vendor_id", &quote.header.qe_vendor_id),
        Field::num("qe_isv_svn", quote.signature.qe_report.isv_svn),
    ]
}

/// Every measured field of the quote body, by name.
pub fn quote_fields(quote: &Quote) -> Vec<Field> {
    match &quote.body {
        QuoteBody::SgxEnclave(r) => enclave_fields(r),
        QuoteBody::Td10(r) => td_fields(r),
        QuoteBody::Td15(r) => {
            let mut fields = td_fields(&r.base);
            fields.push(Field::hex("tee_tcb_svn2", &r.tee_tcb_svn2));
            fields.push(Field::hex("mr_service_td", &r.mr_service_td));
            fields
        }
    }
}

fn td_fields(r: &TdReport10) -> Vec<Field> {
    let [rtmr0, rtmr1, rtmr2, rtmr3] = &r.rt_mr;
    vec![
        Field::hex("mrtd", &r.mr_td),
        Field::hex("rtmr0", rtmr0),
        Field::hex("rtmr1", rtmr1),
        Field::hex("rtmr2", rtmr2),
        Field::hex("rtmr3", rtmr3),
        Field::hex("report_data", &r.report_data),
        Field::hex("td_attributes", &r.td_attributes)
            .decoded(td_attributes(u64::from_le_bytes(r.td_attributes))),
        Field::hex("xfam", &r.xfam),
        Field::hex("mr_config_id", &r.mr_config_id),
        Field::hex("mr_owner", &r.mr_owner),
        Field::hex("mr_owner_config", &r.mr_owner_config),
        Field::hex("tee_tcb_svn", &r.tee_tcb_svn),
        Field::hex("mr_seam", &r.mr_seam),
        Field::hex("mr_signer_seam", &r.mr_signer_seam),
        Field::hex("seam_attributes", &r.seam_attributes),
    ]
}

fn enclave_fields(r: &EnclaveReport) -> Vec<Field> {
    let mut flags = [0u8; 8];
    for (dst, src) in flags.iter_mut().zip(r.attributes.iter()) {
        *dst = *src;
    }
    vec![
        Field::hex("mr_enclave", &r.mr_enclave),
        Field::hex("mr_signer", &r.mr_signer),
        Field::num("isv_prod_id", r.isv_prod_id),
        Field::num("isv_svn", r.isv_svn),
        Field::hex("attributes", &r.attributes).decoded(sgx_attributes(u64::from_le_bytes(flags))),
        Field::num("misc_select", r.misc_select),
        Field::hex("cpu_svn", &r.cpu_svn),
        Field::hex("report_data", &r.report_data),
    ]
}

/// Names the set bits of `value` from `(bit, name)`; unnamed set bits are listed as `bitN`.
pub fn flag_names(value: u64, names: &[(u32, &str)]) -> String {
    let mut set = Vec::new();
    for bit in 0..64u32 {
        if value & (1u64 << bit) == 0 {
            continue;
        }
        match names.iter().find(|(b, _)| *b == bit) {
            Some((_, name)) => set.push((*name).to_string()),
            None => set.push(format!("bit{bit}")),
        }
    }
    if set.is_empty() {
        "none".into()
    } else {
        set.join(" | ")
    }
}

/// TD attributes (TDX module ABI, TDCS ATTRIBUTES).
pub fn td_attributes(value: u64) -> String {
    let mut decoded = flag_names(
        value,
        &[
            (0, "DEBUG"),
            (28, "SEPT_VE_DISABLE"),
            (29, "MIGRATABLE"),
            (30, "PKS"),
            (31, "KL"),
            (62, "TPA"),
            (63, "PERFMON"),
        ],
    );
    if value & (1 << 28) == 0 {
        decoded.push_str("; SEPT_VE_DISABLE clear");
    }
    decoded
}

/// SGX enclave attribute flags (SECS ATTRIBUTES.FLAGS).
pub fn sgx_attributes(flags: u64) -> String {
    flag_names(
        flags,
        &[
            (0, "INIT"),
            (1, "DEBUG"),
            (2, "MODE64BIT"),
            (4, "PROVISIONKEY"),
            (5, "EINITTOKEN_KEY"),
            (7, "KSS"),
            (10, "AEXNOTIFY"),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_td_attributes_name_debug_and_sept_ve_disable() {
        assert_eq!(
            td_attributes(0x1000_0001),
            "DEBUG | SEPT_VE_DISABLE".to_string()
        );
    }

    #[test]
    fn td_without_sept_ve_disable_says_so() {
        assert_eq!(td_attributes(0x4000_0000), "PKS; SEPT_VE_DISABLE clear");
    }

    #[test]
    fn unnamed_bits_are_listed_by_number() {
        assert_eq!(flag_names(0b101, &[(0, "A")]), "A | bit2");
        assert_eq!(flag_names(0, &[(0, "A")]), "none");
    }

    #[test]
    fn production_enclave_attributes_decode_without_debug() {
        assert_eq!(sgx_attributes(0x05), "INIT | MODE64BIT");
    }
}
