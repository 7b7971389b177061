//! TCB info and QE identity: parsing, and the matching logic of Intel's QVL.
//!
//! The JSON types and the per-level SVN comparison are dcap-qvl's public ones
//! (`TcbInfo`, `TcbLevel::shortfalls`, `TcbInfo::tdx_module_identity`,
//! `TdxModuleTcbLevel::shortfall`, `QeIdentity`, `TcbStatusWithAdvisory::merge`). What dcap-qvl
//! keeps crate-private is re-implemented here with the same semantics (which are Intel QVL's):
//! canonical TCB level order, `converge_with_component`, `check_for_relaunch`, QE identity
//! matching, the TDX module identity check and the per-structure status lists.

use dcap_qvl::tcb_info::{TcbInfo, TcbLevel, TcbStatus as Dcap};
use dcap_qvl::{QeIdentity, QeTcbLevel};

use super::chain::Window;
use crate::error::{Error, Result, Subject};
use crate::tdx::quote::{EnclaveReport, TdReport10};
use crate::tdx::TcbStatus;

/// TCB info after parsing, with its levels in Intel's canonical order and its hex fields
/// decoded.
#[derive(Debug, Clone)]
pub(crate) struct CheckedTcbInfo {
    pub info: TcbInfo,
    pub fmspc: [u8; 6],
    pub pce_id: [u8; 2],
    pub window: Window,
}

/// QE identity after parsing.
#[derive(Debug, Clone)]
pub(crate) struct CheckedQeIdentity {
    pub identity: QeIdentity,
    pub window: Window,
}

/// Statuses Intel QVL accepts in each structure (dcap-qvl's lists).
const TCB_INFO_STATUSES: &[Dcap] = &[
    Dcap::UpToDate,
    Dcap::OutOfDate,
    Dcap::ConfigurationNeeded,
    Dcap::Revoked,
    Dcap::OutOfDateConfigurationNeeded,
    Dcap::SWHardeningNeeded,
    Dcap::ConfigurationAndSWHardeningNeeded,
];
const TDX_MODULE_STATUSES: &[Dcap] = &[Dcap::UpToDate, Dcap::OutOfDate, Dcap::Revoked];
const QE_IDENTITY_STATUSES: &[Dcap] = &[
    Dcap::UpToDate,
    Dcap::OutOfDate,
    Dcap::ConfigurationNeeded,
    Dcap::Revoked,
    Dcap::OutOfDateConfigurationNeeded,
];

/// Status names dcap-qvl's enum knows (used to tell an unknown status from other JSON errors).
const KNOWN_STATUS_NAMES: &[&str] = &[
    "UpToDate",
    "OutOfDateConfigurationNeeded",
    "OutOfDate",
    "ConfigurationAndSWHardeningNeeded",
    "ConfigurationNeeded",
    "SWHardeningNeeded",
    "Revoked",
    "TDRelaunchAdvised",
    "TDRelaunchAdvisedConfigurationNeeded",
];

fn ensure_status(status: Dcap, allowed: &[Dcap]) -> Result<()> {
    if allowed.contains(&status) {
        Ok(())
    } else {
        Err(Error::UnknownTcbStatus(status.to_string()))
    }
}

/// Our status for a dcap-qvl status that passed `ensure_status`.
pub(crate) fn to_status(status: Dcap) -> Result<TcbStatus> {
    Ok(match status {
        Dcap::UpToDate => TcbStatus::UpToDate,
        Dcap::SWHardeningNeeded => TcbStatus::SWHardeningNeeded,
        Dcap::ConfigurationNeeded => TcbStatus::ConfigurationNeeded,
        Dcap::ConfigurationAndSWHardeningNeeded => TcbStatus::ConfigurationAndSWHardeningNeeded,
        Dcap::OutOfDate => TcbStatus::OutOfDate,
        Dcap::OutOfDateConfigurationNeeded => TcbStatus::OutOfDateConfigurationNeeded,
        Dcap::Revoked => TcbStatus::Revoked,
        other => return Err(Error::UnknownTcbStatus(other.to_string())),
    })
}

/// RFC 3339 to unix seconds.
pub(crate) fn parse_date(value: &str, subject: Subject) -> Result<i64> {
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|e| Error::Malformed {
            subject,
            reason: format!("date {value:?}: {e}"),
        })
}

