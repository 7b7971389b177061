//! The `[tdx]` and `[sgx]` sections: reference values for Intel DCAP quotes.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{check_hex_allowlist, hex_list, invalid, parse_hex, parse_hex_list};
use crate::error::{Error, Subject};
use crate::tdx::quote::EnclaveReport;
use crate::tdx::{QuoteBody, TcbStatus, VerifiedQuote};

/// TDATTRIBUTES bits (Intel TDX Module ABI spec 348551-008US, table 3.23), as a little-endian u64.
pub const TD_ATTR_DEBUG: u64 = 1 << 0;
/// TUD bits 6:4: further "TD under debug" flags; any of them makes the TD untrusted.
pub const TD_ATTR_TUD_OTHER: u64 = 0b111 << 4;
pub const TD_ATTR_SERVTD_EXT: u64 = 1 << 17;
pub const TD_ATTR_SEPT_VE_DISABLE: u64 = 1 << 28;
pub const TD_ATTR_MIGRATABLE: u64 = 1 << 29;
/// Bits the TDX 1.5 ABI requires verifiers to reject (the mask of dcap-qvl 0.7.1 / Intel's QVL):
/// bits 3:1, 15:7, 26:23 and 61:32.
pub const TD_ATTR_RESERVED: u64 = 0x3FFF_FFFF_0780_FF8E;

/// SGX ATTRIBUTES bit 1 (DEBUG), in byte 0 of the 16-byte ATTRIBUTES.
pub const SGX_ATTR_DEBUG: u8 = 1 << 1;

/// Reference values for TDX quotes (TD 1.0 and TD 1.5 bodies). Every `Option` allowlist:
/// `None` = no constraint, empty = deny.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TdxPolicy {
    pub mrtd: Option<BTreeSet<[u8; 48]>>,
    pub rtmr0: Option<BTreeSet<[u8; 48]>>,
    pub rtmr1: Option<BTreeSet<[u8; 48]>>,
    pub rtmr2: Option<BTreeSet<[u8; 48]>>,
    pub rtmr3: Option<BTreeSet<[u8; 48]>>,
    pub mr_config_id: Option<BTreeSet<[u8; 48]>>,
    pub mr_owner: Option<BTreeSet<[u8; 48]>>,
    pub mr_owner_config: Option<BTreeSet<[u8; 48]>>,
    /// TD 1.5 MRSERVICETD; a TD 1.0 body counts as all zero.
    pub mr_service_td: Option<BTreeSet<[u8; 48]>>,
    /// Raw XFAM bytes as in the quote (little-endian).
    pub xfam: Option<BTreeSet<[u8; 8]>>,
    /// Raw TDATTRIBUTES bytes as in the quote (little-endian).
    pub td_attributes: Option<BTreeSet<[u8; 8]>>,
    /// Component-wise minimum of TEE_TCB_SVN (and of TEE_TCB_SVN2 on TD 1.5 bodies).
    pub min_tee_tcb_svn: Option<[u8; 16]>,
    /// Default: every status but Revoked (which no policy can allow).
    pub allowed_tcb_statuses: BTreeSet<TcbStatus>,
    /// `None`: any advisory; `Some(list)`: every advisory of the quote must be listed.
    pub allowed_advisory_ids: Option<BTreeSet<String>>,
    /// Minimum TCB evaluation data number of the collateral (refuses rolled-back collateral).
    pub min_tcb_evaluation_data_number: Option<u32>,
    /// TDATTRIBUTES.DEBUG (bit 0) and the other TUD bits 6:4. Default false.
    pub allow_debug: bool,
    /// TDATTRIBUTES.SEPT_VE_DISABLE (bit 28) must be set. Default true.
    pub require_sept_ve_disable: bool,
    /// TDATTRIBUTES.MIGRATABLE (bit 29). Default false.
    pub allow_migratable: bool,
    /// A bound service TD: SERVTD_EXT (bit 17) or a non-zero MRSERVICETD. Default false.
    pub allow_service_td: bool,
}

