//! The one error type of this crate: a variant per way that parsing, verification or policy
//! evaluation can fail, so callers and tests can match the exact reason.

use std::fmt;

/// Which piece of evidence or collateral an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Subject {
    Quote,
    QuoteHeader,
    QuoteBody,
    QuoteSignatureData,
    QeReport,
    QeAuthData,
    CertificationData,
    PckCertChain,
    PckCertificate,
    PckCrl,
    RootCaCrl,
    TcbInfo,
    QeIdentity,
    Collateral,
    SnpReport,
    Vcek,
    Vlek,
    Ask,
    Asvk,
    Ark,
    Certificate,
    Policy,
    SimulatedEvidence,
    /// The enclave's canonical claims (`claims` module).
    Claims,
    /// An RA-TLS certificate (`ratls` module).
    RaTlsCertificate,
    /// A fresh attestation response (`ratls::FreshAttestation`).
    FreshAttestation,
    /// A TCG crypto-agile event log (TDX CCEL, `eventlog` module).
    EventLog,
    /// Our RTMR3 runtime extension log (`eventlog::runtime`).
    RuntimeLog,
    /// A dm-verity hash device or its parameters (`verity` module).
    Verity,
    /// A measured configuration folder (`config_tree` module).
    ConfigTree,
    /// A model directory (`model_digest` module).
    ModelDirectory,
    /// NVIDIA GPU evidence: SPDM GET_MEASUREMENTS request ‖ response (`gpu` module).
    GpuEvidence,
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Quote => "quote",
            Self::QuoteHeader => "quote header",
            Self::QuoteBody => "quote body",
            Self::QuoteSignatureData => "quote signature data",
            Self::QeReport => "QE report",
            Self::QeAuthData => "QE authentication data",
            Self::CertificationData => "certification data",
            Self::PckCertChain => "PCK certificate chain",
            Self::PckCertificate => "PCK certificate",
            Self::PckCrl => "PCK CRL",
            Self::RootCaCrl => "root CA CRL",
            Self::TcbInfo => "TCB info",
            Self::QeIdentity => "QE identity",
            Self::Collateral => "collateral",
            Self::SnpReport => "SEV-SNP report",
            Self::Vcek => "VCEK",
            Self::Vlek => "VLEK",
            Self::Ask => "ASK",
            Self::Asvk => "ASVK",
            Self::Ark => "ARK",
            Self::Certificate => "certificate",
            Self::Policy => "policy",
            Self::SimulatedEvidence => "simulated evidence",
            Self::Claims => "claims",
            Self::RaTlsCertificate => "RA-TLS certificate",
            Self::FreshAttestation => "fresh attestation response",
            Self::EventLog => "event log",
            Self::RuntimeLog => "runtime measurement log",
            Self::Verity => "dm-verity hash tree",
            Self::ConfigTree => "configuration folder",
            Self::ModelDirectory => "model directory",
            Self::GpuEvidence => "GPU evidence",
        };
        f.write_str(name)
    }
}