/// A JSON error: an unknown `tcbStatus` gets its own variant.
fn json_error(json: &str, e: serde_json::Error, subject: Subject) -> Error {
    fn find_status(v: &serde_json::Value) -> Option<String> {
        match v {
            serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| match (k.as_str(), v) {
                ("tcbStatus", serde_json::Value::String(s))
                    if !KNOWN_STATUS_NAMES.contains(&s.as_str()) =>
                {
                    Some(s.clone())
                }
                _ => find_status(v),
            }),
            serde_json::Value::Array(items) => items.iter().find_map(find_status),
            _ => None,
        }
    }
    serde_json::from_str::<serde_json::Value>(json)
        .ok()
        .and_then(|v| find_status(&v))
        .map(Error::UnknownTcbStatus)
        .unwrap_or_else(|| Error::Malformed {
            subject,
            reason: e.to_string(),
        })
}

fn hex_array<const N: usize>(value: &str, field: &str, subject: Subject) -> Result<[u8; N]> {
    let bytes = hex::decode(value).map_err(|e| Error::Malformed {
        subject,
        reason: format!("{field}: {e}"),
    })?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| Error::Malformed {
        subject,
        reason: format!("{field}: {} bytes, expected {N}", bytes.len()),
    })
}

/// Parse the signed TCB info string. The levels are put in Intel QVL's canonical order.
pub(crate) fn parse_tcb_info(json: &str) -> Result<CheckedTcbInfo> {
    let subject = Subject::TcbInfo;
    let mut info: TcbInfo = serde_json::from_str(json).map_err(|e| json_error(json, e, subject))?;
    let window = Window {
        start: parse_date(&info.issue_date, subject)?,
        end: parse_date(&info.next_update, subject)?,
    };
    let fmspc = hex_array::<6>(&info.fmspc, "fmspc", subject)?;
    let pce_id = hex_array::<2>(&info.pce_id, "pceId", subject)?;
    canonicalize_tcb_levels(&mut info);
    Ok(CheckedTcbInfo {
        info,
        fmspc,
        pce_id,
        window,
    })
}

/// Parse the signed QE identity string.
pub(crate) fn parse_qe_identity(json: &str) -> Result<CheckedQeIdentity> {
    let subject = Subject::QeIdentity;
    let identity: QeIdentity =
        serde_json::from_str(json).map_err(|e| json_error(json, e, subject))?;
    let window = Window {
        start: parse_date(&identity.issue_date, subject)?,
        end: parse_date(&identity.next_update, subject)?,
    };
    Ok(CheckedQeIdentity { identity, window })
}

/// Intel QVL does not trust the JSON order of `tcbLevels`: it keeps them in a set ordered by
/// SGX components (highest first), then PCE SVN, then — for TDX TCB info v3+ — the TDX
/// components. Mirrors dcap-qvl's `canonicalize_tcb_levels` (stable sort).
fn canonicalize_tcb_levels(info: &mut TcbInfo) {
    let is_tdx = info.version >= 3 && info.id == "TDX";
    info.tcb_levels.sort_by(|a, b| {
        b.tcb
            .sgx_components
            .cmp(&a.tcb.sgx_components)
            .then_with(|| b.tcb.pce_svn.cmp(&a.tcb.pce_svn))
            .then_with(|| {
                if is_tdx {
                    b.tcb.tdx_components.cmp(&a.tcb.tdx_components)
                } else {
                    std::cmp::Ordering::Equal
                }
            })
    });
}

/// Intel QVL's `convergeTcbStatuses`: only an OutOfDate or Revoked component (QE, TDX module)
/// changes the platform status.
pub(crate) fn converge(platform: Dcap, component: Dcap) -> Dcap {
    match (component, platform) {
        (Dcap::Revoked, _) => Dcap::Revoked,
        (Dcap::OutOfDate, Dcap::UpToDate | Dcap::SWHardeningNeeded) => Dcap::OutOfDate,
        (Dcap::OutOfDate, Dcap::ConfigurationNeeded | Dcap::ConfigurationAndSWHardeningNeeded) => {
            Dcap::OutOfDateConfigurationNeeded
        }
        _ => platform,
    }
}

/// Intel QVL's `checkForRelaunch` for a TD 1.5: an out-of-date launch TCB whose current TCB
/// (after a TD-preserving module update) is not out of date only needs a relaunch.
pub(crate) fn relaunch_advised(launch: Dcap, current: Dcap) -> bool {
    matches!(launch, Dcap::OutOfDate | Dcap::OutOfDateConfigurationNeeded)
        && matches!(
            current,
            Dcap::UpToDate
                | Dcap::SWHardeningNeeded
                | Dcap::ConfigurationNeeded
                | Dcap::ConfigurationAndSWHardeningNeeded
        )
}

