//! The RA-TLS extensions: OIDs, size caps and their versioned DER encodings (`docs/ratls.md`).
//!
//! ```text
//! RaTlsEvidence ::= SEQUENCE {            -- extension 2.25.<uuid>.1, critical
//!     version   INTEGER (1),
//!     format    ENUMERATED { tdxQuote(1), snpReport(2) },
//!     evidence  OCTET STRING }            -- the raw quote or report
//! RaTlsClaims ::= SEQUENCE {              -- extension 2.25.<uuid>.2, critical
//!     version   INTEGER (1),
//!     claims    OCTET STRING }            -- canonical claims (docs/claims.md)
//! RaTlsPlatformCertificates ::= SEQUENCE { -- extension 2.25.<uuid>.3, critical (SNP only)
//!     version       INTEGER (1),
//!     certificates  SEQUENCE SIZE (1..4) OF OCTET STRING }  -- DER: VCEK/VLEK, [ASK, [ARK]]
//! RaTlsGpuEvidence ::= SEQUENCE {        -- extension 2.25.<uuid>.4, critical (claims with gpu)
//!     version  INTEGER (1),
//!     gpus     SEQUENCE SIZE (1..8) OF SEQUENCE {
//!         report        OCTET STRING,      -- SPDM GET_MEASUREMENTS request ‖ response
//!         certificates  SEQUENCE SIZE (1..8) OF OCTET STRING } }  -- DER, device leaf first
//! ```
//!
//! Decoding is strict DER: definite minimal lengths, minimal INTEGER encodings, no trailing
//! bytes anywhere.

use super::{CarriedEvidence, CarriedGpuEvidence, EvidenceFormat};
use crate::claims::MAX_CLAIMS_SIZE;
use crate::error::{Error, Result};

/// The UUID our OID arc is derived from (ITU-T X.667: `2.25.<UUID as an integer>`).
pub const OID_ARC_UUID: &str = "cd94edfd-3010-4bd4-9d6e-7522b8ff1c8e";

/// The arc itself, dotted.
pub const OID_ARC: &str = "2.25.273265026061647071373149336998156115086";

/// The UUID as an integer (the third arc).
const ARC_INTEGER: u128 = 273_265_026_061_647_071_373_149_336_998_156_115_086;

/// Dotted OIDs of the three extensions.
pub const EVIDENCE_OID: &str = "2.25.273265026061647071373149336998156115086.1";
pub const CLAIMS_OID: &str = "2.25.273265026061647071373149336998156115086.2";
pub const PLATFORM_CERTIFICATES_OID: &str = "2.25.273265026061647071373149336998156115086.3";
pub const GPU_EVIDENCE_OID: &str = "2.25.273265026061647071373149336998156115086.4";

/// Version of every extension encoding this build writes and reads.
pub const RATLS_EXTENSION_VERSION: u64 = 1;

/// Largest RA-TLS certificate accepted, in bytes.
pub const MAX_CERTIFICATE_SIZE: usize = 64 * 1024;
/// Largest evidence extension value (a TDX quote with its PEM PCK chain is about 5 KiB).
pub const MAX_EVIDENCE_EXTENSION_SIZE: usize = 32 * 1024;
/// Largest claims extension value (the claims cap plus the envelope).
pub const MAX_CLAIMS_EXTENSION_SIZE: usize = MAX_CLAIMS_SIZE + 32;
/// Largest platform-certificates extension value.
pub const MAX_PLATFORM_CERTIFICATES_EXTENSION_SIZE: usize = 16 * 1024;
/// Most certificates in the platform-certificates extension (VCEK/VLEK, ASK/ASVK, ARK, +1).
pub const MAX_PLATFORM_CERTIFICATES: usize = 4;
/// Largest GPU-evidence extension value (an H100 report is ~4 KiB, its 5-certificate chain
/// ~4.5 KiB: four GPUs fit; the whole certificate must stay under [`MAX_CERTIFICATE_SIZE`] and
/// rustls' 64 KiB handshake-message limit).
pub const MAX_GPU_EVIDENCE_EXTENSION_SIZE: usize = 48 * 1024;
/// Most GPUs in the GPU-evidence extension (= `claims::MAX_GPUS`).
pub const MAX_GPU_REPORTS: usize = 8;
/// Most certificates per GPU (H100: 5).
pub const MAX_GPU_CERTIFICATES: usize = 8;

/// Names used in errors.
pub(crate) const EVIDENCE_NAME: &str = "evidence";
pub(crate) const CLAIMS_NAME: &str = "claims";
pub(crate) const PLATFORM_CERTIFICATES_NAME: &str = "platform-certificates";
pub(crate) const GPU_EVIDENCE_NAME: &str = "gpu-evidence";

