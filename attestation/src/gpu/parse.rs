//! SPDM 1.1 GET_MEASUREMENTS request ‖ MEASUREMENTS response with NVIDIA's opaque-data TLVs
//! (layout in the module docs of `gpu`). Hand-written: no crate parses this format.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result, Subject};

pub(crate) const SPDM_VERSION_11: u8 = 0x11;
pub(crate) const CODE_GET_MEASUREMENTS: u8 = 0xE0;
pub(crate) const CODE_MEASUREMENTS: u8 = 0x60;
/// Measurement specification bit 0: the DMTF measurement layout.
pub(crate) const SPEC_DMTF: u8 = 0x01;
/// Length of the SPDM 1.1 GET_MEASUREMENTS request with a nonce (the report's prefix).
pub const REQUEST_LEN: usize = 37;
/// Length of the P-384 `r ‖ s` signature ending the report.
pub const SIGNATURE_LEN: usize = 96;
pub(crate) const NONCE_LEN: usize = 32;

pub(crate) const TLV_DRIVER_VERSION: u16 = 3;
pub(crate) const TLV_VBIOS_VERSION: u16 = 6;
pub(crate) const TLV_FWID: u16 = 20;

/// The signed GET_MEASUREMENTS request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuRequest {
    pub param1: u8,
    pub param2: u8,
    pub nonce: [u8; 32],
    pub slot_id: u8,
}

/// One measurement block (DMTF layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasurementBlock {
    pub index: u8,
    /// DMTFSpecMeasurementValueType (bit 7: raw bit stream, else digest; low bits: component).
    pub dmtf_type: u8,
    pub value: Vec<u8>,
}

/// One NVIDIA opaque-data TLV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpaqueField {
    pub kind: u16,
    pub data: Vec<u8>,
}

/// Parsed, UNVERIFIED GPU evidence: the fields are the device's claims before any signature
/// or chain check. Only [`super::verify`] yields values to rely on ([`super::VerifiedGpu`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuEvidence {
    pub request: GpuRequest,
    pub response_param1: u8,
    pub response_param2: u8,
    pub blocks: Vec<MeasurementBlock>,
    pub responder_nonce: [u8; 32],
    pub opaque: Vec<OpaqueField>,
    pub signature: [u8; 96],
    /// Length of request ‖ response without the signature (the signed bytes).
    signed_len: usize,
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(Error::LengthOutOfRange {
            subject: Subject::GpuEvidence,
            length: n,
            limit: self.data.len(),
        })?;
        let out = self.data.get(self.pos..end).ok_or(Error::Truncated {
            subject: Subject::GpuEvidence,
            needed: end,
            available: self.data.len(),
        })?;
        self.pos = end;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8> {
        self.take(1)?
            .first()
            .copied()
            .ok_or(Error::GpuEvidenceMalformed {
                reason: "empty read".into(),
            })
    }
    fn u16(&mut self) -> Result<u16> {
        let b = self.array::<2>()?;
        Ok(u16::from_le_bytes(b))
    }
    fn u24(&mut self) -> Result<usize> {
        let [a, b, c] = self.array::<3>()?;
        Ok(usize::from(a) | usize::from(b) << 8 | usize::from(c) << 16)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }
    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }
}

fn expect(field: &'static str, expected: u8, actual: u8) -> Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::GpuUnexpectedValue {
            field,
            expected: expected.into(),
            actual: actual.into(),
        })
    }
}

