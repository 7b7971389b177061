//! Intel DCAP collateral: dcap-qvl's `QuoteCollateralV3` JSON and raw Intel PCS responses.
//!
//! Parsing checks the form only (JSON, hex, PEM framing, sizes); the signatures, chains,
//! CRLs and validity windows are checked by [`crate::tdx::TdxVerifier::verify`].
//!
//! The TCB info and QE identity are kept as the **exact** text Intel signed: the signature
//! covers those bytes, so they are never re-serialized.

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::quote::pem_chain_to_der;
use crate::error::{Error, Result, Subject};

/// Collateral for one quote: PCK CRL (+ issuer chain), root CA CRL, TCB info and QE identity
/// (exact signed JSON strings, signatures, issuer chains), optionally the PCK chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collateral {
    pub inner: dcap_qvl::QuoteCollateralV3,
}

/// Raw responses of Intel's PCS (or a PCCS) as fetched over HTTP.
///
/// - `tcb_info_response`: body of `GET /tdx/certification/v4/tcb` (or `/sgx/…`):
///   `{"tcbInfo":{…},"signature":"<hex r‖s>"}`; `tcb_info_issuer_chain`: its
///   `TCB-Info-Issuer-Chain` header (PEM, URL-encoded as PCS sends it, or already decoded).
/// - `qe_identity_response`: body of `GET …/qe/identity`:
///   `{"enclaveIdentity":{…},"signature":"<hex>"}`; `qe_identity_issuer_chain`: its
///   `SGX-Enclave-Identity-Issuer-Chain` header.
/// - `pck_crl`: body of `GET /sgx/certification/v4/pckcrl` (DER, PEM or hex);
///   `pck_crl_issuer_chain`: its `SGX-PCK-CRL-Issuer-Chain` header.
/// - `root_ca_crl`: the Intel SGX Root CA CRL (DER, PEM or hex).
/// - `pck_certificate_chain`: optionally the PEM PCK chain (when the quote does not carry it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PcsResponses {
    pub tcb_info_response: Vec<u8>,
    pub tcb_info_issuer_chain: Vec<u8>,
    pub qe_identity_response: Vec<u8>,
    pub qe_identity_issuer_chain: Vec<u8>,
    pub pck_crl: Vec<u8>,
    pub pck_crl_issuer_chain: Vec<u8>,
    pub root_ca_crl: Vec<u8>,
    pub pck_certificate_chain: Option<Vec<u8>>,
}

/// `{"tcbInfo": <exact signed text>, "signature": "<hex>"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TcbInfoResponse {
    #[serde(rename = "tcbInfo")]
    tcb_info: Box<RawValue>,
    signature: String,
}

/// `{"enclaveIdentity": <exact signed text>, "signature": "<hex>"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QeIdentityResponse {
    #[serde(rename = "enclaveIdentity")]
    enclave_identity: Box<RawValue>,
    signature: String,
}

impl Collateral {
    /// Upper bound on a collateral JSON document (real ones are ~15–20 KiB).
    pub const MAX_SIZE: usize = 1024 * 1024;
    /// Upper bound on each PCS response or header given to [`Collateral::from_pcs`].
    pub const MAX_PART_SIZE: usize = 512 * 1024;