/// One of our extensions, or any other OID (u64 arcs) for building test certificates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExtensionOid {
    Evidence,
    Claims,
    PlatformCertificates,
    GpuEvidence,
    Other(Vec<u64>),
}

impl ExtensionOid {
    fn sub_arc(&self) -> Option<u8> {
        match self {
            Self::Evidence => Some(1),
            Self::Claims => Some(2),
            Self::PlatformCertificates => Some(3),
            Self::GpuEvidence => Some(4),
            Self::Other(_) => None,
        }
    }

    /// The OID's DER contents (without tag and length).
    pub fn der_contents(&self) -> Vec<u8> {
        match (self, self.sub_arc()) {
            (_, Some(sub)) => real_oid(sub),
            (Self::Other(arcs), None) => {
                let wide: Vec<u128> = arcs.iter().map(|a| u128::from(*a)).collect();
                encode_oid(&wide)
            }
            (_, None) => Vec::new(),
        }
    }
}

/// An extension to put into a certificate ([`super::issue_with_extensions`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawExtension {
    pub oid: ExtensionOid,
    pub critical: bool,
    /// The extnValue contents (DER of the extension's type).
    pub value: Vec<u8>,
}

impl RawExtension {
    pub fn evidence(evidence: &CarriedEvidence) -> Self {
        Self {
            oid: ExtensionOid::Evidence,
            critical: true,
            value: encode_evidence(evidence),
        }
    }

    pub fn claims(claims: &[u8]) -> Self {
        Self {
            oid: ExtensionOid::Claims,
            critical: true,
            value: encode_claims(claims),
        }
    }

    pub fn platform_certificates(certificates: &[Vec<u8>]) -> Self {
        Self {
            oid: ExtensionOid::PlatformCertificates,
            critical: true,
            value: encode_platform_certificates(certificates),
        }
    }

    pub fn gpu_evidence(gpus: &[CarriedGpuEvidence]) -> Self {
        Self {
            oid: ExtensionOid::GpuEvidence,
            critical: true,
            value: encode_gpu_evidence(gpus),
        }
    }
}

/// Base-128 encoding of OID arcs (the first two combined).
pub(crate) fn encode_oid(arcs: &[u128]) -> Vec<u8> {
    let mut out = Vec::new();
    let (first, second) = match (arcs.first(), arcs.get(1)) {
        (Some(a), Some(b)) => (*a, *b),
        _ => return out,
    };
    let head = first.saturating_mul(40).saturating_add(second);
    let mut push = |mut value: u128| {
        let mut groups = vec![(value & 0x7f) as u8];
        value = value.wrapping_shr(7);
        while value != 0 {
            groups.push(((value & 0x7f) as u8) | 0x80);
            value = value.wrapping_shr(7);
        }
        groups.reverse();
        out.extend_from_slice(&groups);
    };
    push(head);
    for arc in arcs.iter().skip(2) {
        push(*arc);
    }
    out
}

/// DER contents of `2.25.<uuid>.<sub>`.
pub(crate) fn real_oid(sub: u8) -> Vec<u8> {
    encode_oid(&[2, 25, ARC_INTEGER, u128::from(sub)])
}

/// rcgen (via yasna) only writes OIDs with u64 arcs, which the UUID arc exceeds. Certificates
/// are therefore generated with a placeholder OID of exactly the same encoded length, which the
/// issuer replaces by the real one before signing (see `issue.rs`).
pub(crate) const PLACEHOLDER_A: u64 = 0x0123_4567_89ab_cdef;
pub(crate) const PLACEHOLDER_B: u64 = 0x0fed_cba9_8765_4321;
pub(crate) const PLACEHOLDER_C: u64 = 0x5a;

pub(crate) fn placeholder_arcs(sub: u8) -> [u64; 6] {
    [
        2,
        25,
        PLACEHOLDER_A,
        PLACEHOLDER_B,
        PLACEHOLDER_C,
        u64::from(sub),
    ]
}

pub(crate) fn placeholder_oid(sub: u8) -> Vec<u8> {
    let arcs = placeholder_arcs(sub).map(u128::from);
    encode_oid(&arcs)
}

/// Which of our extensions an OID (DER contents) names, if any.
pub(crate) fn our_extension(oid: &[u8]) -> Option<ExtensionOid> {
    [
        ExtensionOid::Evidence,
        ExtensionOid::Claims,
        ExtensionOid::PlatformCertificates,
        ExtensionOid::GpuEvidence,
    ]
    .into_iter()
    .find(|e| e.der_contents() == oid)
}

// ------------------------------------------------------------------ DER writing

const TAG_INTEGER: u8 = 0x02;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_ENUMERATED: u8 = 0x0a;
const TAG_SEQUENCE: u8 = 0x30;

pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len().saturating_add(6));
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

fn uint(tag: u8, value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    let mut content = bytes.get(skip..).unwrap_or_default().to_vec();
    if content.first().is_some_and(|b| b & 0x80 != 0) {
        content.insert(0, 0);
    }
    tlv(tag, &content)
}