impl GpuEvidence {
    /// Parses `request ‖ response` (binary). Rejects truncation, trailing bytes, wrong SPDM
    /// versions or codes, a request without the signature bit, non-DMTF blocks, block and
    /// record length mismatches, duplicate block indices or TLV types, and reports without a
    /// driver or VBIOS version.
    pub fn parse(report: &[u8]) -> Result<GpuEvidence> {
        if report.len() > super::MAX_REPORT_LEN {
            return Err(Error::InputTooLarge {
                subject: Subject::GpuEvidence,
                size: report.len(),
                limit: super::MAX_REPORT_LEN,
            });
        }
        let mut r = Reader {
            data: report,
            pos: 0,
        };
        // Request.
        expect("request SPDM version", SPDM_VERSION_11, r.u8()?)?;
        expect("request code", CODE_GET_MEASUREMENTS, r.u8()?)?;
        let param1 = r.u8()?;
        if param1 & 0x01 == 0 {
            return Err(Error::GpuUnexpectedValue {
                field: "request param1 signature-requested bit",
                expected: 1,
                actual: u64::from(param1),
            });
        }
        let param2 = r.u8()?;
        let nonce = r.array::<NONCE_LEN>()?;
        let slot_id = r.u8()?;
        let request = GpuRequest {
            param1,
            param2,
            nonce,
            slot_id,
        };

        // Response header.
        expect("response SPDM version", SPDM_VERSION_11, r.u8()?)?;
        expect("response code", CODE_MEASUREMENTS, r.u8()?)?;
        let response_param1 = r.u8()?;
        let response_param2 = r.u8()?;
        let number_of_blocks = r.u8()?;
        let record_len = r.u24()?;
        let record = r.take(record_len)?;
        let blocks = parse_record(number_of_blocks, record)?;

        let responder_nonce = r.array::<NONCE_LEN>()?;
        let opaque_len = usize::from(r.u16()?);
        let opaque = parse_opaque(r.take(opaque_len)?)?;

        let signed_len = r.pos;
        match r.remaining() {
            n if n < SIGNATURE_LEN => {
                return Err(Error::Truncated {
                    subject: Subject::GpuEvidence,
                    needed: signed_len.saturating_add(SIGNATURE_LEN),
                    available: report.len(),
                })
            }
            n if n > SIGNATURE_LEN => {
                return Err(Error::TrailingBytes {
                    subject: Subject::GpuEvidence,
                    count: n.saturating_sub(SIGNATURE_LEN),
                })
            }
            _ => {}
        }
        let signature = r.array::<SIGNATURE_LEN>()?;

        let evidence = GpuEvidence {
            request,
            response_param1,
            response_param2,
            blocks,
            responder_nonce,
            opaque,
            signature,
            signed_len,
        };
        for (kind, name) in [
            (TLV_DRIVER_VERSION, "driver version"),
            (TLV_VBIOS_VERSION, "VBIOS version"),
        ] {
            if evidence.opaque_bytes(kind).is_none() {
                return Err(Error::GpuEvidenceMalformed {
                    reason: format!("no {name} opaque field (type {kind})"),
                });
            }
        }
        Ok(evidence)
    }

    /// The data of the opaque TLV of type `kind`, if present.
    pub fn opaque_bytes(&self, kind: u16) -> Option<&[u8]> {
        self.opaque
            .iter()
            .find(|f| f.kind == kind)
            .map(|f| f.data.as_slice())
    }

    /// The signed prefix of `report` (the same bytes this evidence was parsed from).
    pub(crate) fn signed_bytes<'a>(&self, report: &'a [u8]) -> Result<&'a [u8]> {
        report
            .get(..self.signed_len)
            .ok_or(Error::GpuEvidenceMalformed {
                reason: "report shorter than the parsed evidence".into(),
            })
    }

    /// The opaque fields decoded as NVIDIA's local verifier names and formats them.
    pub(crate) fn config_claims(&self) -> Result<BTreeMap<String, serde_json::Value>> {
        let mut out = BTreeMap::new();
        for field in &self.opaque {
            let (name, value) = decode_tlv(field)?;
            out.insert(name, value);
        }
        Ok(out)
    }
}

fn parse_record(number_of_blocks: u8, record: &[u8]) -> Result<Vec<MeasurementBlock>> {
    let mut r = Reader {
        data: record,
        pos: 0,
    };
    let mut seen = BTreeSet::new();
    let mut blocks = Vec::with_capacity(usize::from(number_of_blocks));
    for _ in 0..number_of_blocks {
        let index = r.u8()?;
        expect("measurement specification", SPEC_DMTF, r.u8()?)?;
        let size = usize::from(r.u16()?);
        let body = r.take(size)?;
        let mut m = Reader { data: body, pos: 0 };
        let dmtf_type = m.u8()?;
        let value_size = usize::from(m.u16()?);
        if m.remaining() != value_size {
            return Err(Error::LengthOutOfRange {
                subject: Subject::GpuEvidence,
                length: value_size,
                limit: m.remaining(),
            });
        }
        let value = m.take(value_size)?.to_vec();
        if !seen.insert(index) {
            return Err(Error::GpuDuplicateEntry {
                what: "measurement block index",
                id: index.into(),
            });
        }
        blocks.push(MeasurementBlock {
            index,
            dmtf_type,
            value,
        });
    }
    if r.remaining() != 0 {
        return Err(Error::LengthOutOfRange {
            subject: Subject::GpuEvidence,
            length: record.len(),
            limit: r.pos,
        });
    }
    Ok(blocks)
}

fn parse_opaque(data: &[u8]) -> Result<Vec<OpaqueField>> {
    let mut r = Reader { data, pos: 0 };
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    while r.remaining() > 0 {
        let kind = r.u16()?;
        let size = usize::from(r.u16()?);
        let data = r.take(size)?.to_vec();
        if !seen.insert(kind) {
            return Err(Error::GpuDuplicateEntry {
                what: "opaque data type",
                id: kind,
            });
        }
        out.push(OpaqueField { kind, data });
    }
    Ok(out)
}

/// How a TLV is rendered in the claims.
enum Render {
    /// UTF-8 (lossy), trailing NULs removed.
    Text,
    Hex,
    Vbios,
    Counts,
    Chunks8,
    Number,
}