    /// Parse dcap-qvl's `QuoteCollateralV3` JSON (hex DER CRLs, hex r‖s signatures, PEM
    /// chains, TCB info / QE identity as the exact signed strings).
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        check_size(bytes, Subject::Collateral, Self::MAX_SIZE)?;
        let inner: dcap_qvl::QuoteCollateralV3 =
            serde_json::from_slice(bytes).map_err(|e| Error::Malformed {
                subject: Subject::Collateral,
                reason: format!("collateral JSON: {e}"),
            })?;
        Self::from_inner(inner)
    }

    /// Wrap dcap-qvl's collateral after the same form checks as [`Collateral::from_json`].
    pub fn from_inner(inner: dcap_qvl::QuoteCollateralV3) -> Result<Self> {
        let c = Self { inner };
        c.check_form()?;
        Ok(c)
    }

    /// Assemble collateral from raw Intel PCS responses. The signed TCB info / QE identity
    /// strings are cut verbatim out of the response bodies.
    pub fn from_pcs(responses: &PcsResponses) -> Result<Self> {
        let r = responses;
        for (part, subject) in [
            (&r.tcb_info_response, Subject::TcbInfo),
            (&r.tcb_info_issuer_chain, Subject::TcbInfo),
            (&r.qe_identity_response, Subject::QeIdentity),
            (&r.qe_identity_issuer_chain, Subject::QeIdentity),
            (&r.pck_crl, Subject::PckCrl),
            (&r.pck_crl_issuer_chain, Subject::PckCrl),
            (&r.root_ca_crl, Subject::RootCaCrl),
        ] {
            check_size(part, subject, Self::MAX_PART_SIZE)?;
        }
        if let Some(chain) = &r.pck_certificate_chain {
            check_size(chain, Subject::PckCertChain, Self::MAX_PART_SIZE)?;
        }

        let tcb: TcbInfoResponse =
            serde_json::from_slice(&r.tcb_info_response).map_err(|e| Error::Malformed {
                subject: Subject::TcbInfo,
                reason: format!("TCB info response: {e}"),
            })?;
        let qe: QeIdentityResponse =
            serde_json::from_slice(&r.qe_identity_response).map_err(|e| Error::Malformed {
                subject: Subject::QeIdentity,
                reason: format!("QE identity response: {e}"),
            })?;

        let inner = dcap_qvl::QuoteCollateralV3 {
            pck_crl_issuer_chain: issuer_chain(&r.pck_crl_issuer_chain, Subject::PckCrl)?,
            root_ca_crl: crl(&r.root_ca_crl, Subject::RootCaCrl)?,
            pck_crl: crl(&r.pck_crl, Subject::PckCrl)?,
            tcb_info_issuer_chain: issuer_chain(&r.tcb_info_issuer_chain, Subject::TcbInfo)?,
            tcb_info: tcb.tcb_info.get().to_owned(),
            tcb_info_signature: signature_hex(&tcb.signature, Subject::TcbInfo)?,
            qe_identity_issuer_chain: issuer_chain(
                &r.qe_identity_issuer_chain,
                Subject::QeIdentity,
            )?,
            qe_identity: qe.enclave_identity.get().to_owned(),
            qe_identity_signature: signature_hex(&qe.signature, Subject::QeIdentity)?,
            pck_certificate_chain: r
                .pck_certificate_chain
                .as_deref()
                .map(|c| issuer_chain(c, Subject::PckCertChain))
                .transpose()?,
        };
        Self::from_inner(inner)
    }

    /// dcap-qvl's collateral.
    pub fn inner(&self) -> &dcap_qvl::QuoteCollateralV3 {
        &self.inner
    }

    pub fn into_inner(self) -> dcap_qvl::QuoteCollateralV3 {
        self.inner
    }

    /// The exact signed TCB info text (the value of `"tcbInfo"`).
    pub fn tcb_info_json(&self) -> &str {
        &self.inner.tcb_info
    }

    /// The exact signed QE identity text (the value of `"enclaveIdentity"`).
    pub fn qe_identity_json(&self) -> &str {
        &self.inner.qe_identity
    }

    /// The TCB info issuer chain as DER certificates, in the given order (signer first).
    pub fn tcb_info_issuer_chain_der(&self) -> Result<Vec<Vec<u8>>> {
        pem_chain_to_der(
            self.inner.tcb_info_issuer_chain.as_bytes(),
            Subject::TcbInfo,
        )
    }

    /// The QE identity issuer chain as DER certificates, in the given order (signer first).
    pub fn qe_identity_issuer_chain_der(&self) -> Result<Vec<Vec<u8>>> {
        pem_chain_to_der(
            self.inner.qe_identity_issuer_chain.as_bytes(),
            Subject::QeIdentity,
        )
    }

    /// The PCK CRL issuer chain as DER certificates, in the given order (CRL issuer first).
    pub fn pck_crl_issuer_chain_der(&self) -> Result<Vec<Vec<u8>>> {
        pem_chain_to_der(self.inner.pck_crl_issuer_chain.as_bytes(), Subject::PckCrl)
    }

    /// The PCK chain carried by the collateral (if any) as DER certificates, leaf first.
    pub fn pck_certificate_chain_der(&self) -> Result<Option<Vec<Vec<u8>>>> {
        self.inner
            .pck_certificate_chain
            .as_deref()
            .map(|c| pem_chain_to_der(c.as_bytes(), Subject::PckCertChain))
            .transpose()
    }

    /// The collateral as dcap-qvl's `QuoteCollateralV3` JSON (what [`Collateral::from_json`]
    /// reads back).
    pub fn to_json(&self) -> String {
        // Serializing strings and byte vectors into a String cannot fail.
        serde_json::to_string_pretty(&self.inner).unwrap_or_default()
    }

    /// SHA-256 over an unambiguous encoding of every field: a domain tag, then per field
    /// its name and its bytes, each prefixed with a u64 big-endian length; the optional PCK
    /// chain adds a presence byte. Two collaterals hash equal iff every field is equal.
    pub fn content_hash(&self) -> [u8; 32] {
        let c = &self.inner;
        let mut h = Sha256::new();
        let mut field = |name: &str, bytes: &[u8]| {
            for part in [name.as_bytes(), bytes] {
                h.update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
                h.update(part);
            }
        };
        field("domain", b"cocoon-attestation/tdx-collateral/v1");
        field("pck_crl_issuer_chain", c.pck_crl_issuer_chain.as_bytes());
        field("root_ca_crl", &c.root_ca_crl);
        field("pck_crl", &c.pck_crl);
        field("tcb_info_issuer_chain", c.tcb_info_issuer_chain.as_bytes());
        field("tcb_info", c.tcb_info.as_bytes());
        field("tcb_info_signature", &c.tcb_info_signature);
        field(
            "qe_identity_issuer_chain",
            c.qe_identity_issuer_chain.as_bytes(),
        );
        field("qe_identity", c.qe_identity.as_bytes());
        field("qe_identity_signature", &c.qe_identity_signature);
        match &c.pck_certificate_chain {
            None => field("pck_certificate_chain", &[0]),
            Some(chain) => {
                field("pck_certificate_chain", &[1]);
                field("pck_certificate_chain_pem", chain.as_bytes());
            }
        }
        h.finalize().into()
    }

    /// Form checks shared by every constructor: the signed strings are JSON objects, the
    /// signatures are 64-byte r‖s, the chains are 1–8 PEM certificates, the CRLs DER
    /// `CertificateList`s.
    fn check_form(&self) -> Result<()> {
        let c = &self.inner;
        json_object(&c.tcb_info, Subject::TcbInfo)?;
        json_object(&c.qe_identity, Subject::QeIdentity)?;
        signature_len(&c.tcb_info_signature, Subject::TcbInfo)?;
        signature_len(&c.qe_identity_signature, Subject::QeIdentity)?;
        pem_chain_to_der(c.tcb_info_issuer_chain.as_bytes(), Subject::TcbInfo)?;
        pem_chain_to_der(c.qe_identity_issuer_chain.as_bytes(), Subject::QeIdentity)?;
        pem_chain_to_der(c.pck_crl_issuer_chain.as_bytes(), Subject::PckCrl)?;
        if let Some(chain) = &c.pck_certificate_chain {
            pem_chain_to_der(chain.as_bytes(), Subject::PckCertChain)?;
        }
        der_crl(&c.pck_crl, Subject::PckCrl)?;
        der_crl(&c.root_ca_crl, Subject::RootCaCrl)?;
        Ok(())
    }
}