impl Default for TdxPolicy {
    fn default() -> Self {
        Self {
            mrtd: None,
            rtmr0: None,
            rtmr1: None,
            rtmr2: None,
            rtmr3: None,
            mr_config_id: None,
            mr_owner: None,
            mr_owner_config: None,
            mr_service_td: None,
            xfam: None,
            td_attributes: None,
            min_tee_tcb_svn: None,
            allowed_tcb_statuses: default_tcb_statuses(),
            allowed_advisory_ids: None,
            min_tcb_evaluation_data_number: None,
            allow_debug: false,
            require_sept_ve_disable: true,
            allow_migratable: false,
            allow_service_td: false,
        }
    }
}

/// Reference values for SGX enclave quotes (v3).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SgxPolicy {
    pub mr_enclave: Option<BTreeSet<[u8; 32]>>,
    pub mr_signer: Option<BTreeSet<[u8; 32]>>,
    pub isv_prod_id: Option<u16>,
    pub min_isv_svn: Option<u16>,
    pub allowed_tcb_statuses: BTreeSet<TcbStatus>,
    pub allowed_advisory_ids: Option<BTreeSet<String>>,
    pub min_tcb_evaluation_data_number: Option<u32>,
    /// SGX ATTRIBUTES.DEBUG (bit 1). Default false.
    pub allow_debug: bool,
}

impl Default for SgxPolicy {
    fn default() -> Self {
        Self {
            mr_enclave: None,
            mr_signer: None,
            isv_prod_id: None,
            min_isv_svn: None,
            allowed_tcb_statuses: default_tcb_statuses(),
            allowed_advisory_ids: None,
            min_tcb_evaluation_data_number: None,
            allow_debug: false,
        }
    }
}

fn default_tcb_statuses() -> BTreeSet<TcbStatus> {
    TcbStatus::ALL
        .into_iter()
        .filter(|s| *s != TcbStatus::Revoked)
        .collect()
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TdxFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mrtd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rtmr0: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rtmr1: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rtmr2: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rtmr3: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mr_config_id: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mr_owner: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mr_owner_config: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mr_service_td: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    xfam: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    td_attributes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_tee_tcb_svn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allowed_tcb_statuses: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allowed_advisory_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_tcb_evaluation_data_number: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allow_debug: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    require_sept_ve_disable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allow_migratable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allow_service_td: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SgxFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mr_enclave: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mr_signer: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    isv_prod_id: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_isv_svn: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allowed_tcb_statuses: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allowed_advisory_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_tcb_evaluation_data_number: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allow_debug: Option<bool>,
}

fn parse_statuses(key: &str, list: Option<Vec<String>>) -> crate::Result<BTreeSet<TcbStatus>> {
    let Some(names) = list else {
        return Ok(default_tcb_statuses());
    };
    names
        .iter()
        .map(|name| match TcbStatus::from_name(name) {
            // Revoked is refused by verification regardless of policy; saying otherwise in a
            // policy would be a lie, so it is a policy error.
            Some(TcbStatus::Revoked) => {
                Err(invalid(format!("{key}: \"Revoked\" can never be allowed")))
            }
            Some(status) => Ok(status),
            None => Err(invalid(format!(
                "{key}: unknown TCB status \"{name}\" (Intel's names: {})",
                TcbStatus::ALL.map(TcbStatus::as_str).join(", ")
            ))),
        })
        .collect()
}

fn statuses_list(set: &BTreeSet<TcbStatus>) -> Option<Vec<String>> {
    Some(set.iter().map(|s| s.as_str().to_owned()).collect())
}

