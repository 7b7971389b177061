//! Simulated Intel TDX: v4 quotes with a TD 1.0 body and their DCAP collateral, byte for byte in
//! Intel's formats ("Intel TDX DCAP Quoting Library API" rev. 1.5; "Intel SGX PCK Certificate
//! and CRL Profile"; PCS v4 TCB info v3 and enclave identity v2 JSON), under the simulated root.
//!
//! The quote carries what a real TD quoting enclave (TD_QE) produces: header (Intel's QE vendor
//! id, attestation key type 2 = ECDSA P-256), the TD report, the ECDSA signature by the
//! attestation key over header ‖ body, and certification data type 6 = QE report, its signature
//! by the PCK key, QE authentication data and inner certification data type 5 = the PEM PCK
//! chain (PCK → PCK platform CA → root), NUL-terminated as Intel's library writes it.
//!
//! The simulated platform has fixed identity values ([`SIM_FMSPC`], [`SIM_PCE_ID`],
//! [`SIM_CPUSVN`], [`SIM_PCESVN`]) because they are certified by the committed PCK certificate.
//! The TCB info grades the TD's `TEE_TCB_SVN`: with the default [`SimTdReport`] the quote is
//! `UpToDate`; lower SVNs give `OutOfDate` or no matching level (see [`SimTdx::collateral`]).

use dcap_qvl::QuoteCollateralV3;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey;
use serde::Serialize;
use sha2::{Digest, Sha256, Sha384};

use super::{put, rfc3339, sim_error, SIM_VALID_FROM, SIM_VALID_UNTIL};
use crate::error::Result;
use crate::tdx::{Collateral, RootAnchor, TcbStatus};
use crate::TrustRoot;

// ------------------------------------------------------------------ committed TEST material

const ROOT_CA_DER: &[u8] = include_bytes!("keys/tdx-root-ca.cert.der");
const ROOT_CA_PEM: &str = include_str!("keys/tdx-root-ca.cert.pem");
const PCK_CA_PEM: &str = include_str!("keys/tdx-pck-platform-ca.cert.pem");
const PCK_PEM: &str = include_str!("keys/tdx-pck.cert.pem");
const TCB_SIGNING_PEM: &str = include_str!("keys/tdx-tcb-signing.cert.pem");
const ROOT_CA_CRL_DER: &[u8] = include_bytes!("keys/tdx-root-ca.crl.der");
const PCK_CRL_DER: &[u8] = include_bytes!("keys/tdx-pck.crl.der");
const PCK_REVOKED_CRL_DER: &[u8] = include_bytes!("keys/tdx-pck-revoked.crl.der");
const PCK_KEY_PEM: &str = include_str!("keys/tdx-pck.test-key.pem");
const TCB_SIGNING_KEY_PEM: &str = include_str!("keys/tdx-tcb-signing.test-key.pem");
const ATTESTATION_KEY_PEM: &str = include_str!("keys/tdx-attestation.test-key.pem");

// ------------------------------------------------------------------ platform identity