/// NVIDIA's opaque-data types (nvtrust `OpaqueDataType` numbering) and claim names.
fn tlv_kind(kind: u16) -> Option<(&'static str, Render)> {
    use Render::*;
    Some(match kind {
        1 => ("cert_issuer_name", Hex),
        2 => ("cert_authority_key_identifier", Hex),
        3 => ("driver_version", Text),
        4 => ("gpu_info", Hex),
        5 => ("id_sku", Hex),
        6 => ("vbios_version", Vbios),
        7 => ("manufacturer_id", Hex),
        8 => ("tamper_detection", Hex),
        9 => ("smc", Hex),
        10 => ("vpr", Hex),
        // One status byte: 0x55 renders "U" (disabled), 0xAA is not UTF-8 ("\u{fffd}").
        // Text keeps the shape of NVIDIA's local verifier's claims (the golden vector).
        11 => ("nvdec0_status", Text),
        12 => ("measurement_count", Counts),
        13 => ("cpr_info", Hex),
        14 => ("board_id", Hex),
        15 => ("chip_sku", Text),
        16 => ("chip_sku_mod", Text),
        17 => ("project", Text),
        18 => ("project_sku", Text),
        19 => ("project_sku_mod", Hex),
        20 => ("fwid", Hex),
        21 => ("protected_pcie_status", Text),
        22 => ("switch_pdi", Chunks8),
        23 => ("floorswept_ports", Hex),
        24 => ("position_id", Hex),
        25 => ("lock_switch_status", Hex),
        32 => ("gpu_link_conn", Hex),
        33 => ("sys_enable_status", Hex),
        34 => ("opaque_data_version", Number),
        35 => ("chip_info", Text),
        36 => ("feature_flag", Hex),
        _ => return None,
    })
}

fn decode_tlv(field: &OpaqueField) -> Result<(String, serde_json::Value)> {
    use serde_json::Value;
    let bad = |reason: &str| Error::GpuEvidenceMalformed {
        reason: format!("opaque field {}: {reason}", field.kind),
    };
    let Some((name, render)) = tlv_kind(field.kind) else {
        // Unknown types are signed like the rest; kept, in hex, under their number.
        return Ok((
            format!("opaque_{}", field.kind),
            Value::String(hex::encode(&field.data)),
        ));
    };
    let data = field.data.as_slice();
    let value = match render {
        Render::Text => Value::String(
            String::from_utf8_lossy(data)
                .trim_end_matches('\0')
                .to_string(),
        ),
        Render::Hex => Value::String(hex::encode(data)),
        Render::Vbios => Value::String(format_vbios(data).ok_or_else(|| bad("VBIOS version"))?),
        Render::Counts => {
            if data.len() % 4 != 0 {
                return Err(bad("measurement counts are not 4-byte integers"));
            }
            let mut map = serde_json::Map::new();
            for (i, chunk) in (1u32..).zip(data.chunks_exact(4)) {
                let mut b = [0u8; 4];
                b.copy_from_slice(chunk);
                map.insert(i.to_string(), Value::from(u32::from_le_bytes(b)));
            }
            Value::Object(map)
        }
        Render::Chunks8 => {
            if data.len() % 8 != 0 {
                return Err(bad("switch PDIs are not 8-byte values"));
            }
            Value::Array(
                data.chunks_exact(8)
                    .map(|c| Value::String(hex::encode(c)))
                    .collect(),
            )
        }
        Render::Number => {
            if data.len() > 8 {
                return Err(bad("integer longer than 8 bytes"));
            }
            let mut b = [0u8; 8];
            b.get_mut(..data.len())
                .ok_or_else(|| bad("integer length"))?
                .copy_from_slice(data);
            Value::from(u64::from_le_bytes(b))
        }
    };
    Ok((name.to_string(), value))
}

/// NVIDIA's VBIOS version format: the first half of the bytes reversed, then the first byte
/// of the second half, as dotted lower-case hex (`00 9f 00 96 01 00 00 00` → `96.00.9f.00.01`).
pub(crate) fn format_vbios(bytes: &[u8]) -> Option<String> {
    let half = bytes.len().checked_div(2)?;
    if half == 0 {
        return None;
    }
    let mut parts: Vec<String> = bytes
        .get(..half)?
        .iter()
        .rev()
        .map(|b| format!("{b:02x}"))
        .collect();
    parts.push(format!("{:02x}", bytes.get(half)?));
    Some(parts.join("."))
}

/// The inverse of [`format_vbios`] for the 8-byte H100 field (simulator).
#[cfg(feature = "sim")]
pub(crate) fn encode_vbios(version: &str) -> Option<[u8; 8]> {
    let parts: Vec<u8> = version
        .split('.')
        .map(|p| u8::from_str_radix(p, 16).ok())
        .collect::<Option<_>>()?;
    let [a, b, c, d, e] = parts.as_slice() else {
        return None;
    };
    Some([*d, *c, *b, *a, *e, 0, 0, 0])
}