fn parse_advisories(
    key: &str,
    list: Option<Vec<String>>,
) -> crate::Result<Option<BTreeSet<String>>> {
    list.map(|ids| {
        ids.into_iter()
            .enumerate()
            .map(|(i, id)| {
                if id.is_empty() || id.trim() != id {
                    Err(invalid(format!("{key}[{i}]: empty or padded advisory id")))
                } else {
                    Ok(id)
                }
            })
            .collect()
    })
    .transpose()
}

impl TdxPolicy {
    pub(super) fn from_file(f: TdxFile) -> crate::Result<Self> {
        let d = Self::default();
        let policy = Self {
            mrtd: parse_hex_list("tdx.mrtd", f.mrtd)?,
            rtmr0: parse_hex_list("tdx.rtmr0", f.rtmr0)?,
            rtmr1: parse_hex_list("tdx.rtmr1", f.rtmr1)?,
            rtmr2: parse_hex_list("tdx.rtmr2", f.rtmr2)?,
            rtmr3: parse_hex_list("tdx.rtmr3", f.rtmr3)?,
            mr_config_id: parse_hex_list("tdx.mr_config_id", f.mr_config_id)?,
            mr_owner: parse_hex_list("tdx.mr_owner", f.mr_owner)?,
            mr_owner_config: parse_hex_list("tdx.mr_owner_config", f.mr_owner_config)?,
            mr_service_td: parse_hex_list("tdx.mr_service_td", f.mr_service_td)?,
            xfam: parse_hex_list("tdx.xfam", f.xfam)?,
            td_attributes: parse_hex_list("tdx.td_attributes", f.td_attributes)?,
            min_tee_tcb_svn: f
                .min_tee_tcb_svn
                .map(|s| parse_hex::<16>("tdx.min_tee_tcb_svn", &s))
                .transpose()?,
            allowed_tcb_statuses: parse_statuses(
                "tdx.allowed_tcb_statuses",
                f.allowed_tcb_statuses,
            )?,
            allowed_advisory_ids: parse_advisories(
                "tdx.allowed_advisory_ids",
                f.allowed_advisory_ids,
            )?,
            min_tcb_evaluation_data_number: f.min_tcb_evaluation_data_number,
            allow_debug: f.allow_debug.unwrap_or(d.allow_debug),
            require_sept_ve_disable: f
                .require_sept_ve_disable
                .unwrap_or(d.require_sept_ve_disable),
            allow_migratable: f.allow_migratable.unwrap_or(d.allow_migratable),
            allow_service_td: f.allow_service_td.unwrap_or(d.allow_service_td),
        };
        // A service TD pinned while service TDs are forbidden can never match: say so now.
        if !policy.allow_service_td {
            if let Some(list) = &policy.mr_service_td {
                if list.iter().any(|m| *m != [0u8; 48]) {
                    return Err(invalid(
                        "tdx.mr_service_td lists a non-zero MRSERVICETD but tdx.allow_service_td is false"
                            .into(),
                    ));
                }
            }
        }
        // A pinned attribute value that the attribute checks refuse can never match: say so
        // now rather than at every evaluation.
        if let Some(list) = &policy.td_attributes {
            for value in list {
                let mut refused = Vec::new();
                policy.check_attributes(u64::from_le_bytes(*value), true, &mut refused);
                if let Some(reason) = refused.first() {
                    return Err(invalid(format!(
                        "tdx.td_attributes lists {} which this policy refuses: {}",
                        hex::encode(value),
                        reason.message()
                    )));
                }
            }
        }
        Ok(policy)
    }