/// The TCB info must be for the quote's TEE (dcap-qvl: TDX needs id "TDX" v3+, SGX id "SGX" v2+).
pub(crate) fn check_tcb_info_type(info: &TcbInfo, is_tdx: bool) -> Result<()> {
    let ok = if is_tdx {
        info.id == "TDX" && info.version >= 3
    } else {
        info.id == "SGX" && info.version >= 2
    };
    if ok {
        Ok(())
    } else {
        Err(Error::CollateralMismatch {
            subject: Subject::TcbInfo,
            reason: format!(
                "TCB info {} version {} for a {} quote",
                info.id,
                info.version,
                if is_tdx { "TDX" } else { "SGX" }
            ),
        })
    }
}

/// The QE identity must be for the quote's QE (SGX: "QE" v2, TDX: "TD_QE" v2/v3).
pub(crate) fn check_qe_identity_type(identity: &QeIdentity, is_tdx: bool) -> Result<()> {
    let (id, versions): (&str, &[u8]) = if is_tdx {
        ("TD_QE", &[2, 3])
    } else {
        ("QE", &[2])
    };
    if identity.id == id && versions.contains(&identity.version) {
        Ok(())
    } else {
        Err(Error::CollateralMismatch {
            subject: Subject::QeIdentity,
            reason: format!(
                "QE identity {} version {}, expected {id} version {versions:?}",
                identity.id, identity.version
            ),
        })
    }
}

/// The QE report against the QE identity (dcap-qvl's `verify_qe_identity_policy`), returning
/// the QE TCB level its ISVSVN meets (levels in JSON order, highest first, as Intel publishes).
pub(crate) fn match_qe_identity(
    report: &EnclaveReport,
    identity: &QeIdentity,
) -> Result<QeTcbLevel> {
    if report.mr_signer != identity.mrsigner {
        return Err(Error::QeIdentityMismatch { field: "mrsigner" });
    }
    // A debug QE is never trusted (dcap-qvl checks this before the attribute mask).
    if report.attributes.first().is_some_and(|a| a & 0x02 != 0) {
        return Err(Error::QeIdentityMismatch { field: "debug" });
    }
    if report.isv_prod_id != identity.isvprodid {
        return Err(Error::QeIdentityMismatch { field: "isvprodid" });
    }
    let mask = u32::from_le_bytes(identity.miscselect_mask);
    if report.misc_select & mask != u32::from_le_bytes(identity.miscselect) & mask {
        return Err(Error::QeIdentityMismatch {
            field: "miscselect",
        });
    }
    let attributes_match = identity
        .attributes
        .iter()
        .zip(identity.attributes_mask.iter())
        .zip(report.attributes.iter())
        .all(|((expected, mask), actual)| expected & mask == actual & mask);
    if !attributes_match {
        return Err(Error::QeIdentityMismatch {
            field: "attributes",
        });
    }
    let level = identity
        .tcb_levels
        .iter()
        .find(|level| report.isv_svn >= level.tcb.isvsvn)
        .ok_or(Error::QeTcbLevelNotFound {
            isv_svn: report.isv_svn,
        })?;
    ensure_status(level.tcb_status, QE_IDENTITY_STATUSES)?;
    Ok(level.clone())
}

/// The first canonical TCB level all of whose components the platform meets.
fn find_tcb_level<'a>(
    info: &'a TcbInfo,
    cpu_svn: &[u8; 16],
    pce_svn: u16,
    tee_tcb_svn: Option<&[u8; 16]>,
) -> Result<&'a TcbLevel> {
    for level in &info.tcb_levels {
        let shortfalls = level
            .shortfalls(cpu_svn, pce_svn, tee_tcb_svn)
            .map_err(|e| Error::CollateralMismatch {
                subject: Subject::TcbInfo,
                reason: e.to_string(),
            })?;
        if shortfalls.is_empty() {
            ensure_status(level.tcb_status, TCB_INFO_STATUSES)?;
            return Ok(level);
        }
    }
    Err(Error::TcbLevelNotFound)
}