fn sequence(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(TAG_SEQUENCE, &parts.concat())
}

pub(crate) fn encode_evidence(evidence: &CarriedEvidence) -> Vec<u8> {
    sequence(&[
        uint(TAG_INTEGER, RATLS_EXTENSION_VERSION),
        uint(TAG_ENUMERATED, u64::from(evidence.format.code())),
        tlv(TAG_OCTET_STRING, &evidence.evidence),
    ])
}

pub(crate) fn encode_claims(claims: &[u8]) -> Vec<u8> {
    sequence(&[
        uint(TAG_INTEGER, RATLS_EXTENSION_VERSION),
        tlv(TAG_OCTET_STRING, claims),
    ])
}

pub(crate) fn encode_platform_certificates(certificates: &[Vec<u8>]) -> Vec<u8> {
    let list: Vec<Vec<u8>> = certificates
        .iter()
        .map(|c| tlv(TAG_OCTET_STRING, c))
        .collect();
    sequence(&[uint(TAG_INTEGER, RATLS_EXTENSION_VERSION), sequence(&list)])
}

pub(crate) fn encode_gpu_evidence(gpus: &[CarriedGpuEvidence]) -> Vec<u8> {
    let list: Vec<Vec<u8>> = gpus
        .iter()
        .map(|g| {
            let certs: Vec<Vec<u8>> = g
                .certificates
                .iter()
                .map(|c| tlv(TAG_OCTET_STRING, c))
                .collect();
            sequence(&[tlv(TAG_OCTET_STRING, &g.report), sequence(&certs)])
        })
        .collect();
    sequence(&[uint(TAG_INTEGER, RATLS_EXTENSION_VERSION), sequence(&list)])
}

// ------------------------------------------------------------------ DER reading

struct Der<'a> {
    rest: &'a [u8],
    extension: &'static str,
}

impl<'a> Der<'a> {
    fn new(bytes: &'a [u8], extension: &'static str) -> Self {
        Self {
            rest: bytes,
            extension,
        }
    }

    fn err(&self, reason: impl Into<String>) -> Error {
        Error::RaTlsExtensionMalformed {
            extension: self.extension,
            reason: reason.into(),
        }
    }

    /// One TLV with the expected tag; strict DER lengths.
    fn read(&mut self, tag: u8) -> Result<&'a [u8]> {
        let (&actual, rest) = self
            .rest
            .split_first()
            .ok_or_else(|| self.err("truncated: missing tag"))?;
        if actual != tag {
            return Err(self.err(format!("tag {actual:#04x}, expected {tag:#04x}")));
        }
        let (&first, mut rest) = rest
            .split_first()
            .ok_or_else(|| self.err("truncated: missing length"))?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 {
                return Err(self.err("unsupported length encoding"));
            }
            let (bytes, tail) = rest
                .split_at_checked(count)
                .ok_or_else(|| self.err("truncated length"))?;
            rest = tail;
            if bytes.first() == Some(&0) {
                return Err(self.err("non-minimal length"));
            }
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| acc.wrapping_shl(8) | usize::from(*b));
            if len < 0x80 {
                return Err(self.err("non-minimal length"));
            }
            len
        };
        let (content, tail) = rest
            .split_at_checked(len)
            .ok_or_else(|| self.err(format!("truncated: {len} bytes announced")))?;
        self.rest = tail;
        Ok(content)
    }

    fn uint(&mut self, tag: u8) -> Result<u64> {
        let content = self.read(tag)?;
        let minimal = match content {
            [] => false,
            [0, next, ..] => next & 0x80 != 0,
            [first, ..] => first & 0x80 == 0,
        };
        if !minimal || content.len() > 8 {
            return Err(self.err("integer not minimal, negative or too large"));
        }
        Ok(content
            .iter()
            .fold(0u64, |acc, b| acc.wrapping_shl(8) | u64::from(*b)))
    }

    fn finish(&self) -> Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.err(format!("{} trailing bytes", self.rest.len())))
        }
    }
}

/// Opens the outer SEQUENCE and checks the version.
fn open<'a>(value: &'a [u8], extension: &'static str, limit: usize) -> Result<Der<'a>> {
    if value.len() > limit {
        return Err(Error::RaTlsExtensionTooLarge {
            extension,
            size: value.len(),
            limit,
        });
    }
    let mut outer = Der::new(value, extension);
    let body = outer.read(TAG_SEQUENCE)?;
    outer.finish()?;
    let mut inner = Der::new(body, extension);
    let version = inner.uint(TAG_INTEGER)?;
    if version != RATLS_EXTENSION_VERSION {
        return Err(Error::UnsupportedRaTlsVersion { extension, version });
    }
    Ok(inner)
}