    pub(super) fn to_file(&self) -> TdxFile {
        TdxFile {
            mrtd: hex_list(&self.mrtd),
            rtmr0: hex_list(&self.rtmr0),
            rtmr1: hex_list(&self.rtmr1),
            rtmr2: hex_list(&self.rtmr2),
            rtmr3: hex_list(&self.rtmr3),
            mr_config_id: hex_list(&self.mr_config_id),
            mr_owner: hex_list(&self.mr_owner),
            mr_owner_config: hex_list(&self.mr_owner_config),
            mr_service_td: hex_list(&self.mr_service_td),
            xfam: hex_list(&self.xfam),
            td_attributes: hex_list(&self.td_attributes),
            min_tee_tcb_svn: self.min_tee_tcb_svn.map(hex::encode),
            allowed_tcb_statuses: statuses_list(&self.allowed_tcb_statuses),
            allowed_advisory_ids: self
                .allowed_advisory_ids
                .as_ref()
                .map(|s| s.iter().cloned().collect()),
            min_tcb_evaluation_data_number: self.min_tcb_evaluation_data_number,
            allow_debug: Some(self.allow_debug),
            require_sept_ve_disable: Some(self.require_sept_ve_disable),
            allow_migratable: Some(self.allow_migratable),
            allow_service_td: Some(self.allow_service_td),
        }
    }

    /// The TDATTRIBUTES checks; `td15`: the body is TD 1.5 (may carry a service TD).
    fn check_attributes(&self, attrs: u64, td15: bool, failures: &mut Vec<Error>) {
        if attrs & TD_ATTR_DEBUG != 0 && !self.allow_debug {
            failures.push(Error::DebugNotAllowed);
        }
        if attrs & TD_ATTR_TUD_OTHER != 0 && !self.allow_debug {
            failures.push(Error::FeatureNotAllowed {
                feature: "TD under-debug flags (TDATTRIBUTES bits 6:4)",
            });
        }
        // Like Intel's QVL: a bit this verifier does not understand is not trusted.
        if attrs & TD_ATTR_RESERVED != 0 {
            failures.push(Error::ReservedFieldNonZero {
                subject: Subject::QuoteBody,
                field: "td_attributes",
            });
        }
        if attrs & TD_ATTR_SEPT_VE_DISABLE == 0 && self.require_sept_ve_disable {
            failures.push(Error::SeptVeDisableRequired);
        }
        if attrs & TD_ATTR_MIGRATABLE != 0 && !self.allow_migratable {
            failures.push(Error::FeatureNotAllowed {
                feature: "MIGRATABLE (TDATTRIBUTES bit 29)",
            });
        }
        // Intel's TDQE never emits a TD 1.0 body for a TD with SERVTD_EXT, so there it is
        // refused whatever the policy says (as dcap-qvl does).
        let servtd_ext = attrs & TD_ATTR_SERVTD_EXT != 0;
        if servtd_ext && (!td15 || !self.allow_service_td) {
            failures.push(Error::FeatureNotAllowed {
                feature: "SERVTD_EXT (TDATTRIBUTES bit 17)",
            });
        }
    }

