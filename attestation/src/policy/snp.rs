//! The `[snp]` section: reference values for AMD SEV-SNP attestation reports.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{check_allowlist, check_hex_allowlist, hex_list, invalid, parse_hex_list};
use crate::error::Error;
use crate::snp::{Generation, TcbParts, VerifiedSnpReport};

/// Highest VMPL a report can name (VMPL 0..=3).
const MAX_VMPL: u32 = 3;

/// Minimum security patch levels, compared one component at a time (AMD's guidance: a TCB is
/// at least another only if every SPL is). `fmc` exists on Turin only and is ignored for
/// generations without it. 0 = no constraint on that component.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct TcbMinimum {
    pub bootloader: u8,
    pub tee: u8,
    pub snp: u8,
    pub microcode: u8,
    pub fmc: u8,
}

impl TcbMinimum {
    pub fn new(bootloader: u8, tee: u8, snp: u8, microcode: u8, fmc: u8) -> Self {
        Self {
            bootloader,
            tee,
            snp,
            microcode,
            fmc,
        }
    }
}

/// Reference values for SEV-SNP reports. Every `Option` allowlist: `None` = no constraint,
/// empty = deny.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SnpPolicy {
    pub measurement: Option<BTreeSet<[u8; 48]>>,
    pub host_data: Option<BTreeSet<[u8; 32]>>,
    pub family_id: Option<BTreeSet<[u8; 16]>>,
    pub image_id: Option<BTreeSet<[u8; 16]>>,
    pub id_key_digest: Option<BTreeSet<[u8; 48]>>,
    pub author_key_digest: Option<BTreeSet<[u8; 48]>>,
    /// Minimum of REPORTED_TCB (the TCB the VCEK/VLEK is derived from).
    pub min_tcb: Option<TcbMinimum>,
    /// Minimum of LAUNCH_TCB (the TCB when the guest was launched).
    pub min_launch_tcb: Option<TcbMinimum>,
    pub min_guest_svn: Option<u32>,
    /// Guest policy DEBUG (bit 19). Default false.
    pub allow_debug: bool,
    /// Guest policy MIGRATE_MA (bit 18). Default false.
    pub allow_migration_agent: bool,
    /// Guest policy SMT (bit 16). Default true (see docs/policy.md).
    pub allow_smt: bool,
    /// Minimum guest-policy ABI (major, minor), compared as a version.
    pub min_abi: Option<(u8, u8)>,
    /// VMPLs a report may come from. Default {0}.
    pub vmpl: BTreeSet<u32>,
    /// Current firmware version (major.minor.build) ≠ committed version. Default false.
    pub allow_provisional_firmware: bool,
    pub allowed_generations: Option<BTreeSet<GenerationName>>,
}

impl Default for SnpPolicy {
    fn default() -> Self {
        Self {
            measurement: None,
            host_data: None,
            family_id: None,
            image_id: None,
            id_key_digest: None,
            author_key_digest: None,
            min_tcb: None,
            min_launch_tcb: None,
            min_guest_svn: None,
            allow_debug: false,
            allow_migration_agent: false,
            allow_smt: true,
            min_abi: None,
            vmpl: BTreeSet::from([0]),
            allow_provisional_firmware: false,
            allowed_generations: None,
        }
    }
}

/// A processor generation as an ordered set member ([`Generation`] has no order of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GenerationName(u8);

impl GenerationName {
    const ALL: [Generation; 3] = [Generation::Milan, Generation::Genoa, Generation::Turin];

    pub fn new(generation: Generation) -> Self {
        Self(match generation {
            Generation::Milan => 0,
            Generation::Genoa => 1,
            Generation::Turin => 2,
        })
    }

    pub fn generation(self) -> Generation {
        match self.0 {
            0 => Generation::Milan,
            1 => Generation::Genoa,
            _ => Generation::Turin,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|g| g.as_str() == name)
            .map(Self::new)
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TcbFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bootloader: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tee: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    snp: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    microcode: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fmc: Option<u8>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SnpFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    measurement: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    host_data: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    family_id: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    image_id: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_key_digest: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    author_key_digest: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_guest_svn: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allow_debug: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allow_migration_agent: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allow_smt: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_abi_major: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_abi_minor: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    vmpl: Option<Vec<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allow_provisional_firmware: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allowed_generations: Option<Vec<String>>,
    // Tables last: TOML writes them after the plain keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_tcb: Option<TcbFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_launch_tcb: Option<TcbFile>,
}

impl TcbFile {
    fn to_minimum(&self) -> TcbMinimum {
        TcbMinimum {
            bootloader: self.bootloader.unwrap_or(0),
            tee: self.tee.unwrap_or(0),
            snp: self.snp.unwrap_or(0),
            microcode: self.microcode.unwrap_or(0),
            fmc: self.fmc.unwrap_or(0),
        }
    }

