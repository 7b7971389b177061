//! The Intel SGX extension of a PCK certificate (FMSPC, PCE-ID, CPU SVN, PCE SVN).
//!
//! dcap-qvl's `parse_pck_extension` decides what is acceptable; we keep its verdicts and
//! errors. It decodes the whole certificate with x509-cert and then walks the extension once
//! per field, which costs as much as a few percent of a cold verification. So a strict
//! single pass reads the extension first, and only accepts the exact shape Intel issues,
//! every part of which dcap-qvl accepts with the same values: well-formed DER throughout,
//! every entry `SEQUENCE { OID, value }`, each field we or dcap-qvl read present at most once
//! with its proper tag and length, nothing after the extension's `SEQUENCE`. Anything else
//! (including a missing field) goes to dcap-qvl's parser, which then accepts or rejects it
//! as it always did.

use der::asn1::AnyRef;
use der::{Decode as _, Reader as _, SliceReader, Tag, Tagged as _};

/// OID contents (without tag and length) of the fields, under 1.2.840.113741.1.13.1.
const SGX_EXTENSION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01];
const fn sgx_oid(arc: u8) -> [u8; 10] {
    [0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01, arc]
}
const fn sgx_oid2(arc: u8, sub: u8) -> [u8; 11] {
    [
        0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01, arc, sub,
    ]
}
const PPID: [u8; 10] = sgx_oid(1);
const TCB: [u8; 10] = sgx_oid(2);
const PCE_ID: [u8; 10] = sgx_oid(3);
const FMSPC: [u8; 10] = sgx_oid(4);
const SGX_TYPE: [u8; 10] = sgx_oid(5);
const CONFIGURATION: [u8; 10] = sgx_oid(7);
const PCE_SVN: [u8; 11] = sgx_oid2(2, 17);
const CPU_SVN: [u8; 11] = sgx_oid2(2, 18);
const DYNAMIC_PLATFORM: [u8; 11] = sgx_oid2(7, 1);
const CACHED_KEYS: [u8; 11] = sgx_oid2(7, 2);
const SMT_ENABLED: [u8; 11] = sgx_oid2(7, 3);

/// What verification uses from the extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PckFields {
    pub fmspc: [u8; 6],
    pub pce_id: Vec<u8>,
    pub cpu_svn: [u8; 16],
    pub pce_svn: u16,
}

/// The fields of the leaf's SGX extension, or dcap-qvl's error text.
pub(crate) fn pck_fields(leaf_der: &[u8]) -> std::result::Result<PckFields, String> {
    if let Some(fields) = fast(leaf_der) {
        return Ok(fields);
    }
    slow(leaf_der)
}

/// dcap-qvl's parser (the reference; also what `fast` defers to).
pub(crate) fn slow(leaf_der: &[u8]) -> std::result::Result<PckFields, String> {
    let ext = dcap_qvl::intel::parse_pck_extension(leaf_der).map_err(|e| format!("{e:#}"))?;
    Ok(PckFields {
        fmspc: ext.fmspc,
        pce_id: ext.pce_id,
        cpu_svn: ext.cpu_svn,
        pce_svn: ext.pce_svn,
    })
}

/// One TLV read whole from `r` (which must then be finished).
fn single(bytes: &[u8]) -> Option<AnyRef<'_>> {
    let mut r = SliceReader::new(bytes).ok()?;
    let any = AnyRef::decode(&mut r).ok()?;
    r.finish().ok()?;
    Some(any)
}