/// Intel's QE vendor id (the vendor of every Intel quoting enclave), as a real quote carries it.
pub const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
];
/// FMSPC of the simulated platform ("SIM\0\0\0"), certified by the sim PCK certificate.
pub const SIM_FMSPC: [u8; 6] = *b"SIM\0\0\0";
/// PCE-ID of the simulated platform.
pub const SIM_PCE_ID: [u8; 2] = [0, 0];
/// CPUSVN (= SGX TCB components 1..16) certified by the sim PCK certificate.
pub const SIM_CPUSVN: [u8; 16] = [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0];
/// PCESVN certified by the sim PCK certificate.
pub const SIM_PCESVN: u16 = 11;
/// The default TEE_TCB_SVN: TDX module ISVSVN 6, module version 1 (identity `TDX_01`),
/// TDX late microcode SVN 3. Graded `UpToDate` by the sim TCB info.
pub const SIM_TEE_TCB_SVN: [u8; 16] = [6, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
/// Advisory attached to the sim TCB info's `OutOfDate` levels (not an Intel advisory).
pub const SIM_ADVISORY: &str = "SIM-SA-00001";

/// TD attribute bit 0: the TD runs in debug mode (host can read its state).
pub const TD_ATTR_DEBUG: u64 = 1 << 0;
/// TD attribute bit 28: SEPT_VE_DISABLE.
pub const TD_ATTR_SEPT_VE_DISABLE: u64 = 1 << 28;

const HEADER_LEN: usize = 48;
const TD_REPORT10_LEN: usize = 584;
const QE_REPORT_LEN: usize = 384;
const QE_ISV_PROD_ID: u16 = 2; // TD_QE
const QE_ISV_SVN: u16 = 4;
const QE_ATTRIBUTES: [u8; 16] = [0x15, 0, 0, 0, 0, 0, 0, 0, 0xe7, 0, 0, 0, 0, 0, 0, 0];
const TCB_EVALUATION_DATA_NUMBER: u32 = 1;

fn sha256(label: &[u8]) -> [u8; 32] {
    Sha256::digest(label).into()
}

fn sha384(label: &[u8]) -> [u8; 48] {
    Sha384::digest(label).into()
}

/// MRSIGNER of the simulated TD quoting enclave (named in the sim QE identity).
pub fn qe_mr_signer() -> [u8; 32] {
    sha256(b"COCOON SIMULATED TD_QE SIGNER (NOT HARDWARE)")
}

/// MRENCLAVE of the simulated TD quoting enclave.
pub fn qe_mr_enclave() -> [u8; 32] {
    sha256(b"COCOON SIMULATED TD_QE (NOT HARDWARE)")
}

/// The simulated root as a DCAP trust anchor (kind [`TrustRoot::Simulated`]).
pub fn root_anchor() -> RootAnchor {
    RootAnchor::new(TrustRoot::Simulated, ROOT_CA_DER.to_vec())
}

/// The pinned Intel root and the simulated root: a verifier that accepts both real and simulated
/// quotes, telling them apart by [`crate::tdx::VerifiedQuote::root`].
pub fn anchors_with_intel() -> Vec<RootAnchor> {
    vec![RootAnchor::intel(), root_anchor()]
}

/// The simulated root certificate (DER).
pub fn root_ca_der() -> &'static [u8] {
    ROOT_CA_DER
}

/// The PCK chain the sim puts in its quotes: PCK, PCK platform CA, root (PEM, leaf first).
pub fn pck_chain_pem() -> String {
    [PCK_PEM, PCK_CA_PEM, ROOT_CA_PEM].concat()
}

// ------------------------------------------------------------------ the TD report

/// The TD report fields a simulated quote attests (the TDX 1.0 `TDREPORT` body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTdReport {
    pub tee_tcb_svn: [u8; 16],
    pub mr_seam: [u8; 48],
    pub mr_signer_seam: [u8; 48],
    pub seam_attributes: [u8; 8],
    /// Little-endian TD attributes; see [`TD_ATTR_DEBUG`], [`TD_ATTR_SEPT_VE_DISABLE`].
    pub td_attributes: [u8; 8],
    pub xfam: [u8; 8],
    pub mr_td: [u8; 48],
    pub mr_config_id: [u8; 48],
    pub mr_owner: [u8; 48],
    pub mr_owner_config: [u8; 48],
    pub rt_mr: [[u8; 48]; 4],
    pub report_data: [u8; 64],
}

impl Default for SimTdReport {
    /// A production-like TD: SEPT_VE_DISABLE set, no debug, the XFAM of a real TD, MRSIGNERSEAM
    /// zero (Intel's module signer, as in Intel's TCB info), the default [`SIM_TEE_TCB_SVN`],
    /// MRTD = SHA-384("COCOON SIMULATED TD (NOT HARDWARE)"), RTMRs and owner fields zero.
    fn default() -> Self {
        Self {
            tee_tcb_svn: SIM_TEE_TCB_SVN,
            mr_seam: sha384(b"COCOON SIMULATED TDX MODULE (NOT HARDWARE)"),
            mr_signer_seam: [0; 48],
            seam_attributes: [0; 8],
            td_attributes: TD_ATTR_SEPT_VE_DISABLE.to_le_bytes(),
            xfam: 0x0006_02e7_u64.to_le_bytes(),
            mr_td: sha384(b"COCOON SIMULATED TD (NOT HARDWARE)"),
            mr_config_id: [0; 48],
            mr_owner: [0; 48],
            mr_owner_config: [0; 48],
            rt_mr: [[0; 48]; 4],
            report_data: [0; 64],
        }
    }
}