/// Every way that parsing, verification or policy evaluation can fail.
///
/// Variants carry enough context for a human report; tests match the variant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    // ---------------------------------------------------------------- parsing (all formats)
    /// The input ended before a structure was complete.
    Truncated {
        subject: Subject,
        needed: usize,
        available: usize,
    },
    /// Bytes follow the structure that are not the zero padding real quotes carry.
    TrailingBytes {
        subject: Subject,
        count: usize,
    },
    /// A length field points beyond the data or over a size limit.
    LengthOutOfRange {
        subject: Subject,
        length: usize,
        limit: usize,
    },
    /// The input is larger than this verifier accepts.
    InputTooLarge {
        subject: Subject,
        size: usize,
        limit: usize,
    },
    /// Text input (hex, PEM, JSON, TOML) could not be decoded.
    Malformed {
        subject: Subject,
        reason: String,
    },

    // ---------------------------------------------------------------- Intel DCAP quotes
    UnsupportedQuoteVersion(u16),
    UnsupportedTeeType(u32),
    /// The quote version does not fit its TEE type (SGX must be v3, TDX v4/v5).
    QuoteVersionTeeTypeMismatch {
        version: u16,
        tee_type: u32,
    },
    UnsupportedAttestationKeyType(u16),
    UnsupportedBodyType(u16),
    UnsupportedCertificationDataType(u16),
    UnknownQeVendorId([u8; 16]),
    /// A reserved field that must be zero is not.
    ReservedFieldNonZero {
        subject: Subject,
        field: &'static str,
    },
    /// The ECDSA signature over header ‖ body by the attestation key is invalid.
    QuoteSignatureInvalid,
    /// The QE report signature by the PCK key is invalid.
    QeReportSignatureInvalid,
    /// QE report data ≠ SHA-256(attestation key ‖ QE authentication data).
    QeReportDataMismatch,
    /// An ECDSA signature is malformed (r or s zero or not below the group order).
    SignatureMalformed {
        subject: Subject,
    },
    /// The certificate chain does not lead to the pinned vendor root.
    UntrustedRoot {
        subject: Subject,
    },
    /// The root public key's SHA-384 differs from the pinned Intel root key id.
    RootKeyIdMismatch {
        expected: String,
        actual: String,
    },
    /// A certificate's signature by its issuer is invalid.
    CertificateSignatureInvalid {
        subject: Subject,
        position: usize,
    },
    /// A certificate chain is structurally wrong (too short, issuer ≠ subject, not a CA,
    /// path length exceeded, bad key usage …).
    CertificateChainInvalid {
        subject: Subject,
        reason: String,
    },
    /// A certificate could not be parsed.
    CertificateMalformed {
        subject: Subject,
        reason: String,
    },
    /// A certificate is outside its validity window at the verification time.
    CertificateExpired {
        subject: Subject,
        not_after: i64,
        now: i64,
    },
    CertificateNotYetValid {
        subject: Subject,
        not_before: i64,
        now: i64,
    },
    /// A certificate in the chain is listed in a CRL.
    CertificateRevoked {
        subject: Subject,
        serial: String,
    },
    /// A CRL is badly signed, from the wrong issuer, or unusable.
    CrlInvalid {
        subject: Subject,
        reason: String,
    },
    /// A CRL's nextUpdate is in the past (or thisUpdate in the future).
    CrlExpired {
        subject: Subject,
        next_update: i64,
        now: i64,
    },
    CrlNotYetValid {
        subject: Subject,
        this_update: i64,
        now: i64,
    },
    /// TCB info / QE identity signature invalid.
    CollateralSignatureInvalid {
        subject: Subject,
    },
    /// TCB info / QE identity past its nextUpdate.
    CollateralExpired {
        subject: Subject,
        issue_date: i64,
        next_update: i64,
        now: i64,
    },
    /// TCB info / QE identity issued after the verification time.
    CollateralNotYetValid {
        subject: Subject,
        issue_date: i64,
        next_update: i64,
        now: i64,
    },
    /// The collateral does not fit the quote (wrong TEE type or id/version of the JSON).
    CollateralMismatch {
        subject: Subject,
        reason: String,
    },
    /// FMSPC in the PCK certificate ≠ FMSPC of the TCB info.
    FmspcMismatch {
        pck: String,
        tcb_info: String,
    },
    /// PCE-ID in the PCK certificate ≠ PCE-ID of the TCB info (or of the quote header).
    PceIdMismatch {
        pck: String,
        other: String,
    },
    /// The QE report does not match the QE identity (MRSIGNER, ISVPRODID, attributes, miscselect).
    QeIdentityMismatch {
        field: &'static str,
    },
    /// The QE's ISVSVN is below every QE identity TCB level.
    QeTcbLevelNotFound {
        isv_svn: u16,
    },
    /// MRSIGNERSEAM / SEAMATTRIBUTES do not match the TDX module identity in the TCB info.
    TdxModuleIdentityMismatch {
        field: &'static str,
    },
    /// No TCB level of the TCB info is met by the platform (Intel: TCB_NOT_SUPPORTED).
    TcbLevelNotFound,
    /// A TCB status string not in Intel's list for its structure.
    UnknownTcbStatus(String),
    /// The platform's TCB is revoked: rejected regardless of policy.
    TcbRevoked,

    // ---------------------------------------------------------------- AMD SEV-SNP
    UnsupportedReportVersion(u32),
    UnsupportedSignatureAlgorithm(u32),
    /// The ECDSA P-384 signature over report bytes 0x000..0x2A0 is invalid.
    ReportSignatureInvalid,
    /// The report's signing key (VCEK or VLEK) does not fit the certificate given.
    SigningKeyMismatch {
        reason: String,
    },
    /// The processor generation from CPUID fields or the certificate is unknown or inconsistent.
    UnknownProcessorGeneration {
        reason: String,
    },
    /// A chain whose certificates belong to different generations (e.g. Genoa ASK for a Milan VCEK).
    GenerationMismatch {
        expected: String,
        actual: String,
    },
    /// reported_tcb ≠ the SPLs in the VCEK/VLEK.
    TcbVersionMismatch {
        field: &'static str,
        report: u8,
        certificate: u8,
    },
    /// CHIP_ID ≠ the VCEK's hwID.
    ChipIdMismatch,
    /// committed TCB > current TCB, or launch TCB > current TCB.
    TcbOrderingViolated {
        reason: String,
    },

    // ---------------------------------------------------------------- policy
    /// A policy file is invalid (unknown key, bad value).
    PolicyInvalid {
        reason: String,
    },
    /// An allowlist in the policy is present but empty: nothing can satisfy it.
    EmptyAllowlist {
        field: &'static str,
    },
    /// A measured value is not in the policy's allowlist.
    MeasurementNotAllowed {
        field: &'static str,
        actual: String,
    },
    /// A pinned value differs.
    ValueMismatch {
        field: &'static str,
        expected: String,
        actual: String,
    },
    /// A version / SVN below the policy minimum.
    BelowMinimum {
        field: &'static str,
        minimum: String,
        actual: String,
    },
    /// A guest policy or attribute above the policy maximum (SNP ABI, VMPL …).
    AboveMaximum {
        field: &'static str,
        maximum: String,
        actual: String,
    },
    TcbStatusNotAllowed {
        status: String,
    },
    AdvisoryNotAllowed {
        id: String,
    },
    /// TD DEBUG attribute / SNP guest-policy DEBUG bit set and the policy forbids debug.
    DebugNotAllowed,
    /// TDX: SEPT_VE_DISABLE clear while the policy requires it.
    SeptVeDisableRequired,
    /// A feature the policy forbids is enabled (SNP SMT, migration agent, TD migratable …).
    FeatureNotAllowed {
        feature: &'static str,
    },
    /// Provisional (not yet committed) SNP firmware while the policy forbids it.
    ProvisionalFirmwareNotAllowed,
    /// The evidence is signed by the simulated root and the policy does not name it.
    SimulatedEvidenceNotAllowed,
    /// The evidence's platform is not covered by the policy.
    PlatformNotAllowed {
        platform: String,
    },
    /// The policy requires a claim the claims do not carry (`field`: the policy key, e.g.
    /// `claims.require_hpke_key`, `claims.model_dm_verity_root`).
    RequiredClaimAbsent {
        field: &'static str,
    },

    // ---------------------------------------------------------------- claims and binding
    /// The claims encoding is structurally wrong (see [`ClaimsDefect`]). Truncation, trailing
    /// bytes and oversize input are reported as [`Error::Truncated`], [`Error::TrailingBytes`]
    /// and [`Error::InputTooLarge`] with [`Subject::Claims`].
    ClaimsMalformed {
        defect: ClaimsDefect,
    },
    /// The claims encoding has a format version this crate does not read.
    UnsupportedClaimsVersion(u16),
    /// The evidence's REPORT_DATA is not SHA-512(domain tag ‖ canonical claims): the evidence
    /// does not vouch for these claims. Both values in hex.
    ReportDataMismatch {
        expected: String,
        actual: String,
    },
    /// The claims' expiry is at or before the verification time.
    ClaimsExpired {
        expires_at: i64,
        now: i64,
    },
    /// The claims' creation time is after the verification time.
    ClaimsNotYetValid {
        created_at: i64,
        now: i64,
    },
    /// The claims carry no nonce or another nonce than the one the verifier sent.
    NonceMismatch,
    /// The claims name another platform than the verified evidence is from (e.g. hardware
    /// claims with simulated evidence, SNP claims with a TDX quote).
    ClaimsPlatformMismatch {
        claims: &'static str,
        evidence: &'static str,
    },

    // ---------------------------------------------------------------- RA-TLS (`ratls`)
    /// The claims commit to `committed` GPU reports (`Claims::gpu`) but `carried` came: GPU
    /// evidence stripped, added or for another enclave.
    GpuEvidenceCountMismatch {
        committed: usize,
        carried: usize,
    },
    /// A required RA-TLS extension (`evidence`, `claims`) is absent from the certificate.
    RaTlsExtensionMissing {
        extension: &'static str,
    },
    /// An extension OID appears more than once in the certificate.
    DuplicateExtension {
        oid: String,
    },
    /// A critical extension this verifier does not understand.
    UnknownCriticalExtension {
        oid: String,
    },
    /// An RA-TLS extension is not marked critical.
    RaTlsExtensionNotCritical {
        extension: &'static str,
    },
    /// An RA-TLS extension's value does not decode.
    RaTlsExtensionMalformed {
        extension: &'static str,
        reason: String,
    },
    /// An RA-TLS extension is larger than its cap.
    RaTlsExtensionTooLarge {
        extension: &'static str,
        size: usize,
        limit: usize,
    },
    /// An RA-TLS extension of a version this build does not read.
    UnsupportedRaTlsVersion {
        extension: &'static str,
        version: u64,
    },
    /// The certificate's key is not ECDSA P-256 or Ed25519 (or its signature algorithm does
    /// not match the key).
    UnsupportedKeyType {
        algorithm: String,
    },
    /// The certificate's self-signature does not verify under its own key.
    SelfSignatureInvalid,
    /// The claims' `tls_spki_sha256` is not the SHA-256 of the certificate's public key: the
    /// evidence vouches for another key.
    CertificateKeyMismatch {
        claims: String,
        certificate: String,
    },
    /// notAfter − notBefore exceeds the verifier's maximum lifetime.
    CertificateLifetimeTooLong {
        lifetime_secs: i64,
        max_secs: i64,
    },
    /// The peer sent intermediate certificates; RA-TLS chains have depth 0.
    CertificateChainTooLong {
        intermediates: usize,
    },
    /// No collateral for the quote (no source configured, or none for its FMSPC).
    CollateralNotFound {
        reason: String,
    },
    /// Authentic evidence that the policy refuses; every failed check, in evaluation order.
    PolicyRejected {
        failures: Vec<Error>,
    },
    /// A fresh attestation's claims differ from the peer's in more than the nonce.
    FreshClaimsChanged {
        field: &'static str,
    },
    /// A measurement of the peer differs from the one verified before (another TEE or image).
    MeasurementChanged {
        field: String,
        before: String,
        after: String,
    },
    /// Evidence carried in a format this path does not handle (e.g. COCOON without support).
    UnsupportedEvidence {
        reason: String,
    },
    // ---------------------------------------------------------------- COCOON interop (ratls::cocoon)
    /// A COCOON certificate's key (or the key given to issue one) is not Ed25519.
    CocoonUnsupportedKey {
        algorithm: String,
    },
    /// An extension appears twice in a COCOON certificate.
    CocoonDuplicateExtension {
        oid: String,
    },
    /// A COCOON certificate marks critical an extension outside the set COCOON writes.
    CocoonUnknownCriticalExtension {
        oid: String,
    },
    /// A COCOON certificate lacks the quote or the user-claims extension.
    CocoonExtensionMissing {
        oid: &'static str,
    },
    /// The quote's REPORT_DATA is not SHA-512(user claims): the quote does not vouch for this
    /// certificate. Both values in hex.
    CocoonReportDataMismatch {
        expected: String,
        actual: String,
    },
    /// The user claims are not the certificate's raw Ed25519 public key. Both values in hex.
    CocoonClaimsMismatch {
        claims: String,
        public_key: String,
    },
    /// An HPKE-sealed body (`bodies` module) is larger than accepted.
    SealedBodyTooLarge {
        size: usize,
        limit: usize,
    },
    /// An HPKE-sealed body (request envelope or response chunk) does not parse.
    SealedBodyMalformed {
        reason: &'static str,
    },
    /// A sealed body names a version or algorithm this library does not implement.
    SealedBodyUnsupported {
        reason: String,
    },
    /// The AEAD (or HPKE decapsulation) rejected a sealed body: wrong key, other AAD, or tampering.
    SealedBodyDecryptFailed,
    /// An HPKE key is not an X25519 key of kem_id 0x0020 and 32 bytes.
    SealedBodyKeyInvalid {
        reason: &'static str,
    },
    /// A request's associated data (method, path) is out of bounds.
    RequestAadInvalid {
        field: &'static str,
        reason: &'static str,
    },
    /// The request id was already seen within the replay window.
    RequestReplayed,
    /// The request timestamp lies outside now ± the replay window.
    RequestTimestampOutOfWindow {
        timestamp: i64,
        now: i64,
        window_secs: i64,
    },
    /// The replay cache holds its capacity of request ids within the window.
    RequestReplayCacheFull {
        capacity: usize,
    },
    /// A response chunk carries another counter than the next one expected.
    ResponseChunkOutOfOrder {
        expected: u64,
        got: u64,
    },
    /// A response chunk arrived after the final chunk.
    ResponseChunkAfterFinal,
    /// The response stream ended without its final chunk.
    ResponseTruncated,
    // ---------------------------------------------------------------- measured boot (`measure`)
    /// A firmware image (OVMF) is structurally wrong: footer GUID table, SEV or TDVF metadata.
    FirmwareMalformed {
        reason: String,
    },
    /// The firmware lacks an entry the measurement needs (e.g. the SEV-ES reset block, the SEV
    /// metadata, the TDVF metadata).
    FirmwareEntryMissing {
        entry: &'static str,
    },
    /// A kernel was given but the firmware has no SNP_KERNEL_HASHES section (or, for SEV/SEV-ES,
    /// no hashes table): the kernel, initrd and command line would not be measured.
    KernelHashesUnsupported,
    /// A measurement input is out of range or inconsistent (vCPU count, hash length, metadata).
    MeasurementInputInvalid {
        reason: String,
    },
    /// A vCPU type name that is not in QEMU's list of EPYC models.
    UnknownVcpuType {
        name: String,
    },
    /// A kernel image is not a PE/COFF file this Authenticode hasher reads.
    PeImageMalformed {
        reason: String,
    },

    // ---------------------------------------------------------------- measured boot (#6)
    /// The event log does not start with a TCG Spec ID event (`Spec ID Event03`).
    EventLogSpecIdInvalid {
        reason: String,
    },
    /// An event names a digest algorithm the Spec ID event does not list.
    EventLogUnknownAlgorithm {
        algorithm: u16,
    },
    /// An event extends a measurement register outside RTMR0-3 (MR index 1..4).
    EventLogMrIndexOutOfRange {
        index: u32,
    },
    /// An event lacks the SHA-384 digest that replay needs.
    EventLogDigestMissing {
        event: usize,
    },
    /// Replayed RTMRs differ from the quote's (every differing register, in order).
    RtmrMismatch {
        register: usize,
        replayed: String,
        quote: String,
    },
    /// A line of the runtime measurement log does not parse (1-based line number).
    RuntimeLogLineInvalid {
        line: usize,
        reason: String,
    },
    /// dm-verity parameters are unusable (block sizes, salt length, empty data …).
    VerityParametersInvalid {
        reason: String,
    },
    /// Reading the data or writing the hash device failed.
    Io {
        subject: Subject,
        path: String,
        reason: String,
    },
    /// A folder holds something that has no git tree form (a FIFO, a socket, a device …).
    ConfigTreeUnsupportedEntry {
        path: String,
    },
    /// A file changed size while it was hashed.
    FileChangedWhileHashed {
        path: String,
        expected: u64,
        actual: u64,
    },

    // ---------------------------------------------------------------- NVIDIA GPU evidence (`gpu`)
    /// The SPDM GET_MEASUREMENTS request ‖ response is not well formed (truncated, trailing
    /// bytes, wrong codes, length mismatch, duplicate block or TLV …).
    GpuEvidenceMalformed {
        reason: String,
    },
    /// A GPU evidence header field (SPDM version, request/response code, measurement
    /// specification …) has a value this verifier does not accept.
    GpuUnexpectedValue {
        field: &'static str,
        expected: u64,
        actual: u64,
    },
    /// A measurement block index or opaque-data type appears twice in GPU evidence.
    GpuDuplicateEntry {
        what: &'static str,
        id: u16,
    },
    /// The P-384 signature over SHA-384(request ‖ response without signature) by the leaf
    /// (attestation) certificate's key is invalid.
    GpuSignatureInvalid,
    /// The GPU certificate chain is structurally wrong (empty, only the root, unparsable
    /// certificate, issuer name ≠ subject name, not P-384 …).
    GpuChainInvalid {
        reason: String,
    },
    /// A certificate of the GPU chain is not signed by the next one (`position` 0 = leaf).
    GpuChainSignatureInvalid {
        position: usize,
    },
    /// The GPU chain does not end in (and is not issued by) a trusted root.
    GpuRootUntrusted {
        issuer: String,
    },
    /// A GPU certificate's notAfter is before the verification time.
    GpuCertificateExpired {
        position: usize,
        not_after: i64,
        now: i64,
    },
    /// A GPU certificate's notBefore is after the verification time.
    GpuCertificateNotYetValid {
        position: usize,
        not_before: i64,
        now: i64,
    },
    /// The leaf certificate has no FWID extension (2.23.133.5.4.1), or the report has no FWID TLV.
    GpuFwidMissing {
        what: &'static str,
    },
    /// The leaf certificate's FWID differs from the report's FWID TLV.
    GpuFwidMismatch {
        certificate: String,
        report: String,
    },
    /// The request nonce differs from the one the verifier expected (stale or replayed report).
    GpuNonceMismatch {
        expected: String,
        actual: String,
    },
    /// The policy's `[gpu]` section sets `required = true` and no GPU evidence was presented.
    GpuEvidenceRequired,
    /// A policy `[gpu]` check failed (architecture, driver/VBIOS version, measurement, count).
    GpuPolicyViolation {
        gpu: usize,
        reason: String,
    },
}