    /// Order: TCB status, advisories, TD attributes (debug, other TUD bits, reserved bits,
    /// SEPT_VE_DISABLE, MIGRATABLE, service TD), minimum TEE_TCB_SVN(2), then the allowlists in
    /// schema order.
    pub(super) fn evaluate(&self, v: &VerifiedQuote, body: &QuoteBody, failures: &mut Vec<Error>) {
        let (td, service) = match body {
            QuoteBody::Td10(td) => (td, None),
            QuoteBody::Td15(td15) => (&td15.base, Some(td15)),
            // The caller routes SGX bodies to the [sgx] section.
            QuoteBody::SgxEnclave(_) => return,
        };
        check_intel_tcb(
            IntelTcbFields {
                statuses: "tdx.allowed_tcb_statuses",
                evaluation_data_number: "tdx.min_tcb_evaluation_data_number",
            },
            &self.allowed_tcb_statuses,
            self.min_tcb_evaluation_data_number,
            &self.allowed_advisory_ids,
            v,
            failures,
        );

        self.check_attributes(
            u64::from_le_bytes(td.td_attributes),
            service.is_some(),
            failures,
        );
        let zero = [0u8; 48];
        let mr_service_td = service.map_or(&zero, |s| &s.mr_service_td);
        if *mr_service_td != zero && !self.allow_service_td {
            failures.push(Error::FeatureNotAllowed {
                feature: "service TD (MRSERVICETD non-zero)",
            });
        }

        if let Some(min) = &self.min_tee_tcb_svn {
            check_svn16("tdx.min_tee_tcb_svn", min, &td.tee_tcb_svn, failures);
            if let Some(td15) = service {
                check_svn16(
                    "tdx.min_tee_tcb_svn (TEE_TCB_SVN2)",
                    min,
                    &td15.tee_tcb_svn2,
                    failures,
                );
            }
        }

        let [rtmr0, rtmr1, rtmr2, rtmr3] = &td.rt_mr;
        check_hex_allowlist("tdx.mrtd", &self.mrtd, &td.mr_td, failures);
        check_hex_allowlist("tdx.rtmr0", &self.rtmr0, rtmr0, failures);
        check_hex_allowlist("tdx.rtmr1", &self.rtmr1, rtmr1, failures);
        check_hex_allowlist("tdx.rtmr2", &self.rtmr2, rtmr2, failures);
        check_hex_allowlist("tdx.rtmr3", &self.rtmr3, rtmr3, failures);
        check_hex_allowlist(
            "tdx.mr_config_id",
            &self.mr_config_id,
            &td.mr_config_id,
            failures,
        );
        check_hex_allowlist("tdx.mr_owner", &self.mr_owner, &td.mr_owner, failures);
        check_hex_allowlist(
            "tdx.mr_owner_config",
            &self.mr_owner_config,
            &td.mr_owner_config,
            failures,
        );
        check_hex_allowlist(
            "tdx.mr_service_td",
            &self.mr_service_td,
            mr_service_td,
            failures,
        );
        check_hex_allowlist("tdx.xfam", &self.xfam, &td.xfam, failures);
        check_hex_allowlist(
            "tdx.td_attributes",
            &self.td_attributes,
            &td.td_attributes,
            failures,
        );
    }
}

impl SgxPolicy {
    pub(super) fn from_file(f: SgxFile) -> crate::Result<Self> {
        let d = Self::default();
        Ok(Self {
            mr_enclave: parse_hex_list("sgx.mr_enclave", f.mr_enclave)?,
            mr_signer: parse_hex_list("sgx.mr_signer", f.mr_signer)?,
            isv_prod_id: f.isv_prod_id,
            min_isv_svn: f.min_isv_svn,
            allowed_tcb_statuses: parse_statuses(
                "sgx.allowed_tcb_statuses",
                f.allowed_tcb_statuses,
            )?,
            allowed_advisory_ids: parse_advisories(
                "sgx.allowed_advisory_ids",
                f.allowed_advisory_ids,
            )?,
            min_tcb_evaluation_data_number: f.min_tcb_evaluation_data_number,
            allow_debug: f.allow_debug.unwrap_or(d.allow_debug),
        })
    }

    pub(super) fn to_file(&self) -> SgxFile {
        SgxFile {
            mr_enclave: hex_list(&self.mr_enclave),
            mr_signer: hex_list(&self.mr_signer),
            isv_prod_id: self.isv_prod_id,
            min_isv_svn: self.min_isv_svn,
            allowed_tcb_statuses: statuses_list(&self.allowed_tcb_statuses),
            allowed_advisory_ids: self
                .allowed_advisory_ids
                .as_ref()
                .map(|s| s.iter().cloned().collect()),
            min_tcb_evaluation_data_number: self.min_tcb_evaluation_data_number,
            allow_debug: Some(self.allow_debug),
        }
    }