impl SimTdReport {
    /// Sets or clears the DEBUG attribute.
    pub fn debug(mut self, on: bool) -> Self {
        self.set_attribute(TD_ATTR_DEBUG, on);
        self
    }

    /// Sets or clears SEPT_VE_DISABLE.
    pub fn sept_ve_disable(mut self, on: bool) -> Self {
        self.set_attribute(TD_ATTR_SEPT_VE_DISABLE, on);
        self
    }

    /// Sets REPORTDATA.
    pub fn report_data(mut self, report_data: [u8; 64]) -> Self {
        self.report_data = report_data;
        self
    }

    fn set_attribute(&mut self, bit: u64, on: bool) {
        let mut attributes = u64::from_le_bytes(self.td_attributes);
        if on {
            attributes |= bit;
        } else {
            attributes &= !bit;
        }
        self.td_attributes = attributes.to_le_bytes();
    }

    /// The 584-byte TD 1.0 report body.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut body = vec![0u8; TD_REPORT10_LEN];
        let mut fields: Vec<&[u8]> = vec![
            &self.tee_tcb_svn,
            &self.mr_seam,
            &self.mr_signer_seam,
            &self.seam_attributes,
            &self.td_attributes,
            &self.xfam,
            &self.mr_td,
            &self.mr_config_id,
            &self.mr_owner,
            &self.mr_owner_config,
        ];
        fields.extend(self.rt_mr.iter().map(|r| r.as_slice()));
        fields.push(&self.report_data);
        let mut offset = 0usize;
        for field in fields {
            put(&mut body, offset, field)?;
            offset = offset
                .checked_add(field.len())
                .ok_or_else(|| sim_error("layout", "overflow"))?;
        }
        Ok(body)
    }
}

// ------------------------------------------------------------------ collateral options

/// What the sim's collateral says; the default is the documented long-lived, `UpToDate` set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCollateralOptions {
    /// `issueDate` of TCB info and QE identity (unix seconds). Default [`SIM_VALID_FROM`].
    pub issue_date: i64,
    /// `nextUpdate` of TCB info and QE identity. Default [`SIM_VALID_UNTIL`].
    pub next_update: i64,
    /// Status of the platform TCB level the default TD meets. Default `UpToDate`.
    pub tcb_status: TcbStatus,
    /// Advisory IDs of that level. Default none.
    pub advisory_ids: Vec<String>,
    /// Serve the PCK CRL that lists the sim PCK certificate (revoked). Default false.
    pub revoke_pck: bool,
    /// FMSPC named by the TCB info. Default [`SIM_FMSPC`] (what the PCK certificate says).
    pub fmspc: [u8; 6],
    /// PCE-ID named by the TCB info. Default [`SIM_PCE_ID`].
    pub pce_id: [u8; 2],
    /// MRSIGNER the QE identity expects. Default [`qe_mr_signer`] (the sim QE's).
    pub qe_mr_signer: [u8; 32],
}

impl Default for SimCollateralOptions {
    fn default() -> Self {
        Self {
            issue_date: SIM_VALID_FROM,
            next_update: SIM_VALID_UNTIL,
            tcb_status: TcbStatus::UpToDate,
            advisory_ids: Vec::new(),
            revoke_pck: false,
            fmspc: SIM_FMSPC,
            pce_id: SIM_PCE_ID,
            qe_mr_signer: qe_mr_signer(),
        }
    }
}