/// What is wrong with a claims encoding ([`Error::ClaimsMalformed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimsDefect {
    /// The first four bytes are not the claims magic.
    BadMagic,
    /// A field tag this version does not define.
    UnknownField { tag: u8 },
    /// A field tag appears twice.
    DuplicateField { tag: u8 },
    /// A field tag is lower than the one before it (tags must be strictly increasing).
    FieldOutOfOrder { tag: u8, after: u8 },
    /// A required field is absent.
    MissingField { field: &'static str },
    /// A field's length is outside what the field allows.
    FieldLength {
        field: &'static str,
        length: usize,
        min: usize,
        max: usize,
    },
    /// A platform code this version does not define.
    UnknownPlatform(u8),
    /// The GPU field's count is outside 1..=8 (a count, not a length).
    GpuCount(u8),
    /// An execution-provider code this version does not define.
    UnknownExecutionProvider(u8),
}

impl fmt::Display for ClaimsDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic => f.write_str("bad magic"),
            Self::GpuCount(n) => write!(f, "gpu count {n} not in 1..=8"),
            Self::UnknownExecutionProvider(code) => {
                write!(f, "unknown execution provider code {code}")
            }
            Self::UnknownField { tag } => write!(f, "unknown field tag {tag}"),
            Self::DuplicateField { tag } => write!(f, "field tag {tag} appears twice"),
            Self::FieldOutOfOrder { tag, after } => {
                write!(
                    f,
                    "field tag {tag} follows tag {after} (tags must increase)"
                )
            }
            Self::MissingField { field } => write!(f, "required field {field} is absent"),
            Self::FieldLength {
                field,
                length,
                min,
                max,
            } => write!(f, "field {field} has {length} bytes, allowed {min}..={max}"),
            Self::UnknownPlatform(code) => write!(f, "unknown platform code {code:#04x}"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The Debug form names the variant and every field; refined messages live in `message()`.
        write!(f, "{}", self.message())
    }
}