    fn from_minimum(m: &TcbMinimum) -> Self {
        Self {
            bootloader: Some(m.bootloader),
            tee: Some(m.tee),
            snp: Some(m.snp),
            microcode: Some(m.microcode),
            fmc: Some(m.fmc),
        }
    }
}

impl SnpPolicy {
    pub(super) fn from_file(f: SnpFile) -> crate::Result<Self> {
        let d = Self::default();
        let vmpl = match f.vmpl {
            None => d.vmpl,
            Some(list) => {
                if let Some(bad) = list.iter().find(|v| **v > MAX_VMPL) {
                    return Err(invalid(format!(
                        "snp.vmpl: {bad} is not a VMPL (0..={MAX_VMPL})"
                    )));
                }
                list.into_iter().collect()
            }
        };
        let allowed_generations = f
            .allowed_generations
            .map(|names| {
                names
                    .iter()
                    .map(|name| {
                        GenerationName::from_name(name).ok_or_else(|| {
                            invalid(format!(
                                "snp.allowed_generations: unknown generation \"{name}\" (Milan, Genoa, Turin)"
                            ))
                        })
                    })
                    .collect::<crate::Result<BTreeSet<_>>>()
            })
            .transpose()?;
        let min_abi = match (f.min_abi_major, f.min_abi_minor) {
            (None, None) => None,
            (major, minor) => Some((major.unwrap_or(0), minor.unwrap_or(0))),
        };
        Ok(Self {
            measurement: parse_hex_list("snp.measurement", f.measurement)?,
            host_data: parse_hex_list("snp.host_data", f.host_data)?,
            family_id: parse_hex_list("snp.family_id", f.family_id)?,
            image_id: parse_hex_list("snp.image_id", f.image_id)?,
            id_key_digest: parse_hex_list("snp.id_key_digest", f.id_key_digest)?,
            author_key_digest: parse_hex_list("snp.author_key_digest", f.author_key_digest)?,
            min_tcb: f.min_tcb.as_ref().map(TcbFile::to_minimum),
            min_launch_tcb: f.min_launch_tcb.as_ref().map(TcbFile::to_minimum),
            min_guest_svn: f.min_guest_svn,
            allow_debug: f.allow_debug.unwrap_or(d.allow_debug),
            allow_migration_agent: f.allow_migration_agent.unwrap_or(d.allow_migration_agent),
            allow_smt: f.allow_smt.unwrap_or(d.allow_smt),
            min_abi,
            vmpl,
            allow_provisional_firmware: f
                .allow_provisional_firmware
                .unwrap_or(d.allow_provisional_firmware),
            allowed_generations,
        })
    }

    pub(super) fn to_file(&self) -> SnpFile {
        SnpFile {
            measurement: hex_list(&self.measurement),
            host_data: hex_list(&self.host_data),
            family_id: hex_list(&self.family_id),
            image_id: hex_list(&self.image_id),
            id_key_digest: hex_list(&self.id_key_digest),
            author_key_digest: hex_list(&self.author_key_digest),
            min_guest_svn: self.min_guest_svn,
            allow_debug: Some(self.allow_debug),
            allow_migration_agent: Some(self.allow_migration_agent),
            allow_smt: Some(self.allow_smt),
            min_abi_major: self.min_abi.map(|(major, _)| major),
            min_abi_minor: self.min_abi.map(|(_, minor)| minor),
            vmpl: Some(self.vmpl.iter().copied().collect()),
            allow_provisional_firmware: Some(self.allow_provisional_firmware),
            allowed_generations: self.allowed_generations.as_ref().map(|set| {
                set.iter()
                    .map(|g| g.generation().as_str().to_owned())
                    .collect()
            }),
            min_tcb: self.min_tcb.as_ref().map(TcbFile::from_minimum),
            min_launch_tcb: self.min_launch_tcb.as_ref().map(TcbFile::from_minimum),
        }
    }