// Intel's JSON shapes, fields in Intel's order (the signature covers the exact string).

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TcbInfoJson {
    id: &'static str,
    version: u8,
    issue_date: String,
    next_update: String,
    fmspc: String,
    pce_id: String,
    tcb_type: u8,
    tcb_evaluation_data_number: u32,
    tdx_module: TdxModuleJson,
    tdx_module_identities: Vec<TdxModuleIdentityJson>,
    tcb_levels: Vec<TcbLevelJson>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TdxModuleJson {
    mrsigner: String,
    attributes: String,
    attributes_mask: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TdxModuleIdentityJson {
    id: &'static str,
    mrsigner: String,
    attributes: String,
    attributes_mask: String,
    tcb_levels: Vec<IsvSvnLevelJson>,
}

#[derive(Serialize)]
struct IsvSvnJson {
    isvsvn: u16,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IsvSvnLevelJson {
    tcb: IsvSvnJson,
    tcb_date: String,
    tcb_status: &'static str,
    #[serde(rename = "advisoryIDs", skip_serializing_if = "Vec::is_empty")]
    advisory_ids: Vec<String>,
}

#[derive(Serialize)]
struct SvnJson {
    svn: u8,
}

#[derive(Serialize)]
struct TcbJson {
    sgxtcbcomponents: Vec<SvnJson>,
    pcesvn: u16,
    tdxtcbcomponents: Vec<SvnJson>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TcbLevelJson {
    tcb: TcbJson,
    tcb_date: String,
    tcb_status: &'static str,
    #[serde(rename = "advisoryIDs", skip_serializing_if = "Vec::is_empty")]
    advisory_ids: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QeIdentityJson {
    id: &'static str,
    version: u8,
    issue_date: String,
    next_update: String,
    tcb_evaluation_data_number: u32,
    miscselect: &'static str,
    miscselect_mask: &'static str,
    attributes: &'static str,
    attributes_mask: &'static str,
    mrsigner: String,
    isvprodid: u16,
    tcb_levels: Vec<IsvSvnLevelJson>,
}

fn svns(values: &[u8]) -> Vec<SvnJson> {
    values.iter().map(|&svn| SvnJson { svn }).collect()
}

// ------------------------------------------------------------------ the simulator

/// The simulated TDX platform: its quoting enclave's attestation key, the PCK key certified by
/// the sim PCK certificate and the TCB signing key. Fixed TEST keys: deterministic output.
#[derive(Clone)]
pub struct SimTdx {
    attestation_key: SigningKey,
    pck_key: SigningKey,
    tcb_signing_key: SigningKey,
}

impl std::fmt::Debug for SimTdx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimTdx { TEST keys, NOT HARDWARE }")
    }
}

fn load_key(pem: &str, what: &str) -> Result<SigningKey> {
    SigningKey::from_pkcs8_pem(pem).map_err(|e| sim_error(what, e))
}

fn sign(key: &SigningKey, message: &[u8], what: &str) -> Result<[u8; 64]> {
    // RFC 6979: deterministic nonce, so equal inputs give equal quotes.
    let signature: Signature = key.try_sign(message).map_err(|e| sim_error(what, e))?;
    Ok(signature.to_bytes().into())
}

fn u16_len(len: usize) -> Result<[u8; 2]> {
    u16::try_from(len)
        .map(u16::to_le_bytes)
        .map_err(|e| sim_error("length", e))
}

fn u32_len(len: usize) -> Result<[u8; 4]> {
    u32::try_from(len)
        .map(u32::to_le_bytes)
        .map_err(|e| sim_error("length", e))
}

impl SimTdx {
    /// The simulator with the committed TEST keys.
    pub fn new() -> Result<Self> {
        Ok(Self {
            attestation_key: load_key(ATTESTATION_KEY_PEM, "attestation key")?,
            pck_key: load_key(PCK_KEY_PEM, "PCK key")?,
            tcb_signing_key: load_key(TCB_SIGNING_KEY_PEM, "TCB signing key")?,
        })
    }

    /// The simulated root as a trust anchor (same as [`root_anchor`]).
    pub fn root_anchor(&self) -> RootAnchor {
        root_anchor()
    }

    /// The raw attestation public key x ‖ y as quotes carry it.
    pub fn attestation_public_key(&self) -> [u8; 64] {
        let point = self.attestation_key.verifying_key().to_encoded_point(false);
        let mut raw = [0u8; 64];
        // An uncompressed SEC1 point is 0x04 ‖ x ‖ y (65 bytes).
        if let Some(xy) = point.as_bytes().get(1..65) {
            raw.copy_from_slice(xy);
        }
        raw
    }

    /// The 48-byte v4 quote header: Intel's QE vendor id, ECDSA P-256 key, TEE type TDX.
    fn header() -> Result<Vec<u8>> {
        let mut header = vec![0u8; HEADER_LEN];
        put(&mut header, 0, &4u16.to_le_bytes())?; // version
        put(&mut header, 2, &2u16.to_le_bytes())?; // attestation key type: ECDSA-256 P-256
        put(&mut header, 4, &crate::tdx::TEE_TYPE_TDX.to_le_bytes())?;
        // 8..12 reserved (v4)
        put(&mut header, 12, &INTEL_QE_VENDOR_ID)?;
        // User data: Intel's QE puts a QE identifier in the first 16 bytes.
        put(
            &mut header,
            28,
            sha256(b"COCOON SIMULATED QE ID")
                .get(..16)
                .unwrap_or_default(),
        )?;
        Ok(header)
    }

    /// The 384-byte QE report binding the attestation key and QE authentication data.
    fn qe_report(&self, qe_auth_data: &[u8]) -> Result<Vec<u8>> {
        let mut hasher = Sha256::new();
        hasher.update(self.attestation_public_key());
        hasher.update(qe_auth_data);
        let binding: [u8; 32] = hasher.finalize().into();

        let mut report = vec![0u8; QE_REPORT_LEN];
        put(&mut report, 0, &SIM_CPUSVN)?; // cpu_svn
        put(&mut report, 16, &0u32.to_le_bytes())?; // misc_select
        put(&mut report, 48, &QE_ATTRIBUTES)?;
        put(&mut report, 64, &qe_mr_enclave())?;
        put(&mut report, 128, &qe_mr_signer())?;
        put(&mut report, 256, &QE_ISV_PROD_ID.to_le_bytes())?;
        put(&mut report, 258, &QE_ISV_SVN.to_le_bytes())?;
        put(&mut report, 320, &binding)?; // report_data[..32]; the rest stays zero
        Ok(report)
    }

    /// Issues a TDX v4 quote for `td`.
    pub fn issue_quote(&self, td: &SimTdReport) -> Result<Vec<u8>> {
        let mut signed = Self::header()?;
        signed.extend_from_slice(&td.to_bytes()?);
        let quote_signature = sign(&self.attestation_key, &signed, "quote signature")?;

        // QE authentication data: 32 bytes, as Intel's QE writes (0x00..0x1f).
        let qe_auth_data: Vec<u8> = (0u8..32).collect();
        let qe_report = self.qe_report(&qe_auth_data)?;
        let qe_report_signature = sign(&self.pck_key, &qe_report, "QE report signature")?;

        let mut chain = pck_chain_pem().into_bytes();
        chain.push(0); // Intel's library NUL-terminates the PEM chain.

        // Certification data type 6: QE report certification data.
        let mut qe_cert_data = qe_report;
        qe_cert_data.extend_from_slice(&qe_report_signature);
        qe_cert_data.extend_from_slice(&u16_len(qe_auth_data.len())?);
        qe_cert_data.extend_from_slice(&qe_auth_data);
        qe_cert_data.extend_from_slice(&5u16.to_le_bytes()); // type 5: PCK chain (PEM)
        qe_cert_data.extend_from_slice(&u32_len(chain.len())?);
        qe_cert_data.extend_from_slice(&chain);

        let mut signature_data = quote_signature.to_vec();
        signature_data.extend_from_slice(&self.attestation_public_key());
        signature_data.extend_from_slice(&6u16.to_le_bytes());
        signature_data.extend_from_slice(&u32_len(qe_cert_data.len())?);
        signature_data.extend_from_slice(&qe_cert_data);

        let mut quote = signed;
        quote.extend_from_slice(&u32_len(signature_data.len())?);
        quote.extend_from_slice(&signature_data);
        Ok(quote)
    }

    /// The collateral for this platform's quotes with [`SimCollateralOptions::default`]:
    /// TCB info and QE identity issued [`SIM_VALID_FROM`], next update [`SIM_VALID_UNTIL`];
    /// CRLs and certificates valid over the same window.
    ///
    /// The TCB info grades `TEE_TCB_SVN` (module version 1 → identity `TDX_01`):
    /// module ISVSVN ≥ 4 and SVN\[2\] ≥ 3 → `UpToDate` (the default TD); module ISVSVN 2..3 or
    /// SVN\[2\] = 2 → `OutOfDate` with advisory [`SIM_ADVISORY`]; lower → no matching level.
    pub fn collateral(&self) -> Result<Collateral> {
        self.collateral_with(&SimCollateralOptions::default())
    }

    /// The collateral with explicit dates and status of the top TCB level.
    pub fn collateral_with(&self, options: &SimCollateralOptions) -> Result<Collateral> {
        let issue_date = rfc3339(options.issue_date)?;
        let next_update = rfc3339(options.next_update)?;
        let tcb_date = rfc3339(SIM_VALID_FROM)?;
        let zero_signer = hex::encode_upper([0u8; 48]);

        let module_identity = TdxModuleIdentityJson {
            id: "TDX_01",
            mrsigner: zero_signer.clone(),
            attributes: "0000000000000000".into(),
            attributes_mask: "FFFFFFFFFFFFFFFF".into(),
            tcb_levels: vec![
                IsvSvnLevelJson {
                    tcb: IsvSvnJson { isvsvn: 4 },
                    tcb_date: tcb_date.clone(),
                    tcb_status: "UpToDate",
                    advisory_ids: Vec::new(),
                },
                IsvSvnLevelJson {
                    tcb: IsvSvnJson { isvsvn: 2 },
                    tcb_date: tcb_date.clone(),
                    tcb_status: "OutOfDate",
                    advisory_ids: vec![SIM_ADVISORY.into()],
                },
            ],
        };
        let tdx_components = |late_microcode: u8| {
            let mut c = [0u8; 16];
            c[0] = 4; // module ISVSVN (judged by the module identity when the version is set)
            c[2] = late_microcode;
            svns(&c)
        };
        let tcb_info = TcbInfoJson {
            id: "TDX",
            version: 3,
            issue_date: issue_date.clone(),
            next_update: next_update.clone(),
            fmspc: hex::encode_upper(options.fmspc),
            pce_id: hex::encode_upper(options.pce_id),
            tcb_type: 0,
            tcb_evaluation_data_number: TCB_EVALUATION_DATA_NUMBER,
            tdx_module: TdxModuleJson {
                mrsigner: zero_signer,
                attributes: "0000000000000000".into(),
                attributes_mask: "FFFFFFFFFFFFFFFF".into(),
            },
            tdx_module_identities: vec![module_identity],
            tcb_levels: vec![
                TcbLevelJson {
                    tcb: TcbJson {
                        sgxtcbcomponents: svns(&SIM_CPUSVN),
                        pcesvn: SIM_PCESVN,
                        tdxtcbcomponents: tdx_components(3),
                    },
                    tcb_date: tcb_date.clone(),
                    tcb_status: options.tcb_status.as_str(),
                    advisory_ids: options.advisory_ids.clone(),
                },
                TcbLevelJson {
                    tcb: TcbJson {
                        sgxtcbcomponents: svns(&SIM_CPUSVN),
                        pcesvn: SIM_PCESVN,
                        tdxtcbcomponents: tdx_components(2),
                    },
                    tcb_date: tcb_date.clone(),
                    tcb_status: "OutOfDate",
                    advisory_ids: vec![SIM_ADVISORY.into()],
                },
            ],
        };
        let qe_identity = QeIdentityJson {
            id: "TD_QE",
            version: 2,
            issue_date,
            next_update,
            tcb_evaluation_data_number: TCB_EVALUATION_DATA_NUMBER,
            miscselect: "00000000",
            miscselect_mask: "FFFFFFFF",
            attributes: "11000000000000000000000000000000",
            attributes_mask: "FBFFFFFFFFFFFFFF0000000000000000",
            mrsigner: hex::encode_upper(options.qe_mr_signer),
            isvprodid: QE_ISV_PROD_ID,
            tcb_levels: vec![IsvSvnLevelJson {
                tcb: IsvSvnJson { isvsvn: QE_ISV_SVN },
                tcb_date,
                tcb_status: "UpToDate",
                advisory_ids: Vec::new(),
            }],
        };
        let tcb_info = serde_json::to_string(&tcb_info).map_err(|e| sim_error("TCB info", e))?;
        let qe_identity =
            serde_json::to_string(&qe_identity).map_err(|e| sim_error("QE identity", e))?;
        let tcb_info_signature = sign(&self.tcb_signing_key, tcb_info.as_bytes(), "TCB info")?;
        let qe_identity_signature =
            sign(&self.tcb_signing_key, qe_identity.as_bytes(), "QE identity")?;
        let signing_chain = [TCB_SIGNING_PEM, ROOT_CA_PEM].concat();

        Collateral::from_inner(QuoteCollateralV3 {
            pck_crl_issuer_chain: [PCK_CA_PEM, ROOT_CA_PEM].concat(),
            root_ca_crl: ROOT_CA_CRL_DER.to_vec(),
            pck_crl: if options.revoke_pck {
                PCK_REVOKED_CRL_DER.to_vec()
            } else {
                PCK_CRL_DER.to_vec()
            },
            tcb_info_issuer_chain: signing_chain.clone(),
            tcb_info,
            tcb_info_signature: tcb_info_signature.to_vec(),
            qe_identity_issuer_chain: signing_chain,
            qe_identity,
            qe_identity_signature: qe_identity_signature.to_vec(),
            pck_certificate_chain: None,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::sim::SIM_NOW;

    fn dcap_qvl_verify(quote: &[u8], collateral: &Collateral) -> dcap_qvl::verify::VerifiedReport {
        dcap_qvl::verify::QuoteVerifier::new(root_ca_der().to_vec())
            .verify(quote, &collateral.inner, SIM_NOW as u64)
            .unwrap()
    }

    #[test]
    fn dcap_qvl_accepts_the_sim_quote_as_up_to_date() {
        let sim = SimTdx::new().unwrap();
        let quote = sim
            .issue_quote(&SimTdReport::default().report_data([7; 64]))
            .unwrap();
        let report = dcap_qvl_verify(&quote, &sim.collateral().unwrap());
        assert_eq!(report.status, "UpToDate");
        assert!(report.advisory_ids.is_empty());
        let td = report.report.as_td10().unwrap();
        assert_eq!(td.report_data, [7; 64]);
        assert_eq!(td.mr_td, SimTdReport::default().mr_td);
    }

    #[test]
    fn dcap_qvl_grades_a_lower_module_svn_out_of_date() {
        let sim = SimTdx::new().unwrap();
        let mut td = SimTdReport::default();
        td.tee_tcb_svn[0] = 3;
        let report = dcap_qvl_verify(&sim.issue_quote(&td).unwrap(), &sim.collateral().unwrap());
        assert_eq!(report.status, "OutOfDate");
        assert_eq!(report.advisory_ids, [SIM_ADVISORY]);
    }

    #[test]
    fn dcap_qvl_rejects_the_sim_quote_under_the_intel_root() {
        let sim = SimTdx::new().unwrap();
        let quote = sim.issue_quote(&SimTdReport::default()).unwrap();
        let result =
            dcap_qvl::verify::verify(&quote, &sim.collateral().unwrap().inner, SIM_NOW as u64);
        assert!(result.is_err());
    }

    #[test]
    fn dcap_qvl_rejects_the_sim_quote_with_its_pck_revoked() {
        let sim = SimTdx::new().unwrap();
        let quote = sim.issue_quote(&SimTdReport::default()).unwrap();
        let collateral = sim
            .collateral_with(&SimCollateralOptions {
                revoke_pck: true,
                ..SimCollateralOptions::default()
            })
            .unwrap();
        let result = dcap_qvl::verify::QuoteVerifier::new(root_ca_der().to_vec()).verify(
            &quote,
            &collateral.inner,
            SIM_NOW as u64,
        );
        assert!(format!("{:#}", result.unwrap_err()).contains("Revoked"));
    }

    #[test]
    fn td_report_layout_is_584_bytes_with_report_data_last() {
        let body = SimTdReport::default()
            .report_data([9; 64])
            .to_bytes()
            .unwrap();
        assert_eq!(body.len(), TD_REPORT10_LEN);
        assert_eq!(&body[520..], &[9; 64]);
    }
}
