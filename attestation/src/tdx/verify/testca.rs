//! A P-256 test PKI shaped like Intel's (root → PCK CA → PCK leaf, root → TCB signer) that
//! re-signs modified collateral and the real `tdx_quote`'s QE report, so tests reach the logic
//! behind the signatures. The PCK leaf carries the real quote's Intel SGX extension (optionally
//! edited), so FMSPC, PCE-ID and TCB components stay those of real hardware.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use der::Decode as _;
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::DecodePrivateKey as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SerialNumber,
};
use serde_json::Value;

use super::super::collateral::Collateral;
use super::super::quote::Quote;
use super::{RootAnchor, TdxVerifier};
use crate::test_vectors;
use crate::TrustRoot;

/// The pinned time of `tdx_quote`.
pub const AT: i64 = 1752919234;
const DAY: i64 = 86_400;
const SGX_EXTENSION_OID: &[u64] = &[1, 2, 840, 113741, 1, 13, 1];

fn time(unix: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

/// A key pair with its certificate.
pub struct Ca {
    pub key: KeyPair,
    pub cert: rcgen::Certificate,
}

impl Ca {
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let key = p256::ecdsa::SigningKey::from_pkcs8_der(&self.key.serialize_der()).unwrap();
        let sig: p256::ecdsa::Signature = key.sign(msg);
        sig.to_bytes().to_vec()
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }
}

/// How to issue a certificate.
pub struct Spec<'a> {
    pub cn: &'a str,
    pub ca: bool,
    pub serial: u64,
    pub not_before: i64,
    pub not_after: i64,
    pub extension: Option<Vec<u8>>,
}

impl<'a> Spec<'a> {
    pub fn new(cn: &'a str, ca: bool, serial: u64) -> Self {
        Self {
            cn,
            ca,
            serial,
            not_before: 1_577_836_800, // 2020-01-01
            not_after: 2_208_988_800,  // 2040-01-01
            extension: None,
        }
    }

    fn params(&self) -> CertificateParams {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, self.cn);
        dn.push(DnType::OrganizationName, "Cocoon Test PKI (not Intel)");
        p.distinguished_name = dn;
        p.not_before = time(self.not_before);
        p.not_after = time(self.not_after);
        p.serial_number = Some(SerialNumber::from(self.serial));
        if self.ca {
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
        } else {
            p.is_ca = IsCa::ExplicitNoCa;
            p.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::ContentCommitment,
            ];
        }
        if let Some(ext) = &self.extension {
            p.custom_extensions
                .push(rcgen::CustomExtension::from_oid_content(
                    SGX_EXTENSION_OID,
                    ext.clone(),
                ));
        }
        p
    }

    pub fn self_signed(&self) -> Ca {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = self.params().self_signed(&key).unwrap();
        Ca { key, cert }
    }

    pub fn issued_by(&self, issuer: &Ca) -> Ca {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = self
            .params()
            .signed_by(&key, &issuer.cert, &issuer.key)
            .unwrap();
        Ca { key, cert }
    }
}

/// A CRL by `issuer` valid `[this_update, next_update)` revoking `serials`.
pub fn crl(issuer: &Ca, this_update: i64, next_update: i64, serials: &[u64]) -> Vec<u8> {
    CertificateRevocationListParams {
        this_update: time(this_update),
        next_update: time(next_update),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: serials
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from(*s),
                revocation_time: time(this_update),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&issuer.cert, &issuer.key)
    .unwrap()
    .der()
    .to_vec()
}

/// The Intel SGX extension of the real `tdx_quote`'s PCK certificate.
pub fn real_pck_extension() -> Vec<u8> {
    pck_extension_of("tdx/tdx_quote")
}

/// The Intel SGX extension of a real quote's PCK certificate.
pub fn pck_extension_of(quote: &str) -> Vec<u8> {
    let quote = Quote::parse(&test_vectors::read(quote)).unwrap();
    let leaf = quote.pck_chain_der().unwrap().remove(0);
    let cert = x509_cert::Certificate::from_der(&leaf).unwrap();
    let oid = x509_cert::der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113741.1.13.1");
    cert.tbs_certificate()
        .extensions()
        .unwrap()
        .iter()
        .find(|e| e.extn_id == oid)
        .unwrap()
        .extn_value
        .as_bytes()
        .to_vec()
}