/// The `{ OID, value }` entries of a SEQUENCE's contents, each OID at most once.
fn entries(contents: &[u8]) -> Option<Vec<(&[u8], AnyRef<'_>)>> {
    let mut r = SliceReader::new(contents).ok()?;
    let mut out: Vec<(&[u8], AnyRef<'_>)> = Vec::with_capacity(20);
    while !r.is_finished() {
        let entry = AnyRef::decode(&mut r).ok()?;
        if entry.tag() != Tag::Sequence {
            return None;
        }
        let mut e = SliceReader::new(entry.value()).ok()?;
        let oid = AnyRef::decode(&mut e).ok()?;
        let value = AnyRef::decode(&mut e).ok()?;
        e.finish().ok()?;
        // dcap-qvl matches names by content whatever their tag: only true OIDs here.
        if oid.tag() != Tag::ObjectIdentifier || out.iter().any(|(seen, _)| *seen == oid.value()) {
            return None;
        }
        out.push((oid.value(), value));
    }
    Some(out)
}

fn find<'a>(entries: &[(&[u8], AnyRef<'a>)], oid: &[u8]) -> Option<AnyRef<'a>> {
    entries.iter().find(|(o, _)| *o == oid).map(|(_, v)| *v)
}

/// A present field with this tag and a content length in `lengths`.
fn field<'a>(
    entries: &[(&[u8], AnyRef<'a>)],
    oid: &[u8],
    tag: Tag,
    lengths: std::ops::RangeInclusive<usize>,
) -> Option<&'a [u8]> {
    let v = find(entries, oid)?;
    (v.tag() == tag && lengths.contains(&v.value().len())).then(|| v.value())
}

/// The strict single pass; `None` hands the certificate to dcap-qvl.
fn fast(der: &[u8]) -> Option<PckFields> {
    let ext = sgx_extension(der)?;
    let top = single(ext)?;
    if top.tag() != Tag::Sequence {
        return None;
    }
    let top = entries(top.value())?;
    find(&top, &PPID)?;
    let tcb = find(&top, &TCB)?;
    if tcb.tag() != Tag::Sequence {
        return None;
    }
    let tcb = entries(tcb.value())?;
    let cpu_svn = field(&tcb, &CPU_SVN, Tag::OctetString, 16..=16)?;
    let pce_svn = match field(&tcb, &PCE_SVN, Tag::Integer, 1..=2)? {
        [b] => u16::from(*b),
        [b0, b1] => u16::from_be_bytes([*b0, *b1]),
        _ => return None,
    };
    let pce_id = field(&top, &PCE_ID, Tag::OctetString, 2..=2)?;
    let fmspc = field(&top, &FMSPC, Tag::OctetString, 6..=6)?;
    field(&top, &SGX_TYPE, Tag::Enumerated, 1..=2)?;
    if let Some(config) = find(&top, &CONFIGURATION) {
        if config.tag() != Tag::Sequence {
            return None;
        }
        let config = entries(config.value())?;
        for flag in [DYNAMIC_PLATFORM, CACHED_KEYS, SMT_ENABLED] {
            if find(&config, &flag).is_some() {
                field(&config, &flag, Tag::Boolean, 1..=1)?;
            }
        }
    }
    // PLATFORM_INSTANCE_ID, present or not, is only looked up: nothing to check.
    Some(PckFields {
        fmspc: fmspc.try_into().ok()?,
        pce_id: pce_id.to_vec(),
        cpu_svn: cpu_svn.try_into().ok()?,
        pce_svn,
    })
}

/// The contents of the OCTET STRING of the one SGX extension of the certificate.
fn sgx_extension(der: &[u8]) -> Option<&[u8]> {
    let cert = single(der)?;
    if cert.tag() != Tag::Sequence {
        return None;
    }
    let mut c = SliceReader::new(cert.value()).ok()?;
    let tbs = AnyRef::decode(&mut c).ok()?;
    let algorithm = AnyRef::decode(&mut c).ok()?;
    let signature = AnyRef::decode(&mut c).ok()?;
    c.finish().ok()?;
    if tbs.tag() != Tag::Sequence
        || algorithm.tag() != Tag::Sequence
        || signature.tag() != Tag::BitString
    {
        return None;
    }
    let mut t = SliceReader::new(tbs.value()).ok()?;
    let mut extensions = None;
    while !t.is_finished() {
        let item = AnyRef::decode(&mut t).ok()?;
        if item.tag().is_context_specific() && item.tag().number().value() == 3 {
            if extensions.is_some() {
                return None;
            }
            extensions = Some(single(item.value())?);
        }
    }
    let extensions = extensions?;
    if extensions.tag() != Tag::Sequence {
        return None;
    }
    let mut r = SliceReader::new(extensions.value()).ok()?;
    let mut found = None;
    while !r.is_finished() {
        let ext = AnyRef::decode(&mut r).ok()?;
        if ext.tag() != Tag::Sequence {
            return None;
        }
        let mut e = SliceReader::new(ext.value()).ok()?;
        let oid = AnyRef::decode(&mut e).ok()?;
        let mut value = AnyRef::decode(&mut e).ok()?;
        if value.tag() == Tag::Boolean {
            value = AnyRef::decode(&mut e).ok()?;
        }
        e.finish().ok()?;
        if oid.tag() != Tag::ObjectIdentifier || value.tag() != Tag::OctetString {
            return None;
        }
        if oid.value() == SGX_EXTENSION {
            if found.is_some() {
                return None;
            }
            found = Some(value.value());
        }
    }
    found
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]
mod tests {
    use super::*;
    use crate::tdx::Quote;
    use crate::test_vectors;

