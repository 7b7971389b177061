//! The GPU device certificate chain (ECDSA P-384 / SHA-384 throughout) and the report signature.

use ring::signature::{UnparsedPublicKey, ECDSA_P384_SHA384_ASN1, ECDSA_P384_SHA384_FIXED};
use x509_parser::oid_registry::OID_SIG_ECDSA_WITH_SHA384;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{Anchor, GpuArch, GpuEvidence, MAX_CHAIN_LEN};
use crate::error::{Error, Result};

/// OID 2.23.133.5.4.1 (TCG DICE TcbInfo arc) in DER content bytes: NVIDIA's FWID extension.
const OID_FWID_EXT: &[u8] = &[0x67, 0x81, 0x05, 0x05, 0x04, 0x01];
/// OID 2.16.840.1.101.3.4.2.2 (SHA-384) content bytes.
const OID_SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
/// Largest PEM chain file accepted.
const MAX_PEM_LEN: usize = 256 * 1024;

/// What the chain establishes about the leaf.
pub(crate) struct Leaf {
    pub public_key: P384Key,
    pub fwid: Option<Vec<u8>>,
    pub arch: GpuArch,
    pub common_name: String,
    pub simulated: bool,
}

fn chain_err(reason: impl Into<String>) -> Error {
    Error::GpuChainInvalid {
        reason: reason.into(),
    }
}

/// Decodes a PEM file of certificates (in file order) to DER; at least one is required.
pub fn parse_pem_chain(text: &[u8]) -> Result<Vec<Vec<u8>>> {
    if text.len() > MAX_PEM_LEN {
        return Err(chain_err(format!(
            "PEM chain has {} bytes, limit {MAX_PEM_LEN}",
            text.len()
        )));
    }
    let blocks = pem::parse_many(text).map_err(|e| chain_err(format!("PEM: {e}")))?;
    let mut out = Vec::with_capacity(blocks.len());
    for block in blocks {
        if block.tag() != "CERTIFICATE" {
            return Err(chain_err(format!("unexpected PEM block {}", block.tag())));
        }
        out.push(block.into_contents());
    }
    if out.is_empty() {
        return Err(chain_err("no certificate in the PEM text"));
    }
    Ok(out)
}

pub(crate) fn pem_to_der(text: &[u8]) -> Result<Vec<u8>> {
    parse_pem_chain(text)?
        .into_iter()
        .next()
        .ok_or_else(|| chain_err("no certificate"))
}

fn parse_cert(der: &[u8], position: usize) -> Result<X509Certificate<'_>> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok((rest, _)) => Err(chain_err(format!(
            "certificate {position}: {} bytes after the certificate",
            rest.len()
        ))),
        Err(e) => Err(chain_err(format!("certificate {position}: {e}"))),
    }
}

/// An uncompressed P-384 public point (SEC1 `04 ‖ x ‖ y`). ECDSA verification is ring's: the
/// whole `verify` ran at ~270/s with ring vs ~165/s with the pure-Rust p384 crate (2-core
/// Xeon, loaded; docs/benchmarks.md).
pub(crate) struct P384Key(Vec<u8>);

impl P384Key {
    fn verify_der(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, &self.0)
            .verify(message, signature)
            .is_ok()
    }
    fn verify_fixed(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, &self.0)
            .verify(message, signature)
            .is_ok()
    }
}

fn p384_key(cert: &X509Certificate<'_>, position: usize) -> Result<P384Key> {
    let spki = cert.public_key();
    let point = spki.subject_public_key.data.as_ref();
    let is_p384 = spki.algorithm.algorithm == x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY
        && spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .is_some_and(|oid| oid == x509_parser::oid_registry::OID_NIST_EC_P384);
    if !is_p384 || point.len() != 97 || point.first() != Some(&0x04) {
        return Err(chain_err(format!(
            "certificate {position}: key is not an uncompressed ECDSA P-384 key"
        )));
    }
    Ok(P384Key(point.to_vec()))
}

/// `child` (at `position`) is signed by `issuer_key` with ecdsa-with-SHA384.
fn check_signed(child: &X509Certificate<'_>, issuer_key: &P384Key, position: usize) -> Result<()> {
    if child.signature_algorithm.algorithm != OID_SIG_ECDSA_WITH_SHA384 {
        return Err(chain_err(format!(
            "certificate {position}: signature algorithm {} is not ecdsa-with-SHA384",
            child.signature_algorithm.algorithm
        )));
    }
    if issuer_key.verify_der(
        child.tbs_certificate.as_ref(),
        child.signature_value.data.as_ref(),
    ) {
        Ok(())
    } else {
        Err(Error::GpuChainSignatureInvalid { position })
    }
}

fn check_validity(cert: &X509Certificate<'_>, position: usize, now: i64) -> Result<()> {
    let not_before = cert.validity().not_before.timestamp();
    let not_after = cert.validity().not_after.timestamp();
    if now < not_before {
        return Err(Error::GpuCertificateNotYetValid {
            position,
            not_before,
            now,
        });
    }
    if now > not_after {
        return Err(Error::GpuCertificateExpired {
            position,
            not_after,
            now,
        });
    }
    Ok(())
}

fn is_ca(cert: &X509Certificate<'_>) -> bool {
    matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca)
}

