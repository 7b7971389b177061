//! `cocoon-verify snp`: AMD SEV-SNP attestation reports to a [`Report`].

use crate::report::{Field, Platform, Report};
use crate::tdx::flag_names;
use cocoon_attestation::encoding::binary_or_hex;
use cocoon_attestation::policy::Policy;
use cocoon_attestation::snp::{
    Generation, SigningKey, SnpReport, SnpVerifier, TcbParts, TcbVersion,
};
use cocoon_attestation::Subject;

/// Decodes, parses and verifies a report with its VCEK/VLEK (DER) and optional PEM chain, then
/// evaluates the policy. Evidence that fails at any step is a rejected report.
pub fn check(
    verifier: &SnpVerifier,
    report_input: &[u8],
    signer_der: &[u8],
    chain_pem: Option<&[u8]>,
    policy: &Policy,
    now: i64,
) -> Report {
    let mut out = Report::new(Platform::Snp, now);
    let report =
        match binary_or_hex(report_input, Subject::SnpReport).and_then(|b| SnpReport::parse(&b)) {
            Ok(report) => report,
            Err(e) => {
                out.errors.push(e);
                return out;
            }
        };
    out.parsed = true;
    out.details = report_details(&report);

    let verified = match verifier.verify(&report, signer_der, chain_pem, now) {
        Ok(verified) => verified,
        Err(e) => {
            // Unverified: the TCBs are decoded by the generation the report claims (v3+).
            if let Some(generation) = report.cpuid_generation() {
                out.details
                    .push(Field::text("generation", generation.as_str()).decoded("from CPUID"));
            }
            out.measurements = report_fields(&report, report.cpuid_generation());
            out.errors.push(e);
            return out;
        }
    };
    out.verified = true;
    out.root = Some(verified.root);
    out.details
        .push(Field::text("generation", verified.generation.as_str()));
    out.measurements = report_fields(&report, Some(verified.generation));
    out.errors = policy.evaluate_snp(&verified).failures;
    out
}

fn signing_key(key: SigningKey) -> &'static str {
    match key {
        SigningKey::Vcek => "VCEK",
        SigningKey::Vlek => "VLEK",
        SigningKey::None => "none",
    }
}

fn report_details(r: &SnpReport) -> Vec<Field> {
    let mut details = vec![
        Field::num("report_version", r.version),
        Field::text("signing_key", signing_key(r.signing_key)),
        Field::text(
            "firmware",
            format!(
                "{}.{} build {} (committed {}.{} build {})",
                r.current_major,
                r.current_minor,
                r.current_build,
                r.committed_major,
                r.committed_minor,
                r.committed_build
            ),
        ),
        Field::reg64("platform_info", r.platform_info).decoded(platform_info(r.platform_info)),
    ];
    if let (Some(family), Some(model), Some(stepping)) =
        (r.cpuid_fam_id, r.cpuid_mod_id, r.cpuid_step)
    {
        details.push(Field::text(
            "cpuid",
            format!("family {family:#04x} model {model:#04x} stepping {stepping:#04x}"),
        ));
    }
    details
}

/// Every measured field of the report, by name.
/// TCB versions are decoded into SPLs when the generation is known (Turin's layout differs).
pub fn report_fields(r: &SnpReport, generation: Option<Generation>) -> Vec<Field> {
    let tcb = |key: &'static str, version: TcbVersion| {
        let field = Field::reg64(key, version.raw);
        match generation {
            Some(g) => field.decoded(tcb_parts(&version.parts(g))),
            None => field,
        }
    };
    let mut fields = vec![
        Field::hex("measurement", &r.measurement),
        Field::hex("report_data", &r.report_data),
        Field::hex("host_data", &r.host_data),
        Field::hex("family_id", &r.family_id),
        Field::hex("image_id", &r.image_id),
        Field::hex("id_key_digest", &r.id_key_digest),
        Field::hex("author_key_digest", &r.author_key_digest),
        Field::reg64("policy", r.policy.0).decoded(guest_policy(r.policy.0)),
        Field::num("vmpl", r.vmpl),
        Field::num("guest_svn", r.guest_svn),
        tcb("reported_tcb", r.reported_tcb),
        tcb("current_tcb", r.current_tcb),
        tcb("committed_tcb", r.committed_tcb),
        tcb("launch_tcb", r.launch_tcb),
        Field::hex("chip_id", &r.chip_id),
        Field::hex("report_id", &r.report_id),
        Field::hex("report_id_ma", &r.report_id_ma),
    ];
    if let Some(v) = r.launch_mit_vector {
        fields.push(Field::reg64("launch_mit_vector", v));
    }
    if let Some(v) = r.current_mit_vector {
        fields.push(Field::reg64("current_mit_vector", v));
    }
    fields
}

/// The guest policy (SEV-SNP ABI spec table 9): ABI version and the security-relevant bits.
pub fn guest_policy(raw: u64) -> String {
    let p = cocoon_attestation::snp::GuestPolicy(raw);
    let yes_no = |b: bool| if b { "allowed" } else { "not allowed" };
    format!(
        "ABI >= {}.{}, SMT {}, migration agent {}, DEBUG {}, single socket {}",
        p.abi_major(),
        p.abi_minor(),
        yes_no(p.smt_allowed()),
        yes_no(p.migrate_ma_allowed()),
        yes_no(p.debug_allowed()),
        if p.single_socket_required() {
            "required"
        } else {
            "not required"
        }
    )
}

/// PLATFORM_INFO bits (SEV-SNP ABI spec table 23).
pub fn platform_info(raw: u64) -> String {
    flag_names(
        raw,
        &[
            (0, "SMT_EN"),
            (1, "TSME_EN"),
            (2, "ECC_EN"),
            (3, "RAPL_DIS"),
            (4, "CIPHERTEXT_HIDING_EN"),
            (5, "ALIAS_CHECK_COMPLETE"),
        ],
    )
}

fn tcb_parts(t: &TcbParts) -> String {
    let base = format!(
        "bootloader {}, TEE {}, SNP {}, microcode {}",
        t.bootloader, t.tee, t.snp, t.microcode
    );
    match t.fmc {
        Some(fmc) => format!("FMC {fmc}, {base}"),
        None => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_guest_policy_says_debug_allowed() {
        let decoded = guest_policy(0xB0000);
        assert!(decoded.contains("DEBUG allowed"), "{decoded}");
        assert!(decoded.contains("SMT allowed"), "{decoded}");
    }

    #[test]
    fn default_guest_policy_forbids_debug_and_migration() {
        let decoded = guest_policy(0x30000);
        assert!(decoded.contains("DEBUG not allowed"), "{decoded}");
        assert!(decoded.contains("migration agent not allowed"), "{decoded}");
    }

    #[test]
    fn turin_tcb_parts_name_the_fmc() {
        let parts = TcbParts {
            fmc: Some(1),
            bootloader: 2,
            tee: 3,
            snp: 4,
            microcode: 5,
        };
        assert_eq!(
            tcb_parts(&parts),
            "FMC 1, bootloader 2, TEE 3, SNP 4, microcode 5"
        );
    }
}