    /// PCK leaf certificates of the real quotes that carry a PCK chain.
    fn real_leaves() -> Vec<(String, Vec<u8>)> {
        let mut leaves = Vec::new();
        for name in [
            "tdx/tdx_quote",
            "tdx/sgx_quote",
            "tdx/tdx_quote_outdated",
            "tdx/tdx_prod_quote_SPR_E4.dat",
            "tdx/tdx_quote_4.dat",
            "tdx/az_td_quote.bin",
            "tdx/occlum_quote.dat",
        ] {
            let Ok(quote) = Quote::parse(&test_vectors::read(name)) else {
                continue;
            };
            if let Ok(chain) = quote.pck_chain_der() {
                leaves.push((name.to_string(), chain[0].clone()));
            }
        }
        leaves
    }

    #[test]
    fn real_pck_leaves_take_the_single_pass_and_match_dcap_qvl() {
        let leaves = real_leaves();
        assert!(leaves.len() >= 5, "only {} leaves", leaves.len());
        for (name, der) in leaves {
            let fast = fast(&der).unwrap_or_else(|| panic!("{name}: not on the single pass"));
            assert_eq!(fast, slow(&der).unwrap(), "{name}");
        }
    }

    #[test]
    fn every_byte_change_in_the_sgx_extension_is_judged_as_dcap_qvl_judges_it() {
        let (_, der) = real_leaves().remove(0);
        let start = der
            .windows(SGX_EXTENSION.len())
            .position(|w| w == SGX_EXTENSION)
            .unwrap()
            - 2;
        // To the end of the TBS: the signature algorithm and value after it are webpki's,
        // which parses them and verifies the signature before the extension is read.
        let sig_alg = [
            0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
        ];
        let end = der
            .windows(sig_alg.len())
            .rposition(|w| w == sig_alg)
            .unwrap();
        let mut on_fast_path = 0;
        for i in start..end {
            for x in [0x01u8, 0x80, 0xff] {
                let mut m = der.clone();
                m[i] ^= x;
                let Some(f) = fast(&m) else { continue };
                on_fast_path += 1;
                assert_eq!(Ok(f), slow(&m), "byte {i} ^ {x:#04x}");
            }
        }
        // Changes to values (FMSPC, SVNs, PPID …) stay on the single pass.
        assert!(on_fast_path > 100, "{on_fast_path}");
    }

    #[test]
    fn shapes_the_single_pass_does_not_know_go_to_dcap_qvl() {
        let (_, der) = real_leaves().remove(0);
        // FMSPC as an INTEGER instead of an OCTET STRING (content unchanged): dcap-qvl reads
        // contents whatever the tag, so the verdict is its parser's.
        let mut m = der.clone();
        let fmspc_oid = [&[0x06, 0x0a][..], &sgx_oid(4)].concat();
        let at = m
            .windows(fmspc_oid.len())
            .position(|w| w == fmspc_oid)
            .unwrap()
            + fmspc_oid.len();
        assert_eq!(m[at], 0x04);
        m[at] = 0x02;
        assert_eq!(fast(&m), None);
        assert_eq!(pck_fields(&m), slow(&m));
    }
}