/// Decodes the evidence extension (without platform certificates).
pub(crate) fn decode_evidence(value: &[u8]) -> Result<(EvidenceFormat, Vec<u8>)> {
    let mut d = open(value, EVIDENCE_NAME, MAX_EVIDENCE_EXTENSION_SIZE)?;
    let code = d.uint(TAG_ENUMERATED)?;
    let format = EvidenceFormat::from_code(code)
        .ok_or_else(|| d.err(format!("unknown evidence format {code}")))?;
    let evidence = d.read(TAG_OCTET_STRING)?;
    d.finish()?;
    if evidence.is_empty() {
        return Err(d.err("empty evidence"));
    }
    Ok((format, evidence.to_vec()))
}

pub(crate) fn decode_claims(value: &[u8]) -> Result<Vec<u8>> {
    let mut d = open(value, CLAIMS_NAME, MAX_CLAIMS_EXTENSION_SIZE)?;
    let claims = d.read(TAG_OCTET_STRING)?;
    d.finish()?;
    Ok(claims.to_vec())
}

pub(crate) fn decode_platform_certificates(value: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut d = open(
        value,
        PLATFORM_CERTIFICATES_NAME,
        MAX_PLATFORM_CERTIFICATES_EXTENSION_SIZE,
    )?;
    let list = d.read(TAG_SEQUENCE)?;
    d.finish()?;
    certificate_list(
        list,
        PLATFORM_CERTIFICATES_NAME,
        MAX_PLATFORM_CERTIFICATES,
        "no certificate",
    )
}

/// The contents of a `SEQUENCE SIZE (1..max) OF OCTET STRING` of non-empty certificates.
fn certificate_list(
    list: &[u8],
    extension: &'static str,
    max: usize,
    none: &str,
) -> Result<Vec<Vec<u8>>> {
    let mut items = Der::new(list, extension);
    let mut out = Vec::new();
    while !items.rest.is_empty() {
        if out.len() >= max {
            return Err(items.err(format!("more than {max} certificates")));
        }
        let cert = items.read(TAG_OCTET_STRING)?;
        if cert.is_empty() {
            return Err(items.err("empty certificate"));
        }
        out.push(cert.to_vec());
    }
    if out.is_empty() {
        return Err(items.err(none));
    }
    Ok(out)
}

pub(crate) fn decode_gpu_evidence(value: &[u8]) -> Result<Vec<CarriedGpuEvidence>> {
    let mut d = open(value, GPU_EVIDENCE_NAME, MAX_GPU_EVIDENCE_EXTENSION_SIZE)?;
    let list = d.read(TAG_SEQUENCE)?;
    d.finish()?;
    let mut items = Der::new(list, GPU_EVIDENCE_NAME);
    let mut out = Vec::new();
    while !items.rest.is_empty() {
        if out.len() >= MAX_GPU_REPORTS {
            return Err(items.err(format!("more than {MAX_GPU_REPORTS} GPUs")));
        }
        let entry = items.read(TAG_SEQUENCE)?;
        let mut e = Der::new(entry, GPU_EVIDENCE_NAME);
        let report = e.read(TAG_OCTET_STRING)?;
        if report.is_empty() {
            return Err(e.err("empty GPU report"));
        }
        let certs = e.read(TAG_SEQUENCE)?;
        e.finish()?;
        let certificates = certificate_list(
            certs,
            GPU_EVIDENCE_NAME,
            MAX_GPU_CERTIFICATES,
            "a GPU report without its certificate chain",
        )?;
        out.push(CarriedGpuEvidence {
            report: report.to_vec(),
            certificates,
        });
    }
    if out.is_empty() {
        return Err(items.err("no GPU report"));
    }
    Ok(out)
}

/// Dotted form of an OID's DER contents (arcs up to 128 bits; hex if it does not decode).
pub(crate) fn oid_string(contents: &[u8]) -> String {
    let mut arcs: Vec<u128> = Vec::new();
    let mut value: u128 = 0;
    let mut pending = false;
    for b in contents {
        if value.leading_zeros() < 7 {
            return format!("oid:{}", hex::encode(contents));
        }
        value = value.wrapping_shl(7) | u128::from(b & 0x7f);
        pending = true;
        if b & 0x80 == 0 {
            arcs.push(value);
            value = 0;
            pending = false;
        }
    }
    let Some((&first, rest)) = arcs.split_first() else {
        return format!("oid:{}", hex::encode(contents));
    };
    if pending {
        return format!("oid:{}", hex::encode(contents));
    }
    let (a, b) = match first {
        0..=39 => (0, first),
        40..=79 => (1, first.saturating_sub(40)),
        _ => (2, first.saturating_sub(80)),
    };
    let mut out = format!("{a}.{b}");
    for arc in rest {
        out.push('.');
        out.push_str(&arc.to_string());
    }
    out
}