fn check_size(bytes: &[u8], subject: Subject, limit: usize) -> Result<()> {
    if bytes.len() > limit {
        return Err(Error::InputTooLarge {
            subject,
            size: bytes.len(),
            limit,
        });
    }
    Ok(())
}

fn malformed(subject: Subject, reason: impl Into<String>) -> Error {
    Error::Malformed {
        subject,
        reason: reason.into(),
    }
}

fn json_object(text: &str, subject: Subject) -> Result<()> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        Ok(_) => Err(malformed(subject, "signed JSON is not an object")),
        Err(e) => Err(malformed(subject, format!("signed JSON: {e}"))),
    }
}

fn signature_len(sig: &[u8], subject: Subject) -> Result<()> {
    if sig.len() != 64 {
        return Err(malformed(
            subject,
            format!("signature is {} bytes, expected r‖s of 64", sig.len()),
        ));
    }
    Ok(())
}

fn signature_hex(hex_text: &str, subject: Subject) -> Result<Vec<u8>> {
    let sig = hex::decode(hex_text.trim())
        .map_err(|e| malformed(subject, format!("signature hex: {e}")))?;
    signature_len(&sig, subject)?;
    Ok(sig)
}

/// A CRL must be one complete DER `CertificateList` (no trailing bytes); the verifier
/// checks its issuer, signature and dates.
fn der_crl(der: &[u8], subject: Subject) -> Result<()> {
    use x509_cert::der::Decode;
    <x509_cert::crl::CertificateList>::from_der(der)
        .map(|_| ())
        .map_err(|e| malformed(subject, format!("CRL DER: {e}")))
}

/// An issuer chain header value: PEM, or PEM URL-encoded as PCS sends it.
fn issuer_chain(value: &[u8], subject: Subject) -> Result<String> {
    // PEM (base64 and framing) never contains '%'; PCS's percent-encoded header value
    // keeps "-----BEGIN" literal, so '%' is what tells the two apart.
    let pem = if value.contains(&b'%') {
        urlencoding::decode_binary(value).into_owned()
    } else {
        value.to_vec()
    };
    let text =
        String::from_utf8(pem).map_err(|_| malformed(subject, "issuer chain is not UTF-8"))?;
    // Checks framing and the certificate count; the verifier checks the certificates.
    pem_chain_to_der(text.as_bytes(), subject)?;
    Ok(text)
}