impl std::error::Error for Error {}

impl Error {
    /// A short machine-readable name of the variant (`"quote_signature_invalid"`), used as the
    /// `kind` in JSON reports.
    pub fn kind(&self) -> String {
        let debug = format!("{self:?}");
        let name = debug
            .split(|c: char| !c.is_alphanumeric())
            .next()
            .unwrap_or_default();
        let mut kind = String::with_capacity(name.len().saturating_add(8));
        for (i, c) in name.chars().enumerate() {
            if c.is_uppercase() {
                if i != 0 {
                    kind.push('_');
                }
                kind.extend(c.to_lowercase());
            } else {
                kind.push(c);
            }
        }
        kind
    }

    /// A human-readable explanation.
    pub fn message(&self) -> String {
        use Error::*;
        match self {
            Truncated {
                subject,
                needed,
                available,
            } => {
                format!("{subject} is truncated: needs {needed} bytes, {available} available")
            }
            TrailingBytes { subject, count } => {
                format!("{count} unexpected bytes after the {subject}")
            }
            LengthOutOfRange {
                subject,
                length,
                limit,
            } => {
                format!("{subject} length {length} exceeds {limit}")
            }
            InputTooLarge {
                subject,
                size,
                limit,
            } => {
                format!("{subject} of {size} bytes exceeds the limit of {limit} bytes")
            }
            Malformed { subject, reason } => format!("malformed {subject}: {reason}"),
            CertificateExpired {
                subject,
                not_after,
                now,
            } => format!(
                "{subject} expired at {} (verification time {})",
                fmt_time(*not_after),
                fmt_time(*now)
            ),
            CertificateNotYetValid {
                subject,
                not_before,
                now,
            } => format!(
                "{subject} is not valid before {} (verification time {})",
                fmt_time(*not_before),
                fmt_time(*now)
            ),
            CrlExpired {
                subject,
                next_update,
                now,
            } => format!(
                "{subject} expired at {} (verification time {})",
                fmt_time(*next_update),
                fmt_time(*now)
            ),
            CrlNotYetValid {
                subject,
                this_update,
                now,
            } => format!(
                "{subject} is issued at {}, after the verification time {}",
                fmt_time(*this_update),
                fmt_time(*now)
            ),
            CollateralExpired {
                subject,
                issue_date,
                next_update,
                now,
            } => format!(
                "{subject} expired: valid {} .. {}, verification time {}",
                fmt_time(*issue_date),
                fmt_time(*next_update),
                fmt_time(*now)
            ),
            CollateralNotYetValid {
                subject,
                issue_date,
                next_update,
                now,
            } => format!(
                "{subject} not yet valid: valid {} .. {}, verification time {}",
                fmt_time(*issue_date),
                fmt_time(*next_update),
                fmt_time(*now)
            ),
            QuoteSignatureInvalid => {
                "quote signature (attestation key over header and body) is invalid".into()
            }
            QeReportSignatureInvalid => "QE report signature (by the PCK key) is invalid".into(),
            QeReportDataMismatch => {
                "QE report data is not SHA-256(attestation key ‖ QE authentication data)".into()
            }
            ReportSignatureInvalid => "SEV-SNP report signature is invalid".into(),
            TcbLevelNotFound => {
                "no TCB level of the TCB info matches the platform (TCB not supported)".into()
            }
            TcbRevoked => "the platform TCB is revoked".into(),
            ChipIdMismatch => "CHIP_ID of the report differs from the certificate's hwID".into(),
            DebugNotAllowed => "debug mode is enabled and the policy does not allow it".into(),
            SeptVeDisableRequired => "SEPT_VE_DISABLE is clear and the policy requires it".into(),
            ProvisionalFirmwareNotAllowed => {
                "provisional firmware is not allowed by the policy".into()
            }
            SimulatedEvidenceNotAllowed => {
                "evidence is from the simulated TEE and the policy does not name the simulated root"
                    .into()
            }
            UnsupportedQuoteVersion(v) => format!("unsupported quote version {v}"),
            UnsupportedTeeType(t) => format!("unsupported TEE type {t:#x}"),
            QuoteVersionTeeTypeMismatch { version, tee_type } => {
                format!("quote version {version} does not fit TEE type {tee_type:#x} (SGX: v3, TDX: v4/v5)")
            }
            UnsupportedAttestationKeyType(t) => {
                format!("unsupported attestation key type {t} (only 2, ECDSA-256 with P-256)")
            }
            UnsupportedBodyType(t) => format!("unsupported quote body type {t}"),
            UnsupportedCertificationDataType(t) => {
                format!("unsupported certification data type {t}")
            }
            UnknownQeVendorId(id) => format!("unknown QE vendor id {}", hex::encode(id)),
            ReservedFieldNonZero { subject, field } => {
                format!("reserved field {field} of the {subject} is not zero")
            }
            SignatureMalformed { subject } => format!("malformed ECDSA signature in the {subject}"),
            UntrustedRoot { subject } => {
                format!("the {subject} does not chain to a trusted root")
            }
            RootKeyIdMismatch { expected, actual } => {
                format!("root public key id {actual} is not the pinned {expected}")
            }
            CertificateSignatureInvalid { subject, position } => format!(
                "signature of certificate {position} (0 = leaf) of the {subject} is invalid"
            ),
            CertificateChainInvalid { subject, reason } => format!("invalid {subject}: {reason}"),
            CertificateMalformed { subject, reason } => {
                format!("malformed certificate in the {subject}: {reason}")
            }
            CertificateRevoked { subject, serial } => {
                format!("certificate with serial {serial} in the {subject} is revoked")
            }
            CrlInvalid { subject, reason } => format!("invalid {subject}: {reason}"),
            CollateralSignatureInvalid { subject } => {
                format!("signature of the {subject} is invalid")
            }
            CollateralMismatch { subject, reason } => {
                format!("the {subject} does not fit the quote: {reason}")
            }
            FmspcMismatch { pck, tcb_info } => {
                format!("FMSPC {pck} of the PCK certificate differs from the TCB info's {tcb_info}")
            }
            PceIdMismatch { pck, other } => {
                format!("PCE-ID {pck} of the PCK certificate differs from {other}")
            }
            QeIdentityMismatch { field } => {
                format!("the QE report's {field} does not match the QE identity")
            }
            QeTcbLevelNotFound { isv_svn } => {
                format!("QE ISVSVN {isv_svn} is below every QE identity TCB level")
            }
            TdxModuleIdentityMismatch { field } => {
                format!("{field} does not match the TDX module identity of the TCB info")
            }
            UnknownTcbStatus(s) => format!("unknown TCB status {s:?}"),
            UnsupportedReportVersion(v) => format!("unsupported SEV-SNP report version {v}"),
            UnsupportedSignatureAlgorithm(a) => {
                format!(
                    "unsupported report signature algorithm {a} (only 1, ECDSA P-384 with SHA-384)"
                )
            }
            SigningKeyMismatch { reason } => format!("signing key mismatch: {reason}"),
            UnknownProcessorGeneration { reason } => {
                format!("unknown processor generation: {reason}")
            }
            GenerationMismatch { expected, actual } => {
                format!("certificate chain is for {actual}, the evidence is from {expected}")
            }
            TcbVersionMismatch {
                field,
                report,
                certificate,
            } => format!(
                "reported TCB {field} SPL {report} differs from the certificate's {certificate}"
            ),
            TcbOrderingViolated { reason } => format!("TCB ordering violated: {reason}"),
            PolicyInvalid { reason } => format!("invalid policy: {reason}"),
            EmptyAllowlist { field } => {
                format!("policy {field} is an empty allowlist: nothing can satisfy it")
            }
            MeasurementNotAllowed { field, actual } => {
                format!("{actual} is not in the policy's allowlist {field}")
            }
            ValueMismatch {
                field,
                expected,
                actual,
            } => {
                format!("{field} is {actual}, the policy requires {expected}")
            }
            BelowMinimum {
                field,
                minimum,
                actual,
            } => {
                format!("{field} is {actual}, below the policy minimum {minimum}")
            }
            AboveMaximum {
                field,
                maximum,
                actual,
            } => {
                format!("{field} is {actual}, above the policy maximum {maximum}")
            }
            TcbStatusNotAllowed { status } => {
                format!("TCB status {status} is not allowed by the policy")
            }
            AdvisoryNotAllowed { id } => format!("advisory {id} is not allowed by the policy"),
            FeatureNotAllowed { feature } => {
                format!("{feature} is enabled and the policy forbids it")
            }
            PlatformNotAllowed { platform } => {
                format!("the policy has no section for platform {platform}")
            }
            ClaimsMalformed { defect } => format!("malformed claims: {defect}"),
            UnsupportedClaimsVersion(v) => format!("unsupported claims format version {v}"),
            ReportDataMismatch { expected, actual } => format!(
                "REPORT_DATA {actual} is not SHA-512(tag ‖ claims) = {expected}: the evidence does not vouch for these claims"
            ),
            ClaimsExpired { expires_at, now } => format!(
                "claims expired at {} (verification time {})",
                fmt_time(*expires_at),
                fmt_time(*now)
            ),
            ClaimsNotYetValid { created_at, now } => format!(
                "claims are created at {}, after the verification time {}",
                fmt_time(*created_at),
                fmt_time(*now)
            ),
            NonceMismatch => "the claims do not carry the nonce the verifier sent".into(),
            ClaimsPlatformMismatch { claims, evidence } => {
                format!("the claims name platform {claims}, the evidence is from {evidence}")
            }
            RaTlsExtensionMissing { extension } => {
                format!("the certificate has no RA-TLS {extension} extension")
            }
            GpuEvidenceCountMismatch { committed, carried } => format!(
                "the claims commit to {committed} GPU report(s), {carried} came with the evidence"
            ),
            DuplicateExtension { oid } => format!("extension {oid} appears more than once"),
            UnknownCriticalExtension { oid } => {
                format!("unknown critical extension {oid}")
            }
            RaTlsExtensionNotCritical { extension } => {
                format!("the RA-TLS {extension} extension is not marked critical")
            }
            RaTlsExtensionMalformed { extension, reason } => {
                format!("malformed RA-TLS {extension} extension: {reason}")
            }
            RaTlsExtensionTooLarge {
                extension,
                size,
                limit,
            } => format!(
                "RA-TLS {extension} extension of {size} bytes exceeds the limit of {limit} bytes"
            ),
            UnsupportedRaTlsVersion { extension, version } => {
                format!("unsupported version {version} of the RA-TLS {extension} extension")
            }
            UnsupportedKeyType { algorithm } => format!(
                "certificate key/signature algorithm {algorithm} is not ECDSA P-256 or Ed25519"
            ),
            SelfSignatureInvalid => "the certificate's self-signature is invalid".into(),
            CertificateKeyMismatch {
                claims,
                certificate,
            } => format!(
                "the claims vouch for key SHA-256 {claims}, the certificate's key is {certificate}"
            ),
            CertificateLifetimeTooLong {
                lifetime_secs,
                max_secs,
            } => format!(
                "certificate lifetime {lifetime_secs} s exceeds the maximum of {max_secs} s"
            ),
            CertificateChainTooLong { intermediates } => format!(
                "the peer sent {intermediates} intermediate certificate(s); RA-TLS certificates stand alone"
            ),
            CollateralNotFound { reason } => format!("no collateral for the quote: {reason}"),
            PolicyRejected { failures } => {
                let list: Vec<String> = failures.iter().map(Error::message).collect();
                format!("the policy refuses the evidence: {}", list.join("; "))
            }
            FreshClaimsChanged { field } => format!(
                "the fresh attestation's claims differ from the peer's in {field} (only the nonce may differ)"
            ),
            MeasurementChanged {
                field,
                before,
                after,
            } => format!("measurement {field} changed from {before} to {after}"),
            UnsupportedEvidence { reason } => format!("unsupported evidence: {reason}"),
            RequiredClaimAbsent { field } => {
                format!("the claims lack what policy {field} requires")
            }
            CocoonUnsupportedKey { algorithm } => {
                format!("COCOON certificate key is {algorithm}, not Ed25519")
            }
            CocoonDuplicateExtension { oid } => {
                format!("extension {oid} appears more than once in the COCOON certificate")
            }
            CocoonUnknownCriticalExtension { oid } => {
                format!("the COCOON certificate has an unknown critical extension {oid}")
            }
            CocoonExtensionMissing { oid } => {
                format!("the COCOON certificate has no extension {oid}")
            }
            CocoonReportDataMismatch { expected, actual } => format!(
                "REPORT_DATA {actual} is not SHA-512(user claims) = {expected}: the quote does not vouch for this certificate"
            ),
            CocoonClaimsMismatch { claims, public_key } => format!(
                "COCOON user claims {claims} are not the certificate's Ed25519 key {public_key}"
            ),
            SealedBodyTooLarge { size, limit } => {
                format!("sealed body of {size} bytes exceeds the limit of {limit} bytes")
            }
            SealedBodyMalformed { reason } => format!("malformed sealed body: {reason}"),
            SealedBodyUnsupported { reason } => format!("unsupported sealed body: {reason}"),
            SealedBodyDecryptFailed => {
                "the sealed body does not decrypt (wrong key, other request metadata, or tampered)"
                    .to_string()
            }
            SealedBodyKeyInvalid { reason } => format!("invalid HPKE key: {reason}"),
            RequestAadInvalid { field, reason } => {
                format!("request associated data {field}: {reason}")
            }
            RequestReplayed => "the request id was already used within the replay window".to_string(),
            RequestTimestampOutOfWindow {
                timestamp,
                now,
                window_secs,
            } => format!(
                "request timestamp {timestamp} is more than {window_secs} s from now ({now})"
            ),
            RequestReplayCacheFull { capacity } => {
                format!("the replay cache holds its capacity of {capacity} request ids")
            }
            ResponseChunkOutOfOrder { expected, got } => {
                format!("response chunk {got} arrived where chunk {expected} was expected")
            }
            ResponseChunkAfterFinal => "a response chunk arrived after the final chunk".to_string(),
            ResponseTruncated => "the response stream ended without its final chunk".to_string(),
            FirmwareMalformed { reason } => format!("malformed firmware image: {reason}"),
            FirmwareEntryMissing { entry } => format!("the firmware has no {entry}"),
            KernelHashesUnsupported => {
                "Kernel specified but OVMF metadata doesn't include SNP_KERNEL_HASHES section (the firmware cannot measure kernel, initrd and command line)".to_string()
            }
            MeasurementInputInvalid { reason } => format!("invalid measurement input: {reason}"),
            UnknownVcpuType { name } => format!("unknown vCPU type {name:?}"),
            PeImageMalformed { reason } => format!("malformed PE image: {reason}"),
            EventLogSpecIdInvalid { reason } => {
                format!("the event log has no valid Spec ID event: {reason}")
            }
            EventLogUnknownAlgorithm { algorithm } => format!(
                "an event carries digest algorithm {algorithm:#06x}, which the Spec ID event does not list"
            ),
            EventLogMrIndexOutOfRange { index } => {
                format!("an event extends MR index {index}; TDX has MR indices 1..4 (RTMR0-3)")
            }
            EventLogDigestMissing { event } => {
                format!("event {event} has no SHA-384 digest to replay")
            }
            RtmrMismatch {
                register,
                replayed,
                quote,
            } => format!("RTMR{register} replayed from the log is {replayed}, the quote has {quote}"),
            RuntimeLogLineInvalid { line, reason } => {
                format!("runtime measurement log line {line}: {reason}")
            }
            VerityParametersInvalid { reason } => format!("invalid dm-verity parameters: {reason}"),
            Io {
                subject,
                path,
                reason,
            } => format!("{subject} {path}: {reason}"),
            ConfigTreeUnsupportedEntry { path } => format!(
                "{path} is not a regular file, folder or symbolic link: it has no git tree form"
            ),
            FileChangedWhileHashed {
                path,
                expected,
                actual,
            } => format!("{path} changed while hashed ({expected} bytes, then {actual})"),
            GpuEvidenceMalformed { reason } => format!("GPU evidence is malformed: {reason}"),
            GpuUnexpectedValue {
                field,
                expected,
                actual,
            } => format!("GPU evidence {field} is {actual:#x}, expected {expected:#x}"),
            GpuDuplicateEntry { what, id } => format!("GPU evidence has {what} {id} twice"),
            GpuSignatureInvalid => {
                "GPU evidence signature (P-384 over request and response) is invalid".to_string()
            }
            GpuChainInvalid { reason } => format!("GPU certificate chain is invalid: {reason}"),
            GpuChainSignatureInvalid { position } => format!(
                "GPU certificate {position} (0 = leaf) is not signed by the certificate after it"
            ),
            GpuRootUntrusted { issuer } => {
                format!("GPU certificate chain ends in an untrusted root ({issuer})")
            }
            GpuCertificateExpired {
                position,
                not_after,
                now,
            } => format!(
                "GPU certificate {position} expired at {} (verification time {})",
                fmt_time(*not_after),
                fmt_time(*now)
            ),
            GpuCertificateNotYetValid {
                position,
                not_before,
                now,
            } => format!(
                "GPU certificate {position} is valid only from {} (verification time {})",
                fmt_time(*not_before),
                fmt_time(*now)
            ),
            GpuFwidMissing { what } => format!("GPU FWID missing: {what}"),
            GpuFwidMismatch {
                certificate,
                report,
            } => format!(
                "GPU leaf certificate FWID {certificate} differs from the report's FWID {report}"
            ),
            GpuNonceMismatch { expected, actual } => {
                format!("GPU evidence nonce {actual} differs from the expected {expected}")
            }
            GpuEvidenceRequired => {
                "the policy requires GPU evidence (gpu.required) and none was presented".to_string()
            }
            GpuPolicyViolation { gpu, reason } => format!("GPU {gpu}: {reason}"),
            #[allow(unreachable_patterns)]
            other => format!("{other:?}"),
        }
    }
}

/// Formats a unix time as RFC 3339 (UTC) for messages, falling back to the number.
pub fn fmt_time(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => t
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| unix.to_string()),
        Err(_) => unix.to_string(),
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_is_snake_case_variant_name() {
        assert_eq!(
            Error::QuoteSignatureInvalid.kind(),
            "quote_signature_invalid"
        );
        assert_eq!(
            Error::Truncated {
                subject: Subject::Quote,
                needed: 3,
                available: 1
            }
            .kind(),
            "truncated"
        );
        assert_eq!(
            Error::UnsupportedQuoteVersion(3).kind(),
            "unsupported_quote_version"
        );
    }

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(fmt_time(1752919234), "2025-07-19T10:00:34Z");
    }
}