/// The platform TCB level for a TD's `tee_tcb_svn`, converged with the TDX module TCB level
/// selected by the same SVNs (dcap-qvl's `evaluate_tdx_tcb`).
fn evaluate_tdx_tcb(
    info: &TcbInfo,
    cpu_svn: &[u8; 16],
    pce_svn: u16,
    tee_tcb_svn: &[u8; 16],
) -> Result<TcbLevel> {
    let mut level = find_tcb_level(info, cpu_svn, pce_svn, Some(tee_tcb_svn))?.clone();
    let identity =
        info.tdx_module_identity(tee_tcb_svn)
            .map_err(|_| Error::TdxModuleIdentityMismatch {
                field: "tdx_module_identity",
            })?;
    let Some(identity) = identity else {
        return Ok(level);
    };
    // Module ISVSVN below every module level: Intel's TCB_NOT_SUPPORTED.
    let module_level = identity
        .tcb_levels
        .iter()
        .find(|l| l.shortfall(tee_tcb_svn).is_none())
        .ok_or(Error::TcbLevelNotFound)?;
    ensure_status(module_level.tcb_status, TDX_MODULE_STATUSES)?;
    level.tcb_status = converge(level.tcb_status, module_level.tcb_status);
    for advisory in &module_level.advisory_ids {
        if !level.advisory_ids.contains(advisory) {
            level.advisory_ids.push(advisory.clone());
        }
    }
    // Like Intel QVL, date the converged level by its oldest component.
    if parse_date(&module_level.tcb_date, Subject::TcbInfo)?
        < parse_date(&level.tcb_date, Subject::TcbInfo)?
    {
        level.tcb_date = module_level.tcb_date.clone();
    }
    Ok(level)
}

/// MRSIGNERSEAM and SEAMATTRIBUTES against the TDX module (identity) of the TCB info.
fn check_tdx_module_identity(info: &TcbInfo, td: &TdReport10) -> Result<()> {
    let subject = Subject::TcbInfo;
    let base = info
        .tdx_module
        .as_ref()
        .ok_or_else(|| Error::CollateralMismatch {
            subject,
            reason: "TDX TCB info without tdxModule".into(),
        })?;
    let identity = info.tdx_module_identity(&td.tee_tcb_svn).map_err(|_| {
        Error::TdxModuleIdentityMismatch {
            field: "tdx_module_identity",
        }
    })?;
    let (mrsigner, attributes, mask) = match identity {
        Some(id) => (&id.mrsigner, &id.attributes, &id.attributes_mask),
        None => (&base.mrsigner, &base.attributes, &base.attributes_mask),
    };
    let mrsigner = hex_array::<48>(mrsigner, "tdxModule mrsigner", subject)?;
    let attributes = hex_array::<8>(attributes, "tdxModule attributes", subject)?;
    let mask = hex_array::<8>(mask, "tdxModule attributesMask", subject)?;
    if td.mr_signer_seam != mrsigner {
        return Err(Error::TdxModuleIdentityMismatch {
            field: "mr_signer_seam",
        });
    }
    // Masked bits must match and, as in dcap-qvl, bits outside the mask must be clear.
    let attributes_ok = attributes
        .iter()
        .zip(mask.iter())
        .zip(td.seam_attributes.iter())
        .all(|((expected, mask), actual)| expected & mask == actual & mask && actual & !mask == 0);
    if !attributes_ok {
        return Err(Error::TdxModuleIdentityMismatch {
            field: "seam_attributes",
        });
    }
    Ok(())
}

/// The matched platform level (and, for a TD 1.5, the level of its current TCB).
pub(crate) struct PlatformMatch {
    pub level: TcbLevel,
    pub current: Option<TcbLevel>,
}

/// Platform TCB matching (dcap-qvl's `match_platform_tcb` after its FMSPC and type checks,
/// which the caller does).
pub(crate) fn match_platform(
    info: &TcbInfo,
    cpu_svn: &[u8; 16],
    pce_svn: u16,
    td: Option<(&TdReport10, Option<&[u8; 16]>)>,
) -> Result<PlatformMatch> {
    let Some((td, tee_tcb_svn2)) = td else {
        let level = find_tcb_level(info, cpu_svn, pce_svn, None)?.clone();
        return Ok(PlatformMatch {
            level,
            current: None,
        });
    };
    let level = evaluate_tdx_tcb(info, cpu_svn, pce_svn, &td.tee_tcb_svn)?;
    check_tdx_module_identity(info, td)?;
    // A TD 1.5 also carries its current TCB (after TD-preserving updates): like Intel QVL,
    // it must be appraisable too.
    let current = tee_tcb_svn2
        .map(|svn2| evaluate_tdx_tcb(info, cpu_svn, pce_svn, svn2))
        .transpose()?;
    Ok(PlatformMatch { level, current })
}