/// A CRL given as DER, PEM (`X509 CRL`) or hex text (PCCS returns hex).
fn crl(value: &[u8], subject: Subject) -> Result<Vec<u8>> {
    if value.first() == Some(&0x30) {
        return Ok(value.to_vec());
    }
    if value.starts_with(b"-----BEGIN") {
        let p = pem::parse(value).map_err(|e| malformed(subject, format!("CRL PEM: {e}")))?;
        if p.tag() != "X509 CRL" {
            return Err(malformed(
                subject,
                format!("unexpected PEM block {:?}", p.tag()),
            ));
        }
        let der = p.into_contents();
        der_crl(&der, subject)?;
        return Ok(der);
    }
    let text =
        std::str::from_utf8(value).map_err(|_| malformed(subject, "CRL is not DER, PEM or hex"))?;
    let der = hex::decode(text.trim()).map_err(|e| malformed(subject, format!("CRL hex: {e}")))?;
    der_crl(&der, subject)?;
    Ok(der)
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
    use crate::test_vectors;

    const JSON_VECTORS: &[&str] = &[
        "tdx/tdx_quote_collateral.json",
        "tdx/sgx_quote_collateral.json",
        "tdx/tdx_quote_outdated_collateral.json",
        "tdx/quote_collateral.json",
        "tdx/DERIVED_dcapqvl_collateral_SPR_E4.json",
    ];

    fn value(name: &str) -> serde_json::Value {
        serde_json::from_slice(&test_vectors::read(name)).unwrap()
    }

    fn assert_malformed(err: Error, subject: Subject) {
        assert!(
            matches!(&err, Error::Malformed { subject: s, .. } if *s == subject),
            "expected Malformed {{ {subject:?} }}: {err:?}"
        );
    }

    /// go-tdx-guest's raw PCS responses with the issuer chains of its test cases (taken
    /// from the DERIVED file, which has them verbatim). The TCB chain is given URL-encoded
    /// as PCS sends the header.
    fn spr_e4_responses() -> PcsResponses {
        let d = value("tdx/DERIVED_dcapqvl_collateral_SPR_E4.json");
        let chain = |k: &str| d[k].as_str().unwrap().as_bytes().to_vec();
        PcsResponses {
            tcb_info_response: test_vectors::read("tdx/sample_tcbInfo_response"),
            tcb_info_issuer_chain: urlencoding::encode(
                d["tcb_info_issuer_chain"].as_str().unwrap(),
            )
            .into_owned()
            .into_bytes(),
            qe_identity_response: test_vectors::read("tdx/sample_qeIdentity_response"),
            qe_identity_issuer_chain: chain("qe_identity_issuer_chain"),
            pck_crl: test_vectors::read("tdx/pckcrl"),
            pck_crl_issuer_chain: chain("pck_crl_issuer_chain"),
            root_ca_crl: test_vectors::read("tdx/rootcrl.der"),
            pck_certificate_chain: None,
        }
    }

    #[test]
    fn every_collateral_json_vector_parses_with_its_fields() {
        for name in JSON_VECTORS {
            let c = Collateral::from_json(&test_vectors::read(name)).unwrap();
            let v = value(name);
            let i = c.inner();
            assert_eq!(i.tcb_info, v["tcb_info"].as_str().unwrap(), "{name}");
            assert_eq!(i.qe_identity, v["qe_identity"].as_str().unwrap(), "{name}");
            assert_eq!(
                hex::encode(&i.pck_crl),
                v["pck_crl"].as_str().unwrap(),
                "{name}"
            );
            assert_eq!(
                hex::encode(&i.root_ca_crl),
                v["root_ca_crl"].as_str().unwrap(),
                "{name}"
            );
            assert_eq!(i.tcb_info_signature.len(), 64, "{name}");
            assert_eq!(i.qe_identity_signature.len(), 64, "{name}");
        }
    }

    #[test]
    fn collateral_fmspcs_are_those_the_vectors_readme_names() {
        for (name, fmspc) in [
            ("tdx/tdx_quote_collateral.json", "B0C06F000000"),
            ("tdx/tdx_quote_outdated_collateral.json", "90C06F000000"),
            ("tdx/quote_collateral.json", "20A06F000000"),
            ("tdx/DERIVED_dcapqvl_collateral_SPR_E4.json", "50806F000000"),
        ] {
            let c = Collateral::from_json(&test_vectors::read(name)).unwrap();
            let tcb: serde_json::Value = serde_json::from_str(c.tcb_info_json()).unwrap();
            assert!(
                tcb["fmspc"].as_str().unwrap().eq_ignore_ascii_case(fmspc),
                "{name}"
            );
            let qe: serde_json::Value = serde_json::from_str(c.qe_identity_json()).unwrap();
            assert!(qe["id"].is_string(), "{name}");
        }
    }

    #[test]
    fn to_json_round_trips_and_keeps_the_content_hash() {
        for name in JSON_VECTORS {
            let c = Collateral::from_json(&test_vectors::read(name)).unwrap();
            let back = Collateral::from_json(c.to_json().as_bytes()).unwrap();
            assert_eq!(back, c, "{name}");
            assert_eq!(back.content_hash(), c.content_hash(), "{name}");
        }
    }

    #[test]
    fn pcs_responses_assemble_to_the_derived_collateral_field_by_field() {
        let c = Collateral::from_pcs(&spr_e4_responses()).unwrap();
        let d = Collateral::from_json(&test_vectors::read(
            "tdx/DERIVED_dcapqvl_collateral_SPR_E4.json",
        ))
        .unwrap();
        let (a, b) = (c.inner(), d.inner());
        assert_eq!(a.tcb_info, b.tcb_info);
        assert_eq!(a.tcb_info_signature, b.tcb_info_signature);
        assert_eq!(a.tcb_info_issuer_chain, b.tcb_info_issuer_chain);
        assert_eq!(a.qe_identity, b.qe_identity);
        assert_eq!(a.qe_identity_signature, b.qe_identity_signature);
        assert_eq!(a.qe_identity_issuer_chain, b.qe_identity_issuer_chain);
        assert_eq!(a.pck_crl, b.pck_crl);
        assert_eq!(a.pck_crl_issuer_chain, b.pck_crl_issuer_chain);
        assert_eq!(a.root_ca_crl, b.root_ca_crl);
        assert_eq!(a.pck_certificate_chain, b.pck_certificate_chain);
        assert_eq!(c, d);
        assert_eq!(c.content_hash(), d.content_hash());
    }

    #[test]
    fn pcs_signed_strings_are_cut_verbatim_from_the_responses() {
        let r = spr_e4_responses();
        let c = Collateral::from_pcs(&r).unwrap();
        let body = String::from_utf8(r.tcb_info_response.clone()).unwrap();
        let start = "{\"tcbInfo\":".len();
        let end = body.find(",\"signature\"").unwrap();
        assert_eq!(c.tcb_info_json(), &body[start..end]);
        let body = String::from_utf8(r.qe_identity_response.clone()).unwrap();
        let start = "{\"enclaveIdentity\":".len();
        let end = body.find(",\"signature\"").unwrap();
        assert_eq!(c.qe_identity_json(), &body[start..end]);
    }

    #[test]
    fn pcs_whitespace_and_key_order_are_kept_not_reserialized() {
        let mut r = spr_e4_responses();
        let signed = "{ \"version\" : 3,\n  \"id\":\"TDX\" , \"a\":1.50 }";
        r.tcb_info_response = format!(
            "{{\"signature\":\"{}\" , \"tcbInfo\":{signed}}}",
            "ab".repeat(64)
        )
        .into_bytes();
        let c = Collateral::from_pcs(&r).unwrap();
        assert_eq!(c.tcb_info_json(), signed);
        assert_eq!(c.inner().tcb_info_signature, vec![0xab; 64]);
    }

    #[test]
    fn pcs_crls_and_chains_are_accepted_in_every_encoding() {
        let base = Collateral::from_pcs(&spr_e4_responses()).unwrap();
        let mut r = spr_e4_responses();
        // Chain already URL-decoded; CRLs as hex and as PEM.
        r.tcb_info_issuer_chain = base.inner().tcb_info_issuer_chain.clone().into_bytes();
        r.qe_identity_issuer_chain = urlencoding::encode(&base.inner().qe_identity_issuer_chain)
            .into_owned()
            .into_bytes();
        r.pck_crl = format!("{}\n", hex::encode(&base.inner().pck_crl)).into_bytes();
        r.root_ca_crl =
            pem::encode(&pem::Pem::new("X509 CRL", base.inner().root_ca_crl.clone())).into_bytes();
        assert_eq!(Collateral::from_pcs(&r).unwrap(), base);
    }

    #[test]
    fn pcs_pck_chain_when_given_is_kept() {
        let q = crate::tdx::Quote::parse(&test_vectors::read("tdx/tdx_quote_4.dat")).unwrap();
        let pem = q.pck_chain_pem().unwrap();
        let mut r = spr_e4_responses();
        r.pck_certificate_chain = Some(pem.to_vec());
        let c = Collateral::from_pcs(&r).unwrap();
        let kept = c.inner().pck_certificate_chain.as_deref().unwrap();
        assert_eq!(kept.as_bytes(), pem);
        assert_ne!(
            c.content_hash(),
            Collateral::from_pcs(&spr_e4_responses())
                .unwrap()
                .content_hash()
        );
    }

    #[test]
    fn content_hash_changes_with_every_field() {
        let c =
            Collateral::from_json(&test_vectors::read("tdx/tdx_quote_collateral.json")).unwrap();
        let h = c.content_hash();
        type Edit = Box<dyn Fn(&mut dcap_qvl::QuoteCollateralV3)>;
        let edits: Vec<Edit> = vec![
            Box::new(|i| i.pck_crl_issuer_chain.push(' ')),
            Box::new(|i| i.root_ca_crl.push(0)),
            Box::new(|i| i.pck_crl.push(0)),
            Box::new(|i| i.tcb_info_issuer_chain.push(' ')),
            Box::new(|i| i.tcb_info.push(' ')),
            Box::new(|i| i.tcb_info_signature[0] ^= 1),
            Box::new(|i| i.qe_identity_issuer_chain.push(' ')),
            Box::new(|i| i.qe_identity.push(' ')),
            Box::new(|i| i.qe_identity_signature[63] ^= 1),
            Box::new(|i| i.pck_certificate_chain = Some(String::new())),
        ];
        let mut seen = vec![h];
        for (n, edit) in edits.iter().enumerate() {
            let mut changed = c.clone();
            edit(&mut changed.inner);
            let h2 = changed.content_hash();
            assert!(!seen.contains(&h2), "edit {n} collides");
            seen.push(h2);
        }
    }

    #[test]
    fn content_hash_is_unambiguous_across_field_boundaries() {
        // Moving a byte from one field to the next keeps the concatenation but not the hash.
        let c =
            Collateral::from_json(&test_vectors::read("tdx/tdx_quote_collateral.json")).unwrap();
        let mut moved = c.clone();
        let last = moved.inner.root_ca_crl.pop().unwrap();
        moved.inner.pck_crl.insert(0, last);
        assert_ne!(moved.content_hash(), c.content_hash());
        let mut moved = c.clone();
        let ch = moved.inner.tcb_info_issuer_chain.pop().unwrap();
        moved.inner.tcb_info.insert(0, ch);
        assert_ne!(moved.content_hash(), c.content_hash());
    }

    // ------------------------------------------------------------ negative cases

    fn edited_json(edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> Vec<u8> {
        let mut v = value("tdx/tdx_quote_collateral.json");
        edit(v.as_object_mut().unwrap());
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn malformed_collateral_json_is_refused() {
        for input in [&b""[..], b"{", b"[]", b"null", b"{\"pck_crl\": 1}"] {
            assert_malformed(
                Collateral::from_json(input).unwrap_err(),
                Subject::Collateral,
            );
        }
        let mut truncated = test_vectors::read("tdx/tdx_quote_collateral.json");
        truncated.truncate(truncated.len() / 2);
        assert_malformed(
            Collateral::from_json(&truncated).unwrap_err(),
            Subject::Collateral,
        );
    }

    #[test]
    fn collateral_json_with_a_missing_field_is_refused() {
        for field in [
            "pck_crl_issuer_chain",
            "root_ca_crl",
            "pck_crl",
            "tcb_info_issuer_chain",
            "tcb_info",
            "tcb_info_signature",
            "qe_identity_issuer_chain",
            "qe_identity",
            "qe_identity_signature",
        ] {
            let err = Collateral::from_json(&edited_json(|m| {
                m.remove(field);
            }))
            .unwrap_err();
            assert_malformed(err, Subject::Collateral);
        }
    }

    #[test]
    fn collateral_json_with_bad_hex_is_refused() {
        for (field, bad) in [
            ("pck_crl", "zz"),
            ("root_ca_crl", "0"),
            ("tcb_info_signature", "0xabcd"),
            ("qe_identity_signature", "ab cd"),
        ] {
            let err = Collateral::from_json(&edited_json(|m| {
                m.insert(field.into(), bad.into());
            }))
            .unwrap_err();
            assert_malformed(err, Subject::Collateral);
        }
    }

    #[test]
    fn oversized_collateral_json_is_refused_before_parsing() {
        let mut big = test_vectors::read("tdx/tdx_quote_collateral.json");
        big.resize(Collateral::MAX_SIZE + 1, b' ');
        let err = Collateral::from_json(&big).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InputTooLarge {
                    subject: Subject::Collateral,
                    limit: Collateral::MAX_SIZE,
                    ..
                }
            ),
            "{err:?}"
        );
        // Whitespace up to the limit is still fine.
        big.truncate(Collateral::MAX_SIZE);
        assert!(Collateral::from_json(&big).is_ok());
    }

    #[test]
    fn signed_strings_that_are_not_json_objects_are_refused() {
        for (field, subject) in [
            ("tcb_info", Subject::TcbInfo),
            ("qe_identity", Subject::QeIdentity),
        ] {
            for bad in ["", "{", "[1]", "\"x\""] {
                let err = Collateral::from_json(&edited_json(|m| {
                    m.insert(field.into(), bad.into());
                }))
                .unwrap_err();
                assert_malformed(err, subject);
            }
        }
    }

    #[test]
    fn signatures_that_are_not_64_bytes_are_refused() {
        for (field, subject) in [
            ("tcb_info_signature", Subject::TcbInfo),
            ("qe_identity_signature", Subject::QeIdentity),
        ] {
            for bad in [
                String::new(),
                "ab".repeat(63),
                "ab".repeat(65),
                "ab".repeat(72),
            ] {
                let err = Collateral::from_json(&edited_json(|m| {
                    m.insert(field.into(), bad.clone().into());
                }))
                .unwrap_err();
                assert_malformed(err, subject);
            }
        }
    }

    #[test]
    fn issuer_chains_without_certificates_are_refused() {
        for (field, subject) in [
            ("tcb_info_issuer_chain", Subject::TcbInfo),
            ("qe_identity_issuer_chain", Subject::QeIdentity),
            ("pck_crl_issuer_chain", Subject::PckCrl),
            ("pck_certificate_chain", Subject::PckCertChain),
        ] {
            let err = Collateral::from_json(&edited_json(|m| {
                m.insert(field.into(), "no pem here".into());
            }))
            .unwrap_err();
            assert_malformed(err, subject);
        }
    }

    #[test]
    fn crls_that_are_not_der_are_refused() {
        for (field, subject) in [
            ("pck_crl", Subject::PckCrl),
            ("root_ca_crl", Subject::RootCaCrl),
        ] {
            for bad in ["", "31000000", "02"] {
                let err = Collateral::from_json(&edited_json(|m| {
                    m.insert(field.into(), bad.into());
                }))
                .unwrap_err();
                assert_malformed(err, subject);
            }
        }
    }

    #[test]
    fn pcs_tcb_info_responses_of_the_wrong_shape_are_refused() {
        let sig = "ab".repeat(64);
        for bad in [
            String::new(),
            "{}".into(),
            format!("{{\"signature\":\"{sig}\"}}"),
            "{\"tcbInfo\":{}}".into(),
            format!("{{\"tcbInfo\":{{}},\"signature\":\"{sig}\",\"extra\":1}}"),
            format!("{{\"tcbInfo\":{{}},\"tcbInfo\":{{\"id\":\"X\"}},\"signature\":\"{sig}\"}}"),
            "{\"tcbInfo\":{},\"signature\":\"zz\"}".into(),
            format!("{{\"tcbInfo\":{{}},\"signature\":\"{}\"}}", "ab".repeat(63)),
            format!("{{\"tcbInfo\":[],\"signature\":\"{sig}\"}}"),
            format!("{{\"enclaveIdentity\":{{}},\"signature\":\"{sig}\"}}"),
        ] {
            let mut r = spr_e4_responses();
            r.tcb_info_response = bad.clone().into_bytes();
            let err = Collateral::from_pcs(&r).unwrap_err();
            assert_malformed(err, Subject::TcbInfo);
        }
    }

    #[test]
    fn pcs_qe_identity_responses_of_the_wrong_shape_are_refused() {
        let sig = "ab".repeat(64);
        for bad in [
            "not json".to_string(),
            format!("{{\"tcbInfo\":{{}},\"signature\":\"{sig}\"}}"),
            "{\"enclaveIdentity\":{},\"signature\":\"\"}".into(),
            format!("{{\"enclaveIdentity\":\"x\",\"signature\":\"{sig}\"}}"),
        ] {
            let mut r = spr_e4_responses();
            r.qe_identity_response = bad.into_bytes();
            let err = Collateral::from_pcs(&r).unwrap_err();
            assert_malformed(err, Subject::QeIdentity);
        }
    }

    #[test]
    fn pcs_crls_in_no_known_encoding_are_refused() {
        let wrong_tag = pem::encode(&pem::Pem::new("CERTIFICATE", vec![0x30, 0]));
        for bad in [&b""[..], b"zz", b"\xff\xfe", b"0201", wrong_tag.as_bytes()] {
            let mut r = spr_e4_responses();
            r.pck_crl = bad.to_vec();
            assert_malformed(Collateral::from_pcs(&r).unwrap_err(), Subject::PckCrl);
            let mut r = spr_e4_responses();
            r.root_ca_crl = bad.to_vec();
            assert_malformed(Collateral::from_pcs(&r).unwrap_err(), Subject::RootCaCrl);
        }
    }

    #[test]
    fn pcs_issuer_chains_that_are_not_pem_are_refused() {
        let mut r = spr_e4_responses();
        r.tcb_info_issuer_chain = b"%ZZ%00garbage".to_vec();
        assert_malformed(Collateral::from_pcs(&r).unwrap_err(), Subject::TcbInfo);
        let mut r = spr_e4_responses();
        r.pck_crl_issuer_chain = b"%ff%fe".to_vec();
        assert_malformed(Collateral::from_pcs(&r).unwrap_err(), Subject::PckCrl);
    }

    #[test]
    fn oversized_pcs_parts_are_refused() {
        let mut r = spr_e4_responses();
        r.qe_identity_response = vec![b' '; Collateral::MAX_PART_SIZE + 1];
        let err = Collateral::from_pcs(&r).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InputTooLarge {
                    subject: Subject::QeIdentity,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn crl_with_bytes_after_the_der_is_refused() {
        let mut r = spr_e4_responses();
        r.pck_crl.push(0);
        assert_malformed(Collateral::from_pcs(&r).unwrap_err(), Subject::PckCrl);
        let mut r = spr_e4_responses();
        r.root_ca_crl.truncate(r.root_ca_crl.len() - 1);
        assert_malformed(Collateral::from_pcs(&r).unwrap_err(), Subject::RootCaCrl);
    }

    #[test]
    fn issuer_chains_decode_signer_first_ending_in_the_intel_root() {
        let root = test_vectors::read("tdx/TrustedRootCA.der");
        for name in JSON_VECTORS {
            let c = Collateral::from_json(&test_vectors::read(name)).unwrap();
            for chain in [
                c.tcb_info_issuer_chain_der().unwrap(),
                c.qe_identity_issuer_chain_der().unwrap(),
                c.pck_crl_issuer_chain_der().unwrap(),
            ] {
                assert_eq!(chain.len(), 2, "{name}");
                assert_eq!(chain[1], root, "{name}");
            }
            assert_eq!(c.pck_certificate_chain_der().unwrap(), None, "{name}");
        }
    }

    /// Intel QVL's sample collateral files (test root) as PCS responses; the PCK chain
    /// (leaf + issuer chain) comes with them because the SGX quote carries only a PPID.
    fn intel_synthetic(tee: &str) -> PcsResponses {
        let f = |n: &str| test_vectors::read(&format!("tdx/intel-synthetic/{tee}/{n}"));
        let mut pck = f("pckCert.pem");
        pck.extend(f("pckSignChain.pem"));
        PcsResponses {
            tcb_info_response: f("tcbInfo.json"),
            tcb_info_issuer_chain: f("tcbSignChain.pem"),
            qe_identity_response: f("qeIdentity.json"),
            // The QE identity is signed by the TCB signing key too.
            qe_identity_issuer_chain: f("tcbSignChain.pem"),
            pck_crl: f("intermediateCaCrl.der"),
            pck_crl_issuer_chain: f("pckSignChain.pem"),
            root_ca_crl: f("rootCaCrl.der"),
            pck_certificate_chain: Some(pck),
        }
    }

    #[test]
    fn intel_synthetic_collateral_assembles_from_its_files() {
        for tee in ["sgx", "tdx"] {
            let r = intel_synthetic(tee);
            let c = Collateral::from_pcs(&r).unwrap();
            let body = String::from_utf8(r.tcb_info_response.clone()).unwrap();
            assert!(body.contains(c.tcb_info_json()), "{tee}");
            assert!(c.tcb_info_json().starts_with('{'), "{tee}");
            let tcb: serde_json::Value = serde_json::from_str(c.tcb_info_json()).unwrap();
            let whole: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(tcb, whole["tcbInfo"], "{tee}");
            assert_eq!(
                hex::encode(&c.inner().tcb_info_signature),
                whole["signature"].as_str().unwrap().to_ascii_lowercase(),
                "{tee}"
            );
            assert_eq!(c.pck_certificate_chain_der().unwrap().unwrap().len(), 3);
            assert_eq!(c.pck_crl_issuer_chain_der().unwrap().len(), 2);
            // Round trip through dcap-qvl's JSON keeps everything, the PCK chain included.
            assert_eq!(Collateral::from_json(c.to_json().as_bytes()).unwrap(), c);
        }
    }

    #[test]
    fn intel_synthetic_pem_crls_equal_their_der_files() {
        let der = Collateral::from_pcs(&intel_synthetic("sgx")).unwrap();
        let mut r = intel_synthetic("sgx");
        r.pck_crl = test_vectors::read("tdx/intel-synthetic/sgx/intermediateCaCrl.pem");
        r.root_ca_crl = test_vectors::read("tdx/intel-synthetic/sgx/rootCaCrl.pem");
        assert_eq!(Collateral::from_pcs(&r).unwrap(), der);
    }

    /// ECDSA P-256 check of a signed string under the first certificate of a chain.
    fn signed_by_chain_leaf(chain: &[Vec<u8>], text: &str, sig: &[u8]) -> bool {
        use p256::ecdsa::signature::Verifier;
        use x509_cert::der::Decode;
        let cert = x509_cert::Certificate::from_der(&chain[0]).unwrap();
        let spki = cert.tbs_certificate().subject_public_key_info();
        let key = spki.subject_public_key.as_bytes().unwrap();
        let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(key).unwrap();
        let sig = p256::ecdsa::Signature::from_slice(sig).unwrap();
        vk.verify(text.as_bytes(), &sig).is_ok()
    }

    #[test]
    fn signed_strings_from_pcs_verify_under_the_tcb_signing_key() {
        // Exactness matters: Intel's signature covers these bytes and nothing else.
        let c = Collateral::from_pcs(&spr_e4_responses()).unwrap();
        let i = c.inner();
        let chain = c.tcb_info_issuer_chain_der().unwrap();
        assert!(signed_by_chain_leaf(
            &chain,
            &i.tcb_info,
            &i.tcb_info_signature
        ));
        let chain = c.qe_identity_issuer_chain_der().unwrap();
        assert!(signed_by_chain_leaf(
            &chain,
            &i.qe_identity,
            &i.qe_identity_signature
        ));
        // One changed byte (a re-serialization would change far more) breaks it.
        let mut touched = i.tcb_info.clone();
        touched.push(' ');
        assert!(!signed_by_chain_leaf(
            &chain,
            &touched,
            &i.tcb_info_signature
        ));
    }

    #[test]
    fn go_tdx_guest_v5_tcb_info_response_verifies_after_extraction() {
        // sample_tcbinfo_response_v5 is signed by Intel's TCB signing key, the same key that
        // signs the outdated quote's collateral.
        let issuer = Collateral::from_json(&test_vectors::read(
            "tdx/tdx_quote_outdated_collateral.json",
        ))
        .unwrap();
        let mut r = spr_e4_responses();
        r.tcb_info_response = test_vectors::read("tdx/sample_tcbinfo_response_v5");
        r.tcb_info_issuer_chain = issuer.inner().tcb_info_issuer_chain.clone().into_bytes();
        let c = Collateral::from_pcs(&r).unwrap();
        let tcb: serde_json::Value = serde_json::from_str(c.tcb_info_json()).unwrap();
        assert_eq!(tcb["fmspc"], "90c06f000000");
        let chain = c.tcb_info_issuer_chain_der().unwrap();
        assert!(signed_by_chain_leaf(
            &chain,
            c.tcb_info_json(),
            &c.inner().tcb_info_signature
        ));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        #[test]
        fn mutated_collateral_json_never_panics(
            edits in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 1..6),
        ) {
            let mut b = test_vectors::read("tdx/DERIVED_dcapqvl_collateral_SPR_E4.json");
            for (pos, val) in edits {
                let i = pos % b.len();
                b[i] = val;
            }
            if let Ok(c) = Collateral::from_json(&b) {
                let _ = c.content_hash();
            }
        }

        #[test]
        fn mutated_pcs_responses_never_panic(
            part in 0usize..4,
            edits in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 1..6),
        ) {
            let mut r = spr_e4_responses();
            let target = match part {
                0 => &mut r.tcb_info_response,
                1 => &mut r.qe_identity_response,
                2 => &mut r.pck_crl,
                _ => &mut r.tcb_info_issuer_chain,
            };
            for (pos, val) in edits {
                let i = pos % target.len();
                target[i] = val;
            }
            let _ = Collateral::from_pcs(&r);
        }
    }
}