fn common_name(cert: &X509Certificate<'_>) -> String {
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn arch_of(names: &[String]) -> GpuArch {
    for name in names {
        if name.contains("GH100") {
            return GpuArch::Hopper;
        }
        if name.contains("GB100") || name.contains("GB102") || name.contains("GB20") {
            return GpuArch::Blackwell;
        }
    }
    GpuArch::Unknown(names.first().cloned().unwrap_or_default())
}

/// Verifies the chain (leaf first) at `now` and returns the leaf's key, FWID and names.
pub(crate) fn verify_chain(chain: &[Vec<u8>], anchors: &[Anchor], now: i64) -> Result<Leaf> {
    if chain.is_empty() {
        return Err(chain_err("empty certificate chain"));
    }
    if chain.len() > MAX_CHAIN_LEN {
        return Err(chain_err(format!(
            "{} certificates, limit {MAX_CHAIN_LEN}",
            chain.len()
        )));
    }
    let certs = chain
        .iter()
        .enumerate()
        .map(|(i, der)| parse_cert(der, i))
        .collect::<Result<Vec<_>>>()?;
    let (leaf_der, last_der) = match (chain.first(), chain.last()) {
        (Some(l), Some(r)) => (l, r),
        _ => return Err(chain_err("empty certificate chain")),
    };
    let (Some(leaf), Some(last)) = (certs.first(), certs.last()) else {
        return Err(chain_err("empty certificate chain"));
    };

    // The root: the last certificate is an anchor, or is issued by one.
    let parsed_anchors = anchors
        .iter()
        .map(|a| parse_cert(&a.der, chain.len()).map(|c| (a, c)))
        .collect::<Result<Vec<_>>>()?;
    let simulated;
    if let Some((anchor, _)) = parsed_anchors.iter().find(|(a, _)| &a.der == last_der) {
        if chain.len() == 1 || &anchor.der == leaf_der {
            return Err(chain_err(
                "the chain is only the root certificate: no device (leaf) certificate",
            ));
        }
        simulated = anchor.simulated;
    } else {
        let issuer = last.issuer().as_raw();
        let Some((anchor, root)) = parsed_anchors
            .iter()
            .find(|(_, c)| c.subject().as_raw() == issuer)
        else {
            return Err(Error::GpuRootUntrusted {
                issuer: last.issuer().to_string(),
            });
        };
        let key = p384_key(root, chain.len())?;
        check_signed(last, &key, chain.len().saturating_sub(1)).map_err(|_| {
            Error::GpuRootUntrusted {
                issuer: last.issuer().to_string(),
            }
        })?;
        check_validity(root, chain.len(), now)?;
        simulated = anchor.simulated;
    }

    // Each certificate is issued (name and signature) by the next one, which is a CA.
    for (i, pair) in certs.windows(2).enumerate() {
        let [child, parent] = pair else { continue };
        let parent_pos = i.saturating_add(1);
        if child.issuer().as_raw() != parent.subject().as_raw() {
            return Err(chain_err(format!(
                "certificate {i} is issued by \"{}\", but certificate {parent_pos} is \"{}\" \
                 (a certificate is missing or out of order)",
                child.issuer(),
                parent.subject()
            )));
        }
        if !is_ca(parent) {
            return Err(chain_err(format!(
                "certificate {parent_pos} issues certificate {i} but is not a CA"
            )));
        }
        check_signed(child, &p384_key(parent, parent_pos)?, i)?;
    }
    for (i, cert) in certs.iter().enumerate() {
        check_validity(cert, i, now)?;
    }

    let names: Vec<String> = certs.iter().map(common_name).collect();
    Ok(Leaf {
        public_key: p384_key(leaf, 0)?,
        fwid: leaf_fwid(leaf)?,
        arch: arch_of(&names),
        common_name: names.first().cloned().unwrap_or_default(),
        simulated,
    })
}

/// The report signature: ECDSA P-384 r ‖ s over SHA-384(request ‖ response-without-signature).
pub(crate) fn verify_report_signature(
    key: &P384Key,
    signed: &[u8],
    evidence: &GpuEvidence,
) -> Result<()> {
    if key.verify_fixed(signed, &evidence.signature) {
        Ok(())
    } else {
        Err(Error::GpuSignatureInvalid)
    }
}

/// The FWID in the leaf's 2.23.133.5.4.1 extension: NVIDIA's layout is
/// `SEQUENCE { INTEGER, SubjectPublicKeyInfo, SEQUENCE { OID sha384, OCTET STRING fwid } }`;
/// the FWID is the OCTET STRING of the (first) SEQUENCE that starts with the SHA-384 OID.
fn leaf_fwid(leaf: &X509Certificate<'_>) -> Result<Option<Vec<u8>>> {
    let Some(ext) = leaf
        .extensions()
        .iter()
        .find(|e| e.oid.as_bytes() == OID_FWID_EXT)
    else {
        return Ok(None);
    };
    let bad = || chain_err("leaf FWID extension is not NVIDIA's layout");
    let (tag, outer, rest) = der_tlv(ext.value).ok_or_else(bad)?;
    if tag != 0x30 || !rest.is_empty() {
        return Err(bad());
    }
    let mut items = outer;
    while !items.is_empty() {
        let (tag, content, rest) = der_tlv(items).ok_or_else(bad)?;
        items = rest;
        if tag != 0x30 {
            continue;
        }
        let Some((0x06, oid, after)) = der_tlv(content) else {
            continue;
        };
        if oid != OID_SHA384 {
            continue;
        }
        return match der_tlv(after) {
            Some((0x04, digest, [])) if digest.len() == 48 => Ok(Some(digest.to_vec())),
            _ => Err(bad()),
        };
    }
    Ok(None)
}

/// One DER TLV: (tag, content, rest). Definite lengths up to 4 bytes.
fn der_tlv(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, after) = rest.split_at_checked(n)?;
        rest = after;
        bytes.iter().try_fold(0usize, |acc, b| {
            acc.checked_mul(256)?.checked_add(usize::from(*b))
        })?
    };
    let (content, after) = rest.split_at_checked(len)?;
    Some((tag, content, after))
}