    /// Order: VMPL, guest policy (debug, migration agent, SMT, ABI), provisional firmware,
    /// minimum reported TCB, minimum launch TCB, guest SVN, generation, then the allowlists in
    /// schema order.
    pub(super) fn evaluate(&self, v: &VerifiedSnpReport, failures: &mut Vec<Error>) {
        let r = &v.report;
        let vmpl = Some(self.vmpl.clone());
        check_allowlist("snp.vmpl", &vmpl, &r.vmpl, u32::to_string, failures);

        if r.policy.debug_allowed() && !self.allow_debug {
            failures.push(Error::DebugNotAllowed);
        }
        if r.policy.migrate_ma_allowed() && !self.allow_migration_agent {
            failures.push(Error::FeatureNotAllowed {
                feature: "migration agent (guest policy MIGRATE_MA, bit 18)",
            });
        }
        if r.policy.smt_allowed() && !self.allow_smt {
            failures.push(Error::FeatureNotAllowed {
                feature: "SMT (guest policy bit 16)",
            });
        }
        if let Some((major, minor)) = self.min_abi {
            let actual = (r.policy.abi_major(), r.policy.abi_minor());
            if actual < (major, minor) {
                failures.push(Error::BelowMinimum {
                    field: "snp.min_abi",
                    minimum: format!("{major}.{minor}"),
                    actual: format!("{}.{}", actual.0, actual.1),
                });
            }
        }

        // Firmware version only: a current TCB above the committed one is routine (microcode
        // loaded at boot), and verification already refuses committed > current.
        let provisional = (r.current_major, r.current_minor, r.current_build)
            != (r.committed_major, r.committed_minor, r.committed_build);
        if provisional && !self.allow_provisional_firmware {
            failures.push(Error::ProvisionalFirmwareNotAllowed);
        }

        if let Some(min) = &self.min_tcb {
            check_tcb(TCB_FIELDS_REPORTED, min, &v.reported_tcb, failures);
        }
        if let Some(min) = &self.min_launch_tcb {
            check_tcb(TCB_FIELDS_LAUNCH, min, &v.launch_tcb, failures);
        }
        if let Some(min) = self.min_guest_svn {
            if r.guest_svn < min {
                failures.push(Error::BelowMinimum {
                    field: "snp.min_guest_svn",
                    minimum: min.to_string(),
                    actual: r.guest_svn.to_string(),
                });
            }
        }
        check_allowlist(
            "snp.allowed_generations",
            &self.allowed_generations,
            &GenerationName::new(v.generation),
            |g| g.generation().as_str().to_owned(),
            failures,
        );

        check_hex_allowlist(
            "snp.measurement",
            &self.measurement,
            &r.measurement,
            failures,
        );
        check_hex_allowlist("snp.host_data", &self.host_data, &r.host_data, failures);
        check_hex_allowlist("snp.family_id", &self.family_id, &r.family_id, failures);
        check_hex_allowlist("snp.image_id", &self.image_id, &r.image_id, failures);
        check_hex_allowlist(
            "snp.id_key_digest",
            &self.id_key_digest,
            &r.id_key_digest,
            failures,
        );
        check_hex_allowlist(
            "snp.author_key_digest",
            &self.author_key_digest,
            &r.author_key_digest,
            failures,
        );
    }
}

/// Error field names per TCB table: bootloader, tee, snp, microcode, fmc.
const TCB_FIELDS_REPORTED: [&str; 5] = [
    "snp.min_tcb.bootloader",
    "snp.min_tcb.tee",
    "snp.min_tcb.snp",
    "snp.min_tcb.microcode",
    "snp.min_tcb.fmc",
];
const TCB_FIELDS_LAUNCH: [&str; 5] = [
    "snp.min_launch_tcb.bootloader",
    "snp.min_launch_tcb.tee",
    "snp.min_launch_tcb.snp",
    "snp.min_launch_tcb.microcode",
    "snp.min_launch_tcb.fmc",
];

/// One failure per component below its minimum.
fn check_tcb(
    fields: [&'static str; 5],
    min: &TcbMinimum,
    actual: &TcbParts,
    failures: &mut Vec<Error>,
) {
    let [f_bl, f_tee, f_snp, f_ucode, f_fmc] = fields;
    let mut pairs = vec![
        (f_bl, min.bootloader, actual.bootloader),
        (f_tee, min.tee, actual.tee),
        (f_snp, min.snp, actual.snp),
        (f_ucode, min.microcode, actual.microcode),
    ];
    if let Some(fmc) = actual.fmc {
        pairs.push((f_fmc, min.fmc, fmc));
    }
    for (field, minimum, value) in pairs {
        if value < minimum {
            failures.push(Error::BelowMinimum {
                field,
                minimum: minimum.to_string(),
                actual: value.to_string(),
            });
        }
    }
}