/// Replace the value of the OCTET STRING following an SGX sub-OID (`1.2.840.113741.1.13.1.<n>`).
pub fn edit_extension(ext: &[u8], sub_oid: u8, value: &[u8]) -> Vec<u8> {
    let mut needle = vec![
        0x06, 0x0A, 0x2A, 0x86, 0x48, 0x86, 0xF8, 0x4D, 0x01, 0x0D, 0x01,
    ];
    needle.push(sub_oid);
    needle.extend([0x04, value.len() as u8]);
    let at = ext
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .expect("sub-OID in the SGX extension")
        + needle.len();
    let mut out = ext.to_vec();
    out[at..at + value.len()].copy_from_slice(value);
    out
}

pub const FMSPC_OID: u8 = 4;
pub const PCE_ID_OID: u8 = 3;

/// The whole test PKI and everything a case may change before building.
pub struct Fixture {
    pub root: Ca,
    pub pck_ca: Ca,
    pub tcb_signer: Ca,
    pub pck: Ca,
    /// The real quote and collateral the case starts from.
    pub raw_quote: Vec<u8>,
    pub tcb_info: Value,
    pub qe_identity: Value,
    pub root_crl: Vec<u8>,
    pub pck_crl: Vec<u8>,
    /// PEM chains (leaf first) as they go into the collateral.
    pub pck_chain: String,
    pub tcb_chain: String,
    pub qe_chain: Option<String>,
    /// The verification time the CRLs are issued around.
    pub at: i64,
    /// Sign TCB info / QE identity with this CA instead of `tcb_signer`.
    pub tcb_info_signer: Option<Ca>,
    pub qe_identity_signer: Option<Ca>,
}

pub const ROOT_SERIAL: u64 = 1;
pub const PCK_CA_SERIAL: u64 = 2;
pub const TCB_SIGNER_SERIAL: u64 = 3;
pub const PCK_SERIAL: u64 = 4;

impl Fixture {
    /// The real `tdx_quote` with collateral re-issued by the test PKI.
    pub fn new() -> Self {
        Self::with_pck_extension(real_pck_extension())
    }

    pub fn with_pck_extension(ext: Vec<u8>) -> Self {
        Self::from_vector("tdx/tdx_quote", "tdx/tdx_quote_collateral.json", AT, ext)
    }

    /// Another real quote (and its collateral, re-issued), around time `at`.
    pub fn from_vector(quote: &str, collateral: &str, at: i64, ext: Vec<u8>) -> Self {
        let root = Spec::new("Test SGX Root CA", true, ROOT_SERIAL).self_signed();
        let pck_ca = Spec::new("Test SGX PCK Platform CA", true, PCK_CA_SERIAL).issued_by(&root);
        let tcb_signer =
            Spec::new("Test SGX TCB Signing", false, TCB_SIGNER_SERIAL).issued_by(&root);
        let mut pck_spec = Spec::new("Test SGX PCK Certificate", false, PCK_SERIAL);
        pck_spec.extension = Some(ext);
        let pck = pck_spec.issued_by(&pck_ca);
        let real: Value = serde_json::from_slice(&test_vectors::read(collateral)).unwrap();
        let tcb_info = serde_json::from_str(real["tcb_info"].as_str().unwrap()).unwrap();
        let qe_identity = serde_json::from_str(real["qe_identity"].as_str().unwrap()).unwrap();
        Self {
            root_crl: crl(&root, at - DAY, at + 30 * DAY, &[]),
            pck_crl: crl(&pck_ca, at - DAY, at + 30 * DAY, &[]),
            at,
            pck_chain: format!("{}{}{}", pck.pem(), pck_ca.pem(), root.pem()),
            tcb_chain: format!("{}{}", tcb_signer.pem(), root.pem()),
            qe_chain: None,
            raw_quote: test_vectors::read(quote),
            tcb_info,
            qe_identity,
            root,
            pck_ca,
            tcb_signer,
            pck,
            tcb_info_signer: None,
            qe_identity_signer: None,
        }
    }

    pub fn root_der(&self) -> Vec<u8> {
        self.root.cert.der().to_vec()
    }