    /// Order: TCB status, advisories, debug, ISVSVN, ISVPRODID, MRENCLAVE, MRSIGNER.
    pub(super) fn evaluate(
        &self,
        v: &VerifiedQuote,
        report: &EnclaveReport,
        failures: &mut Vec<Error>,
    ) {
        check_intel_tcb(
            IntelTcbFields {
                statuses: "sgx.allowed_tcb_statuses",
                evaluation_data_number: "sgx.min_tcb_evaluation_data_number",
            },
            &self.allowed_tcb_statuses,
            self.min_tcb_evaluation_data_number,
            &self.allowed_advisory_ids,
            v,
            failures,
        );
        let attributes0 = report.attributes.first().copied().unwrap_or_default();
        if attributes0 & SGX_ATTR_DEBUG != 0 && !self.allow_debug {
            failures.push(Error::DebugNotAllowed);
        }
        if let Some(min) = self.min_isv_svn {
            if report.isv_svn < min {
                failures.push(Error::BelowMinimum {
                    field: "sgx.min_isv_svn",
                    minimum: min.to_string(),
                    actual: report.isv_svn.to_string(),
                });
            }
        }
        if let Some(expected) = self.isv_prod_id {
            if report.isv_prod_id != expected {
                failures.push(Error::ValueMismatch {
                    field: "sgx.isv_prod_id",
                    expected: expected.to_string(),
                    actual: report.isv_prod_id.to_string(),
                });
            }
        }
        check_hex_allowlist(
            "sgx.mr_enclave",
            &self.mr_enclave,
            &report.mr_enclave,
            failures,
        );
        check_hex_allowlist(
            "sgx.mr_signer",
            &self.mr_signer,
            &report.mr_signer,
            failures,
        );
    }
}

/// Error field names of the Intel TCB checks of one section.
struct IntelTcbFields {
    statuses: &'static str,
    evaluation_data_number: &'static str,
}

/// TCB status (Revoked never passes; on TD 1.5 also the current TCB's status), the collateral's
/// evaluation data number and advisories, shared by `[tdx]` and `[sgx]`.
fn check_intel_tcb(
    fields: IntelTcbFields,
    allowed: &BTreeSet<TcbStatus>,
    min_evaluation_data_number: Option<u32>,
    advisories: &Option<BTreeSet<String>>,
    v: &VerifiedQuote,
    failures: &mut Vec<Error>,
) {
    if allowed.is_empty() {
        failures.push(Error::EmptyAllowlist {
            field: fields.statuses,
        });
    }
    let refused = |status: TcbStatus| {
        status == TcbStatus::Revoked || (!allowed.is_empty() && !allowed.contains(&status))
    };
    if refused(v.tcb_status) {
        failures.push(Error::TcbStatusNotAllowed {
            status: v.tcb_status.as_str().into(),
        });
    }
    // TD 1.5: the module running now (TEE_TCB_SVN2) must be acceptable too.
    if let Some(current) = v.current_tcb_status {
        if refused(current) {
            failures.push(Error::TcbStatusNotAllowed {
                status: format!("{current} (current TCB, TEE_TCB_SVN2)"),
            });
        }
    }
    if let Some(min) = min_evaluation_data_number {
        if v.tcb_evaluation_data_number < min {
            failures.push(Error::BelowMinimum {
                field: fields.evaluation_data_number,
                minimum: min.to_string(),
                actual: v.tcb_evaluation_data_number.to_string(),
            });
        }
    }
    // An advisory list is a set the quote's advisories must fit in: `[]` means "none
    // tolerated", which is the strictest choice rather than an always-deny.
    if let Some(allowed) = advisories {
        for id in &v.advisory_ids {
            if !allowed.contains(id) {
                failures.push(Error::AdvisoryNotAllowed { id: id.clone() });
            }
        }
    }
}

/// Component-wise minimum of a 16-byte SVN array; one failure for the whole array.
fn check_svn16(field: &'static str, min: &[u8; 16], actual: &[u8; 16], failures: &mut Vec<Error>) {
    if min.iter().zip(actual.iter()).any(|(m, a)| a < m) {
        failures.push(Error::BelowMinimum {
            field,
            minimum: hex::encode(min),
            actual: hex::encode(actual),
        });
    }
}