    /// A verifier trusting only this test root (as a non-Intel anchor).
    pub fn verifier(&self) -> TdxVerifier {
        TdxVerifier::with_roots(vec![RootAnchor::new(TrustRoot::Simulated, self.root_der())])
    }

    /// The quote with its QE report re-signed by the test PCK key, after `edit` changed the
    /// QE report bytes (offsets of the SGX REPORTBODY).
    pub fn quote_bytes_with(&self, edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let parsed = Quote::parse(&self.raw_quote).unwrap();
        let report = &parsed.signature.qe_report_raw;
        let at = self
            .raw_quote
            .windows(report.len())
            .position(|w| w == report.as_slice())
            .unwrap();
        let mut raw = self.raw_quote.clone();
        edit(&mut raw[at..at + 384]);
        let sig = self.pck.sign(&raw[at..at + 384]);
        raw[at + 384..at + 448].copy_from_slice(&sig);
        raw
    }

    /// `raw` (a quote in the layout of the vectors) with a fresh attestation key of ours:
    /// `edit` changes the signed header and body, the quote is re-signed with the new key, the
    /// QE report re-bound to it (REPORTDATA = SHA-256(key ‖ QE auth data)) and re-signed by the
    /// test PCK key. So every field of the body can be set.
    pub fn resign(&self, mut raw: Vec<u8>, edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
        use sha2::Digest as _;
        let parsed = Quote::parse(&raw).unwrap();
        let n = parsed.signed_bytes.len();
        let report = &parsed.signature.qe_report_raw;
        let at = raw
            .windows(report.len())
            .position(|w| w == report.as_slice())
            .unwrap();
        edit(&mut raw[..n]);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let signing = p256::ecdsa::SigningKey::from_pkcs8_der(&key.serialize_der()).unwrap();
        let point = signing.verifying_key().to_encoded_point(false);
        let public = &point.as_bytes()[1..];
        // Signature data: length (4), signature (64), attestation key (64).
        raw[n + 68..n + 132].copy_from_slice(public);
        let sig: p256::ecdsa::Signature = signing.sign(&raw[..n]);
        raw[n + 4..n + 68].copy_from_slice(&sig.to_bytes());
        let mut h = sha2::Sha256::new();
        h.update(public);
        h.update(&parsed.signature.qe_auth_data);
        raw[at + 320..at + 352].copy_from_slice(&h.finalize());
        let qe_sig = self.pck.sign(&raw[at..at + 384]);
        raw[at + 384..at + 448].copy_from_slice(&qe_sig);
        raw
    }

    pub fn quote_bytes(&self) -> Vec<u8> {
        self.quote_bytes_with(|_| {})
    }

    pub fn quote(&self) -> Quote {
        Quote::parse(&self.quote_bytes()).unwrap()
    }

    /// The collateral without the parser's form checks (the verifier must cope on its own).
    pub fn inner(&self) -> dcap_qvl::QuoteCollateralV3 {
        let tcb_info = serde_json::to_string(&self.tcb_info).unwrap();
        let qe_identity = serde_json::to_string(&self.qe_identity).unwrap();
        let tcb_signer = self.tcb_info_signer.as_ref().unwrap_or(&self.tcb_signer);
        let qe_signer = self.qe_identity_signer.as_ref().unwrap_or(&self.tcb_signer);
        dcap_qvl::QuoteCollateralV3 {
            pck_crl_issuer_chain: format!("{}{}", self.pck_ca.pem(), self.root.pem()),
            root_ca_crl: self.root_crl.clone(),
            pck_crl: self.pck_crl.clone(),
            tcb_info_issuer_chain: self.tcb_chain.clone(),
            tcb_info_signature: tcb_signer.sign(tcb_info.as_bytes()),
            tcb_info,
            qe_identity_issuer_chain: self.qe_chain.clone().unwrap_or(self.tcb_chain.clone()),
            qe_identity_signature: qe_signer.sign(qe_identity.as_bytes()),
            qe_identity,
            pck_certificate_chain: Some(self.pck_chain.clone()),
        }
    }

    pub fn collateral(&self) -> Collateral {
        Collateral::from_inner(self.inner()).unwrap()
    }
}
